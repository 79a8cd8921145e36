/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fin_xmpp_link.h - one XMPP connection: a session (fin_xmpp_session.h)
 * over one of the three transports, on a fin_xmpp_loop. The worker holds
 * one link per agent; fscctl finesse-check opens links to try each
 * transport.
 *
 * Transports, each in its own file, with one small interface
 * (struct fin_xmpp_carrier_ops below):
 *   fin_xmpp_tcp.c  TCP (non-blocking connect, OpenSSL on the socket):
 *                   direct TLS ("tls", 5223) or STARTTLS ("starttls",
 *                   5222), stream framing;
 *   fin_xmpp_ws.c   libwebsockets client: ws:// or wss://, subprotocol
 *                   "xmpp", one stanza per message (RFC 7395).
 * A transport reports what happened to its session (up, data or messages,
 * TLS done, down) and never synchronously from a call the session made:
 * reports of failures that happen inside such a call are deferred to the
 * next loop round. */
#ifndef FIN_XMPP_LINK_H
#define FIN_XMPP_LINK_H

#include <stdbool.h>

#include "cmn.h"
#include "fin_xmpp.h"
#include "fin_xmpp_loop.h"
#include "fin_xmpp_session.h"

/* Where to connect and whom to trust. */
struct fin_xmpp_target {
    enum fin_xmpp_transport transport;
    const char *host;    /* tls/starttls: IP or name (connect address) */
    int port;            /* tls/starttls */
    const char *url;     /* websocket: ws[s]://host[:port]/path */
    const char *domain;  /* XMPP domain: certificate name for tls/starttls
                            (the host, when a name, is accepted too) */
    const char *ca_file; /* adds a trust anchor; NULL: system roots */
    /* optional: what the transport saw, for people (fscctl) -
     * what: "tcp", "tls", "websocket" */
    void (*note)(void *cls, const char *what, const char *detail);
    void *note_cls;
};

/* -- the carrier: one transport connection ------------------------------ */
struct fin_xmpp_carrier;

struct fin_xmpp_carrier_ops {
    /* start connecting (reports come from the loop) */
    void (*start)(struct fin_xmpp_carrier *t);
    int (*send)(struct fin_xmpp_carrier *t, const char *data, size_t len);
    int (*start_tls)(struct fin_xmpp_carrier *t); /* NULL: unsupported */
    void (*close)(struct fin_xmpp_carrier *t);
    /* only once the session saw it down */
    void (*free)(struct fin_xmpp_carrier *t);
};

struct fin_xmpp_carrier {
    const struct fin_xmpp_carrier_ops *ops;
    struct fin_xmpp_session *session; /* reports go here */
    struct fin_xmpp_loop *loop;
    void (*note)(void *cls, const char *what, const char *detail);
    void *note_cls;
};

/* Constructors; NULL with err on a bad target or no memory. */
struct fin_xmpp_carrier *fin_xmpp_tcp_new(struct fin_xmpp_loop *l,
                                            const struct fin_xmpp_target *t,
                                            struct cmn_err *err);
struct fin_xmpp_carrier *fin_xmpp_ws_new(struct fin_xmpp_loop *l,
                                           const struct fin_xmpp_target *t,
                                           struct cmn_err *err);
/* For transports: report through target->note, if set (printf-style). */
void fin_xmpp_carrier_note(struct fin_xmpp_carrier *t, const char *what,
                             const char *fmt, ...) CMN_PRINTF(3, 4);

/* -- links -------------------------------------------------------------- */
struct fin_xmpp_link;

/* Creates the session and its transport and starts connecting. The
 * session's options come from so (framing and starttls are set from the
 * target's transport); its io event/progress callbacks from io (send,
 * start_tls and close are filled in here). NULL with err on failure
 * (nothing was started then). */
struct fin_xmpp_link *fin_xmpp_link_new(struct fin_xmpp_loop *l,
                                        const struct fin_xmpp_target *t,
                                        const struct fin_xmpp_session_opts *so,
                                        const struct fin_xmpp_session_io *io,
                                        long long now, struct cmn_err *err);
struct fin_xmpp_session *fin_xmpp_link_session(struct fin_xmpp_link *k);
/* Frees a link whose session is done (fin_xmpp_session_done). */
void fin_xmpp_link_free(struct fin_xmpp_link *k);

/* URL pieces for the WebSocket transport (and for checks). path gets at
 * least "/". CMN_INVALID for anything but ws:// or wss:// with a host. */
int fin_xmpp_parse_ws_url(const char *url, bool *tls, char *host,
                          size_t host_len, int *port, char *path,
                          size_t path_len) CMN_NODISCARD;

#endif
