/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_xmpp_proto.c - the pool <-> worker frame splitter and the command
 * and event decoders on arbitrary bytes. The first byte picks the chunk
 * size the stream is fed in; every frame is decoded both ways, and what
 * decodes must re-encode and decode to the same thing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fin_xmpp_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
streq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) ||
           (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void
check_cmd(const char *p, size_t n)
{
    struct fin_xmpp_cmd c;
    struct fin_xmpp_cmd d;
    char *buf = NULL;
    size_t len = 0;

    if (fin_xmpp_proto_decode_cmd(p, n, &c) != CMN_OK) {
        return;
    }
    if (fin_xmpp_proto_encode_cmd(&c, &buf, &len) != CMN_OK) {
        abort(); /* whatever decodes must encode */
    }
    if (fin_xmpp_proto_decode_cmd(buf + FIN_XMPP_PROTO_HDR,
                                  len - FIN_XMPP_PROTO_HDR, &d) != CMN_OK ||
        d.op != c.op || !streq(d.login.agent, c.login.agent) ||
        !streq(d.login.password, c.login.password) ||
        d.login.port != c.login.port || d.gen != c.gen) {
        abort();
    }
    fin_xmpp_proto_cmd_cleanup(&d);
    fin_xmpp_proto_cmd_cleanup(&c);
    fin_xmpp_proto_wipe_free(buf, len);
}

static void
check_event(const char *p, size_t n)
{
    struct fin_xmpp_event ev;
    struct fin_xmpp_event d;
    json_t *root = NULL;
    json_t *root2 = NULL;
    long long gen = 0;
    long long gen2 = 0;
    char *buf = NULL;
    size_t len = 0;

    if (fin_xmpp_proto_decode_event(p, n, &ev, &gen, &root) != CMN_OK) {
        return;
    }
    if (fin_xmpp_proto_encode_event(&ev, gen, &buf, &len) != CMN_OK) {
        abort();
    }
    if (fin_xmpp_proto_decode_event(buf + FIN_XMPP_PROTO_HDR,
                                    len - FIN_XMPP_PROTO_HDR, &d, &gen2,
                                    &root2) != CMN_OK ||
        d.kind != ev.kind || gen2 != gen || !streq(d.agent, ev.agent) ||
        d.payload_len != ev.payload_len) {
        abort();
    }
    json_decref(root2);
    json_decref(root);
    free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fin_xmpp_framer f;
    size_t step;

    if (size == 0) {
        return 0;
    }
    step = (size_t)data[0] % 64 + 1;
    data++;
    size--;
    /* the whole input as one frame payload */
    check_cmd((const char *)data, size);
    check_event((const char *)data, size);
    /* and as a framed stream */
    fin_xmpp_framer_init(&f);
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        if (fin_xmpp_framer_feed(&f, data + off, n) != CMN_OK) {
            break;
        }
        for (;;) {
            const char *p;
            size_t plen;
            int rc = fin_xmpp_framer_next(&f, &p, &plen);
            if (rc != CMN_OK) {
                break;
            }
            if (plen > FIN_XMPP_PROTO_MAX_FRAME) {
                abort();
            }
            check_cmd(p, plen);
            check_event(p, plen);
        }
    }
    fin_xmpp_framer_cleanup(&f);
    return 0;
}
