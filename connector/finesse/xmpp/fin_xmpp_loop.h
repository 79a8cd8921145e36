/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fin_xmpp_loop.h - the event loop every XMPP transport runs on: one
 * libwebsockets context, one thread. WebSocket connections are lws's own;
 * other descriptors (the worker's control socket, the TCP transport's
 * sockets) are adopted into the same loop as raw descriptors, so one
 * poll() serves everything and no descriptor number is limited (the old
 * libstrophe select() loop could not see an fd >= 1024).
 *
 * TLS trust is decided here, once per CA file: an OpenSSL client context
 * that verifies the peer against the system's roots plus the configured
 * ca_file ("adds a trust anchor", DESIGN §4), shared by the TCP transport
 * and, as lws's provided client context, by the WebSocket one. One
 * context per worker instead of one per connection (libstrophe's) also
 * saves ~0.9 MB per TLS connection (reference/runtime.md §1.1).
 *
 * Not thread-safe: everything happens on the thread that runs the loop. */
#ifndef FIN_XMPP_LOOP_H
#define FIN_XMPP_LOOP_H

#include <stdbool.h>

#include <libwebsockets.h>
#include <openssl/ssl.h>

#include "cmn.h"

struct fin_xmpp_loop;

/* max_fds: the most descriptors the loop will hold (lws sizes its tables
 * by it). NULL with err on failure. */
struct fin_xmpp_loop *fin_xmpp_loop_new(int max_fds, struct cmn_err *err);
/* Closes every connection (their close callbacks run) and frees. */
void fin_xmpp_loop_free(struct fin_xmpp_loop *l);
/* Waits for I/O or the next timer, at most until the next periodic tick,
 * and runs what is due. */
void fin_xmpp_loop_run_once(struct fin_xmpp_loop *l);
/* cb(cls) every interval_ms, from the loop (one periodic callback). */
void fin_xmpp_loop_every(struct fin_xmpp_loop *l, int interval_ms,
                         void (*cb)(void *cls), void *cls);
struct lws_context *fin_xmpp_loop_lws(struct fin_xmpp_loop *l);

/* The client TLS context for a CA file (NULL: the system's roots only),
 * created on first use, owned by the loop. NULL with err when the file
 * cannot be loaded. */
SSL_CTX *fin_xmpp_loop_tls(struct fin_xmpp_loop *l, const char *ca_file,
                           struct cmn_err *err);
/* The lws vhost whose client connections use that TLS context. */
struct lws_vhost *fin_xmpp_loop_vhost(struct fin_xmpp_loop *l,
                                      const char *ca_file,
                                      struct cmn_err *err);

/* -- watched descriptors ------------------------------------------------ */
struct fin_xmpp_watch;

struct fin_xmpp_watch_ops {
    void (*readable)(void *cls);
    void (*writable)(void *cls); /* once per fin_xmpp_watch_want_write */
    void (*closed)(void *cls);   /* final: the descriptor is closed */
};

/* Adopts fd into the loop (the loop closes it from now on, also when this
 * fails). NULL with err on failure. */
struct fin_xmpp_watch *fin_xmpp_loop_watch(struct fin_xmpp_loop *l, int fd,
                                           const struct fin_xmpp_watch_ops *ops,
                                           void *cls, struct cmn_err *err);
void fin_xmpp_watch_want_write(struct fin_xmpp_watch *w);
/* Closes the descriptor soon; ops->closed runs from the loop, never from
 * inside this call. */
void fin_xmpp_watch_close(struct fin_xmpp_watch *w);

/* -- deferred calls ------------------------------------------------------- */
/* A one-shot callback on the next loop round; embed it (zeroed) in the
 * object it belongs to and cancel it before freeing that object. While
 * the loop is being freed, a deferred call runs at once instead. */
struct fin_xmpp_defer {
    lws_sorted_usec_list_t sul;
    void (*cb)(void *cls);
    void *cls;
    struct fin_xmpp_loop *loop; /* set while scheduled */
    struct fin_xmpp_defer *prev;
    struct fin_xmpp_defer *next;
};

void fin_xmpp_loop_defer(struct fin_xmpp_loop *l, struct fin_xmpp_defer *d,
                         void (*cb)(void *cls), void *cls);
void fin_xmpp_defer_cancel(struct fin_xmpp_defer *d);

/* The callback of the lws protocol WebSocket transports bind to
 * (fin_xmpp_ws.c), and the certificate verdict hook lws sends to the
 * first protocol. */
int fin_xmpp_ws_lws_callback(struct lws *wsi, enum lws_callback_reasons reason,
                             void *user, void *in, size_t len);
void fin_xmpp_ws_on_cert_verify(struct lws *wsi, X509_STORE_CTX *x509,
                                int preverify_ok);
#define FIN_XMPP_WS_PROTOCOL "fsc-xmpp-ws"

#endif
