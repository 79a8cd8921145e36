/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_httpd.c - HTTP server on libmicrohttpd 0.9.75: routing, body cap,
 * request ids, security headers, JSON replies, per-route metrics, deferred
 * replies and streams.
 *
 * Either one thread per connection, polled with poll() (select() refuses
 * fds >= 1024), or epoll with a thread pool and suspend/resume. The access
 * handler is called several times per request: the first call allocates
 * struct cmn_http_req, the middle ones deliver body pieces (counted against
 * max_body), the last one routes and runs the handler. The request is
 * freed from MHD's completion callback, which is also where the in-flight
 * count drops, so a drain waits until the reply has actually been written.
 *
 * Deferred replies and streams are shared between the connection and the
 * application, each with its own mutex and a reference count (one for each
 * side). Locks are taken in the order server -> deferred/stream -> MHD's
 * internal ones (MHD_resume_connection is called with ours held, so that
 * the connection cannot be freed under it); MHD calls our callbacks without
 * its cleanup mutex held. A connection is only resumed after it was
 * suspended, and cmn_httpd_stop resumes everything and lets nothing
 * suspend again before MHD_stop_daemon (which panics on a suspended
 * connection). */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cmn_httpd.h"
#include "cmn_log.h"
#include "cmn_metrics.h"

#define DEFAULT_MAX_BODY   (64u * 1024u)
#define DEFAULT_MAX_HEADER (16u * 1024u)
#define DEFAULT_CONN_LIMIT 1024u
#define DEFAULT_TIMEOUT_S  30u
#define REQ_ID_MAX         64
#define DEFAULT_STREAM_MAX (256u * 1024u)
/* Advisory read size MHD passes to the stream reader. */
#define STREAM_BLOCK 1024u
/* A drained stream buffer bigger than this is freed rather than kept. */
#define STREAM_KEEP_BUF 4096u
/* Thread-per-connection streams: longest wait in the reader, so that the
 * connection's thread looks at its socket (and a stop) now and then. */
#define STREAM_TPC_WAIT_MS 1000
/* After the drain, how long deferred requests answered 503 by the stop get
 * to write it before the daemon goes. */
#define STOP_GRACE_MS   100
#define ID_RANDOM_BYTES 16
/* Bytes past max_body that are read and dropped before the connection is
 * cut instead of answered. */
#define DISCARD_LIMIT (1024u * 1024u)

struct cmn_httpd {
    struct MHD_Daemon *mhd;
    struct cmn_http_route *routes; /* method/path strings owned */
    size_t nroutes;
    void *app;
    size_t max_body;
    size_t stream_max;
    bool pool; /* epoll + thread pool + suspend/resume */
    char *metrics_prefix;
    char *tls_cert; /* copies handed to MHD, wiped on free */
    char *tls_key;
    int port;
    atomic_uint inflight;
    struct cmn_metric *m_streams; /* gauge, NULL without a prefix */
    /* Guards the lists and stopping, so that cmn_httpd_stop sees every
     * deferred request and stream, and none starts after it looked. */
    pthread_mutex_t lock;
    bool stopping;
    struct cmn_http_deferred *deferred; /* pending, not yet completed */
    struct cmn_http_stream *streams;    /* open */
};

/* A reply stored by one thread for the connection to queue. */
struct cmn_http_deferred {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* thread-per-connection: the handler waits */
    struct MHD_Connection *conn;
    bool pool;
    unsigned refs;  /* the owner until it replies, the request until freed */
    bool answered;  /* a reply is stored (by the owner or the stop) */
    bool suspended; /* pool: the connection waits for a resume */
    bool conn_gone; /* request completed: conn must not be touched */
    unsigned status;
    char *body; /* reply text, taken by the connection */
    size_t body_len;
    char ctype[64];                            /* of body */
    char *hdr_name[CMN_HTTP_DEFERRED_HEADERS]; /* extra headers */
    char *hdr_value[CMN_HTTP_DEFERRED_HEADERS];
    unsigned nhdr;
    char id[REQ_ID_MAX + 1];
    /* server list, under cmn_httpd.lock */
    struct cmn_http_deferred *prev;
    struct cmn_http_deferred *next;
};

struct cmn_http_stream {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* thread-per-connection: the reader waits */
    struct cmn_httpd *d; /* valid while !closed */
    struct MHD_Connection *conn;
    bool pool;
    unsigned refs;  /* the owner until release, MHD until the free cb */
    bool suspended; /* pool: the reader found nothing and suspended */
    bool ended;     /* no more writes; the reader ends after a flush */
    bool closed;    /* response freed: conn is gone */
    char *buf;
    size_t off; /* sent up to here */
    size_t len;
    size_t cap;
    void (*on_close)(void *cls);
    void *cls;
    /* server list, under cmn_httpd.lock */
    struct cmn_http_stream *prev;
    struct cmn_http_stream *next;
};

struct extra_header {
    char *name;
    char *value;
};

struct cmn_http_req {
    struct cmn_httpd *d;
    struct MHD_Connection *conn;
    char *method;
    char *path;
    char *raw_query; /* as received, still percent-encoded; NULL: none */
    const char *path_rest;
    const struct cmn_http_route *route;
    char id[REQ_ID_MAX + 1];
    char peer[INET6_ADDRSTRLEN + 8];
    char *body;
    size_t body_len;
    size_t body_cap;
    size_t uploaded; /* bytes seen, including what was refused */
    bool too_large;  /* body went over max_body: answer 413 at the end */
    bool replied;
    struct cmn_http_deferred *deferred; /* set by cmn_http_defer */
    bool deferred_queueing; /* the deferred reply itself is being queued */
    unsigned stream_status; /* a stream was queued: metrics at the end */
    struct extra_header *extra;
    size_t nextra;
    struct timespec started;
};

/* Headers every reply carries unless the handler set the same name. */
static const struct {
    const char *name;
    const char *value;
} security_headers[] = {
    {"X-Content-Type-Options", "nosniff"},
    {"Cache-Control", "no-store"},
    {"Referrer-Policy", "no-referrer"},
    {"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"},
};

static pthread_once_t sigpipe_once = PTHREAD_ONCE_INIT;

/* A peer that resets mid-reply must not kill the process; keep any handler
 * the application installed itself. */
static void
ignore_sigpipe(void)
{
    struct sigaction sa;

    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_IGN;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGPIPE, &sa, NULL);
    }
}

static void __attribute__((format(printf, 2, 0)))
mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;

    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) {
        msg[--n] = '\0';
    }
    cmn_log_warn("event=mhd_error msg=\"%s\"", msg);
}

static char *
dup_str(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static bool
valid_request_id(const char *s)
{
    size_t n = 0;

    if (s == NULL) {
        return false;
    }
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';

        if (!ok || n >= REQ_ID_MAX) {
            return false;
        }
    }
    return n > 0;
}

/* 16 bytes from getrandom as base64url: kept local so that the server does
 * not depend on the sealing module. */
static void
new_request_id(char out[REQ_ID_MAX + 1])
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[ID_RANDOM_BYTES + 2] = {0};
    size_t got = 0;
    size_t o = 0;

    while (got < ID_RANDOM_BYTES) {
        ssize_t n = getrandom(raw + got, ID_RANDOM_BYTES - got, 0);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            /* Ids are correlation handles, not secrets: a clock-based id
             * is still useful if the CSPRNG is unavailable. */
            snprintf(out, REQ_ID_MAX + 1, "t%lld", cmn_wall_ms());
            return;
        }
        got += (size_t)n;
    }
    for (size_t i = 0; i < ID_RANDOM_BYTES; i += 3) {
        uint32_t v =
            (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        size_t left = ID_RANDOM_BYTES - i;

        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        if (left > 1) {
            out[o++] = alphabet[(v >> 6) & 63];
        }
        if (left > 2) {
            out[o++] = alphabet[v & 63];
        }
    }
    out[o] = '\0';
}

static void
peer_string(struct MHD_Connection *conn, char *out, size_t size)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;

    snprintf(out, size, "-");
    if (sa == NULL) {
        return;
    }
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;

        inet_ntop(AF_INET, &in4->sin_addr, out, (socklen_t)size);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

        inet_ntop(AF_INET6, &in6->sin6_addr, out, (socklen_t)size);
    }
}

static double
elapsed_s(const struct timespec *since)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - since->tv_sec) +
           (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

/* Route paths come from code, but escape them anyway so that a label value
 * can never break the exposition format. */
static void
label_escape(const char *in, char *out, size_t size)
{
    size_t o = 0;

    for (; *in != '\0' && o + 3 < size; in++) {
        if (*in == '"' || *in == '\\') {
            out[o++] = '\\';
            out[o++] = *in;
        } else if (*in == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *in;
        }
    }
    out[o] = '\0';
}

static void
record_metrics(const struct cmn_http_req *req, unsigned status)
{
    const char *prefix = req->d->metrics_prefix;
    char route[256];
    char name[512];
    struct cmn_metric *m;

    if (prefix == NULL) {
        return;
    }
    label_escape(req->route != NULL ? req->route->path : "unmatched", route,
                 sizeof(route));
    snprintf(name, sizeof(name),
             "%s_http_requests_total{route=\"%s\",code=\"%u\"}", prefix, route,
             status);
    m = cmn_metric_counter(name, "HTTP requests by route and status code.");
    cmn_metric_inc(m);
    snprintf(name, sizeof(name),
             "%s_http_request_duration_seconds{route=\"%s\"}", prefix, route);
    m = cmn_metric_histogram(name, "Time to produce an HTTP reply.",
                             cmn_metric_latency_buckets,
                             cmn_metric_latency_buckets_n);
    cmn_metric_observe(m, elapsed_s(&req->started));
}

static bool
handler_set_header(const struct cmn_http_req *req, const char *name)
{
    for (size_t i = 0; i < req->nextra; i++) {
        if (strcasecmp(req->extra[i].name, name) == 0) {
            return true;
        }
    }
    return false;
}

/* The id, security and handler headers every reply carries. A stream may
 * be revalidated but still never stored, and proxies must not buffer it. */
static void
add_reply_headers(const struct cmn_http_req *req, struct MHD_Response *resp,
                  const char *content_type, bool stream)
{
    MHD_add_response_header(resp, "X-Request-Id", req->id);
    for (size_t i = 0; i < CMN_ARRAY_LEN(security_headers); i++) {
        const char *name = security_headers[i].name;
        const char *value = security_headers[i].value;

        if (handler_set_header(req, name)) {
            continue;
        }
        if (stream && strcmp(name, "Cache-Control") == 0) {
            value = "no-cache, no-store";
        }
        MHD_add_response_header(resp, name, value);
    }
    if (stream && !handler_set_header(req, "X-Accel-Buffering")) {
        MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    }
    if (content_type != NULL) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                content_type);
    }
    for (size_t i = 0; i < req->nextra; i++) {
        MHD_add_response_header(resp, req->extra[i].name, req->extra[i].value);
    }
}

/* The one place a reply is queued: adds the id, security and handler
 * headers, records metrics, and refuses a second reply for the request
 * (a deferred request is answered through its handle only). */
static int
queue_reply(struct cmn_http_req *req, unsigned status, const char *content_type,
            const void *body, size_t len, bool close_conn)
{
    struct MHD_Response *resp = NULL;
    int rc = CMN_ERR;

    if (req->replied || (req->deferred != NULL && !req->deferred_queueing)) {
        cmn_log_warn("event=http_double_reply status=%u", status);
        return CMN_INVALID;
    }
    resp = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body,
                                           MHD_RESPMEM_MUST_COPY);
    if (resp == NULL) {
        rc = CMN_NOMEM;
        goto out;
    }
    add_reply_headers(req, resp, content_type, false);
    if (close_conn) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    }
    if (MHD_queue_response(req->conn, status, resp) != MHD_YES) {
        cmn_log_warn("event=http_queue_failed status=%u", status);
        goto out;
    }
    req->replied = true;
    record_metrics(req, status);
    rc = CMN_OK;
out:
    if (resp != NULL) {
        MHD_destroy_response(resp);
    }
    return rc;
}

static int
reply_error_json(struct cmn_http_req *req, unsigned status, const char *error,
                 const char *detail, bool close_conn)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "error", error, "detail",
                          detail != NULL ? detail : "", "request_id", req->id);
    char *text = NULL;
    int rc = CMN_NOMEM;

    if (o == NULL) {
        goto out;
    }
    text = json_dumps(o, JSON_COMPACT);
    if (text == NULL) {
        goto out;
    }
    rc = queue_reply(req, status, "application/json", text, strlen(text),
                     close_conn);
out:
    free(text);
    json_decref(o);
    return rc;
}

static void deferred_detach(struct cmn_http_req *req);

static void
req_free(struct cmn_http_req *req)
{
    if (req == NULL) {
        return;
    }
    if (req->deferred != NULL) {
        deferred_detach(req);
    }
    for (size_t i = 0; i < req->nextra; i++) {
        free(req->extra[i].name);
        free(req->extra[i].value);
    }
    free(req->extra);
    free(req->body);
    free(req->method);
    free(req->path);
    free(req->raw_query);
    free(req);
}

static struct cmn_http_req *
req_new(struct cmn_httpd *d, struct MHD_Connection *conn, const char *url,
        const char *method, struct cmn_http_req *pre)
{
    /* pre: what on_uri kept of the request line, or NULL */
    struct cmn_http_req *req = pre != NULL ? pre : calloc(1, sizeof(*req));
    const char *in_id;

    if (req == NULL) {
        return NULL;
    }
    req->conn = conn;
    req->method = dup_str(method);
    req->path = dup_str(url);
    if (req->method == NULL || req->path == NULL) {
        if (pre == NULL) {
            req_free(req);
        } /* else on_completed frees it: it is still MHD's *con_cls */
        return NULL;
    }
    req->d = d; /* set last: a request with d counts as in flight */
    req->path_rest = "";
    clock_gettime(CLOCK_MONOTONIC, &req->started);
    in_id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (valid_request_id(in_id)) {
        snprintf(req->id, sizeof(req->id), "%s", in_id);
    } else {
        new_request_id(req->id);
    }
    peer_string(conn, req->peer, sizeof(req->peer));
    return req;
}

/* MHD shows the request-target here once, before it decodes it: the query
 * exactly as sent is kept for cmn_http_req_raw_query (a signature over a
 * query covers its encoded form, SAML's HTTP-Redirect binding for one).
 * The request object begun here becomes *con_cls; on_completed frees it
 * even when on_access never runs. */
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    const char *q = uri != NULL ? strchr(uri, '?') : NULL;
    struct cmn_http_req *req;

    (void)cls;
    (void)conn;
    if (q == NULL || q[1] == '\0') {
        return NULL;
    }
    req = calloc(1, sizeof(*req));
    if (req != NULL) {
        req->raw_query = dup_str(q + 1);
    }
    return req;
}

/* Appends a body piece; false when the cap is exceeded (or, rarely, memory
 * runs out: the client then gets a 413 too, which is safe). */
static bool
req_append_body(struct cmn_http_req *req, const char *data, size_t len)
{
    req->uploaded += len;
    if (req->uploaded > req->d->max_body) {
        return false;
    }
    if (req->body_len + len + 1 > req->body_cap) {
        size_t cap = req->body_cap == 0 ? 1024 : req->body_cap;
        char *grown;

        while (cap < req->body_len + len + 1) {
            cap *= 2;
        }
        if (cap > req->d->max_body + 1) {
            cap = req->d->max_body + 1;
        }
        grown = realloc(req->body, cap);
        if (grown == NULL) {
            return false;
        }
        req->body = grown;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, len);
    req->body_len += len;
    req->body[req->body_len] = '\0';
    return true;
}

static bool
path_matches(const char *pattern, const char *path, const char **rest)
{
    size_t n = strlen(pattern);

    if (n > 0 && pattern[n - 1] == '*') {
        if (strncmp(pattern, path, n - 1) == 0) {
            *rest = path + n - 1;
            return true;
        }
        return false;
    }
    if (strcmp(pattern, path) == 0) {
        *rest = "";
        return true;
    }
    return false;
}

/* Adds method to the comma-separated Allow list unless already there. */
static void
allow_add(char *allow, size_t size, const char *method)
{
    size_t ml = strlen(method);

    for (const char *p = allow; *p != '\0';) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

        if (len == ml && strncmp(p, method, ml) == 0) {
            return;
        }
        p = end != NULL ? end + 2 : p + len;
    }
    if (allow[0] != '\0') {
        strncat(allow, ", ", size - strlen(allow) - 1);
    }
    strncat(allow, method, size - strlen(allow) - 1);
}

static void deferred_wait(struct cmn_http_req *req);
static enum MHD_Result deferred_finish(struct cmn_http_req *req);

static void
dispatch(struct cmn_http_req *req)
{
    struct cmn_httpd *d = req->d;
    char allow[128] = "";
    int rc;

    for (size_t i = 0; i < d->nroutes; i++) {
        const char *rest;

        if (!path_matches(d->routes[i].path, req->path, &rest)) {
            continue;
        }
        if (strcmp(d->routes[i].method, req->method) == 0) {
            req->route = &d->routes[i];
            req->path_rest = rest;
            break;
        }
        allow_add(allow, sizeof(allow), d->routes[i].method);
    }
    if (req->route == NULL) {
        if (allow[0] != '\0') {
            if (cmn_http_add_header(req, "Allow", allow) == CMN_OK) {
                reply_error_json(req, MHD_HTTP_METHOD_NOT_ALLOWED,
                                 "method_not_allowed",
                                 "method not allowed for this path", false);
            }
            return;
        }
        reply_error_json(req, MHD_HTTP_NOT_FOUND, "not_found", "no such path",
                         false);
        return;
    }

    cmn_log_set_request_id(req->id);
    rc = req->route->handler(req, d->app);
    if (!req->replied && req->deferred == NULL) {
        cmn_log_err("event=http_no_reply method=%s path=%s rc=%s", req->method,
                    req->path, cmn_rc_str(rc));
        reply_error_json(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_error",
                         "the request could not be completed", false);
    }
    cmn_log_set_request_id(NULL);
}

static enum MHD_Result
on_access(void *cls, struct MHD_Connection *conn, const char *url,
          const char *method, const char *version, const char *upload_data,
          size_t *upload_data_size, void **con_cls)
{
    struct cmn_httpd *d = cls;
    struct cmn_http_req *req = *con_cls;

    (void)version;
    if (req == NULL || req->d == NULL) {
        const char *cl;

        req = req_new(d, conn, url, method, req);
        if (req == NULL) {
            return MHD_NO;
        }
        *con_cls = req;
        atomic_fetch_add(&d->inflight, 1);
        /* Refuse a declared oversize body before reading any of it. */
        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                         MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL && strtoull(cl, NULL, 10) > d->max_body) {
            reply_error_json(req, MHD_HTTP_CONTENT_TOO_LARGE,
                             "payload_too_large", "request body too large",
                             true);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (req->too_large) {
            /* Keep reading (and dropping) so that the 413 can be sent on
             * a clean connection, but not forever. */
            req->uploaded += *upload_data_size;
            if (req->uploaded - d->max_body > DISCARD_LIMIT) {
                return MHD_NO;
            }
        } else if (!req->replied &&
                   !req_append_body(req, upload_data, *upload_data_size)) {
            /* MHD 0.9.75 refuses to queue a reply while the body is still
             * arriving, so the 413 waits for the final call. */
            req->too_large = true;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->too_large) {
        reply_error_json(req, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                         "request body too large", true);
    } else if (req->deferred != NULL) {
        /* Pool mode: called again after the resume that a reply (or the
         * stop) triggered. */
        return req->replied ? MHD_YES : deferred_finish(req);
    } else if (!req->replied) {
        dispatch(req);
        if (req->deferred != NULL && !d->pool) {
            /* This connection's own thread: wait here for the reply. */
            deferred_wait(req);
            return deferred_finish(req);
        }
    }
    /* A deferred request in pool mode is suspended by now. */
    return req->replied || req->deferred != NULL ? MHD_YES : MHD_NO;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    struct cmn_httpd *d = cls;
    struct cmn_http_req *req = *con_cls;

    (void)conn;
    (void)toe;
    if (req == NULL) {
        return;
    }
    *con_cls = NULL;
    if (req->d == NULL) {
        req_free(req); /* begun by on_uri, never handled */
        return;
    }
    /* A stream counts as one request, with its whole lifetime. */
    if (req->stream_status != 0) {
        record_metrics(req, req->stream_status);
    }
    req_free(req);
    atomic_fetch_sub(&d->inflight, 1);
}

/* "host:port", "[v6]:port" or ":port" (every address, dual stack). */
static int
parse_listen(const char *listen, struct sockaddr_storage *ss, bool *v6,
             struct cmn_err *err)
{
    char host[256] = "";
    const char *port;
    const char *colon;
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    int gai;
    int rc = CMN_INVALID;

    if (listen == NULL || listen[0] == '\0') {
        cmn_err_set(err, "listen address is empty");
        goto out;
    }
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');

        if (close == NULL || close[1] != ':' ||
            (size_t)(close - listen - 1) >= sizeof(host)) {
            cmn_err_set(err, "bad listen address '%s'", listen);
            goto out;
        }
        memcpy(host, listen + 1, (size_t)(close - listen - 1));
        port = close + 2;
    } else {
        colon = strrchr(listen, ':');
        if (colon == NULL || (size_t)(colon - listen) >= sizeof(host)) {
            cmn_err_set(err, "bad listen address '%s' (want host:port)",
                        listen);
            goto out;
        }
        memcpy(host, listen, (size_t)(colon - listen));
        port = colon + 1;
    }
    if (port[0] == '\0' || strspn(port, "0123456789") != strlen(port) ||
        strtoul(port, NULL, 10) > 65535) {
        cmn_err_set(err, "bad port in listen address '%s'", listen);
        goto out;
    }
    if (host[0] == '\0') {
        snprintf(host, sizeof(host), "::");
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0 || res == NULL) {
        cmn_err_set(err, "cannot resolve listen address '%s': %s", listen,
                    gai_strerror(gai));
        goto out;
    }
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *v6 = res->ai_family == AF_INET6;
    rc = CMN_OK;
out:
    if (res != NULL) {
        freeaddrinfo(res);
    }
    return rc;
}

static char *
copy_pem(const struct cmn_secret *s)
{
    char *p = malloc(s->len + 1);

    if (p != NULL) {
        memcpy(p, s->data, s->len);
        p[s->len] = '\0';
    }
    return p;
}

static void
free_pem(char *p)
{
    if (p != NULL) {
        explicit_bzero(p, strlen(p));
        free(p);
    }
}

static void
httpd_free(struct cmn_httpd *d)
{
    if (d == NULL) {
        return;
    }
    for (size_t i = 0; i < d->nroutes; i++) {
        free((char *)(uintptr_t)d->routes[i].method);
        free((char *)(uintptr_t)d->routes[i].path);
    }
    free(d->routes);
    free(d->metrics_prefix);
    free_pem(d->tls_cert);
    free_pem(d->tls_key);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

struct cmn_httpd *
cmn_httpd_start(const struct cmn_httpd_opts *opts,
                const struct cmn_http_route *routes, size_t nroutes, void *app,
                struct cmn_err *err)
{
    struct cmn_httpd *d = NULL;
    struct sockaddr_storage ss;
    bool v6 = false;
    bool tls;
    unsigned int flags;
    const union MHD_DaemonInfo *info;
    size_t max_header;
    unsigned conn_limit;
    unsigned timeout_s;
    char gauge[256];
    /* Only in pool mode: MHD warns about a pool size of 0. */
    struct MHD_OptionItem pool_opts[] = {
        {MHD_OPTION_THREAD_POOL_SIZE, 0, NULL},
        {MHD_OPTION_END, 0, NULL},
    };

    pthread_once(&sigpipe_once, ignore_sigpipe);
    if (opts == NULL || (nroutes > 0 && routes == NULL)) {
        cmn_err_set(err, "httpd: missing options or routes");
        goto out;
    }
    if (parse_listen(opts->listen, &ss, &v6, err) != CMN_OK) {
        goto out;
    }
    d = calloc(1, sizeof(*d));
    if (d == NULL) {
        cmn_err_set(err, "httpd: out of memory");
        goto out;
    }
    pthread_mutex_init(&d->lock, NULL);
    atomic_init(&d->inflight, 0);
    d->app = app;
    d->max_body = opts->max_body != 0 ? opts->max_body : DEFAULT_MAX_BODY;
    d->stream_max = opts->stream_max_buffer != 0 ? opts->stream_max_buffer
                                                 : DEFAULT_STREAM_MAX;
    d->pool = opts->threads > 0;
    d->routes = calloc(nroutes + 1, sizeof(*d->routes));
    if (d->routes == NULL) {
        cmn_err_set(err, "httpd: out of memory");
        goto out;
    }
    for (size_t i = 0; i < nroutes; i++) {
        if (routes[i].method == NULL || routes[i].path == NULL ||
            routes[i].handler == NULL) {
            cmn_err_set(err, "httpd: route %zu is incomplete", i);
            goto out;
        }
        d->routes[i].method = dup_str(routes[i].method);
        d->routes[i].path = dup_str(routes[i].path);
        d->routes[i].handler = routes[i].handler;
        d->nroutes = i + 1;
        if (d->routes[i].method == NULL || d->routes[i].path == NULL) {
            cmn_err_set(err, "httpd: out of memory");
            goto out;
        }
    }
    if (opts->metrics_prefix != NULL) {
        d->metrics_prefix = dup_str(opts->metrics_prefix);
        if (d->metrics_prefix == NULL) {
            cmn_err_set(err, "httpd: out of memory");
            goto out;
        }
        snprintf(gauge, sizeof(gauge), "%s_http_streams_open",
                 d->metrics_prefix);
        d->m_streams =
            cmn_metric_gauge(gauge, "HTTP streams (SSE) currently open.");
    }
    tls = opts->tls_cert_pem != NULL && opts->tls_key_pem != NULL;
    if (tls) {
        d->tls_cert = copy_pem(opts->tls_cert_pem);
        d->tls_key = copy_pem(opts->tls_key_pem);
        if (d->tls_cert == NULL || d->tls_key == NULL) {
            cmn_err_set(err, "httpd: out of memory");
            goto out;
        }
    }

    /* ITC is what lets MHD_quiesce_daemon wake the listening thread. The
     * pool uses epoll: the select modes refuse descriptors >= 1024, and
     * only the internal-thread modes can have a pool. */
    if (d->pool) {
        flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                MHD_USE_ERROR_LOG | MHD_USE_ITC;
    } else {
        flags = MHD_USE_THREAD_PER_CONNECTION |
                MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                MHD_USE_ERROR_LOG | MHD_USE_ITC;
    }
    if (v6) {
        flags |= MHD_USE_DUAL_STACK;
    }
    if (tls) {
        flags |= MHD_USE_TLS;
    }
    if (d->pool) {
        pool_opts[0].value = (intptr_t)opts->threads;
    } else {
        pool_opts[0].option = MHD_OPTION_END;
    }
    max_header = opts->max_header != 0 ? opts->max_header : DEFAULT_MAX_HEADER;
    conn_limit = opts->connection_limit != 0 ? opts->connection_limit
                                             : DEFAULT_CONN_LIMIT;
    timeout_s = opts->connection_timeout_s != 0 ? opts->connection_timeout_s
                                                : DEFAULT_TIMEOUT_S;
    /* The logger goes first so that start-up errors reach our log. The
     * TLS options come last: MHD_OPTION_END ends the list early when TLS
     * is off. */
    /* clang-format off */
    d->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, d,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, conn_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, max_header,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, d,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, d,
        MHD_OPTION_ARRAY, pool_opts,
        tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, d->tls_key,
        MHD_OPTION_HTTPS_MEM_CERT, d->tls_cert,
        MHD_OPTION_END);
    /* clang-format on */
    if (d->mhd == NULL) {
        cmn_err_set(err,
                    "httpd: cannot listen on %s (address in use, bad "
                    "TLS material or no permission)",
                    opts->listen);
        goto out;
    }
    info = MHD_get_daemon_info(d->mhd, MHD_DAEMON_INFO_BIND_PORT);
    d->port = info != NULL ? info->port : 0;
    return d;
out:
    httpd_free(d);
    return NULL;
}

int
cmn_httpd_port(const struct cmn_httpd *d)
{
    return d != NULL ? d->port : 0;
}

unsigned
cmn_httpd_inflight(const struct cmn_httpd *d)
{
    return d != NULL ? atomic_load(&d->inflight) : 0;
}

static void streams_end_all(struct cmn_httpd *d);
static unsigned deferred_answer_all(struct cmn_httpd *d);

static void
wait_inflight(const struct cmn_httpd *d, long long deadline)
{
    while (atomic_load(&d->inflight) > 0 && cmn_now_ms() < deadline) {
        struct timespec ts = {0, 10 * 1000 * 1000};

        nanosleep(&ts, NULL);
    }
}

void
cmn_httpd_stop(struct cmn_httpd *d, int drain_ms)
{
    MHD_socket lsock;
    long long deadline;

    if (d == NULL) {
        return;
    }
    lsock = MHD_quiesce_daemon(d->mhd);
    /* Quiesced, the socket still listens: new clients would connect into
     * the backlog and hang for the whole drain. Shut it down so they are
     * refused at once (and go to the other instance); close() must still
     * wait until MHD has stopped. */
    if (lsock != MHD_INVALID_SOCKET) {
        shutdown(lsock, SHUT_RDWR);
    }
    /* Streams never finish by themselves: end them now so that they flush
     * and close during the drain (clients reconnect elsewhere). */
    streams_end_all(d);
    deadline = cmn_now_ms() + (drain_ms > 0 ? drain_ms : 0);
    wait_inflight(d, deadline);
    if (atomic_load(&d->inflight) > 0) {
        cmn_log_warn("event=http_drain_timeout inflight=%u",
                     atomic_load(&d->inflight));
    }
    /* Deferred requests still waiting get a 503 (and, in pool mode, their
     * connection resumed: MHD_stop_daemon must find none suspended). */
    if (deferred_answer_all(d) > 0) {
        wait_inflight(d, cmn_now_ms() + STOP_GRACE_MS);
    }
    MHD_stop_daemon(d->mhd);
    /* Quiesce hands the listening socket to us, to close after the stop. */
    if (lsock != MHD_INVALID_SOCKET) {
        close(lsock);
    }
    httpd_free(d);
}

/* --- request accessors --- */

const char *
cmn_http_req_method(const struct cmn_http_req *req)
{
    return req->method;
}

const char *
cmn_http_req_path(const struct cmn_http_req *req)
{
    return req->path;
}

const char *
cmn_http_req_path_rest(const struct cmn_http_req *req)
{
    return req->path_rest;
}

const char *
cmn_http_req_raw_query(const struct cmn_http_req *req)
{
    return req->raw_query;
}

const char *
cmn_http_req_id(const struct cmn_http_req *req)
{
    return req->id;
}

const char *
cmn_http_req_header(const struct cmn_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *
cmn_http_req_query(const struct cmn_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *
cmn_http_req_cookie(const struct cmn_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, name);
}

/* Never NULL: an empty body is "" so callers can treat it as a string. */
const char *
cmn_http_req_body(const struct cmn_http_req *req, size_t *len)
{
    if (len != NULL) {
        *len = req->body_len;
    }
    return req->body != NULL ? req->body : "";
}

json_t *
cmn_http_req_json(struct cmn_http_req *req)
{
    json_error_t jerr;
    json_t *j;
    char detail[128];

    if (req->body_len == 0) {
        cmn_http_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_json",
                             "empty body, expected a JSON object");
        return NULL;
    }
    j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        /* Position only: jerr.text quotes the input back. */
        snprintf(detail, sizeof(detail), "malformed JSON at line %d column %d",
                 jerr.line, jerr.column);
        cmn_http_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_json", detail);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        cmn_http_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_json",
                             "expected a JSON object");
        return NULL;
    }
    return j;
}

const char *
cmn_http_req_bearer(const struct cmn_http_req *req)
{
    const char *auth = cmn_http_req_header(req, "Authorization");

    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0) {
        return NULL;
    }
    auth += 7;
    while (*auth == ' ') {
        auth++;
    }
    return *auth != '\0' ? auth : NULL;
}

const char *
cmn_http_req_peer(const struct cmn_http_req *req)
{
    return req->peer;
}

struct header_join {
    const char *name;
    char *out; /* NULL: measuring */
    size_t len;
};

static enum MHD_Result
header_join_one(void *cls, enum MHD_ValueKind kind, const char *key,
                const char *value)
{
    struct header_join *j = cls;
    size_t n;

    (void)kind;
    if (key == NULL || value == NULL || strcasecmp(key, j->name) != 0) {
        return MHD_YES;
    }
    n = strlen(value);
    if (j->out != NULL) {
        if (j->len > 0) {
            j->out[j->len] = ',';
        }
        memcpy(j->out + j->len + (j->len > 0), value, n);
    }
    j->len += n + (j->len > 0);
    return MHD_YES;
}

char *
cmn_http_req_header_all(const struct cmn_http_req *req, const char *name)
{
    struct header_join j = {.name = name};

    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, header_join_one, &j);
    if (j.len == 0) {
        return NULL;
    }
    j.out = malloc(j.len + 1);
    if (j.out == NULL) {
        return NULL;
    }
    j.len = 0;
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, header_join_one, &j);
    j.out[j.len] = '\0';
    return j.out;
}

void
cmn_http_req_client(const struct cmn_http_req *req,
                    const struct cmn_netlist *trusted, char out[CMN_ADDR_MAX])
{
    static atomic_bool warned;
    char *xff = NULL;

    if (trusted != NULL && trusted->n > 0 &&
        cmn_netlist_match(trusted, req->peer)) {
        xff = cmn_http_req_header_all(req, "X-Forwarded-For");
    } else if (cmn_http_req_header(req, "X-Forwarded-For") != NULL &&
               !atomic_exchange(&warned, true)) {
        /* most likely a proxy nobody listed: every client behind it then
         * shares its address (limits, lockouts); once per process */
        cmn_log_warn("event=forwarded_for_ignored peer=%s detail=\"requests "
                     "carry X-Forwarded-For from an address not in [server] "
                     "trusted_proxies: the peer is taken as the client\"",
                     req->peer);
    }
    cmn_net_client(trusted, req->peer, xff, out);
    free(xff);
}

static bool
header_text_ok(const char *s)
{
    return s != NULL && strpbrk(s, "\r\n") == NULL;
}

/* CR/LF are refused so that a value taken from input cannot split the
 * response into extra headers. */
int
cmn_http_add_header(struct cmn_http_req *req, const char *name,
                    const char *value)
{
    struct extra_header *grown;
    char *n = NULL;
    char *v = NULL;

    if (!header_text_ok(name) || name[0] == '\0' || strchr(name, ':') ||
        !header_text_ok(value)) {
        return CMN_INVALID;
    }
    n = strdup(name);
    v = strdup(value);
    grown = realloc(req->extra, (req->nextra + 1) * sizeof(*grown));
    if (n == NULL || v == NULL || grown == NULL) {
        if (grown != NULL) {
            req->extra = grown;
        }
        free(n);
        free(v);
        return CMN_NOMEM;
    }
    req->extra = grown;
    req->extra[req->nextra].name = n;
    req->extra[req->nextra].value = v;
    req->nextra++;
    return CMN_OK;
}

/* --- replies --- */

int
cmn_http_reply_json(struct cmn_http_req *req, unsigned status, json_t *body)
{
    char *text;
    int rc;

    if (body == NULL) {
        return reply_error_json(req, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                "internal_error", "no reply body", false);
    }
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL) {
        return reply_error_json(req, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                "internal_error", "reply not serialisable",
                                false);
    }
    rc =
        queue_reply(req, status, "application/json", text, strlen(text), false);
    free(text);
    return rc;
}

int
cmn_http_reply_error(struct cmn_http_req *req, unsigned status,
                     const char *error, const char *detail)
{
    return reply_error_json(req, status, error, detail, false);
}

int
cmn_http_reply_text(struct cmn_http_req *req, unsigned status,
                    const char *content_type, const char *body, size_t len)
{
    return queue_reply(req, status,
                       content_type != NULL ? content_type
                                            : "text/plain; charset=utf-8",
                       body != NULL ? body : "", body != NULL ? len : 0, false);
}

int
cmn_http_reply_redirect(struct cmn_http_req *req, const char *url)
{
    int rc = cmn_http_add_header(req, MHD_HTTP_HEADER_LOCATION, url);

    if (rc != CMN_OK) {
        return rc;
    }
    return queue_reply(req, MHD_HTTP_FOUND, NULL, "", 0, false);
}

/* --- deferred replies --- */

static void
deferred_unref(struct cmn_http_deferred *df)
{
    bool last;

    pthread_mutex_lock(&df->lock);
    last = --df->refs == 0;
    pthread_mutex_unlock(&df->lock);
    if (last) {
        free(df->body);
        for (unsigned i = 0; i < df->nhdr; i++) {
            free(df->hdr_name[i]);
            free(df->hdr_value[i]);
        }
        pthread_cond_destroy(&df->cond);
        pthread_mutex_destroy(&df->lock);
        free(df);
    }
}

struct cmn_http_deferred *
cmn_http_defer(struct cmn_http_req *req)
{
    struct cmn_httpd *d = req->d;
    struct cmn_http_deferred *df;

    if (req->replied || req->deferred != NULL) {
        cmn_log_warn("event=http_double_reply what=defer");
        return NULL;
    }
    df = calloc(1, sizeof(*df));
    if (df == NULL) {
        return NULL;
    }
    pthread_mutex_init(&df->lock, NULL);
    pthread_cond_init(&df->cond, NULL);
    df->conn = req->conn;
    df->pool = d->pool;
    df->refs = 2;
    snprintf(df->id, sizeof(df->id), "%s", req->id);
    pthread_mutex_lock(&d->lock);
    if (d->stopping) {
        pthread_mutex_unlock(&d->lock);
        df->refs = 1;
        deferred_unref(df);
        return NULL;
    }
    df->next = d->deferred;
    if (d->deferred != NULL) {
        d->deferred->prev = df;
    }
    d->deferred = df;
    req->deferred = df;
    if (df->pool) {
        /* Legal here (the access handler is running), and the only way to
         * leave the request unanswered without MHD calling us in a loop.
         * A reply that arrives before the handler returns is safe: MHD
         * acts on the resume once the handler is back. */
        df->suspended = true;
        MHD_suspend_connection(req->conn);
    }
    pthread_mutex_unlock(&d->lock);
    return df;
}

const char *
cmn_http_deferred_id(const struct cmn_http_deferred *df)
{
    return df->id;
}

/* Stores the reply (body is taken, NULL if it could not be built) unless
 * one is already there, and wakes the connection. Caller holds df->lock. */
static bool
deferred_store_locked(struct cmn_http_deferred *df, unsigned status, char *body,
                      size_t len, const char *ctype)
{
    if (df->answered || df->conn_gone) {
        free(body);
        return false;
    }
    df->answered = true;
    df->status = status;
    df->body = body;
    df->body_len = len;
    snprintf(df->ctype, sizeof(df->ctype), "%s", ctype);
    if (df->pool) {
        if (df->suspended) {
            df->suspended = false;
            MHD_resume_connection(df->conn);
        }
    } else {
        pthread_cond_signal(&df->cond);
    }
    return true;
}

static char *
error_json_text(const char *error, const char *detail, const char *id)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "error", error, "detail",
                          detail != NULL ? detail : "", "request_id", id);
    char *text = NULL;

    if (o != NULL) {
        text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
    }
    return text;
}

/* Owner side: store, then drop the owner's reference. A NULL text still
 * answers the request (the connection is closed instead of replied to). */
static int
deferred_reply_as(struct cmn_http_deferred *df, unsigned status, char *text,
                  size_t len, const char *ctype)
{
    bool stored;

    pthread_mutex_lock(&df->lock);
    stored = deferred_store_locked(df, status, text, len, ctype);
    pthread_mutex_unlock(&df->lock);
    deferred_unref(df);
    if (!stored) {
        return CMN_IO;
    }
    return text != NULL ? CMN_OK : CMN_NOMEM;
}

static int
deferred_reply(struct cmn_http_deferred *df, unsigned status, char *text)
{
    return deferred_reply_as(df, status, text, text != NULL ? strlen(text) : 0,
                             "application/json");
}

int
cmn_http_deferred_add_header(struct cmn_http_deferred *df, const char *name,
                             const char *value)
{
    int rc = CMN_OK;

    pthread_mutex_lock(&df->lock);
    if (df->answered || df->nhdr >= CMN_HTTP_DEFERRED_HEADERS) {
        rc = CMN_INVALID;
    } else if ((df->hdr_name[df->nhdr] = strdup(name)) == NULL ||
               (df->hdr_value[df->nhdr] = strdup(value)) == NULL) {
        free(df->hdr_name[df->nhdr]);
        df->hdr_name[df->nhdr] = NULL;
        rc = CMN_NOMEM;
    } else {
        df->nhdr++;
    }
    pthread_mutex_unlock(&df->lock);
    return rc;
}

int
cmn_http_deferred_reply_text(struct cmn_http_deferred *df, unsigned status,
                             const char *content_type, const char *body,
                             size_t len)
{
    char *copy = malloc(len + 1);

    if (copy != NULL) {
        memcpy(copy, body, len);
        copy[len] = '\0';
    }
    return deferred_reply_as(df, status, copy, len, content_type);
}

int
cmn_http_deferred_reply_redirect(struct cmn_http_deferred *df, const char *url)
{
    int rc = cmn_http_deferred_add_header(df, MHD_HTTP_HEADER_LOCATION, url);

    if (rc != CMN_OK) {
        return cmn_http_deferred_reply_error(df, 500, "internal_error",
                                             "cannot redirect");
    }
    return cmn_http_deferred_reply_text(df, MHD_HTTP_FOUND, "text/plain", "",
                                        0);
}

int
cmn_http_deferred_reply_json(struct cmn_http_deferred *df, unsigned status,
                             json_t *body)
{
    char *text;

    if (body == NULL) {
        return deferred_reply(
            df, MHD_HTTP_INTERNAL_SERVER_ERROR,
            error_json_text("internal_error", "no reply body", df->id));
    }
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL) {
        return deferred_reply(df, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              error_json_text("internal_error",
                                              "reply not serialisable",
                                              df->id));
    }
    return deferred_reply(df, status, text);
}

int
cmn_http_deferred_reply_error(struct cmn_http_deferred *df, unsigned status,
                              const char *error, const char *detail)
{
    return deferred_reply(df, status, error_json_text(error, detail, df->id));
}

/* Thread-per-connection mode, on the connection's thread after the
 * handler returned. */
static void
deferred_wait(struct cmn_http_req *req)
{
    struct cmn_http_deferred *df = req->deferred;

    pthread_mutex_lock(&df->lock);
    while (!df->answered) {
        pthread_cond_wait(&df->cond, &df->lock);
    }
    pthread_mutex_unlock(&df->lock);
}

/* Queues the stored reply. MHD_NO closes the connection when there is
 * nothing to send (no memory for the reply text). */
static enum MHD_Result
deferred_finish(struct cmn_http_req *req)
{
    struct cmn_http_deferred *df = req->deferred;
    unsigned status;
    char *body;
    size_t len;
    char ctype[sizeof(df->ctype)];
    int rc;

    pthread_mutex_lock(&df->lock);
    if (!df->answered) {
        /* Only a stored reply resumes; should MHD call anyway, park the
         * connection again rather than let it poll us. */
        if (df->pool && !df->suspended) {
            df->suspended = true;
            MHD_suspend_connection(req->conn);
        }
        pthread_mutex_unlock(&df->lock);
        return MHD_YES;
    }
    status = df->status;
    body = df->body;
    len = df->body_len;
    memcpy(ctype, df->ctype, sizeof(ctype));
    df->body = NULL;
    for (unsigned i = 0; i < df->nhdr; i++) {
        (void)cmn_http_add_header(req, df->hdr_name[i], df->hdr_value[i]);
    }
    pthread_mutex_unlock(&df->lock);
    if (body == NULL) {
        return MHD_NO;
    }
    req->deferred_queueing = true;
    rc = queue_reply(req, status, ctype, body, len, false);
    req->deferred_queueing = false;
    free(body);
    return rc == CMN_OK ? MHD_YES : MHD_NO;
}

/* The request is being freed: the connection must not be touched again. */
static void
deferred_detach(struct cmn_http_req *req)
{
    struct cmn_http_deferred *df = req->deferred;
    struct cmn_httpd *d = req->d;

    pthread_mutex_lock(&df->lock);
    df->conn_gone = true;
    df->conn = NULL;
    pthread_mutex_unlock(&df->lock);
    pthread_mutex_lock(&d->lock);
    if (df->prev != NULL) {
        df->prev->next = df->next;
    } else {
        d->deferred = df->next;
    }
    if (df->next != NULL) {
        df->next->prev = df->prev;
    }
    pthread_mutex_unlock(&d->lock);
    req->deferred = NULL;
    deferred_unref(df);
}

/* cmn_httpd_stop: 503 for every deferred request still unanswered. */
static unsigned
deferred_answer_all(struct cmn_httpd *d)
{
    unsigned n = 0;

    pthread_mutex_lock(&d->lock);
    d->stopping = true;
    for (struct cmn_http_deferred *df = d->deferred; df != NULL;
         df = df->next) {
        pthread_mutex_lock(&df->lock);
        if (!df->answered && !df->conn_gone) {
            char *t = error_json_text("shutting_down", "the server is stopping",
                                      df->id);
            deferred_store_locked(df, MHD_HTTP_SERVICE_UNAVAILABLE, t,
                                  t != NULL ? strlen(t) : 0,
                                  "application/json");
            n++;
        }
        pthread_mutex_unlock(&df->lock);
    }
    pthread_mutex_unlock(&d->lock);
    if (n > 0) {
        cmn_log_warn("event=http_deferred_unanswered count=%u", n);
    }
    return n;
}

/* --- streams --- */

static void
stream_unref(struct cmn_http_stream *s)
{
    bool last;

    pthread_mutex_lock(&s->lock);
    last = --s->refs == 0;
    pthread_mutex_unlock(&s->lock);
    if (last) {
        free(s->buf);
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        free(s);
    }
}

/* Gets the connection going again after new data or the end. Caller holds
 * s->lock; the connection is alive (!closed). */
static void
stream_wake_locked(struct cmn_http_stream *s)
{
    if (!s->pool) {
        pthread_cond_signal(&s->cond);
    } else if (s->suspended) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
    }
}

/* MHD's content reader: hand out what is buffered; with nothing buffered,
 * suspend (pool) or wait a while (per-connection thread). Returning 0 is
 * only safe right after suspending: otherwise MHD calls again at once. */
static ssize_t
stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    struct cmn_http_stream *s = cls;
    ssize_t n = 0;

    (void)pos;
    pthread_mutex_lock(&s->lock);
    if (!s->pool && s->len == s->off && !s->ended) {
        struct timespec until;

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += STREAM_TPC_WAIT_MS / 1000;
        until.tv_nsec += (long)(STREAM_TPC_WAIT_MS % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (s->len == s->off && !s->ended) {
            if (pthread_cond_timedwait(&s->cond, &s->lock, &until) != 0) {
                break;
            }
        }
    }
    if (s->len > s->off) {
        size_t take = s->len - s->off;

        if (take > max) {
            take = max;
        }
        memcpy(out, s->buf + s->off, take);
        s->off += take;
        if (s->off == s->len) {
            s->off = 0;
            s->len = 0;
            if (s->cap > STREAM_KEEP_BUF) {
                free(s->buf);
                s->buf = NULL;
                s->cap = 0;
            }
        }
        n = (ssize_t)take;
    } else if (s->ended) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else if (s->pool) {
        s->suspended = true;
        MHD_suspend_connection(s->conn);
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* The response is gone (client left, stream ended, or server stopped). */
static void
stream_freed(void *cls)
{
    struct cmn_http_stream *s = cls;
    struct cmn_httpd *d = s->d;
    void (*on_close)(void *) = NULL;
    void *close_cls = NULL;

    pthread_mutex_lock(&s->lock);
    s->closed = true;
    s->ended = true;
    s->suspended = false;
    s->conn = NULL;
    s->d = NULL;
    free(s->buf);
    s->buf = NULL;
    s->off = s->len = s->cap = 0;
    on_close = s->on_close;
    close_cls = s->cls;
    s->on_close = NULL;
    pthread_mutex_unlock(&s->lock);

    pthread_mutex_lock(&d->lock);
    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else {
        d->streams = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    }
    cmn_metric_add(d->m_streams, -1.0);
    pthread_mutex_unlock(&d->lock);
    if (on_close != NULL) {
        on_close(close_cls);
    }
    stream_unref(s);
}

struct cmn_http_stream *
cmn_http_reply_stream(struct cmn_http_req *req, unsigned status,
                      const char *content_type, void (*on_close)(void *cls),
                      void *cls)
{
    struct cmn_httpd *d = req->d;
    struct cmn_http_stream *s;
    struct MHD_Response *resp;

    if (req->replied || req->deferred != NULL) {
        cmn_log_warn("event=http_double_reply what=stream");
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->d = d;
    s->conn = req->conn;
    s->pool = d->pool;
    s->refs = 2;
    s->on_close = on_close;
    s->cls = cls;
    pthread_mutex_lock(&d->lock);
    if (d->stopping) {
        pthread_mutex_unlock(&d->lock);
        s->refs = 1;
        stream_unref(s);
        return NULL;
    }
    s->next = d->streams;
    if (d->streams != NULL) {
        d->streams->prev = s;
    }
    d->streams = s;
    cmn_metric_add(d->m_streams, 1.0);
    pthread_mutex_unlock(&d->lock);

    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK,
                                             stream_read, s, stream_freed);
    if (resp == NULL) {
        /* stream_freed unlinks and drops MHD's reference. */
        s->on_close = NULL;
        stream_freed(s);
        stream_unref(s);
        return NULL;
    }
    add_reply_headers(req, resp,
                      content_type != NULL ? content_type : "text/event-stream",
                      true);
    if (MHD_queue_response(req->conn, status, resp) != MHD_YES) {
        cmn_log_warn("event=http_queue_failed status=%u what=stream", status);
        pthread_mutex_lock(&s->lock);
        s->on_close = NULL;
        pthread_mutex_unlock(&s->lock);
        MHD_destroy_response(resp); /* runs stream_freed */
        stream_unref(s);
        return NULL;
    }
    MHD_destroy_response(resp); /* MHD keeps its own reference */
    req->replied = true;
    req->stream_status = status;
    return s;
}

int
cmn_http_stream_write(struct cmn_http_stream *s, const char *data, size_t len)
{
    int rc = CMN_OK;

    pthread_mutex_lock(&s->lock);
    if (s->ended || s->closed) {
        rc = CMN_IO;
        goto out;
    }
    if (len == 0) {
        goto out;
    }
    /* s->d is valid while the stream is open (the free callback clears it
     * under this lock, before the server can go away). */
    if (s->len - s->off + len > s->d->stream_max) {
        rc = CMN_AGAIN;
        goto out;
    }
    if (s->off > 0) {
        memmove(s->buf, s->buf + s->off, s->len - s->off);
        s->len -= s->off;
        s->off = 0;
    }
    if (s->len + len > s->cap) {
        size_t cap = s->cap == 0 ? 1024 : s->cap;
        char *grown;

        while (cap < s->len + len) {
            cap *= 2;
        }
        grown = realloc(s->buf, cap);
        if (grown == NULL) {
            rc = CMN_NOMEM;
            goto out;
        }
        s->buf = grown;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    stream_wake_locked(s);
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void
cmn_http_stream_end(struct cmn_http_stream *s)
{
    if (s == NULL) {
        return;
    }
    pthread_mutex_lock(&s->lock);
    if (!s->ended && !s->closed) {
        s->ended = true;
        stream_wake_locked(s);
    }
    pthread_mutex_unlock(&s->lock);
}

void
cmn_http_stream_release(struct cmn_http_stream *s)
{
    if (s != NULL) {
        stream_unref(s);
    }
}

/* cmn_httpd_stop: no new deferral or stream from now on, and every open
 * stream flushes and ends. */
static void
streams_end_all(struct cmn_httpd *d)
{
    pthread_mutex_lock(&d->lock);
    d->stopping = true;
    for (struct cmn_http_stream *s = d->streams; s != NULL; s = s->next) {
        cmn_http_stream_end(s);
    }
    pthread_mutex_unlock(&d->lock);
}
