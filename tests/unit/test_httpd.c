/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_httpd.c - the HTTP server over loopback: routing (exact, prefix,
 * 404, 405), body caps (413 by Content-Length and chunked), 431 on huge
 * headers, JSON parsing errors, request ids, security headers, accessors,
 * concurrency, metrics and draining in-flight requests on stop. Every
 * test runs twice: thread-per-connection mode and pool mode (epoll, two
 * threads). Clients are libcurl and, where curl would hide the wire, a raw
 * socket. Deferred replies and streams are in test_httpd_stream.c. */
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
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "cmn_httpd.h"
#include "cmn_metrics.h"

#define MAX_BODY 1024

static struct cmn_httpd *srv;
static char base[64];
static unsigned mode_threads; /* threads for the group being run */

/* --- handlers --- */

static int
h_hello(struct cmn_http_req *req, void *app)
{
    (void)app;
    return cmn_http_reply_text(req, 200, "text/plain", "hello", 5);
}

static int
h_files(struct cmn_http_req *req, void *app)
{
    (void)app;
    return cmn_http_reply_json(
        req, 200, json_pack("{s:s}", "rest", cmn_http_req_path_rest(req)));
}

static int
h_echo(struct cmn_http_req *req, void *app)
{
    json_t *j = cmn_http_req_json(req);

    (void)app;
    if (j == NULL) {
        return CMN_OK; /* 400 already queued */
    }
    return cmn_http_reply_json(req, 200, j);
}

static int
h_raw(struct cmn_http_req *req, void *app)
{
    size_t len;
    const char *body = cmn_http_req_body(req, &len);

    (void)app;
    return cmn_http_reply_text(req, 200, "application/octet-stream", body, len);
}

static const char *
or_null(const char *s)
{
    return s != NULL ? s : "(null)";
}

static int
h_inspect(struct cmn_http_req *req, void *app)
{
    (void)app;
    return cmn_http_reply_json(
        req, 200,
        json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "method",
            cmn_http_req_method(req), "path", cmn_http_req_path(req), "q",
            or_null(cmn_http_req_query(req, "q")), "cookie",
            or_null(cmn_http_req_cookie(req, "sid")), "bearer",
            or_null(cmn_http_req_bearer(req)), "peer", cmn_http_req_peer(req),
            "hdr", or_null(cmn_http_req_header(req, "x-test")), "id",
            cmn_http_req_id(req), "raw", or_null(cmn_http_req_raw_query(req))));
}

static int
h_csp(struct cmn_http_req *req, void *app)
{
    /* Handlers run on server threads: cmocka asserts cannot be used here,
     * so a surprise becomes a 500 that the test sees. */
    (void)app;
    if (cmn_http_add_header(req, "Content-Security-Policy",
                            "default-src 'self'") != CMN_OK ||
        cmn_http_add_header(req, "Set-Cookie", "sid=1; Path=/") != CMN_OK ||
        cmn_http_add_header(req, "X-Bad", "a\r\nInjected: 1") != CMN_INVALID) {
        return CMN_ERR;
    }
    return cmn_http_reply_text(req, 200, "text/html", "<p>x</p>", 8);
}

static int
h_noreply(struct cmn_http_req *req, void *app)
{
    (void)req;
    (void)app;
    return CMN_ERR;
}

static int
h_twice(struct cmn_http_req *req, void *app)
{
    (void)app;
    if (cmn_http_reply_text(req, 201, NULL, "one", 3) != CMN_OK) {
        return CMN_ERR;
    }
    if (cmn_http_reply_text(req, 202, NULL, "two", 3) == CMN_OK) {
        abort(); /* a second reply must be refused */
    }
    return CMN_OK;
}

static int
h_redirect(struct cmn_http_req *req, void *app)
{
    (void)app;
    return cmn_http_reply_redirect(req, "https://example.com/next?a=1");
}

static int
h_slow(struct cmn_http_req *req, void *app)
{
    const char *ms = cmn_http_req_query(req, "ms");
    long n = ms != NULL ? strtol(ms, NULL, 10) : 200;
    struct timespec ts = {n / 1000, (n % 1000) * 1000000L};

    (void)app;
    nanosleep(&ts, NULL);
    return cmn_http_reply_text(req, 200, NULL, "slow", 4);
}

static const struct cmn_http_route routes[] = {
    {"GET", "/hello", h_hello},   {"PUT", "/hello", h_hello},
    {"GET", "/files/*", h_files}, {"POST", "/echo", h_echo},
    {"POST", "/raw", h_raw},      {"GET", "/inspect", h_inspect},
    {"GET", "/csp", h_csp},       {"GET", "/noreply", h_noreply},
    {"GET", "/twice", h_twice},   {"GET", "/redirect", h_redirect},
    {"GET", "/slow", h_slow},
};

/* --- client helpers --- */

struct resp {
    long status;
    char body[8192];
    size_t body_len;
    char headers[8192];
    size_t headers_len;
};

static size_t
collect(char *data, size_t size, size_t n, void *cls, bool hdr)
{
    struct resp *r = cls;
    char *buf = hdr ? r->headers : r->body;
    size_t *len = hdr ? &r->headers_len : &r->body_len;
    size_t cap = hdr ? sizeof(r->headers) : sizeof(r->body);
    size_t take = size * n;

    if (take > cap - 1 - *len) {
        take = cap - 1 - *len;
    }
    memcpy(buf + *len, data, take);
    *len += take;
    buf[*len] = '\0';
    return size * n;
}

static size_t
on_body(char *data, size_t size, size_t n, void *cls)
{
    return collect(data, size, n, cls, false);
}

static size_t
on_header(char *data, size_t size, size_t n, void *cls)
{
    return collect(data, size, n, cls, true);
}

/* Performs one request; returns the HTTP status (0 on transport error). */
static long
http(const char *method, const char *path, const char *body,
     const char *const *hdrs, struct resp *r)
{
    CURL *h = curl_easy_init();
    struct curl_slist *sl = NULL;
    char url[512];

    memset(r, 0, sizeof(*r));
    assert_non_null(h);
    snprintf(url, sizeof(url), "%s%s", base, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    for (; hdrs != NULL && *hdrs != NULL; hdrs++) {
        sl = curl_slist_append(sl, *hdrs);
    }
    sl = curl_slist_append(sl, "Expect:");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, sl);
    if (curl_easy_perform(h) == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    }
    curl_slist_free_all(sl);
    curl_easy_cleanup(h);
    return r->status;
}

/* Value of the n-th (0-based) header called name, copied to out; false if
 * there is no such header. */
static bool
header_nth(const struct resp *r, const char *name, int nth, char *out,
           size_t size)
{
    size_t nl = strlen(name);

    for (const char *p = r->headers; *p != '\0';) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);

        if (len > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            if (nth-- == 0) {
                const char *v = p + nl + 1;

                while (*v == ' ') {
                    v++;
                }
                snprintf(out, size, "%.*s", (int)(len - (size_t)(v - p)), v);
                return true;
            }
        }
        p = eol != NULL ? eol + 2 : p + len;
    }
    return false;
}

static const char *
header(const struct resp *r, const char *name)
{
    static __thread char buf[1024];

    return header_nth(r, name, 0, buf, sizeof(buf)) ? buf : NULL;
}

/* Raw request over a socket; returns what the server sent until close
 * or timeout (malloc'd). */
static char *
raw_exchange(const char *req, size_t len)
{
    struct sockaddr_in sa = {0};
    struct timeval tv = {5, 0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char *out = calloc(1, 16384);
    size_t got = 0;

    assert_true(fd >= 0);
    assert_non_null(out);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)cmn_httpd_port(srv));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
    for (;;) {
        ssize_t n = recv(fd, out + got, 16383 - got, 0);

        if (n <= 0) {
            break;
        }
        got += (size_t)n;
        /* Keep-alive replies do not close: stop after a full reply. */
        char *end = strstr(out, "\r\n\r\n");
        const char *cl = strcasestr(out, "content-length:");

        if (end != NULL && cl != NULL &&
            got >= (size_t)(end + 4 - out) + strtoul(cl + 15, NULL, 10)) {
            break;
        }
    }
    close(fd);
    return out;
}

/* --- fixtures --- */

static int
group_setup(void **state)
{
    struct cmn_httpd_opts o = {0};
    struct cmn_err err = {{0}};

    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cmn_metrics_reset();
    o.listen = "127.0.0.1:0";
    o.max_body = MAX_BODY;
    o.metrics_prefix = "t";
    o.threads = mode_threads;
    srv = cmn_httpd_start(&o, routes, CMN_ARRAY_LEN(routes), NULL, &err);
    if (srv == NULL) {
        fprintf(stderr, "start: %s\n", err.msg);
        return -1;
    }
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", cmn_httpd_port(srv));
    return 0;
}

static int
group_setup_pool(void **state)
{
    mode_threads = 2;
    return group_setup(state);
}

static int
group_teardown(void **state)
{
    (void)state;
    cmn_httpd_stop(srv, 1000);
    srv = NULL;
    cmn_metrics_reset();
    curl_global_cleanup();
    return 0;
}

/* --- tests --- */

static void
test_start_errors(void **state)
{
    struct cmn_httpd_opts o = {0};
    struct cmn_err err = {{0}};
    char listen[64];

    (void)state;
    assert_true(cmn_httpd_port(srv) > 0);
    o.listen = "nonsense";
    assert_null(cmn_httpd_start(&o, routes, 1, NULL, &err));
    assert_true(err.msg[0] != '\0');
    /* Port already taken by srv. */
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", cmn_httpd_port(srv));
    o.listen = listen;
    assert_null(cmn_httpd_start(&o, routes, 1, NULL, &err));
    cmn_httpd_stop(NULL, 0);
}

static void
test_ipv6_listen(void **state)
{
    struct cmn_httpd_opts o = {0};
    struct cmn_err err = {{0}};
    struct cmn_httpd *d;

    (void)state;
    o.threads = mode_threads;
    o.listen = "[::1]:0";
    d = cmn_httpd_start(&o, routes, CMN_ARRAY_LEN(routes), NULL, &err);
    if (d == NULL) {
        skip(); /* no IPv6 loopback in this environment */
    }
    assert_true(cmn_httpd_port(d) > 0);
    cmn_httpd_stop(d, 0);
    o.listen = ":0";
    d = cmn_httpd_start(&o, routes, CMN_ARRAY_LEN(routes), NULL, &err);
    assert_non_null(d);
    cmn_httpd_stop(d, 0);
}

static void
test_exact_and_prefix(void **state)
{
    struct resp r;

    (void)state;
    assert_int_equal(http("GET", "/hello", NULL, NULL, &r), 200);
    assert_string_equal(r.body, "hello");
    assert_string_equal(header(&r, "Content-Type"), "text/plain");
    assert_int_equal(http("GET", "/files/a/b.txt", NULL, NULL, &r), 200);
    assert_string_equal(r.body, "{\"rest\":\"a/b.txt\"}");
    assert_string_equal(header(&r, "Content-Type"), "application/json");
    assert_int_equal(http("GET", "/files/", NULL, NULL, &r), 200);
    assert_string_equal(r.body, "{\"rest\":\"\"}");
    /* "/hello" is exact: "/hello/x" is not it. */
    assert_int_equal(http("GET", "/hello/x", NULL, NULL, &r), 404);
}

static void
test_not_found_and_method(void **state)
{
    struct resp r;
    json_t *j;

    (void)state;
    assert_int_equal(http("GET", "/nope", NULL, NULL, &r), 404);
    j = json_loads(r.body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "error")),
                        "not_found");
    assert_string_equal(json_string_value(json_object_get(j, "request_id")),
                        header(&r, "X-Request-Id"));
    json_decref(j);

    assert_int_equal(http("DELETE", "/hello", NULL, NULL, &r), 405);
    assert_string_equal(header(&r, "Allow"), "GET, PUT");
    assert_non_null(strstr(r.body, "\"error\":\"method_not_allowed\""));
    assert_int_equal(http("PUT", "/hello", "x", NULL, &r), 200);
}

static void
test_json_echo(void **state)
{
    struct resp r;

    (void)state;
    assert_int_equal(
        http("POST", "/echo", "{ \"a\": 1, \"b\": [true, null] }", NULL, &r),
        200);
    assert_string_equal(r.body, "{\"a\":1,\"b\":[true,null]}");
}

static void
expect_invalid_json(const char *body)
{
    struct resp r;
    json_t *j;

    assert_int_equal(http("POST", "/echo", body, NULL, &r), 400);
    j = json_loads(r.body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "error")),
                        "invalid_json");
    assert_non_null(json_string_value(json_object_get(j, "detail")));
    assert_string_equal(json_string_value(json_object_get(j, "request_id")),
                        header(&r, "X-Request-Id"));
    json_decref(j);
}

static void
test_invalid_json(void **state)
{
    (void)state;
    expect_invalid_json("{bad");
    expect_invalid_json("[1, 2]");
    expect_invalid_json("{\"a\": 1, \"a\": 2}");
    expect_invalid_json("");
}

static void
test_body_cap_content_length(void **state)
{
    struct resp r;
    char big[MAX_BODY + 2];
    char exact[MAX_BODY + 1];

    (void)state;
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(http("POST", "/raw", big, NULL, &r), 413);
    assert_non_null(strstr(r.body, "\"error\":\"payload_too_large\""));
    assert_string_equal(header(&r, "Connection"), "close");
    assert_string_equal(header(&r, "X-Content-Type-Options"), "nosniff");

    memset(exact, 'y', sizeof(exact) - 1);
    exact[sizeof(exact) - 1] = '\0';
    assert_int_equal(http("POST", "/raw", exact, NULL, &r), 200);
    assert_int_equal(r.body_len, MAX_BODY);
}

static void
test_body_cap_chunked(void **state)
{
    static const char head[] = "POST /raw HTTP/1.1\r\nHost: t\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";
    char req[4096];
    size_t len;
    char *out;

    (void)state;
    /* Small chunked body: accepted and echoed. */
    len = (size_t)snprintf(req, sizeof(req), "%s5\r\nabcde\r\n0\r\n\r\n", head);
    out = raw_exchange(req, len);
    assert_true(strncmp(out, "HTTP/1.1 200", 12) == 0);
    assert_non_null(strstr(out, "\r\n\r\nabcde"));
    free(out);

    /* Two chunks that only together exceed the cap (no Content-Length). */
    len = (size_t)snprintf(req, sizeof(req), "%s", head);
    for (int i = 0; i < 2; i++) {
        len += (size_t)snprintf(req + len, sizeof(req) - len, "258\r\n");
        memset(req + len, 'z', 600);
        len += 600;
        len += (size_t)snprintf(req + len, sizeof(req) - len, "\r\n");
    }
    len += (size_t)snprintf(req + len, sizeof(req) - len, "0\r\n\r\n");
    out = raw_exchange(req, len);
    assert_true(strncmp(out, "HTTP/1.1 413", 12) == 0);
    assert_non_null(strstr(out, "payload_too_large"));
    free(out);
}

static void
test_header_too_large(void **state)
{
    struct resp r;
    char *big = malloc(20 * 1024 + 16);
    const char *hdrs[2];

    (void)state;
    assert_non_null(big);
    strcpy(big, "X-Big: ");
    memset(big + 7, 'h', 20 * 1024);
    big[7 + 20 * 1024] = '\0';
    hdrs[0] = big;
    hdrs[1] = NULL;
    assert_int_equal(http("GET", "/hello", NULL, hdrs, &r), 431);
    /* with a query: what the URI callback kept is freed too (ASan) */
    assert_int_equal(http("GET", "/hello?a=1", NULL, hdrs, &r), 431);
    free(big);
    /* The server is still fine afterwards. */
    assert_int_equal(http("GET", "/hello", NULL, NULL, &r), 200);
}

static bool
is_generated_id(const char *id)
{
    if (id == NULL || strlen(id) != 22) {
        return false;
    }
    return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                      "0123456789-_") == 22;
}

static void
test_request_id(void **state)
{
    struct resp r;
    char first[64];
    const char *good[] = {"X-Request-Id: abc.DEF_123-x", NULL};
    const char *bad[] = {"X-Request-Id: bad id<script>", NULL};
    char longid[100] = "X-Request-Id: ";
    const char *toolong[] = {longid, NULL};

    (void)state;
    assert_int_equal(http("GET", "/hello", NULL, NULL, &r), 200);
    assert_true(is_generated_id(header(&r, "X-Request-Id")));
    snprintf(first, sizeof(first), "%s", header(&r, "X-Request-Id"));
    assert_int_equal(http("GET", "/hello", NULL, NULL, &r), 200);
    assert_string_not_equal(first, header(&r, "X-Request-Id"));

    assert_int_equal(http("GET", "/inspect", NULL, good, &r), 200);
    assert_string_equal(header(&r, "X-Request-Id"), "abc.DEF_123-x");
    assert_non_null(strstr(r.body, "\"id\":\"abc.DEF_123-x\""));

    assert_int_equal(http("GET", "/hello", NULL, bad, &r), 200);
    assert_true(is_generated_id(header(&r, "X-Request-Id")));

    memset(longid + strlen(longid), 'a', 65);
    assert_int_equal(http("GET", "/hello", NULL, toolong, &r), 200);
    assert_true(is_generated_id(header(&r, "X-Request-Id")));
    longid[strlen("X-Request-Id: ") + 64] = '\0'; /* 64 chars: accepted */
    assert_int_equal(http("GET", "/hello", NULL, toolong, &r), 200);
    assert_int_equal(strlen(header(&r, "X-Request-Id")), 64);
}

static void
test_security_headers(void **state)
{
    struct resp r;
    char v[256];

    (void)state;
    assert_int_equal(http("GET", "/hello", NULL, NULL, &r), 200);
    assert_string_equal(header(&r, "X-Content-Type-Options"), "nosniff");
    assert_string_equal(header(&r, "Cache-Control"), "no-store");
    assert_string_equal(header(&r, "Referrer-Policy"), "no-referrer");
    assert_string_equal(header(&r, "Content-Security-Policy"),
                        "default-src 'none'; frame-ancestors 'none'");

    assert_int_equal(http("GET", "/csp", NULL, NULL, &r), 200);
    assert_string_equal(header(&r, "Content-Security-Policy"),
                        "default-src 'self'");
    assert_false(header_nth(&r, "Content-Security-Policy", 1, v, sizeof(v)));
    assert_string_equal(header(&r, "Set-Cookie"), "sid=1; Path=/");
    assert_null(header(&r, "X-Bad"));
    assert_null(header(&r, "Injected"));
    assert_string_equal(header(&r, "X-Content-Type-Options"), "nosniff");

    assert_int_equal(http("GET", "/redirect", NULL, NULL, &r), 302);
    assert_string_equal(header(&r, "Location"), "https://example.com/next?a=1");
    assert_string_equal(header(&r, "Cache-Control"), "no-store");
}

static void
test_accessors(void **state)
{
    struct resp r;
    json_t *j;
    const char *h1[] = {"Cookie: a=b; sid=s3cr3t",
                        "Authorization: bEaReR tok.en", "X-Test: yes", NULL};
    const char *h2[] = {"Authorization: Basic dTpw", NULL};

    (void)state;
    assert_int_equal(http("GET", "/inspect?q=a%20b%26c&x=1", NULL, h1, &r),
                     200);
    j = json_loads(r.body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "method")), "GET");
    assert_string_equal(json_string_value(json_object_get(j, "path")),
                        "/inspect");
    assert_string_equal(json_string_value(json_object_get(j, "q")), "a b&c");
    /* the query as sent: escapes untouched, lowercase hex kept */
    assert_string_equal(json_string_value(json_object_get(j, "raw")),
                        "q=a%20b%26c&x=1");
    assert_string_equal(json_string_value(json_object_get(j, "cookie")),
                        "s3cr3t");
    assert_string_equal(json_string_value(json_object_get(j, "bearer")),
                        "tok.en");
    assert_string_equal(json_string_value(json_object_get(j, "peer")),
                        "127.0.0.1");
    assert_string_equal(json_string_value(json_object_get(j, "hdr")), "yes");
    json_decref(j);

    assert_int_equal(http("GET", "/inspect", NULL, h2, &r), 200);
    j = json_loads(r.body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "bearer")),
                        "(null)");
    assert_string_equal(json_string_value(json_object_get(j, "q")), "(null)");
    assert_string_equal(json_string_value(json_object_get(j, "raw")), "(null)");
    assert_string_equal(json_string_value(json_object_get(j, "cookie")),
                        "(null)");
    json_decref(j);

    assert_int_equal(http("GET", "/inspect?q=%2b%2F+x&q2=%3d", NULL, NULL, &r),
                     200);
    j = json_loads(r.body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "q")), "+/ x");
    assert_string_equal(json_string_value(json_object_get(j, "raw")),
                        "q=%2b%2F+x&q2=%3d");
    json_decref(j);
}

static void
test_handler_without_reply(void **state)
{
    struct resp r;

    (void)state;
    assert_int_equal(http("GET", "/noreply", NULL, NULL, &r), 500);
    assert_non_null(strstr(r.body, "\"error\":\"internal_error\""));
    /* A second reply is refused; the first one stands. */
    assert_int_equal(http("GET", "/twice", NULL, NULL, &r), 201);
    assert_string_equal(r.body, "one");
}

#define NCLIENTS 8
#define NREQS    25

static void *
client_thread(void *p)
{
    int *ok = p;
    struct resp *r = malloc(sizeof(*r));
    char path[64];

    for (int i = 0; i < NREQS; i++) {
        snprintf(path, sizeof(path), "/files/%d", i);
        if (http("GET", i % 2 ? "/hello" : path, NULL, NULL, r) == 200) {
            (*ok)++;
        }
    }
    free(r);
    return NULL;
}

static void
test_concurrent(void **state)
{
    pthread_t t[NCLIENTS];
    int ok[NCLIENTS] = {0};

    (void)state;
    for (int i = 0; i < NCLIENTS; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, client_thread, &ok[i]), 0);
    }
    for (int i = 0; i < NCLIENTS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(ok[i], NREQS);
    }
}

static void
test_metrics_recorded(void **state)
{
    struct resp r;
    char *text = NULL;
    size_t len;

    (void)state;
    assert_int_equal(http("GET", "/hello", NULL, NULL, &r), 200);
    assert_int_equal(http("GET", "/nope", NULL, NULL, &r), 404);
    assert_int_equal(cmn_metrics_render(&text, &len), CMN_OK);
    assert_non_null(
        strstr(text, "t_http_requests_total{route=\"/hello\",code=\"200\"} "));
    assert_non_null(strstr(
        text, "t_http_requests_total{route=\"unmatched\",code=\"404\"} "));
    assert_non_null(strstr(text,
                           "t_http_request_duration_seconds_bucket{route=\"/"
                           "hello\",le=\"+Inf\"} "));
    assert_non_null(strstr(text, "# TYPE t_http_requests_total counter\n"));
    free(text);
}

struct slow_arg {
    char url_base[64];
    long status;
    char body[16];
};

static void *
slow_client(void *p)
{
    struct slow_arg *a = p;
    struct resp *r = calloc(1, sizeof(*r));

    /* Not http(): that one talks to the shared server. */
    {
        CURL *h = curl_easy_init();
        char url[128];

        snprintf(url, sizeof(url), "%s/slow?ms=400", a->url_base);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
        if (curl_easy_perform(h) == CURLE_OK) {
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
        }
        curl_easy_cleanup(h);
    }
    snprintf(a->body, sizeof(a->body), "%.15s", r->body);
    free(r);
    return NULL;
}

static void
test_stop_drains(void **state)
{
    struct cmn_httpd_opts o = {0};
    struct cmn_err err = {{0}};
    struct cmn_httpd *d;
    struct slow_arg a = {0};
    pthread_t t;
    long long t0;
    int port;
    CURL *h;
    char url[128];

    (void)state;
    o.listen = "127.0.0.1:0";
    o.threads = mode_threads;
    d = cmn_httpd_start(&o, routes, CMN_ARRAY_LEN(routes), NULL, &err);
    assert_non_null(d);
    port = cmn_httpd_port(d);
    snprintf(a.url_base, sizeof(a.url_base), "http://127.0.0.1:%d", port);
    assert_int_equal(pthread_create(&t, NULL, slow_client, &a), 0);
    t0 = cmn_now_ms();
    while (cmn_httpd_inflight(d) == 0 && cmn_now_ms() - t0 < 5000) {
        struct timespec ts = {0, 5 * 1000 * 1000};

        nanosleep(&ts, NULL);
    }
    assert_int_equal(cmn_httpd_inflight(d), 1);
    cmn_httpd_stop(d, 5000);
    pthread_join(t, NULL);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "slow");

    /* Nothing listens any more. */
    h = curl_easy_init();
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hello", port);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    assert_int_equal(curl_easy_perform(h), CURLE_COULDNT_CONNECT);
    curl_easy_cleanup(h);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_errors),
        cmocka_unit_test(test_ipv6_listen),
        cmocka_unit_test(test_exact_and_prefix),
        cmocka_unit_test(test_not_found_and_method),
        cmocka_unit_test(test_json_echo),
        cmocka_unit_test(test_invalid_json),
        cmocka_unit_test(test_body_cap_content_length),
        cmocka_unit_test(test_body_cap_chunked),
        cmocka_unit_test(test_header_too_large),
        cmocka_unit_test(test_request_id),
        cmocka_unit_test(test_security_headers),
        cmocka_unit_test(test_accessors),
        cmocka_unit_test(test_handler_without_reply),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_metrics_recorded),
        cmocka_unit_test(test_stop_drains),
    };

    int failed;

    mode_threads = 0;
    failed = cmocka_run_group_tests_name("thread_per_connection", tests,
                                         group_setup, group_teardown);
    /* Pool mode: the same routes and behaviour on epoll + 2 threads (the
     * slow handler then blocks one pool thread, which is allowed, only
     * discouraged). */
    failed += cmocka_run_group_tests_name("pool", tests, group_setup_pool,
                                          group_teardown);
    return failed;
}
