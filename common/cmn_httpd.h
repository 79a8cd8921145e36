/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_httpd.h - the HTTP server both daemons use (libmicrohttpd).
 *
 * Routes are matched on method and path; the body is collected up to a cap
 * (413 beyond it, 431 for oversized headers via the connection memory
 * limit) before the handler runs once with the whole request. Each request
 * gets an id (X-Request-Id, also put on every log line written while the
 * handler runs). Every reply carries security headers (nosniff, no-store,
 * no referrer, frame-ancestors 'none' unless the handler sets its own CSP).
 *
 * Two threading modes (cmn_httpd_opts.threads):
 * - 0, the default: one thread per connection, polled with poll() so
 *   descriptors over 1024 are fine. Handlers may block (Redis, outbound
 *   HTTP).
 * - N > 0: epoll with a pool of N threads and suspend/resume, for many
 *   long-lived streams plus short calls. Handlers must not block: they
 *   reply at once, defer the reply to another thread (cmn_http_defer) or
 *   open a stream (cmn_http_reply_stream). A blocking handler stalls every
 *   connection of its pool thread.
 * Deferred replies and streams work in both modes; the per-connection mode
 * parks the connection's own thread on a condition variable instead of
 * suspending the connection. */
#ifndef CMN_HTTPD_H
#define CMN_HTTPD_H

#include <jansson.h>

#include "cmn.h"
#include "cmn_net.h"
#include "cmn_secret.h"

struct cmn_httpd;
struct cmn_http_req;
struct cmn_http_deferred;
struct cmn_http_stream;

/* A handler must queue exactly one reply (cmn_http_reply_*), defer it
 * (cmn_http_defer) or open a stream (cmn_http_reply_stream), and return
 * CMN_OK; returning without any of these sends 500. */
typedef int (*cmn_http_handler)(struct cmn_http_req *req, void *app);

struct cmn_http_route {
    const char *method; /* "GET", "POST", "DELETE", ... */
    const char *path;   /* exact, or ending in "*" for a prefix match */
    cmn_http_handler handler;
};

struct cmn_httpd_opts {
    const char *listen;            /* "127.0.0.1:8443", "[::1]:8443", ":8443" */
    size_t max_body;               /* default 64 KiB */
    size_t max_header;             /* connection memory limit, default 16 KiB */
    unsigned connection_limit;     /* default 1024 */
    unsigned connection_timeout_s; /* idle, default 30 */
    const struct cmn_secret *tls_cert_pem; /* both set: serve HTTPS */
    const struct cmn_secret *tls_key_pem;
    const char *metrics_prefix; /* e.g. "fsc_sso": request counters and a
                                   latency histogram per route, and the
                                   gauge <prefix>_http_streams_open */
    unsigned threads;           /* 0: thread per connection (default);
                                   N: epoll + pool of N threads */
    size_t stream_max_buffer;   /* bytes a stream may hold unsent before
                                   writes get CMN_AGAIN, default 256 KiB */
};

/* Binds and starts serving; routes (copied) are tried in order. app is
 * passed to every handler. NULL with err on failure (port in use...). */
struct cmn_httpd *cmn_httpd_start(const struct cmn_httpd_opts *opts,
                                  const struct cmn_http_route *routes,
                                  size_t nroutes, void *app,
                                  struct cmn_err *err);
/* Port actually bound (useful with port 0). */
int cmn_httpd_port(const struct cmn_httpd *d);
/* Stop accepting, end every open stream (each flushes what it holds and
 * closes), wait up to drain_ms for in-flight requests (deferred ones
 * included) to finish, answer the deferred requests still pending with
 * 503 {"error":"shutting_down"}, then stop and free. Suspended connections
 * are all resumed before libmicrohttpd is stopped. From here on
 * cmn_http_defer and cmn_http_reply_stream return NULL. Handles the
 * application still holds stay valid: replies and writes return CMN_IO,
 * and they must still be answered or released. NULL is fine. */
void cmn_httpd_stop(struct cmn_httpd *d, int drain_ms);
/* Requests currently being handled, deferred ones and open streams
 * included. */
unsigned cmn_httpd_inflight(const struct cmn_httpd *d);

/* --- request accessors ---
 * Valid only in the handler's thread and until the handler returns, also
 * when the reply is deferred or streamed: copy (strdup) whatever a worker
 * thread needs before handing the work over. Returned strings belong to
 * the request. */
const char *cmn_http_req_method(const struct cmn_http_req *req);
const char *cmn_http_req_path(const struct cmn_http_req *req);
/* The part of the path matched by a prefix route's "*" ("" if none). */
const char *cmn_http_req_path_rest(const struct cmn_http_req *req);
const char *cmn_http_req_id(const struct cmn_http_req *req);
const char *cmn_http_req_header(const struct cmn_http_req *req,
                                const char *name);
/* The query string as received (after '?', still percent-encoded), NULL
 * when there is none: for signatures over the encoded form (SAML
 * HTTP-Redirect). Decoded arguments: cmn_http_req_query. */
const char *cmn_http_req_raw_query(const struct cmn_http_req *req);
/* Decoded query argument, NULL if absent. */
const char *cmn_http_req_query(const struct cmn_http_req *req,
                               const char *name);
const char *cmn_http_req_cookie(const struct cmn_http_req *req,
                                const char *name);
const char *cmn_http_req_body(const struct cmn_http_req *req, size_t *len);
/* Parse the body as a JSON object; on failure queues a 400
 * {"error":"invalid_json"} reply itself and returns NULL. Caller
 * json_decref()s. */
json_t *cmn_http_req_json(struct cmn_http_req *req);
/* Bearer token from Authorization, NULL if absent or not Bearer. */
const char *cmn_http_req_bearer(const struct cmn_http_req *req);
/* Address of the TCP peer as text (for logs): behind a reverse proxy,
 * the proxy's. */
const char *cmn_http_req_peer(const struct cmn_http_req *req);
/* Every value of header `name` (case-insensitive), in the order received,
 * joined with ","; malloc'd (free), NULL when absent. Several lines of one
 * header are all there (a proxy appends its own line after the client's). */
char *cmn_http_req_header_all(const struct cmn_http_req *req, const char *name);
/* The client's address (cmn_net_client): the peer, or when the peer is in
 * trusted (may be NULL: none) the client its X-Forwarded-For names. */
void cmn_http_req_client(const struct cmn_http_req *req,
                         const struct cmn_netlist *trusted,
                         char out[CMN_ADDR_MAX]);

/* Extra response header for the reply queued next (e.g. Set-Cookie,
 * Content-Security-Policy). Both strings are copied. */
int cmn_http_add_header(struct cmn_http_req *req, const char *name,
                        const char *value);

/* --- replies --- */
/* Steals body (json_decref after sending). */
int cmn_http_reply_json(struct cmn_http_req *req, unsigned status,
                        json_t *body);
/* {"error": error, "detail": detail, "request_id": id} */
int cmn_http_reply_error(struct cmn_http_req *req, unsigned status,
                         const char *error, const char *detail);
int cmn_http_reply_text(struct cmn_http_req *req, unsigned status,
                        const char *content_type, const char *body, size_t len);
/* 302 to url (the caller has validated it). */
int cmn_http_reply_redirect(struct cmn_http_req *req, const char *url);

/* --- deferred replies ---
 * For a handler that answers later from another thread (a blocking call
 * done by a worker). The handler calls cmn_http_defer, hands the handle
 * and copies of what it needs to the worker, and returns CMN_OK without a
 * reply. Headers added with cmn_http_add_header before the call go on the
 * deferred reply. In pool mode the connection is suspended until the
 * reply arrives; in thread-per-connection mode the connection's thread
 * waits for it after the handler returns. Either way the client sees no
 * timeout and a disconnect is only noticed when the reply is written. */

/* Returns the handle, owned by the caller until it is answered, or NULL
 * when the request already has a reply, deferral or stream, when the
 * server is stopping, or on allocation failure: the handler then replies
 * itself (503 while stopping). Handler thread only. */
struct cmn_http_deferred *cmn_http_defer(struct cmn_http_req *req);
/* The request id (X-Request-Id), for the worker's log lines; valid until
 * the reply call. */
const char *cmn_http_deferred_id(const struct cmn_http_deferred *d);
/* Answer a deferred request from any thread, exactly once per handle; the
 * handle is freed by the call whatever it returns. Same JSON shape, id and
 * security headers as cmn_http_reply_json / cmn_http_reply_error; the
 * _json variant steals body. CMN_OK when the reply was handed to the
 * connection, CMN_IO when the request is gone (the server stopped and
 * answered 503 itself), CMN_NOMEM. */
int cmn_http_deferred_reply_json(struct cmn_http_deferred *d, unsigned status,
                                 json_t *body);
int cmn_http_deferred_reply_error(struct cmn_http_deferred *d, unsigned status,
                                  const char *error, const char *detail);
/* Any content (an HTML page), copied; and a 302 to url. Headers for them
 * (Location is added by the redirect; Content-Security-Policy for a page)
 * go through cmn_http_deferred_add_header first, at most
 * CMN_HTTP_DEFERRED_HEADERS of them. */
#define CMN_HTTP_DEFERRED_HEADERS 4
int cmn_http_deferred_add_header(struct cmn_http_deferred *d, const char *name,
                                 const char *value);
int cmn_http_deferred_reply_text(struct cmn_http_deferred *d, unsigned status,
                                 const char *content_type, const char *body,
                                 size_t len);
int cmn_http_deferred_reply_redirect(struct cmn_http_deferred *d,
                                     const char *url);

/* --- streams (Server-Sent Events and other open-ended replies) ---
 * The reply has no length (chunked); the application writes to it from
 * any thread and the connection sends what is buffered. In pool mode an
 * idle stream is a suspended connection: no thread, no polling, about
 * 20 KB. Suspended connections do not notice a client that left, so the
 * owner writes a heartbeat (": ping\n\n" every 15 s, below
 * connection_timeout_s and any proxy timeout): the write after the client
 * left (sometimes the second one) fails and closes the stream. In pool
 * mode a suspended stream never times out. In thread-per-connection mode
 * the stream holds its connection's thread, which wakes at least once a
 * second, and a stream with nothing written for connection_timeout_s is
 * closed as idle (on_close runs). */

/* Queues status with Content-Type content_type (default
 * "text/event-stream"), X-Request-Id, the security headers with
 * Cache-Control "no-cache, no-store", X-Accel-Buffering: no, and any
 * header added with cmn_http_add_header. on_close(cls) runs exactly once
 * when the stream is over (client left, stream ended and flushed, or the
 * server stopped), on a server thread: it must not block, and may call
 * cmn_http_stream_* (writes then return CMN_IO). Returns a handle the
 * caller owns (cmn_http_stream_release), or NULL like cmn_http_defer (no
 * on_close call then). Handler thread only. */
struct cmn_http_stream *cmn_http_reply_stream(struct cmn_http_req *req,
                                              unsigned status,
                                              const char *content_type,
                                              void (*on_close)(void *cls),
                                              void *cls);
/* Appends len bytes (copied) to the stream, any thread; the bytes go out
 * in order, as one or more chunks. CMN_OK; CMN_AGAIN when the stream
 * would hold more than stream_max_buffer unsent bytes (nothing appended:
 * the client is too slow, drop it); CMN_IO once the stream is ended or
 * closed; CMN_NOMEM. */
int cmn_http_stream_write(struct cmn_http_stream *s, const char *data,
                          size_t len) CMN_NODISCARD;
/* No more writes: the connection sends what is buffered, ends the reply
 * and on_close runs. Idempotent, any thread. */
void cmn_http_stream_end(struct cmn_http_stream *s);
/* Drops the caller's reference; the stream goes on until it is ended or
 * the client leaves (end it first to stop it). NULL is fine. */
void cmn_http_stream_release(struct cmn_http_stream *s);

#endif
