/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fin_xmpp_session.h - one agent's XMPP client session with Finesse's
 * notification service, whatever carries it (TCP with STARTTLS, direct
 * TLS, or WebSocket): the one implementation of the session rules.
 *
 *   stream open -> [STARTTLS] -> SASL PLAIN (password or SSO token) ->
 *   stream restart -> bind (resource never "desktop") -> [session] ->
 *   presence priority 0 -> a ping whose answer proves the server has
 *   processed that presence -> ONLINE -> XEP-0199 ping every
 *   ping_interval_ms, OFFLINE "ping timeout" when the oldest unanswered
 *   one is ping_timeout_ms old.
 *
 * Pubsub events are accepted only from pubsub.<domain>; presence of other
 * JIDs is reported; pings from the server are answered, other iq get/set
 * refused (service-unavailable). No stream management (Finesse does not
 * use XEP-0198).
 *
 * Pure: no sockets, no clock of its own. The transport calls in with what
 * happened (up, bytes or messages, TLS done, down) and the owner calls
 * _tick with the time; the session calls out through fin_xmpp_session_io
 * to write, to start TLS, to close, and to report events. So the whole
 * protocol is unit-tested by feeding it a server's lines
 * (tests/unit/test_fin_xmpp_session.c).
 *
 * End of a session: exactly one final event (OFFLINE or AUTH_FAILED)
 * unless the owner closed it quietly, then the transport reports down and
 * fin_xmpp_session_done() turns true; only then may the owner free the
 * session and the transport. */
#ifndef FIN_XMPP_SESSION_H
#define FIN_XMPP_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "cmn.h"
#include "fin_xmpp.h"
#include "fin_xmpp_xml.h"

/* Milestones, for diagnostics (fscctl finesse-check) and debug logs. */
enum fin_xmpp_milestone {
    FIN_XMPP_MS_STREAM_OPEN,   /* the server opened its stream (detail: id) */
    FIN_XMPP_MS_FEATURES,      /* detail: "starttls,PLAIN,SCRAM-SHA-1,..." */
    FIN_XMPP_MS_TLS,           /* STARTTLS completed */
    FIN_XMPP_MS_AUTHENTICATED, /* SASL success */
    FIN_XMPP_MS_BOUND,         /* detail: the full JID */
};

/* Why a transport went down, as the transport saw it. */
enum fin_xmpp_down {
    FIN_XMPP_DOWN_CLOSED,         /* closed after the session asked */
    FIN_XMPP_DOWN_CONNECT,        /* TCP connect/DNS failed */
    FIN_XMPP_DOWN_TLS_CERT,       /* the peer's certificate was rejected */
    FIN_XMPP_DOWN_TLS,            /* TLS handshake failed otherwise */
    FIN_XMPP_DOWN_WS_REFUSED,     /* the HTTP upgrade was answered non-101 */
    FIN_XMPP_DOWN_WS_SUBPROTOCOL, /* 101 without the "xmpp" subprotocol */
    FIN_XMPP_DOWN_LOST,           /* an established connection dropped */
    FIN_XMPP_DOWN_PROTOCOL,       /* bad framing (oversized/binary frame) */
};

struct fin_xmpp_session_io {
    /* one stanza: STREAM bytes, or one WebSocket text message */
    int (*send)(void *io, const char *data, size_t len);
    /* STREAM only: start the TLS handshake now (after <proceed/>); the
     * transport then calls fin_xmpp_session_secured() or reports down */
    int (*start_tls)(void *io);
    /* end the transport (flushing what was sent); it reports down later,
     * never from inside this call */
    void (*close)(void *io);
    void *io;
    /* events for the owner (struct fin_xmpp_event of fin_xmpp.h) */
    void (*event)(void *cls, const struct fin_xmpp_event *ev);
    /* optional */
    void (*progress)(void *cls, enum fin_xmpp_milestone m, const char *detail);
    void *cls;
};

struct fin_xmpp_session_opts {
    const char *agent;    /* the id events carry */
    const char *jid;      /* bare: "1001@finesse.example.com" */
    const char *resource; /* never "desktop" */
    const char *password; /* copied; the copy is wiped once sent */
    enum fin_xmpp_framing framing;
    bool starttls;     /* STREAM: use STARTTLS when the server offers it */
    bool tls_required; /* never authenticate over a clear connection */
    int ping_interval_ms;
    int ping_timeout_ms;
    int negotiation_timeout_ms; /* connect to ONLINE; default 15000 */
    size_t max_stanza;          /* default 4 MiB */
};

struct fin_xmpp_session;

/* NULL with err on bad options (resource "desktop", a JID without a
 * domain) or no memory. now: when the transport starts connecting. */
struct fin_xmpp_session *
fin_xmpp_session_new(const struct fin_xmpp_session_opts *o,
                     const struct fin_xmpp_session_io *io, long long now,
                     struct cmn_err *err);
void fin_xmpp_session_free(struct fin_xmpp_session *s);

/* -- from the transport ---------------------------------------------------- */
/* Connected (and, for direct TLS and wss, secured): the stream starts. */
void fin_xmpp_session_transport_up(struct fin_xmpp_session *s, bool secured);
/* STARTTLS handshake done: the stream restarts over TLS. */
void fin_xmpp_session_secured(struct fin_xmpp_session *s);
/* STREAM framing: bytes as they arrive. */
void fin_xmpp_session_data(struct fin_xmpp_session *s, const char *buf,
                           size_t len);
/* WEBSOCKET framing: one complete text message. */
void fin_xmpp_session_message(struct fin_xmpp_session *s, const char *buf,
                              size_t len);
/* The transport is gone (final); detail says why, for people. */
void fin_xmpp_session_transport_down(struct fin_xmpp_session *s,
                                     enum fin_xmpp_down why,
                                     const char *detail);

/* -- from the owner -------------------------------------------------------- */
/* Timers: negotiation timeout, pings, ping timeout. */
void fin_xmpp_session_tick(struct fin_xmpp_session *s, long long now);
/* Ends the session from our side: unavailable presence when online, the
 * stream's close, then the transport. quiet: no event at all from now on
 * (the owner asked; a replaced or signed-out session). */
void fin_xmpp_session_close(struct fin_xmpp_session *s, bool quiet);
/* The transport reported down: free the session and its transport. */
bool fin_xmpp_session_done(const struct fin_xmpp_session *s);
bool fin_xmpp_session_online(const struct fin_xmpp_session *s);
/* Whether the stream is currently encrypted (after STARTTLS, or the
 * transport said so at up). */
bool fin_xmpp_session_secured_now(const struct fin_xmpp_session *s);

#endif
