/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_httpc.c - the outbound HTTP client against a cmn_httpd server in
 * the same process: methods, headers, Basic auth, timeouts, the response
 * cap, refused connections, protocol limits, TLS verification with a
 * private CA, and the form/URL escaping helpers. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cmn_httpc.h"
#include "cmn_httpd.h"

static struct cmn_httpd *srv;
static char base[64];

static const char *
or_empty(const char *s)
{
    return s != NULL ? s : "";
}

/* Echoes what the server saw, so the tests can check the wire. */
static int
h_echo(struct cmn_http_req *req, void *app)
{
    size_t len;
    const char *body = cmn_http_req_body(req, &len);

    (void)app;
    return cmn_http_reply_json(
        req, 200,
        json_pack(
            "{s:s, s:s, s:s, s:s, s:s%}", "method", cmn_http_req_method(req),
            "auth", or_empty(cmn_http_req_header(req, "Authorization")), "ct",
            or_empty(cmn_http_req_header(req, "Content-Type")), "custom",
            or_empty(cmn_http_req_header(req, "X-Custom")), "body", body, len));
}

static int
h_slow(struct cmn_http_req *req, void *app)
{
    struct timespec ts = {1, 0};

    (void)app;
    nanosleep(&ts, NULL);
    return cmn_http_reply_text(req, 200, NULL, "late", 4);
}

static int
h_big(struct cmn_http_req *req, void *app)
{
    static char big[4096];

    (void)app;
    memset(big, 'b', sizeof(big));
    return cmn_http_reply_text(req, 200, "text/plain", big, sizeof(big));
}

static int
h_redirect(struct cmn_http_req *req, void *app)
{
    (void)app;
    return cmn_http_reply_redirect(req, "/echo");
}

static const struct cmn_http_route routes[] = {
    {"GET", "/echo", h_echo},    {"POST", "/echo", h_echo},
    {"PUT", "/echo", h_echo},    {"PATCH", "/echo", h_echo},
    {"DELETE", "/echo", h_echo}, {"GET", "/slow", h_slow},
    {"GET", "/big", h_big},      {"GET", "/redirect", h_redirect},
};

static int
group_setup(void **state)
{
    struct cmn_httpd_opts o = {0};
    struct cmn_err err = {{0}};

    (void)state;
    if (cmn_httpc_global_init() != CMN_OK) {
        return -1;
    }
    o.listen = "127.0.0.1:0";
    srv = cmn_httpd_start(&o, routes, CMN_ARRAY_LEN(routes), NULL, &err);
    if (srv == NULL) {
        fprintf(stderr, "start: %s\n", err.msg);
        return -1;
    }
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", cmn_httpd_port(srv));
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    cmn_httpd_stop(srv, 2000);
    return 0;
}

static const char *
url(const char *path)
{
    static __thread char buf[256];

    snprintf(buf, sizeof(buf), "%s%s", base, path);
    return buf;
}

static json_t *
resp_json(const struct cmn_httpc_resp *resp)
{
    json_t *j = json_loadb(resp->body, resp->body_len, JSON_ALLOW_NUL, NULL);

    assert_non_null(j);
    return j;
}

static const char *
jstr(json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

static void
test_get(void **state)
{
    struct cmn_httpc_req req = {0};
    struct cmn_httpc_resp resp;
    struct cmn_err err = {{0}};
    json_t *j;

    (void)state;
    req.url = url("/echo");
    assert_int_equal(cmn_httpc_do(&req, &resp, &err), CMN_OK);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.content_type, "application/json");
    assert_int_equal(resp.body_len, strlen(resp.body));
    assert_true(resp.elapsed_ms >= 0);
    j = resp_json(&resp);
    assert_string_equal(jstr(j, "method"), "GET");
    assert_string_equal(jstr(j, "auth"), "");
    json_decref(j);
    cmn_httpc_resp_cleanup(&resp);

    /* Any HTTP status is a successful exchange. */
    req.url = url("/missing");
    assert_int_equal(cmn_httpc_do(&req, &resp, &err), CMN_OK);
    assert_int_equal(resp.status, 404);
    cmn_httpc_resp_cleanup(&resp);
}

static void
test_post_and_methods(void **state)
{
    static const char *const hdrs[] = {
        "Content-Type: application/x-www-form-urlencoded",
        "X-Custom: 42",
        NULL,
    };
    static const char *const methods[] = {"POST", "PUT", "PATCH", "DELETE"};
    struct cmn_httpc_req req = {0};
    struct cmn_httpc_resp resp;
    struct cmn_err err = {{0}};
    json_t *j;

    (void)state;
    req.url = url("/echo");
    req.headers = hdrs;
    req.body = "a=1&b=2";
    req.body_len = 7;
    for (size_t i = 0; i < CMN_ARRAY_LEN(methods); i++) {
        req.method = methods[i];
        assert_int_equal(cmn_httpc_do(&req, &resp, &err), CMN_OK);
        assert_int_equal(resp.status, 200);
        j = resp_json(&resp);
        assert_string_equal(jstr(j, "method"), methods[i]);
        assert_string_equal(jstr(j, "body"), "a=1&b=2");
        assert_string_equal(jstr(j, "ct"), "application/x-www-form-urlencoded");
        assert_string_equal(jstr(j, "custom"), "42");
        json_decref(j);
        cmn_httpc_resp_cleanup(&resp);
    }

    /* A body with a NUL byte goes out by length, not by strlen. */
    req.method = "POST";
    req.body = "x\0y";
    req.body_len = 3;
    assert_int_equal(cmn_httpc_do(&req, &resp, &err), CMN_OK);
    j = resp_json(&resp);
    assert_int_equal(json_string_length(json_object_get(j, "body")), 3);
    json_decref(j);
    cmn_httpc_resp_cleanup(&resp);

    /* DELETE without a body. */
    req.method = "DELETE";
    req.body = NULL;
    req.body_len = 0;
    req.headers = NULL;
    assert_int_equal(cmn_httpc_do(&req, &resp, &err), CMN_OK);
    j = resp_json(&resp);
    assert_string_equal(jstr(j, "method"), "DELETE");
    assert_string_equal(jstr(j, "body"), "");
    json_decref(j);
    cmn_httpc_resp_cleanup(&resp);
}

static void
test_basic_auth(void **state)
{
    struct cmn_httpc_req req = {0};
    struct cmn_httpc_resp resp;
    struct cmn_err err = {{0}};
    json_t *j;

    (void)state;
    req.url = url("/echo");
    req.basic_user = "client";
    req.basic_pass = "s3cr:et";
    assert_int_equal(cmn_httpc_do(&req, &resp, &err), CMN_OK);
    j = resp_json(&resp);
    /* base64("client:s3cr:et") */
    assert_string_equal(jstr(j, "auth"), "Basic Y2xpZW50OnMzY3I6ZXQ=");
    json_decref(j);
    cmn_httpc_resp_cleanup(&resp);

    /* The cached handle must not carry the credentials to the next call. */
    memset(&req, 0, sizeof(req));
    req.url = url("/echo");
    assert_int_equal(cmn_httpc_do(&req, &resp, &err), CMN_OK);
    j = resp_json(&resp);
    assert_string_equal(jstr(j, "auth"), "");
    json_decref(j);
    cmn_httpc_resp_cleanup(&resp);
}

static void
test_timeout(void **state)
{
    struct cmn_httpc_req req = {0};
    struct cmn_httpc_resp resp;
    struct cmn_err err = {{0}};

    (void)state;
    req.url = url("/slow");
    req.timeout_ms = 200;
    assert_int_equal(cmn_httpc_do(&req, &resp, &err), CMN_TIMEOUT);
    assert_int_equal(resp.status, 0);
    assert_null(resp.body);
    assert_true(resp.elapsed_ms < 900);
    assert_non_null(strstr(err.msg, "200 ms"));
    assert_non_null(strstr(err.msg, "http://127.0.0.1"));
    cmn_httpc_resp_cleanup(&resp);
}

static void
test_max_response(void **state)
{
    struct cmn_httpc_req req = {0};
    struct cmn_httpc_resp resp;
    struct cmn_err err = {{0}};

    (void)state;
    req.url = url("/big");
    req.max_response = 1000;
    assert_int_equal(cmn_httpc_do(&req, &resp, &err), CMN_INVALID);
    assert_int_equal(resp.status, 0);
    assert_non_null(strstr(err.msg, "larger than 1000"));
    cmn_httpc_resp_cleanup(&resp);

    req.max_response = 4096; /* exactly the size: fine */
    assert_int_equal(cmn_httpc_do(&req, &resp, &err), CMN_OK);
    assert_int_equal(resp.body_len, 4096);
    cmn_httpc_resp_cleanup(&resp);
}

/* One-shot server that streams a chunked body (no Content-Length), so the
 * cap has to be enforced while the body arrives. */
static void *
chunked_server(void *p)
{
    int lfd = *(int *)p;
    int fd = accept(lfd, NULL, NULL);
    char buf[4096];
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain"
                               "\r\nTransfer-Encoding: chunked\r\n\r\n";

    if (fd < 0) {
        return NULL;
    }
    (void)recv(fd, buf, sizeof(buf), 0);
    (void)send(fd, head, sizeof(head) - 1, MSG_NOSIGNAL);
    memset(buf, 'c', sizeof(buf));
    for (int i = 0; i < 4; i++) {
        (void)send(fd, "1000\r\n", 6, MSG_NOSIGNAL);
        (void)send(fd, buf, sizeof(buf), MSG_NOSIGNAL);
        (void)send(fd, "\r\n", 2, MSG_NOSIGNAL);
    }
    (void)send(fd, "0\r\n\r\n", 5, MSG_NOSIGNAL);
    close(fd);
    return NULL;
}

static void
test_max_response_streamed(void **state)
{
    struct sockaddr_in sa = {0};
    socklen_t slen = sizeof(sa);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    pthread_t t;
    struct cmn_httpc_req req = {0};
    struct cmn_httpc_resp resp;
    struct cmn_err err = {{0}};
    char u[64];

    (void)state;
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 1), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &slen), 0);
    assert_int_equal(pthread_create(&t, NULL, chunked_server, &lfd), 0);
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", ntohs(sa.sin_port));
    req.url = u;
    req.max_response = 10000;
    assert_int_equal(cmn_httpc_do(&req, &resp, &err), CMN_INVALID);
    assert_int_equal(resp.status, 0);
    assert_null(resp.body);
    cmn_httpc_resp_cleanup(&resp);
    pthread_join(t, NULL);
    close(lfd);
}

static void
test_connection_refused(void **state)
{
    struct sockaddr_in sa = {0};
    socklen_t slen = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct cmn_httpc_req req = {0};
    struct cmn_httpc_resp resp;
    struct cmn_err err = {{0}};
    char u[64];

    (void)state;
    /* A port that was free a moment ago and has no listener. */
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &slen), 0);
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/x", ntohs(sa.sin_port));
    req.url = u;
    assert_int_equal(cmn_httpc_do(&req, &resp, &err), CMN_IO);
    close(fd);
    assert_int_equal(resp.status, 0);
    assert_true(err.msg[0] != '\0');
    cmn_httpc_resp_cleanup(&resp);
}

static void
test_protocols_and_redirects(void **state)
{
    struct cmn_httpc_req req = {0};
    struct cmn_httpc_resp resp;
    struct cmn_err err = {{0}};

    (void)state;
    req.url = "file:///etc/passwd";
    assert_int_not_equal(cmn_httpc_do(&req, &resp, &err), CMN_OK);
    assert_null(resp.body);
    cmn_httpc_resp_cleanup(&resp);

    req.url = url("/redirect");
    assert_int_equal(cmn_httpc_do(&req, &resp, &err), CMN_OK);
    assert_int_equal(resp.status, 302);
    cmn_httpc_resp_cleanup(&resp);
}

#define NTHREADS 6
#define NCALLS   20

static void *
worker(void *p)
{
    int *ok = p;

    for (int i = 0; i < NCALLS; i++) {
        struct cmn_httpc_req req = {0};
        struct cmn_httpc_resp resp;
        struct cmn_err err;

        req.url = url("/echo");
        if (cmn_httpc_do(&req, &resp, &err) == CMN_OK && resp.status == 200) {
            (*ok)++;
        }
        cmn_httpc_resp_cleanup(&resp);
    }
    return NULL;
}

static void
test_threads(void **state)
{
    pthread_t t[NTHREADS];
    int ok[NTHREADS] = {0};

    (void)state;
    for (int i = 0; i < NTHREADS; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, worker, &ok[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(ok[i], NCALLS);
    }
}

static char *
slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf = calloc(1, 65536);

    assert_non_null(fp);
    assert_non_null(buf);
    *len = fread(buf, 1, 65535, fp);
    fclose(fp);
    return buf;
}

/* HTTPS against our own server: trusted through ca_file, refused without
 * it. Needs the openssl command line tool to mint a throwaway cert. */
static void
test_tls_private_ca(void **state)
{
    char dir[] = "/tmp/test_httpc_XXXXXX";
    char cmd[1024];
    char cert_path[128];
    char key_path[128];
    struct cmn_secret cert;
    struct cmn_secret key;
    struct cmn_httpd_opts o = {0};
    struct cmn_err err = {{0}};
    struct cmn_httpd *d;
    struct cmn_httpc_req req = {0};
    struct cmn_httpc_resp resp;
    char u[128];

    (void)state;
    if (system("openssl version >/dev/null 2>&1") != 0) {
        skip();
    }
    assert_non_null(mkdtemp(dir));
    snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", dir);
    snprintf(key_path, sizeof(key_path), "%s/key.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
             "-nodes -days 1 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s "
             ">/dev/null 2>&1",
             key_path, cert_path);
    assert_int_equal(system(cmd), 0);
    cert.data = (unsigned char *)slurp(cert_path, &cert.len);
    key.data = (unsigned char *)slurp(key_path, &key.len);

    o.listen = "127.0.0.1:0";
    o.tls_cert_pem = &cert;
    o.tls_key_pem = &key;
    d = cmn_httpd_start(&o, routes, CMN_ARRAY_LEN(routes), NULL, &err);
    assert_non_null(d);
    snprintf(u, sizeof(u), "https://127.0.0.1:%d/echo", cmn_httpd_port(d));

    req.url = u;
    req.ca_file = cert_path;
    assert_int_equal(cmn_httpc_do(&req, &resp, &err), CMN_OK);
    assert_int_equal(resp.status, 200);
    cmn_httpc_resp_cleanup(&resp);

    req.ca_file = NULL;
    assert_int_equal(cmn_httpc_do(&req, &resp, &err), CMN_IO);
    assert_int_equal(resp.status, 0);
    cmn_httpc_resp_cleanup(&resp);

    cmn_httpd_stop(d, 1000);
    free(cert.data);
    free(key.data);
    unlink(cert_path);
    unlink(key_path);
    rmdir(dir);
}

static void
test_form_and_escape(void **state)
{
    char *form = NULL;
    char *e;

    (void)state;
    assert_int_equal(cmn_form_add(&form, "grant_type", "password"), CMN_OK);
    assert_int_equal(cmn_form_add(&form, "user name", "a+b&c=d/é"), CMN_OK);
    assert_int_equal(cmn_form_add(&form, "empty", NULL), CMN_OK);
    assert_string_equal(form, "grant_type=password&user%20name="
                              "a%2Bb%26c%3Dd%2F%C3%A9&empty=");
    free(form);

    e = cmn_url_escape("AZaz09-._~ ?#%");
    assert_string_equal(e, "AZaz09-._~%20%3F%23%25");
    free(e);
    assert_null(cmn_url_escape(NULL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_post_and_methods),
        cmocka_unit_test(test_basic_auth),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_max_response),
        cmocka_unit_test(test_max_response_streamed),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_protocols_and_redirects),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_tls_private_ca),
        cmocka_unit_test(test_form_and_escape),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
