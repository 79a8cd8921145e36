/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_fin_xmpp_proto.c - pool <-> worker frames: round trips, the frame
 * splitter on byte-by-byte and batched input, and rejection of malformed
 * or oversized frames. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fin_xmpp_proto.h"

/* Feeds buf in chunks of step bytes and returns the number of frames. */
static int
split_all(const char *buf, size_t len, size_t step, char **last,
          size_t *last_len)
{
    struct fin_xmpp_framer f;
    int frames = 0;

    fin_xmpp_framer_init(&f);
    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        assert_int_equal(fin_xmpp_framer_feed(&f, buf + off, n), CMN_OK);
        for (;;) {
            const char *p;
            size_t plen;
            int rc = fin_xmpp_framer_next(&f, &p, &plen);
            if (rc == CMN_AGAIN) {
                break;
            }
            assert_int_equal(rc, CMN_OK);
            frames++;
            if (last != NULL) {
                free(*last);
                *last = malloc(plen + 1);
                memcpy(*last, p, plen);
                (*last)[plen] = '\0';
                *last_len = plen;
            }
        }
    }
    fin_xmpp_framer_cleanup(&f);
    return frames;
}

static void
test_fin_xmpp_proto_connect_round_trip(void **state)
{
    struct fin_xmpp_cmd c = {.op = FIN_XMPP_OP_CONNECT, .gen = 42};
    struct fin_xmpp_cmd d;
    char *buf = NULL;
    size_t len = 0;

    (void)state;
    c.login = (struct fin_xmpp_login){.agent = "1001",
                                      .jid = "1001@finesse.example.com",
                                      .password = "s3cr\"et",
                                      .host = "10.0.0.5",
                                      .port = 5222,
                                      .resource = "fsc",
                                      .tls_required = true,
                                      .ca_file = "/etc/fsc/ca.pem"};
    assert_int_equal(fin_xmpp_proto_encode_cmd(&c, &buf, &len), CMN_OK);
    assert_true(len > FIN_XMPP_PROTO_HDR);
    assert_int_equal(((unsigned char)buf[0] << 24 | buf[1] << 16 | buf[2] << 8 |
                      (unsigned char)buf[3]),
                     len - FIN_XMPP_PROTO_HDR);
    assert_int_equal(fin_xmpp_proto_decode_cmd(buf + 4, len - 4, &d), CMN_OK);
    assert_int_equal(d.op, FIN_XMPP_OP_CONNECT);
    assert_string_equal(d.login.agent, "1001");
    assert_string_equal(d.login.jid, "1001@finesse.example.com");
    assert_string_equal(d.login.password, "s3cr\"et");
    assert_string_equal(d.login.host, "10.0.0.5");
    assert_int_equal(d.login.port, 5222);
    assert_string_equal(d.login.resource, "fsc");
    assert_true(d.login.tls_required);
    assert_string_equal(d.login.ca_file, "/etc/fsc/ca.pem");
    assert_int_equal(d.gen, 42);
    fin_xmpp_proto_cmd_cleanup(&d);
    fin_xmpp_proto_wipe_free(buf, len);
}

static void
test_fin_xmpp_proto_other_commands(void **state)
{
    struct fin_xmpp_cmd c = {.op = FIN_XMPP_OP_CONFIG,
                             .ping_interval_s = 1,
                             .ping_timeout_s = 2,
                             .connects_per_100ms = 7};
    struct fin_xmpp_cmd d;
    char *buf = NULL;
    size_t len = 0;

    (void)state;
    assert_int_equal(fin_xmpp_proto_encode_cmd(&c, &buf, &len), CMN_OK);
    assert_int_equal(fin_xmpp_proto_decode_cmd(buf + 4, len - 4, &d), CMN_OK);
    assert_int_equal(d.op, FIN_XMPP_OP_CONFIG);
    assert_int_equal(d.ping_interval_s, 1);
    assert_int_equal(d.ping_timeout_s, 2);
    assert_int_equal(d.connects_per_100ms, 7);
    fin_xmpp_proto_cmd_cleanup(&d);
    free(buf);

    c = (struct fin_xmpp_cmd){.op = FIN_XMPP_OP_DISCONNECT};
    c.login.agent = "a1";
    assert_int_equal(fin_xmpp_proto_encode_cmd(&c, &buf, &len), CMN_OK);
    assert_int_equal(fin_xmpp_proto_decode_cmd(buf + 4, len - 4, &d), CMN_OK);
    assert_int_equal(d.op, FIN_XMPP_OP_DISCONNECT);
    assert_string_equal(d.login.agent, "a1");
    fin_xmpp_proto_cmd_cleanup(&d);
    free(buf);

    c = (struct fin_xmpp_cmd){.op = FIN_XMPP_OP_SHUTDOWN};
    assert_int_equal(fin_xmpp_proto_encode_cmd(&c, &buf, &len), CMN_OK);
    assert_int_equal(fin_xmpp_proto_decode_cmd(buf + 4, len - 4, &d), CMN_OK);
    assert_int_equal(d.op, FIN_XMPP_OP_SHUTDOWN);
    fin_xmpp_proto_cmd_cleanup(&d);
    free(buf);

    /* connect without a password, disconnect without an agent */
    c = (struct fin_xmpp_cmd){.op = FIN_XMPP_OP_CONNECT};
    c.login = (struct fin_xmpp_login){.agent = "a", .jid = "a@b", .host = "h"};
    assert_int_equal(fin_xmpp_proto_encode_cmd(&c, &buf, &len), CMN_INVALID);
    c = (struct fin_xmpp_cmd){.op = FIN_XMPP_OP_DISCONNECT};
    assert_int_equal(fin_xmpp_proto_encode_cmd(&c, &buf, &len), CMN_INVALID);
}

static void
test_fin_xmpp_proto_event_round_trip(void **state)
{
    static const char payload[] = "<Update><data><user>\xc3\xa9</user></data>"
                                  "<source>/finesse/api/User/1001</source>"
                                  "</Update>";
    struct fin_xmpp_event ev = {.kind = FIN_XMPP_UPDATE,
                                .agent = "1001",
                                .node = "/finesse/api/User/1001",
                                .payload = payload,
                                .payload_len = sizeof(payload) - 1};
    struct fin_xmpp_event d;
    json_t *root = NULL;
    long long gen = 0;
    char *buf = NULL;
    size_t len = 0;

    (void)state;
    assert_int_equal(fin_xmpp_proto_encode_event(&ev, 7, &buf, &len), CMN_OK);
    assert_int_equal(
        fin_xmpp_proto_decode_event(buf + 4, len - 4, &d, &gen, &root), CMN_OK);
    assert_int_equal(d.kind, FIN_XMPP_UPDATE);
    assert_int_equal(gen, 7);
    assert_string_equal(d.agent, "1001");
    assert_string_equal(d.node, "/finesse/api/User/1001");
    assert_int_equal(d.payload_len, sizeof(payload) - 1);
    assert_memory_equal(d.payload, payload, sizeof(payload) - 1);
    json_decref(root);
    free(buf);

    ev = (struct fin_xmpp_event){.kind = FIN_XMPP_PRESENCE,
                                 .agent = "1001",
                                 .from = "finesse@x/y",
                                 .available = true};
    assert_int_equal(fin_xmpp_proto_encode_event(&ev, 1, &buf, &len), CMN_OK);
    assert_int_equal(
        fin_xmpp_proto_decode_event(buf + 4, len - 4, &d, &gen, &root), CMN_OK);
    assert_int_equal(d.kind, FIN_XMPP_PRESENCE);
    assert_string_equal(d.from, "finesse@x/y");
    assert_true(d.available);
    json_decref(root);
    free(buf);

    ev = (struct fin_xmpp_event){
        .kind = FIN_XMPP_OFFLINE, .agent = "1001", .detail = "worker died"};
    assert_int_equal(fin_xmpp_proto_encode_event(&ev, 3, &buf, &len), CMN_OK);
    assert_int_equal(
        fin_xmpp_proto_decode_event(buf + 4, len - 4, &d, &gen, &root), CMN_OK);
    assert_int_equal(d.kind, FIN_XMPP_OFFLINE);
    assert_string_equal(d.detail, "worker died");
    assert_null(d.node);
    assert_null(d.payload);
    json_decref(root);
    free(buf);

    /* invalid UTF-8 cannot be encoded */
    ev.detail = "\xff\xfe";
    assert_int_equal(fin_xmpp_proto_encode_event(&ev, 3, &buf, &len),
                     CMN_INVALID);
}

static void
test_fin_xmpp_proto_rejects_bad_json(void **state)
{
    static const char *const bad_cmds[] = {
        "",
        "[]",
        "{}",
        "{\"op\":\"nope\"}",
        "{\"op\":1}",
        "{\"op\":\"connect\",\"agent\":\"a\",\"jid\":\"a@b\",\"host\":\"h\"}",
        "{\"op\":\"connect\",\"agent\":\"a\",\"jid\":\"a@b\",\"host\":\"h\","
        "\"password\":\"p\",\"port\":70000}",
        "{\"op\":\"connect\",\"agent\":\"\",\"jid\":\"a@b\",\"host\":\"h\","
        "\"password\":\"p\"}",
        "{\"op\":\"connect\",\"agent\":\"a\\u0000b\",\"jid\":\"a@b\","
        "\"host\":\"h\",\"password\":\"p\"}",
        "{\"op\":\"connect\",\"agent\":\"a\",\"jid\":\"a@b\",\"host\":\"h\","
        "\"password\":\"p\",\"tls_required\":\"yes\"}",
        "{\"op\":\"disconnect\"}",
        "{\"op\":\"config\",\"ping_interval_s\":0}",
        "{\"op\":\"shutdown\",\"op\":\"shutdown\"}",
        "{\"op\":\"shutdown\"",
    };
    static const char *const bad_events[] = {
        "{\"ev\":\"online\"}",
        "{\"ev\":\"update\",\"agent\":\"a\",\"node\":\"n\"}",
        "{\"ev\":\"update\",\"agent\":\"a\",\"payload\":\"p\"}",
        "{\"ev\":\"presence\",\"agent\":\"a\"}",
        "{\"ev\":\"online\",\"agent\":\"a\",\"gen\":-1}",
        "{\"ev\":\"online\",\"agent\":\"a\",\"available\":1}",
        "{\"ev\":\"bogus\",\"agent\":\"a\"}",
    };
    struct fin_xmpp_cmd c;
    struct fin_xmpp_event ev;
    json_t *root;
    long long gen;

    (void)state;
    for (size_t i = 0; i < CMN_ARRAY_LEN(bad_cmds); i++) {
        assert_int_equal(
            fin_xmpp_proto_decode_cmd(bad_cmds[i], strlen(bad_cmds[i]), &c),
            CMN_INVALID);
        assert_null(c.root);
    }
    for (size_t i = 0; i < CMN_ARRAY_LEN(bad_events); i++) {
        assert_int_equal(fin_xmpp_proto_decode_event(bad_events[i],
                                                     strlen(bad_events[i]), &ev,
                                                     &gen, &root),
                         CMN_INVALID);
        assert_null(root);
    }
}

static void
test_fin_xmpp_proto_splitter_any_chunking(void **state)
{
    char all[4096];
    size_t len = 0;
    char *last = NULL;
    size_t last_len = 0;

    (void)state;
    for (int i = 0; i < 5; i++) {
        struct fin_xmpp_event ev = {.kind = FIN_XMPP_ONLINE, .agent = "ag"};
        char *buf;
        size_t n;
        char id[8];
        snprintf(id, sizeof(id), "ag%d", i);
        ev.agent = id;
        assert_int_equal(fin_xmpp_proto_encode_event(&ev, i, &buf, &n), CMN_OK);
        memcpy(all + len, buf, n);
        len += n;
        free(buf);
    }
    /* an empty frame is legal at this layer */
    memset(all + len, 0, 4);
    len += 4;
    for (size_t step = 1; step <= len; step = step * 2 + 1) {
        assert_int_equal(split_all(all, len, step, &last, &last_len), 6);
        assert_int_equal(last_len, 0);
    }
    assert_int_equal(split_all(all, len - 1, 7, NULL, NULL), 5);
    free(last);
}

static void
test_fin_xmpp_proto_splitter_rejects_oversized(void **state)
{
    struct fin_xmpp_framer f;
    const char *p;
    size_t n;
    /* 4 MiB + 1 */
    const unsigned char hdr[4] = {0x00, 0x40, 0x00, 0x01};
    const unsigned char ok_hdr[4] = {0x00, 0x40, 0x00, 0x00};

    (void)state;
    fin_xmpp_framer_init(&f);
    assert_int_equal(fin_xmpp_framer_feed(&f, hdr, 2), CMN_OK);
    assert_int_equal(fin_xmpp_framer_next(&f, &p, &n), CMN_AGAIN);
    assert_int_equal(fin_xmpp_framer_feed(&f, hdr + 2, 2), CMN_INVALID);
    assert_int_equal(fin_xmpp_framer_next(&f, &p, &n), CMN_INVALID);
    assert_int_equal(fin_xmpp_framer_feed(&f, "x", 1), CMN_INVALID);
    fin_xmpp_framer_cleanup(&f);

    /* exactly the maximum is accepted */
    fin_xmpp_framer_init(&f);
    assert_int_equal(fin_xmpp_framer_feed(&f, ok_hdr, 4), CMN_OK);
    char *big = calloc(1, FIN_XMPP_PROTO_MAX_FRAME);
    assert_non_null(big);
    assert_int_equal(fin_xmpp_framer_feed(&f, big, FIN_XMPP_PROTO_MAX_FRAME),
                     CMN_OK);
    assert_int_equal(fin_xmpp_framer_next(&f, &p, &n), CMN_OK);
    assert_int_equal(n, FIN_XMPP_PROTO_MAX_FRAME);
    assert_int_equal(fin_xmpp_framer_next(&f, &p, &n), CMN_AGAIN);
    free(big);
    fin_xmpp_framer_cleanup(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fin_xmpp_proto_connect_round_trip),
        cmocka_unit_test(test_fin_xmpp_proto_other_commands),
        cmocka_unit_test(test_fin_xmpp_proto_event_round_trip),
        cmocka_unit_test(test_fin_xmpp_proto_rejects_bad_json),
        cmocka_unit_test(test_fin_xmpp_proto_splitter_any_chunking),
        cmocka_unit_test(test_fin_xmpp_proto_splitter_rejects_oversized),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
