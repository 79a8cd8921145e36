/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_httpd_stream.c - deferred replies and streams (SSE) of the HTTP
 * server, in pool mode (epoll + suspend/resume) and, where it applies, in
 * thread-per-connection mode: replies answered later from another thread,
 * many at once, ordered events with exact chunked framing, on_close on
 * disconnect and end, the slow-client cap, 1,000 streams (clients in a
 * child process so that the server's RSS can be measured) and stopping
 * with streams and deferred requests open. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "cmn_httpd.h"
#include "cmn_metrics.h"

#define MAX_STREAMS 1100
#define N_DEFERRED  200
#define N_BIG       1000
#define BIG_EVENTS  3

static unsigned pool_threads = 2;
static unsigned tpc_threads = 0;

/* --- a worker that answers deferred requests after a delay --- */

struct job {
    struct cmn_http_deferred *df;
    long long due_ms;
    int n;         /* echoed back */
    bool as_error; /* reply through cmn_http_deferred_reply_error */
    struct job *next;
};

static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jobs_cond = PTHREAD_COND_INITIALIZER;
static struct job *jobs_head;
static struct job *jobs_tail;
static bool jobs_quit;
static atomic_int jobs_failed; /* reply calls that did not return CMN_OK */

static void *
worker_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&jobs_lock);
    for (;;) {
        struct job *j = jobs_head;
        long long now = cmn_now_ms();
        int rc;

        if (j == NULL) {
            if (jobs_quit) {
                break;
            }
            pthread_cond_wait(&jobs_cond, &jobs_lock);
            continue;
        }
        if (j->due_ms > now) {
            struct timespec ts = {0, (long)(j->due_ms - now) * 1000000L};

            pthread_mutex_unlock(&jobs_lock);
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&jobs_lock);
            continue;
        }
        jobs_head = j->next;
        if (jobs_head == NULL) {
            jobs_tail = NULL;
        }
        pthread_mutex_unlock(&jobs_lock);
        if (j->as_error) {
            rc = cmn_http_deferred_reply_error(j->df, 409, "conflict",
                                               "answered later");
        } else {
            rc = cmn_http_deferred_reply_json(j->df, 200,
                                              json_pack("{s:i}", "n", j->n));
        }
        if (rc != CMN_OK) {
            atomic_fetch_add(&jobs_failed, 1);
        }
        free(j);
        pthread_mutex_lock(&jobs_lock);
    }
    pthread_mutex_unlock(&jobs_lock);
    return NULL;
}

static pthread_t worker;

static void
worker_start(void)
{
    jobs_quit = false;
    atomic_store(&jobs_failed, 0);
    assert_int_equal(pthread_create(&worker, NULL, worker_main, NULL), 0);
}

static void
worker_stop(void)
{
    pthread_mutex_lock(&jobs_lock);
    jobs_quit = true;
    pthread_cond_signal(&jobs_cond);
    pthread_mutex_unlock(&jobs_lock);
    pthread_join(worker, NULL);
}

static bool
job_push(struct cmn_http_deferred *df, long delay_ms, int n, bool as_error)
{
    struct job *j = calloc(1, sizeof(*j));

    if (j == NULL) {
        return false;
    }
    j->df = df;
    j->due_ms = cmn_now_ms() + delay_ms;
    j->n = n;
    j->as_error = as_error;
    pthread_mutex_lock(&jobs_lock);
    if (jobs_tail != NULL) {
        jobs_tail->next = j;
    } else {
        jobs_head = j;
    }
    jobs_tail = j;
    pthread_cond_signal(&jobs_cond);
    pthread_mutex_unlock(&jobs_lock);
    return true;
}

/* Deferred handles parked by /park and never answered by a worker. */
static pthread_mutex_t park_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cmn_http_deferred *parked[64];
static int nparked;

/* --- streams opened by /events --- */

struct entry {
    struct cmn_http_stream *s;
    atomic_int closes;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry reg[MAX_STREAMS];
static int nreg;
static atomic_int total_closes;

static void
on_close(void *cls)
{
    struct entry *e = cls;

    atomic_fetch_add(&e->closes, 1);
    atomic_fetch_add(&total_closes, 1);
}

static void
reg_reset(void)
{
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < nreg; i++) {
        cmn_http_stream_release(reg[i].s);
        reg[i].s = NULL;
        atomic_store(&reg[i].closes, 0);
    }
    nreg = 0;
    pthread_mutex_unlock(&reg_lock);
    atomic_store(&total_closes, 0);
}

static int
reg_count(void)
{
    int n;

    pthread_mutex_lock(&reg_lock);
    n = nreg;
    pthread_mutex_unlock(&reg_lock);
    return n;
}

static struct cmn_http_stream *
reg_get(int i)
{
    struct cmn_http_stream *s;

    pthread_mutex_lock(&reg_lock);
    s = reg[i].s;
    pthread_mutex_unlock(&reg_lock);
    return s;
}

/* --- handlers (server threads: no cmocka asserts, surprises become 500) --- */

static int
h_defer(struct cmn_http_req *req, void *app)
{
    const char *ms = cmn_http_req_query(req, "ms");
    const char *n = cmn_http_req_query(req, "n");
    bool as_error = cmn_http_req_query(req, "error") != NULL;
    struct cmn_http_deferred *df;

    (void)app;
    if (cmn_http_add_header(req, "X-Extra", "kept") != CMN_OK) {
        return CMN_ERR;
    }
    df = cmn_http_defer(req);
    if (df == NULL) {
        return cmn_http_reply_error(req, 503, "unavailable", "no defer");
    }
    /* Deferred: a direct reply and a second deferral are refused. */
    if (cmn_http_req_query(req, "check") != NULL &&
        (cmn_http_reply_text(req, 200, NULL, "x", 1) != CMN_INVALID ||
         cmn_http_defer(req) != NULL ||
         cmn_http_reply_stream(req, 200, NULL, NULL, NULL) != NULL ||
         strcmp(cmn_http_deferred_id(df), cmn_http_req_id(req)) != 0)) {
        (void)cmn_http_deferred_reply_error(df, 500, "bad", "api");
        return CMN_OK;
    }
    if (!job_push(df, ms != NULL ? strtol(ms, NULL, 10) : 0,
                  n != NULL ? (int)strtol(n, NULL, 10) : -1, as_error)) {
        (void)cmn_http_deferred_reply_error(df, 500, "nomem", NULL);
    }
    return CMN_OK;
}

/* Answered from inside the handler, through the handle. */
static int
h_defer_now(struct cmn_http_req *req, void *app)
{
    struct cmn_http_deferred *df = cmn_http_defer(req);

    (void)app;
    if (df == NULL) {
        return CMN_ERR;
    }
    return cmn_http_deferred_reply_json(df, 201, json_pack("{s:b}", "now", 1));
}

/* A deferred HTML page with its own CSP, and a deferred redirect. */
static int
h_defer_page(struct cmn_http_req *req, void *app)
{
    struct cmn_http_deferred *df = cmn_http_defer(req);

    (void)app;
    if (df == NULL) {
        return CMN_ERR;
    }
    if (strcmp(cmn_http_req_path(req), "/defer-redirect") == 0) {
        return cmn_http_deferred_reply_redirect(df,
                                                "https://example.com/x?a=1");
    }
    if (cmn_http_deferred_add_header(df, "Content-Security-Policy",
                                     "default-src 'none'") != CMN_OK) {
        return cmn_http_deferred_reply_error(df, 500, "header", NULL);
    }
    return cmn_http_deferred_reply_text(df, 202, "text/html; charset=utf-8",
                                        "<p>hi</p>", 9);
}

static int
h_park(struct cmn_http_req *req, void *app)
{
    struct cmn_http_deferred *df = cmn_http_defer(req);

    (void)app;
    if (df == NULL) {
        return cmn_http_reply_error(req, 503, "unavailable", "stopping");
    }
    pthread_mutex_lock(&park_lock);
    if (nparked < (int)CMN_ARRAY_LEN(parked)) {
        parked[nparked++] = df;
        df = NULL;
    }
    pthread_mutex_unlock(&park_lock);
    if (df != NULL) {
        (void)cmn_http_deferred_reply_error(df, 500, "full", NULL);
    }
    return CMN_OK;
}

static int
h_events(struct cmn_http_req *req, void *app)
{
    struct cmn_http_stream *s;
    struct entry *e;
    int i;

    (void)app;
    pthread_mutex_lock(&reg_lock);
    if (nreg >= MAX_STREAMS) {
        pthread_mutex_unlock(&reg_lock);
        return cmn_http_reply_error(req, 503, "full", NULL);
    }
    i = nreg;
    e = &reg[i];
    s = cmn_http_reply_stream(req, 200, NULL, on_close, e);
    if (s == NULL) {
        pthread_mutex_unlock(&reg_lock);
        return cmn_http_reply_error(req, 503, "unavailable", "no stream");
    }
    e->s = s;
    nreg++;
    pthread_mutex_unlock(&reg_lock);
    /* Written from the handler's thread, before any other writer. */
    if (cmn_http_stream_write(s, "retry: 3000\n\n", 13) != CMN_OK) {
        cmn_http_stream_end(s);
    }
    return CMN_OK;
}

static int
h_hello(struct cmn_http_req *req, void *app)
{
    (void)app;
    return cmn_http_reply_text(req, 200, "text/plain", "hello", 5);
}

static const struct cmn_http_route routes[] = {
    {"GET", "/defer", h_defer},
    {"GET", "/defer-now", h_defer_now},
    {"GET", "/park", h_park},
    {"GET", "/events", h_events},
    {"GET", "/hello", h_hello},
    {"GET", "/defer-page", h_defer_page},
    {"GET", "/defer-redirect", h_defer_page},
};

static struct cmn_httpd *
start(unsigned threads, unsigned conn_limit)
{
    struct cmn_httpd_opts o = {0};
    struct cmn_err err = {{0}};
    struct cmn_httpd *d;

    o.listen = "127.0.0.1:0";
    o.metrics_prefix = "t";
    o.threads = threads;
    o.connection_limit = conn_limit;
    d = cmn_httpd_start(&o, routes, CMN_ARRAY_LEN(routes), NULL, &err);
    if (d == NULL) {
        fprintf(stderr, "start: %s\n", err.msg);
    }
    assert_non_null(d);
    return d;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* Waits until *v >= want or timeout_ms passes; returns the last value. */
static int
wait_atomic(atomic_int *v, int want, long timeout_ms)
{
    long long until = cmn_now_ms() + timeout_ms;

    while (atomic_load(v) < want && cmn_now_ms() < until) {
        sleep_ms(5);
    }
    return atomic_load(v);
}

static int
wait_reg(int want, long timeout_ms)
{
    long long until = cmn_now_ms() + timeout_ms;

    while (reg_count() < want && cmn_now_ms() < until) {
        sleep_ms(5);
    }
    return reg_count();
}

/* --- clients --- */

struct resp {
    long status;
    char body[4096];
    size_t body_len;
    char headers[4096];
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

static CURL *
easy_for(int port, const char *path, struct resp *r)
{
    CURL *h = curl_easy_init();
    char url[256];

    memset(r, 0, sizeof(*r));
    assert_non_null(h);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    return h;
}

static long
http_get(int port, const char *path, struct resp *r)
{
    CURL *h = easy_for(port, path, r);

    if (curl_easy_perform(h) == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    }
    curl_easy_cleanup(h);
    return r->status;
}

static const char *
header(const struct resp *r, const char *name)
{
    static __thread char buf[512];
    size_t nl = strlen(name);

    for (const char *p = r->headers; *p != '\0';) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);

        if (len > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;

            while (*v == ' ') {
                v++;
            }
            snprintf(buf, sizeof(buf), "%.*s", (int)(len - (size_t)(v - p)), v);
            return buf;
        }
        p = eol != NULL ? eol + 2 : p + len;
    }
    return NULL;
}

static int
raw_connect(int port)
{
    struct sockaddr_in sa = {0};
    struct timeval tv = {5, 0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0) {
        return -1;
    }
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static bool
raw_send(int fd, const char *text)
{
    size_t len = strlen(text);

    return send(fd, text, len, MSG_NOSIGNAL) == (ssize_t)len;
}

/* Strict decoder for one HTTP/1.1 reply with chunked framing: headers,
 * then "<hex>\r\n<data>\r\n" chunks, then "0\r\n\r\n". Byte at a time, so
 * any framing error is caught where it happens. */
enum chunk_state {
    CH_HEAD,
    CH_SIZE,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_LAST_CR,
    CH_LAST_LF,
    CH_DONE,
    CH_BAD,
};

struct chunked {
    enum chunk_state st;
    char head[2048];
    size_t head_len;
    char line[32];
    size_t line_len;
    size_t left;
    char *out;
    size_t out_len;
    size_t out_cap;
    unsigned chunks;
};

static void
chunked_byte(struct chunked *c, char b)
{
    switch (c->st) {
    case CH_HEAD:
        if (c->head_len + 1 >= sizeof(c->head)) {
            c->st = CH_BAD;
            return;
        }
        c->head[c->head_len++] = b;
        c->head[c->head_len] = '\0';
        if (c->head_len >= 4 &&
            memcmp(c->head + c->head_len - 4, "\r\n\r\n", 4) == 0) {
            c->st = CH_SIZE;
        }
        return;
    case CH_SIZE:
        if (b == '\n') {
            char *end;

            if (c->line_len < 2 || c->line[c->line_len - 1] != '\r') {
                c->st = CH_BAD;
                return;
            }
            c->line[c->line_len - 1] = '\0';
            c->left = strtoul(c->line, &end, 16);
            if (*end != '\0' || end == c->line) {
                c->st = CH_BAD;
                return;
            }
            c->line_len = 0;
            c->chunks++;
            c->st = c->left == 0 ? CH_LAST_CR : CH_DATA;
            return;
        }
        if (c->line_len + 1 >= sizeof(c->line)) {
            c->st = CH_BAD;
            return;
        }
        c->line[c->line_len++] = b;
        return;
    case CH_DATA:
        if (c->out_len + 1 >= c->out_cap) {
            size_t cap = c->out_cap == 0 ? 1024 : c->out_cap * 2;
            char *grown = realloc(c->out, cap);

            if (grown == NULL) {
                c->st = CH_BAD;
                return;
            }
            c->out = grown;
            c->out_cap = cap;
        }
        c->out[c->out_len++] = b;
        c->out[c->out_len] = '\0';
        if (--c->left == 0) {
            c->st = CH_DATA_CR;
        }
        return;
    case CH_DATA_CR:
    case CH_LAST_CR:
        c->st = b == '\r' ? c->st + 1 : CH_BAD;
        return;
    case CH_DATA_LF:
        c->st = b == '\n' ? CH_SIZE : CH_BAD;
        return;
    case CH_LAST_LF:
        c->st = b == '\n' ? CH_DONE : CH_BAD;
        return;
    case CH_DONE:
        c->st = CH_BAD; /* nothing may follow on this reply */
        return;
    case CH_BAD:
        return;
    }
}

static void
chunked_feed(struct chunked *c, const char *p, size_t n)
{
    for (size_t i = 0; i < n && c->st != CH_BAD; i++) {
        chunked_byte(c, p[i]);
    }
}

/* Reads into c until the decoded payload has want bytes, the reply ended
 * or timeout_ms passed. */
static void
read_until(int fd, struct chunked *c, size_t want, long timeout_ms)
{
    long long until = cmn_now_ms() + timeout_ms;
    char buf[4096];

    while (c->st != CH_BAD && c->st != CH_DONE && c->out_len < want &&
           cmn_now_ms() < until) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;

        if (poll(&p, 1, 50) <= 0) {
            continue;
        }
        n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) {
            break;
        }
        chunked_feed(c, buf, (size_t)n);
    }
}

static const char *
head_value(const struct chunked *c, const char *name, char *out, size_t size)
{
    size_t nl = strlen(name);

    for (const char *p = strstr(c->head, "\r\n"); p != NULL;
         p = strstr(p + 2, "\r\n")) {
        const char *h = p + 2;
        const char *eol = strstr(h, "\r\n");

        if (eol != NULL && strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
            const char *v = h + nl + 1;

            while (*v == ' ') {
                v++;
            }
            snprintf(out, size, "%.*s", (int)(eol - v), v);
            return out;
        }
    }
    return NULL;
}

static double
metric_value(const char *series)
{
    char *text = NULL;
    size_t len;
    char line[512];
    const char *p;
    double v = -1;

    if (cmn_metrics_render(&text, &len) != CMN_OK) {
        return -1;
    }
    /* At the start of a line, not in its # HELP / # TYPE header. */
    snprintf(line, sizeof(line), "\n%s", series);
    p = strstr(text, line);
    if (p != NULL) {
        v = strtod(p + strlen(line), NULL);
    }
    free(text);
    return v;
}

/* --- tests: deferred replies --- */

static void
test_httpd_stream_deferred_answered_later(void **state)
{
    unsigned threads = *(unsigned *)*state;
    struct cmn_httpd *d = start(threads, 0);
    int port = cmn_httpd_port(d);
    struct resp r;
    long long t0;
    json_t *j;

    worker_start();
    t0 = cmn_now_ms();
    assert_int_equal(http_get(port, "/defer?ms=200&n=7&check=1", &r), 200);
    assert_true(cmn_now_ms() - t0 >= 195);
    assert_string_equal(r.body, "{\"n\":7}");
    assert_string_equal(header(&r, "Content-Type"), "application/json");
    assert_string_equal(header(&r, "X-Content-Type-Options"), "nosniff");
    assert_string_equal(header(&r, "Cache-Control"), "no-store");
    assert_string_equal(header(&r, "X-Extra"), "kept");
    assert_non_null(header(&r, "X-Request-Id"));

    /* The error shape carries the request's id. */
    assert_int_equal(http_get(port, "/defer?ms=50&error=1", &r), 409);
    j = json_loads(r.body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "error")),
                        "conflict");
    assert_string_equal(json_string_value(json_object_get(j, "detail")),
                        "answered later");
    assert_string_equal(json_string_value(json_object_get(j, "request_id")),
                        header(&r, "X-Request-Id"));
    json_decref(j);

    /* Answered before the handler even returned. */
    assert_int_equal(http_get(port, "/defer-now", &r), 201);
    assert_string_equal(r.body, "{\"now\":true}");
    /* Any content with the handler's own headers, and a redirect. */
    assert_int_equal(http_get(port, "/defer-page", &r), 202);
    assert_string_equal(r.body, "<p>hi</p>");
    assert_string_equal(header(&r, "Content-Type"), "text/html; charset=utf-8");
    assert_string_equal(header(&r, "Content-Security-Policy"),
                        "default-src 'none'");
    assert_int_equal(http_get(port, "/defer-redirect", &r), 302);
    assert_string_equal(header(&r, "Location"), "https://example.com/x?a=1");
    /* Plain routes still work next to deferred ones. */
    assert_int_equal(http_get(port, "/hello", &r), 200);
    assert_int_equal(atomic_load(&jobs_failed), 0);
    assert_true(metric_value("t_http_requests_total{route=\"/defer\","
                             "code=\"200\"} ") >= 1);
    cmn_httpd_stop(d, 1000);
    worker_stop();
}

static void
test_httpd_stream_deferred_concurrent(void **state)
{
    unsigned threads = *(unsigned *)*state;
    struct cmn_httpd *d = start(threads, 0);
    int port = cmn_httpd_port(d);
    CURLM *m = curl_multi_init();
    CURL *h[N_DEFERRED];
    struct resp *r = calloc(N_DEFERRED, sizeof(*r));
    int running = 0;
    int ok = 0;
    long long t0 = cmn_now_ms();

    assert_non_null(r);
    worker_start();
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
    for (int i = 0; i < N_DEFERRED; i++) {
        char path[64];

        /* Every reply waits 100-300 ms, answered out of arrival order. */
        snprintf(path, sizeof(path), "/defer?ms=%d&n=%d", 100 + (i * 37) % 200,
                 i);
        h[i] = easy_for(port, path, &r[i]);
        curl_easy_setopt(h[i], CURLOPT_FORBID_REUSE, 1L);
        curl_multi_add_handle(m, h[i]);
    }
    do {
        curl_multi_perform(m, &running);
        if (running > 0) {
            curl_multi_poll(m, NULL, 0, 100, NULL);
        }
    } while (running > 0 && cmn_now_ms() - t0 < 30000);
    for (int i = 0; i < N_DEFERRED; i++) {
        char want[32];

        curl_easy_getinfo(h[i], CURLINFO_RESPONSE_CODE, &r[i].status);
        snprintf(want, sizeof(want), "{\"n\":%d}", i);
        if (r[i].status == 200 && strcmp(r[i].body, want) == 0) {
            ok++;
        }
        curl_multi_remove_handle(m, h[i]);
        curl_easy_cleanup(h[i]);
    }
    curl_multi_cleanup(m);
    print_message("    %d deferred requests answered in %lld ms\n", ok,
                  cmn_now_ms() - t0);
    assert_int_equal(ok, N_DEFERRED);
    assert_int_equal(atomic_load(&jobs_failed), 0);
    free(r);
    cmn_httpd_stop(d, 1000);
    worker_stop();
}

/* --- tests: streams --- */

static char *
event_text(int i, char *buf, size_t size)
{
    snprintf(buf, size,
             "id: %d\nevent: agent\ndata: {\"state\":\"READY\",\"n\":%d}\n\n",
             i, i);
    return buf;
}

static void
test_httpd_stream_events_in_order(void **state)
{
    unsigned threads = *(unsigned *)*state;
    struct cmn_httpd *d = start(threads, 0);
    int port = cmn_httpd_port(d);
    struct chunked c = {0};
    char expect[8192] = "retry: 3000\n\n";
    char ev[128];
    char v[256];
    struct cmn_http_stream *s;
    int fd;

    reg_reset();
    fd = raw_connect(port);
    assert_true(fd >= 0);
    assert_true(raw_send(fd, "GET /events HTTP/1.1\r\nHost: t\r\n"
                             "X-Request-Id: sse-1\r\n\r\n"));
    assert_int_equal(wait_reg(1, 5000), 1);
    s = reg_get(0);
    assert_true(metric_value("t_http_streams_open ") >= 1);
    read_until(fd, &c, strlen(expect), 5000);
    assert_int_equal(c.st, CH_SIZE);
    assert_true(strncmp(c.head, "HTTP/1.1 200", 12) == 0);
    assert_string_equal(head_value(&c, "Transfer-Encoding", v, sizeof(v)),
                        "chunked");
    assert_string_equal(head_value(&c, "Content-Type", v, sizeof(v)),
                        "text/event-stream");
    assert_string_equal(head_value(&c, "Cache-Control", v, sizeof(v)),
                        "no-cache, no-store");
    assert_string_equal(head_value(&c, "X-Accel-Buffering", v, sizeof(v)),
                        "no");
    assert_string_equal(head_value(&c, "X-Content-Type-Options", v, sizeof(v)),
                        "nosniff");
    assert_string_equal(head_value(&c, "X-Request-Id", v, sizeof(v)), "sse-1");
    assert_null(head_value(&c, "Content-Length", v, sizeof(v)));

    /* 50 events from this thread, some in bursts, some spaced out so that
     * the connection suspends (or waits) in between. */
    for (int i = 0; i < 50; i++) {
        event_text(i, ev, sizeof(ev));
        strncat(expect, ev, sizeof(expect) - strlen(expect) - 1);
        assert_int_equal(cmn_http_stream_write(s, ev, strlen(ev)), CMN_OK);
        if (i % 10 == 9) {
            sleep_ms(20);
        }
    }
    read_until(fd, &c, strlen(expect), 5000);
    assert_int_equal(c.st, CH_SIZE);
    assert_int_equal(c.out_len, strlen(expect));
    assert_memory_equal(c.out, expect, strlen(expect));
    assert_true(c.chunks >= 2);

    /* End: flushed, the terminating chunk, on_close exactly once. */
    assert_int_equal(cmn_http_stream_write(s, ": bye\n\n", 7), CMN_OK);
    cmn_http_stream_end(s);
    cmn_http_stream_end(s);
    strncat(expect, ": bye\n\n", sizeof(expect) - strlen(expect) - 1);
    read_until(fd, &c, SIZE_MAX, 5000);
    assert_int_equal(c.st, CH_DONE);
    assert_memory_equal(c.out, expect, strlen(expect));
    assert_int_equal(wait_atomic(&reg[0].closes, 1, 5000), 1);
    assert_int_equal(cmn_http_stream_write(s, "x", 1), CMN_IO);
    sleep_ms(50);
    assert_int_equal(atomic_load(&reg[0].closes), 1);
    assert_true(metric_value("t_http_requests_total{route=\"/events\","
                             "code=\"200\"} ") >= 1);
    assert_true(metric_value("t_http_streams_open ") == 0);

    /* The connection is kept alive and serves the next request. */
    assert_true(raw_send(fd, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"));
    {
        char buf[1024] = "";
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

        assert_true(n > 0);
        assert_true(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    }
    close(fd);
    free(c.out);
    reg_reset();
    cmn_httpd_stop(d, 1000);
}

static void
test_httpd_stream_client_leaves(void **state)
{
    unsigned threads = *(unsigned *)*state;
    struct cmn_httpd *d = start(threads, 0);
    struct cmn_http_stream *s;
    struct chunked c = {0};
    long long t0;
    int beats = 0;
    int fd;

    reg_reset();
    fd = raw_connect(cmn_httpd_port(d));
    assert_true(fd >= 0);
    assert_true(raw_send(fd, "GET /events HTTP/1.1\r\nHost: t\r\n\r\n"));
    assert_int_equal(wait_reg(1, 5000), 1);
    s = reg_get(0);
    read_until(fd, &c, 13, 5000);
    assert_int_equal(c.out_len, 13);
    close(fd);
    /* A suspended connection does not see the client go; the heartbeat
     * the owner writes every 15 s does. Here every 20 ms. */
    t0 = cmn_now_ms();
    while (atomic_load(&reg[0].closes) == 0 && cmn_now_ms() - t0 < 5000) {
        if (cmn_http_stream_write(s, ": ping\n\n", 8) != CMN_OK) {
            break;
        }
        beats++;
        sleep_ms(20);
    }
    assert_int_equal(wait_atomic(&reg[0].closes, 1, 2000), 1);
    print_message("    on_close after %d heartbeat(s), %lld ms\n", beats,
                  cmn_now_ms() - t0);
    assert_int_equal(cmn_http_stream_write(s, ": ping\n\n", 8), CMN_IO);
    cmn_http_stream_end(s); /* harmless once closed */
    free(c.out);
    reg_reset();
    cmn_httpd_stop(d, 1000);
}

static void
test_httpd_stream_slow_client_capped(void **state)
{
    unsigned threads = *(unsigned *)*state;
    struct cmn_httpd *d = start(threads, 0);
    struct sockaddr_in sa = {0};
    struct cmn_http_stream *s;
    static char ev[16384];
    size_t total = 0;
    int rcvbuf = 4096;
    int rc = CMN_OK;
    long long t0;
    long long refused_since = 0;
    int fd;

    reg_reset();
    /* A client that reads nothing, with a small receive window. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)cmn_httpd_port(d));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_true(raw_send(fd, "GET /events HTTP/1.1\r\nHost: t\r\n\r\n"));
    assert_int_equal(wait_reg(1, 5000), 1);
    s = reg_get(0);
    memset(ev, 'x', sizeof(ev));
    memcpy(ev, "data: ", 6);
    ev[sizeof(ev) - 2] = '\n';
    ev[sizeof(ev) - 1] = '\n';
    /* A burst can hit the cap before the server drained anything; a
     * client is slow when the stream stays over it. Kernel buffers take
     * their share first, then the stream's own buffer fills to the cap
     * (256 KiB) and writes stay refused. */
    t0 = cmn_now_ms();
    while (total < 64u * 1024 * 1024 && cmn_now_ms() - t0 < 20000) {
        rc = cmn_http_stream_write(s, ev, sizeof(ev));
        if (rc == CMN_OK) {
            total += sizeof(ev);
            refused_since = 0;
            continue;
        }
        if (rc != CMN_AGAIN) {
            break;
        }
        if (refused_since == 0) {
            refused_since = cmn_now_ms();
        } else if (cmn_now_ms() - refused_since > 300) {
            break;
        }
        sleep_ms(10);
    }
    print_message("    CMN_AGAIN for good after %zu KiB accepted\n",
                  total / 1024);
    assert_int_equal(rc, CMN_AGAIN);
    assert_true(total >= 256u * 1024);
    /* Still refused while nothing drains; a small write that fits is not. */
    assert_int_equal(cmn_http_stream_write(s, ev, sizeof(ev)), CMN_AGAIN);
    /* The owner drops the client: end, and the close follows once the
     * client is gone. */
    cmn_http_stream_end(s);
    close(fd);
    assert_int_equal(wait_atomic(&reg[0].closes, 1, 5000), 1);
    reg_reset();
    cmn_httpd_stop(d, 1000);
}

/* Pool mode: a stream idle (suspended) for longer than
 * connection_timeout_s still delivers the next event, the timeout counts
 * from the resume. Thread-per-connection mode: MHD closes it as idle, as
 * documented (heartbeats must come more often). */
static void
test_httpd_stream_idle_beyond_timeout(void **state)
{
    unsigned threads = *(unsigned *)*state;
    struct cmn_httpd_opts o = {0};
    struct cmn_err err = {{0}};
    struct cmn_httpd *d;
    struct cmn_http_stream *s;
    struct chunked c = {0};
    int fd;

    reg_reset();
    o.listen = "127.0.0.1:0";
    o.threads = threads;
    o.connection_timeout_s = 1;
    d = cmn_httpd_start(&o, routes, CMN_ARRAY_LEN(routes), NULL, &err);
    assert_non_null(d);
    fd = raw_connect(cmn_httpd_port(d));
    assert_true(fd >= 0);
    assert_true(raw_send(fd, "GET /events HTTP/1.1\r\nHost: t\r\n\r\n"));
    assert_int_equal(wait_reg(1, 5000), 1);
    s = reg_get(0);
    read_until(fd, &c, 13, 5000);
    assert_int_equal(c.out_len, 13);
    sleep_ms(2500);
    if (threads == 0) {
        assert_int_equal(wait_atomic(&reg[0].closes, 1, 2000), 1);
        assert_int_equal(cmn_http_stream_write(s, "data: late\n\n", 12),
                         CMN_IO);
    } else {
        assert_int_equal(atomic_load(&reg[0].closes), 0);
        assert_int_equal(cmn_http_stream_write(s, "data: late\n\n", 12),
                         CMN_OK);
        read_until(fd, &c, 25, 3000);
        assert_int_equal(c.out_len, 25);
        assert_memory_equal(c.out + 13, "data: late\n\n", 12);
    }
    close(fd);
    free(c.out);
    cmn_httpd_stop(d, 1000);
    assert_int_equal(atomic_load(&reg[0].closes), 1);
    reg_reset();
}

/* --- 1,000 streams: clients in a child process --- */

static long
rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0;
    long rss = 0;

    if (f == NULL) {
        return -1;
    }
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) {
        rss = -1;
    }
    fclose(f);
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Child: open n streams, read until each has its expected payload, report
 * how many did (and how many framing errors) on the pipe, then keep the
 * connections open until the parent closes its end of ctl. */
static void
big_client(int port_fd, int result_fd, int ctl_fd, int n)
{
    int port = 0;
    int *fds = calloc((size_t)n, sizeof(int));
    struct chunked *c = calloc((size_t)n, sizeof(*c));
    struct pollfd *p = calloc((size_t)n, sizeof(*p));
    char expect[4096] = "retry: 3000\n\n";
    char ev[128];
    int res[3] = {0, 0, 0}; /* complete, bad framing, connect failures */
    long long until;
    char buf[4096];
    int done = 0;

    if (fds == NULL || c == NULL || p == NULL ||
        read(port_fd, &port, sizeof(port)) != sizeof(port)) {
        _exit(2);
    }
    for (int e = 0; e < BIG_EVENTS; e++) {
        strncat(expect, event_text(e, ev, sizeof(ev)),
                sizeof(expect) - strlen(expect) - 1);
    }
    for (int i = 0; i < n; i++) {
        fds[i] = raw_connect(port);
        if (fds[i] < 0 ||
            !raw_send(fds[i], "GET /events HTTP/1.1\r\nHost: t\r\n\r\n")) {
            res[2]++;
        }
        p[i].fd = fds[i];
        p[i].events = POLLIN;
    }
    until = cmn_now_ms() + 60000;
    while (done < n - res[2] && cmn_now_ms() < until) {
        if (poll(p, (nfds_t)n, 200) <= 0) {
            continue;
        }
        for (int i = 0; i < n; i++) {
            ssize_t got;

            if (p[i].fd < 0 || (p[i].revents & (POLLIN | POLLHUP)) == 0) {
                continue;
            }
            got = recv(p[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (got <= 0) {
                p[i].fd = -1;
                res[1]++;
                done++;
                continue;
            }
            chunked_feed(&c[i], buf, (size_t)got);
            if (c[i].st == CH_BAD ||
                (c[i].out_len >= strlen(expect) &&
                 (c[i].out_len != strlen(expect) ||
                  memcmp(c[i].out, expect, c[i].out_len) != 0))) {
                res[1]++;
                p[i].fd = -1;
                done++;
            } else if (c[i].out_len == strlen(expect)) {
                res[0]++;
                p[i].fd = -1; /* stop reading, keep the connection */
                done++;
            }
        }
    }
    if (write(result_fd, res, sizeof(res)) != sizeof(res)) {
        _exit(3);
    }
    /* Hold the streams open until the parent is done (EOF on ctl). */
    while (read(ctl_fd, buf, 1) > 0) {
    }
    _exit(0);
}

static void *
big_writer(void *arg)
{
    int n = *(int *)arg;
    char ev[128];

    for (int e = 0; e < BIG_EVENTS; e++) {
        event_text(e, ev, sizeof(ev));
        for (int i = 0; i < n; i++) {
            if (cmn_http_stream_write(reg_get(i), ev, strlen(ev)) != CMN_OK) {
                return (void *)1;
            }
        }
    }
    return NULL;
}

static void
test_httpd_stream_thousand(void **state)
{
    int port_pipe[2];
    int result_pipe[2];
    int ctl_pipe[2];
    int n = N_BIG;
    int res[3] = {-1, -1, -1};
    struct cmn_httpd *d;
    long rss0;
    long rss1;
    long rss2;
    long long t0;
    long long stop_ms;
    pthread_t w;
    void *wrc = NULL;
    pid_t pid;
    int port;
    int status = 0;

    (void)state;
    reg_reset();
    assert_int_equal(pipe(port_pipe), 0);
    assert_int_equal(pipe(result_pipe), 0);
    assert_int_equal(pipe(ctl_pipe), 0);
    /* Fork before the server's threads exist. */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(port_pipe[1]);
        close(result_pipe[0]);
        close(ctl_pipe[1]);
        big_client(port_pipe[0], result_pipe[1], ctl_pipe[0], n);
    }
    close(port_pipe[0]);
    close(result_pipe[1]);
    close(ctl_pipe[0]);

    d = start(pool_threads, 2 * N_BIG);
    port = cmn_httpd_port(d);
    sleep_ms(50);
    rss0 = rss_kb();
    t0 = cmn_now_ms();
    assert_int_equal(write(port_pipe[1], &port, sizeof(port)), sizeof(port));
    assert_int_equal(wait_reg(n, 30000), n);
    print_message("    %d streams open after %lld ms\n", n, cmn_now_ms() - t0);
    sleep_ms(200); /* the first writes go out, connections suspend */
    rss1 = rss_kb();
    assert_true(metric_value("t_http_streams_open ") == n);

    t0 = cmn_now_ms();
    assert_int_equal(pthread_create(&w, NULL, big_writer, &n), 0);
    pthread_join(w, &wrc);
    assert_null(wrc);
    assert_int_equal(read(result_pipe[0], res, sizeof(res)), sizeof(res));
    rss2 = rss_kb();
    print_message("    %d x %d events delivered in %lld ms; complete=%d "
                  "bad=%d connect_failed=%d\n",
                  n, BIG_EVENTS, cmn_now_ms() - t0, res[0], res[1], res[2]);
    print_message("    server RSS %ld KB -> %ld KB with %d open streams "
                  "(%.1f KB per stream), %ld KB after the events\n",
                  rss0, rss1, n, (double)(rss1 - rss0) / n, rss2);
    assert_int_equal(res[0], n);

    /* Stop with all of them open: ended, flushed, closed, promptly. */
    t0 = cmn_now_ms();
    cmn_httpd_stop(d, 5000);
    stop_ms = cmn_now_ms() - t0;
    print_message("    stop with %d open streams: %lld ms\n", n, stop_ms);
    assert_true(stop_ms < 1000);
    assert_int_equal(atomic_load(&total_closes), n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(cmn_http_stream_write(reg_get(i), "x", 1), CMN_IO);
    }
    close(ctl_pipe[1]);
    close(port_pipe[1]);
    close(result_pipe[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    reg_reset();
}

/* --- stop with streams and deferred requests open --- */

static void
test_httpd_stream_stop_with_open(void **state)
{
    unsigned threads = *(unsigned *)*state;
    struct cmn_httpd *d = start(threads, 0);
    int port = cmn_httpd_port(d);
    int sfd[20];
    int dfd[20];
    long long t0;
    long long took;
    int got503 = 0;
    int ended = 0;

    reg_reset();
    pthread_mutex_lock(&park_lock);
    nparked = 0;
    pthread_mutex_unlock(&park_lock);
    for (int i = 0; i < 20; i++) {
        sfd[i] = raw_connect(port);
        dfd[i] = raw_connect(port);
        assert_true(sfd[i] >= 0 && dfd[i] >= 0);
        assert_true(
            raw_send(sfd[i], "GET /events HTTP/1.1\r\nHost: t\r\n\r\n"));
        assert_true(raw_send(dfd[i], "GET /park HTTP/1.1\r\nHost: t\r\n\r\n"));
    }
    assert_int_equal(wait_reg(20, 5000), 20);
    t0 = cmn_now_ms();
    for (;;) {
        int n;

        pthread_mutex_lock(&park_lock);
        n = nparked;
        pthread_mutex_unlock(&park_lock);
        if (n == 20 || cmn_now_ms() - t0 > 5000) {
            assert_int_equal(n, 20);
            break;
        }
        sleep_ms(5);
    }
    assert_int_equal(cmn_httpd_inflight(d), 40);

    t0 = cmn_now_ms();
    cmn_httpd_stop(d, 200);
    took = cmn_now_ms() - t0;
    print_message("    stop with 20 streams + 20 deferred (drain 200 ms): "
                  "%lld ms\n",
                  took);
    assert_true(took < 1000);
    assert_int_equal(atomic_load(&total_closes), 20);

    /* Streams got their terminating chunk, deferred requests a 503. */
    for (int i = 0; i < 20; i++) {
        struct chunked c = {0};
        char buf[2048] = "";
        ssize_t n;

        read_until(sfd[i], &c, SIZE_MAX, 2000);
        ended += c.st == CH_DONE;
        free(c.out);
        n = recv(dfd[i], buf, sizeof(buf) - 1, 0);
        if (n > 0 && strncmp(buf, "HTTP/1.1 503", 12) == 0 &&
            strstr(buf, "\"error\":\"shutting_down\"") != NULL) {
            got503++;
        }
        close(sfd[i]);
        close(dfd[i]);
    }
    print_message("    %d/20 streams ended cleanly, %d/20 deferred got 503\n",
                  ended, got503);
    assert_int_equal(ended, 20);
    assert_true(got503 >= 1);

    /* The handles outlive the server: replies and writes say CMN_IO. */
    for (int i = 0; i < 20; i++) {
        assert_int_equal(
            cmn_http_deferred_reply_json(parked[i], 200, json_pack("{}")),
            CMN_IO);
        assert_int_equal(cmn_http_stream_write(reg_get(i), "x", 1), CMN_IO);
    }
    reg_reset();
}

struct stop_arg {
    struct cmn_httpd *d;
    int drain_ms;
};

static void *
stop_thread(void *p)
{
    struct stop_arg *a = p;

    cmn_httpd_stop(a->d, a->drain_ms);
    return NULL;
}

/* Once the stop began, a handler that defers or streams gets NULL (and
 * answers 503 itself); nothing new is suspended. */
static void
test_httpd_stream_refused_while_stopping(void **state)
{
    unsigned threads = *(unsigned *)*state;
    struct stop_arg a = {NULL, 500};
    char buf[2048] = "";
    pthread_t t;
    ssize_t n;
    int fd;
    int pfd;

    a.d = start(threads, 0);
    reg_reset();
    pthread_mutex_lock(&park_lock);
    nparked = 0;
    pthread_mutex_unlock(&park_lock);
    /* A keep-alive connection opened before the stop, used during it. */
    fd = raw_connect(cmn_httpd_port(a.d));
    assert_true(fd >= 0);
    assert_true(raw_send(fd, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"));
    assert_true(recv(fd, buf, sizeof(buf) - 1, 0) > 0);
    /* A parked request keeps the drain going while we probe. */
    pfd = raw_connect(cmn_httpd_port(a.d));
    assert_true(pfd >= 0);
    assert_true(raw_send(pfd, "GET /park HTTP/1.1\r\nHost: t\r\n\r\n"));
    for (int parked_now = 0; parked_now == 0; sleep_ms(5)) {
        pthread_mutex_lock(&park_lock);
        parked_now = nparked;
        pthread_mutex_unlock(&park_lock);
    }
    assert_int_equal(pthread_create(&t, NULL, stop_thread, &a), 0);
    sleep_ms(100);
    assert_true(raw_send(fd, "GET /events HTTP/1.1\r\nHost: t\r\n\r\n"));
    memset(buf, 0, sizeof(buf));
    n = recv(fd, buf, sizeof(buf) - 1, 0);
    assert_true(n > 0);
    assert_true(strncmp(buf, "HTTP/1.1 503", 12) == 0);
    assert_non_null(strstr(buf, "no stream"));
    pthread_join(t, NULL);
    close(pfd);
    close(fd);
    assert_int_equal(reg_count(), 0);
    pthread_mutex_lock(&park_lock);
    assert_int_equal(nparked, 1);
    assert_int_equal(
        cmn_http_deferred_reply_error(parked[0], 500, "late", NULL), CMN_IO);
    nparked = 0;
    pthread_mutex_unlock(&park_lock);
}

static int
group_setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cmn_metrics_reset();
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    reg_reset();
    cmn_metrics_reset();
    curl_global_cleanup();
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_httpd_stream_deferred_answered_later,
                                  &pool_threads),
        cmocka_unit_test_prestate(test_httpd_stream_deferred_answered_later,
                                  &tpc_threads),
        cmocka_unit_test_prestate(test_httpd_stream_deferred_concurrent,
                                  &pool_threads),
        cmocka_unit_test_prestate(test_httpd_stream_deferred_concurrent,
                                  &tpc_threads),
        cmocka_unit_test_prestate(test_httpd_stream_events_in_order,
                                  &pool_threads),
        cmocka_unit_test_prestate(test_httpd_stream_events_in_order,
                                  &tpc_threads),
        cmocka_unit_test_prestate(test_httpd_stream_client_leaves,
                                  &pool_threads),
        cmocka_unit_test_prestate(test_httpd_stream_client_leaves,
                                  &tpc_threads),
        cmocka_unit_test_prestate(test_httpd_stream_slow_client_capped,
                                  &pool_threads),
        cmocka_unit_test_prestate(test_httpd_stream_idle_beyond_timeout,
                                  &pool_threads),
        cmocka_unit_test_prestate(test_httpd_stream_idle_beyond_timeout,
                                  &tpc_threads),
        cmocka_unit_test(test_httpd_stream_thousand),
        cmocka_unit_test_prestate(test_httpd_stream_stop_with_open,
                                  &pool_threads),
        cmocka_unit_test_prestate(test_httpd_stream_stop_with_open,
                                  &tpc_threads),
        cmocka_unit_test_prestate(test_httpd_stream_refused_while_stopping,
                                  &pool_threads),
        cmocka_unit_test_prestate(test_httpd_stream_refused_while_stopping,
                                  &tpc_threads),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
