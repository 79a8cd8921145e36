/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_httpd.h - the HTTP server both daemons use (libmicrohttpd).
 *
 * Routes are matched on method and path; the body is collected up to a cap
 * (413 beyond it, 431 for oversized headers via the connection memory
 * limit) before the handler runs once with the whole request. Each request
 * gets an id (X-Request-Id, also put on every log line written while the
 * handler runs). Every reply carries security headers (nosniff, no-store,
 * no referrer, frame-ancestors 'none' unless the handler sets its own CSP).
 * Handlers may block (Redis, outbound HTTP): the server runs one thread per
 * connection by default, polled with poll() so descriptors over 1024 are
 * fine. */
#ifndef CMN_HTTPD_H
#define CMN_HTTPD_H

#include <jansson.h>

#include "cmn.h"
#include "cmn_secret.h"

struct cmn_httpd;
struct cmn_http_req;

/* A handler must queue exactly one reply (cmn_http_reply_*) and return
 * CMN_OK; returning an error without a reply sends 500. */
typedef int (*cmn_http_handler)(struct cmn_http_req *req, void *app);

struct cmn_http_route {
    const char *method; /* "GET", "POST", "DELETE", ... */
    const char *path;   /* exact, or ending in "*" for a prefix match */
    cmn_http_handler handler;
};

struct cmn_httpd_opts {
    const char *listen;         /* "127.0.0.1:8443", "[::1]:8443", ":8443" */
    size_t max_body;            /* default 64 KiB */
    size_t max_header;          /* connection memory limit, default 16 KiB */
    unsigned connection_limit;  /* default 1024 */
    unsigned connection_timeout_s; /* idle, default 30 */
    const struct cmn_secret *tls_cert_pem; /* both set: serve HTTPS */
    const struct cmn_secret *tls_key_pem;
    const char *metrics_prefix; /* e.g. "fsc_sso": request counters and a
                                   latency histogram per route */
};

/* Binds and starts serving; routes (copied) are tried in order. app is
 * passed to every handler. NULL with err on failure (port in use...). */
struct cmn_httpd *cmn_httpd_start(const struct cmn_httpd_opts *opts,
                                  const struct cmn_http_route *routes,
                                  size_t nroutes, void *app,
                                  struct cmn_err *err);
/* Port actually bound (useful with port 0). */
int cmn_httpd_port(const struct cmn_httpd *d);
/* Stop accepting, wait up to drain_ms for in-flight requests to finish,
 * then stop and free. NULL is fine. */
void cmn_httpd_stop(struct cmn_httpd *d, int drain_ms);
/* Requests currently being handled. */
unsigned cmn_httpd_inflight(const struct cmn_httpd *d);

/* --- request accessors (valid during the handler) --- */
const char *cmn_http_req_method(const struct cmn_http_req *req);
const char *cmn_http_req_path(const struct cmn_http_req *req);
/* The part of the path matched by a prefix route's "*" ("" if none). */
const char *cmn_http_req_path_rest(const struct cmn_http_req *req);
const char *cmn_http_req_id(const struct cmn_http_req *req);
const char *cmn_http_req_header(const struct cmn_http_req *req,
                                const char *name);
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
/* Client address as text (for logs). */
const char *cmn_http_req_peer(const struct cmn_http_req *req);

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
                        const char *content_type, const char *body,
                        size_t len);
/* 302 to url (the caller has validated it). */
int cmn_http_reply_redirect(struct cmn_http_req *req, const char *url);

#endif
