/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_cti_config_xmpp.c - the connector's [finesse] transport keys: the
 * default (websocket on each node's REST URL), explicit URLs, ports per
 * transport, and errors that name file, line and key; and the WebSocket
 * URL parser they rely on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cti_config.h"
#include "fin_xmpp_link.h"

static char path[64];

/* Loads a config made of [server] listen + the given [finesse] lines. */
static struct cti_config *
load(const char *finesse, struct cmn_err *err)
{
    FILE *f;
    int fd;

    snprintf(path, sizeof(path), "/tmp/test_cti_config_xmpp.XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    fprintf(f, "[server]\nlisten = 127.0.0.1:0\n[finesse]\n%s", finesse);
    fclose(f);
    struct cti_config *c = cti_config_load(path, err);
    unlink(path);
    return c;
}

static void
test_default_is_websocket_on_the_rest_port(void **state)
{
    struct cmn_err err = {{0}};
    struct cti_config *c;

    (void)state;
    c = load("nodes = https://fin-a.example.com:8445, http://127.0.0.1:9000/\n",
             &err);
    assert_non_null(c);
    assert_int_equal(c->xmpp_transport, FIN_XMPP_TRANSPORT_WEBSOCKET);
    assert_string_equal(c->xmpp_ws_urls[0], "wss://fin-a.example.com:8445/ws");
    assert_string_equal(c->xmpp_ws_urls[1], "ws://127.0.0.1:9000/ws");
    cti_config_free(c);

    c = load("nodes = https://fin-a:8445\nxmpp_websocket_path = /push/xmpp\n",
             &err);
    assert_non_null(c);
    assert_string_equal(c->xmpp_ws_urls[0], "wss://fin-a:8445/push/xmpp");
    cti_config_free(c);

    c = load("nodes = https://a:8445, https://b:8445\n"
             "xmpp_websocket_urls = wss://a:7443/ws, wss://b:7443/ws\n",
             &err);
    assert_non_null(c);
    assert_string_equal(c->xmpp_ws_urls[1], "wss://b:7443/ws");
    cti_config_free(c);
}

static void
test_tcp_transports_ports(void **state)
{
    struct cmn_err err = {{0}};
    struct cti_config *c;

    (void)state;
    c = load("nodes = https://a:8445, https://b:8445\nxmpp_transport = tls\n",
             &err);
    assert_non_null(c);
    assert_int_equal(c->xmpp_transport, FIN_XMPP_TRANSPORT_TLS);
    assert_string_equal(c->xmpp_hosts[0], "a");
    assert_int_equal(c->xmpp_ports[0], 5223);
    assert_int_equal(c->xmpp_ports[1], 5223);
    cti_config_free(c);

    c = load("nodes = https://a:8445\nxmpp_transport = starttls\n", &err);
    assert_non_null(c);
    assert_int_equal(c->xmpp_ports[0], 5222);
    assert_true(c->xmpp_tls); /* STARTTLS required by default */
    cti_config_free(c);

    c = load("nodes = https://a:8445\nxmpp_transport = tls\n"
             "xmpp_addresses = xmpp-a.example.com:15223\n",
             &err);
    assert_non_null(c);
    assert_string_equal(c->xmpp_hosts[0], "xmpp-a.example.com");
    assert_int_equal(c->xmpp_ports[0], 15223);
    cti_config_free(c);
}

static void
expect_error(const char *finesse, const char *where)
{
    struct cmn_err err = {{0}};
    struct cti_config *c = load(finesse, &err);

    if (c != NULL) {
        cti_config_free(c);
        fail_msg("accepted: %s", finesse);
    }
    if (strstr(err.msg, where) == NULL) {
        fail_msg("error \"%s\" does not name \"%s\"", err.msg, where);
    }
}

static void
test_errors_name_the_key(void **state)
{
    (void)state;
    expect_error("nodes = https://a:8445\nxmpp_transport = bosh\n",
                 ":5: [finesse] xmpp_transport: 'bosh': websocket, tls or starttls");
    expect_error("nodes = https://a:8445, https://b:8445\n"
                 "xmpp_websocket_urls = wss://a/ws\n",
                 "[finesse] xmpp_websocket_urls: one ws:// or wss:// URL per node");
    expect_error("nodes = https://a:8445\nxmpp_websocket_urls = https://a/ws\n",
                 "[finesse] xmpp_websocket_urls: 'https://a/ws' is not a usable");
    expect_error("nodes = https://a:8445\nxmpp_websocket_path = ws\n",
                 "[finesse] xmpp_websocket_path: 'ws' is not a URL path");
    expect_error("nodes = https://a:8445\nxmpp_websocket_urls = wss://u@a/ws\n",
                 "xmpp_websocket_urls");
}

static void
test_ws_url_parser(void **state)
{
    bool tls;
    char host[64], p[64];
    int port;

    (void)state;
    assert_int_equal(fin_xmpp_parse_ws_url("wss://[::1]:8445/ws", &tls, host,
                                           sizeof(host), &port, p, sizeof(p)),
                     CMN_OK);
    assert_true(tls);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 8445);
    assert_string_equal(p, "/ws");
    assert_int_equal(fin_xmpp_parse_ws_url("ws://finesse", &tls, host,
                                           sizeof(host), &port, p, sizeof(p)),
                     CMN_OK);
    assert_false(tls);
    assert_int_equal(port, 80);
    assert_string_equal(p, "/");
    const char *bad[] = {"http://a/ws",  "wss://:8445/ws", "wss://a:0/ws",
                         "wss://a:99999/", "wss://a:x/ws", "wss://[::1/ws",
                         "wss://u:p@a/ws", "wss://a?q/ws"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (fin_xmpp_parse_ws_url(bad[i], &tls, host, sizeof(host), &port, p,
                                  sizeof(p)) != CMN_INVALID) {
            fail_msg("accepted %s", bad[i]);
        }
    }
    /* a host longer than the buffer is refused, not cut */
    assert_int_equal(fin_xmpp_parse_ws_url("wss://a-very-long-host-name/ws",
                                           &tls, host, 8, &port, p, sizeof(p)),
                     CMN_INVALID);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_is_websocket_on_the_rest_port),
        cmocka_unit_test(test_tcp_transports_ports),
        cmocka_unit_test(test_errors_name_the_key),
        cmocka_unit_test(test_ws_url_parser),
    };

    cmn_log_init("test", CMN_LOG_ERR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
