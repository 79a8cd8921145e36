/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_net.c - networks and client addresses ([server] trusted_proxies):
 * parsing, matching, the client read right-to-left from X-Forwarded-For
 * only behind a trusted proxy (over a real HTTP request with two
 * X-Forwarded-For lines), per-/64 counting keys, and the keyed hash
 * (SipHash-2-4) against the paper's test vector. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "cmn_hash.h"
#include "cmn_httpd.h"
#include "cmn_net.h"

static struct cmn_netlist
list_of(const char *text)
{
    struct cmn_config *c;
    struct cmn_netlist l = {0};
    struct cmn_err err = {{0}};
    char ini[256];

    snprintf(ini, sizeof(ini), "[server]\ntrusted_proxies = %s\n", text);
    c = cmn_config_parse("t.ini", ini, strlen(ini), &err);
    assert_non_null(c);
    assert_int_equal(
        cmn_config_netlist(c, "server", "trusted_proxies", &l, &err), CMN_OK);
    cmn_config_free(c);
    return l;
}

static void
test_net_parse_and_match(void **state)
{
    struct cmn_netlist l = list_of("10.0.0.0/8, 192.0.2.7, 2001:db8::/32, ::1");
    struct cmn_net n;
    (void)state;

    assert_int_equal(l.n, 4);
    assert_true(cmn_netlist_match(&l, "10.200.3.4"));
    assert_false(cmn_netlist_match(&l, "11.0.0.1"));
    assert_true(cmn_netlist_match(&l, "192.0.2.7"));
    assert_false(cmn_netlist_match(&l, "192.0.2.8"));
    assert_true(cmn_netlist_match(&l, "2001:db8:ffff::1"));
    assert_true(cmn_netlist_match(&l, "[::1]:8443"));
    assert_true(cmn_netlist_match(&l, "::ffff:10.1.1.1")); /* v4-mapped */
    assert_true(cmn_netlist_match(&l, "192.0.2.7:443"));
    assert_false(cmn_netlist_match(&l, "2001:db9::1"));
    assert_false(cmn_netlist_match(&l, "not-an-address"));
    assert_false(cmn_netlist_match(&l, ""));
    cmn_netlist_cleanup(&l);

    assert_int_equal(cmn_net_parse("10.0.0.0/33", &n), CMN_INVALID);
    assert_int_equal(cmn_net_parse("10.0.0.0/", &n), CMN_INVALID);
    assert_int_equal(cmn_net_parse("10.0.0.0/8x", &n), CMN_INVALID);
    assert_int_equal(cmn_net_parse("::/129", &n), CMN_INVALID);
    assert_int_equal(cmn_net_parse("proxy.example.com", &n), CMN_INVALID);
    assert_int_equal(cmn_net_parse("0.0.0.0/0", &n), CMN_OK);
    assert_int_equal(n.bits, 0);
}

static void
test_net_config_errors_name_the_key(void **state)
{
    struct cmn_config *c;
    struct cmn_netlist l = {0};
    struct cmn_err err = {{0}};
    static const char ini[] = "[server]\nlisten = x\n"
                              "trusted_proxies = 10.0.0.1, lb.example\n";
    (void)state;

    c = cmn_config_parse("t.ini", ini, strlen(ini), &err);
    assert_int_equal(
        cmn_config_netlist(c, "server", "trusted_proxies", &l, &err),
        CMN_INVALID);
    assert_non_null(strstr(err.msg, "t.ini:3: [server] trusted_proxies:"));
    assert_non_null(strstr(err.msg, "lb.example"));
    assert_null(l.nets);
    cmn_config_free(c);
    /* absent: no proxy is trusted */
    c = cmn_config_parse("t.ini", "[server]\n", 9, &err);
    assert_int_equal(
        cmn_config_netlist(c, "server", "trusted_proxies", &l, &err), CMN_OK);
    assert_int_equal(l.n, 0);
    cmn_config_free(c);
}

static void
test_net_client_behind_trusted_proxies(void **state)
{
    struct cmn_netlist l = list_of("10.0.0.0/8");
    char out[CMN_ADDR_MAX];
    (void)state;

    /* not from a proxy: X-Forwarded-For is the client's own words */
    cmn_net_client(&l, "198.51.100.9", "203.0.113.5", out);
    assert_string_equal(out, "198.51.100.9");
    /* through one proxy */
    cmn_net_client(&l, "10.0.0.2", "203.0.113.5", out);
    assert_string_equal(out, "203.0.113.5");
    /* a client that writes its own header: the proxy's value is last */
    cmn_net_client(&l, "10.0.0.2", "1.2.3.4, 203.0.113.5", out);
    assert_string_equal(out, "203.0.113.5");
    /* two proxies */
    cmn_net_client(&l, "10.0.0.2", "1.2.3.4,203.0.113.5, 10.9.9.9", out);
    assert_string_equal(out, "203.0.113.5");
    /* garbage right after the trusted hops: the last trusted hop */
    cmn_net_client(&l, "10.0.0.2", "203.0.113.5, nonsense", out);
    assert_string_equal(out, "10.0.0.2");
    /* no header from a proxy: the proxy */
    cmn_net_client(&l, "10.0.0.2", NULL, out);
    assert_string_equal(out, "10.0.0.2");
    /* every hop trusted: the left-most */
    cmn_net_client(&l, "10.0.0.2", "10.1.1.1, 10.2.2.2", out);
    assert_string_equal(out, "10.1.1.1");
    /* IPv6 with brackets and a port; v4-mapped peers are IPv4 */
    cmn_net_client(&l, "::ffff:10.0.0.2", "[2001:db8::7]:5555", out);
    assert_string_equal(out, "2001:db8::7");
    /* no list at all */
    cmn_net_client(NULL, "10.0.0.2", "203.0.113.5", out);
    assert_string_equal(out, "10.0.0.2");
    cmn_netlist_cleanup(&l);
}

static void
test_net_count_key(void **state)
{
    char a[CMN_ADDR_MAX], b[CMN_ADDR_MAX];
    (void)state;

    cmn_net_count_key("203.0.113.5", a);
    assert_string_equal(a, "203.0.113.5");
    /* one /64 is one client */
    cmn_net_count_key("2001:db8:1:2:aaaa::1", a);
    cmn_net_count_key("2001:db8:1:2:bbbb:cccc:dddd:eeee", b);
    assert_string_equal(a, b);
    assert_string_equal(a, "2001:db8:1:2::/64");
    cmn_net_count_key("2001:db8:1:3::1", b);
    assert_string_not_equal(a, b);
}

/* --- over HTTP: two X-Forwarded-For lines, as HAProxy sends them when
 * the client wrote one itself --- */

static const struct cmn_netlist *trusted_now;

static int
h_client(struct cmn_http_req *req, void *app)
{
    char out[CMN_ADDR_MAX];

    (void)app;
    cmn_http_req_client(req, trusted_now, out);
    return cmn_http_reply_text(req, 200, "text/plain", out, strlen(out));
}

static void
get_client(int port, char *out, size_t size)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    static const char req[] = "GET /c HTTP/1.1\r\nHost: x\r\n"
                              "X-Forwarded-For: 1.2.3.4\r\n"
                              "Connection: close\r\n"
                              "x-forwarded-for: 203.0.113.5\r\n\r\n";
    char buf[2048];
    size_t len = 0;
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(write(fd, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
    while ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0) {
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(fd);
    const char *body = strstr(buf, "\r\n\r\n");
    assert_non_null(body);
    snprintf(out, size, "%s", body + 4);
}

static void
test_net_client_over_http(void **state)
{
    static const struct cmn_http_route routes[] = {{"GET", "/c", h_client}};
    struct cmn_httpd_opts o = {.listen = "127.0.0.1:0"};
    struct cmn_netlist lo = list_of("127.0.0.1");
    struct cmn_netlist other = list_of("10.0.0.0/8");
    struct cmn_err err = {{0}};
    struct cmn_httpd *d = cmn_httpd_start(&o, routes, 1, NULL, &err);
    char got[CMN_ADDR_MAX];
    (void)state;

    assert_non_null(d);
    trusted_now = &lo;
    get_client(cmn_httpd_port(d), got, sizeof(got));
    assert_string_equal(got, "203.0.113.5");
    trusted_now = &other; /* the peer is no proxy of ours */
    get_client(cmn_httpd_port(d), got, sizeof(got));
    assert_string_equal(got, "127.0.0.1");
    trusted_now = NULL;
    get_client(cmn_httpd_port(d), got, sizeof(got));
    assert_string_equal(got, "127.0.0.1");
    cmn_httpd_stop(d, 500);
    cmn_netlist_cleanup(&lo);
    cmn_netlist_cleanup(&other);
}

static void
test_net_siphash_vector(void **state)
{
    struct cmn_hash_key k;
    unsigned char msg[15];
    (void)state;

    /* "SipHash: a fast short-input PRF", appendix A: key 00..0f, message
     * 00..0e */
    for (int i = 0; i < 16; i++) {
        k.k[i] = (unsigned char)i;
    }
    for (int i = 0; i < 15; i++) {
        msg[i] = (unsigned char)i;
    }
    assert_true(cmn_siphash(&k, msg, sizeof(msg)) == 0xa129ca6149be45e5ULL);
    /* the reference implementation's vectors for the empty and 8-byte
     * messages under the same key */
    assert_true(cmn_siphash(&k, msg, 0) == 0x726fdb47dd0e0e31ULL);
    assert_true(cmn_siphash(&k, msg, 8) == 0x93f5f5799a932462ULL);
    /* another key, another hash */
    struct cmn_hash_key k2;
    assert_int_equal(cmn_hash_key_init(&k2), CMN_OK);
    assert_true(cmn_siphash(&k2, msg, sizeof(msg)) !=
                cmn_siphash(&k, msg, sizeof(msg)));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_parse_and_match),
        cmocka_unit_test(test_net_config_errors_name_the_key),
        cmocka_unit_test(test_net_client_behind_trusted_proxies),
        cmocka_unit_test(test_net_count_key),
        cmocka_unit_test(test_net_client_over_http),
        cmocka_unit_test(test_net_siphash_vector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
