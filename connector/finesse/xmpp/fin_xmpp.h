/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fin_xmpp.h - Finesse notifications over XMPP, for thousands of agents.
 *
 * Three transports carry the same session (fin_xmpp_session.h):
 *   websocket  XMPP over WebSocket (RFC 7395) on the REST port, wss://
 *              <node>:8445/ws: the only one a stock Finesse 12.5+ opens;
 *   tls        XMPP over TCP with direct TLS, port 5223;
 *   starttls   XMPP over TCP, port 5222, STARTTLS (closed by default on
 *              Finesse 12.5+).
 * The connections live in worker processes ("fsc-connector --xmpp-worker"),
 * each holding at most agents_per_worker of them on one thread and one
 * libwebsockets event loop, and talking to the connector over a
 * socketpair; a worker speaks one transport. The pool spawns workers,
 * places agents on the least-loaded one, and reports what happens through
 * one callback, from one thread of its own.
 *
 * Finesse rules kept by the session: resource never "desktop", presence
 * priority 0, stream management (XEP-0198) off, XEP-0199 ping every
 * ping_interval_s (Finesse: 10 s, 2 retries), pubsub events only from
 * pubsub.<domain>; connects are staggered by the workers. */
#ifndef FIN_XMPP_H
#define FIN_XMPP_H

#include "cmn.h"

struct fin_xmpp_pool;

enum fin_xmpp_transport {
    FIN_XMPP_TRANSPORT_WEBSOCKET,
    FIN_XMPP_TRANSPORT_TLS,
    FIN_XMPP_TRANSPORT_STARTTLS,
};

/* "websocket", "tls", "starttls" */
const char *fin_xmpp_transport_name(enum fin_xmpp_transport t);
/* CMN_OK or CMN_INVALID for an unknown name. */
int fin_xmpp_transport_parse(const char *name, enum fin_xmpp_transport *t);

enum fin_xmpp_event_kind {
    FIN_XMPP_ONLINE,      /* connected, authenticated, presence sent */
    FIN_XMPP_OFFLINE,     /* connection failed or lost (detail says why);
                             the pool does not retry: the owner decides when
                             and to which node */
    FIN_XMPP_AUTH_FAILED, /* SASL refused: wrong password or token */
    FIN_XMPP_UPDATE,      /* a pubsub notification: node + payload (the
                             unescaped <Update> document) */
    FIN_XMPP_PRESENCE,    /* presence from another JID (e.g. the 'finesse'
                             user going unavailable): from + available */
};

struct fin_xmpp_event {
    enum fin_xmpp_event_kind kind;
    const char *agent;   /* the agent id given at connect */
    const char *node;    /* UPDATE: pubsub node, e.g. /finesse/api/User/1001 */
    const char *payload; /* UPDATE: the Update XML */
    size_t payload_len;
    const char *from;   /* PRESENCE */
    bool available;     /* PRESENCE */
    const char *detail; /* OFFLINE / AUTH_FAILED: why, for logs */
    bool fatal; /* OFFLINE: no retry can fix it (certificate rejected, TLS
                   required but refused, WebSocket upgrade or subprotocol
                   refused, no SASL PLAIN): a configuration problem */
};

/* Called on the pool's reader thread; must not block for long. The
 * pointers are valid during the call only. */
typedef void (*fin_xmpp_cb)(const struct fin_xmpp_event *ev, void *cls);

struct fin_xmpp_pool_opts {
    const char *worker_path;        /* executable to run as a worker */
    const char *const *worker_argv; /* its argv (NULL-terminated), e.g.
                                   {"fsc-connector", "--xmpp-worker", NULL} */
    int agents_per_worker;          /* default 500 */
    int max_workers;                /* default 8 */
    int ping_interval_s;            /* default 10 */
    int ping_timeout_s;             /* default 20 (2 missed pings) */
    int connects_per_100ms;         /* stagger, default 20 */
    enum fin_xmpp_transport transport; /* what every worker speaks */
};

struct fin_xmpp_login {
    const char *agent;    /* agent id (loginId), the key for everything */
    const char *jid;      /* "1001@finesse.example.com" */
    const char *password; /* Finesse password, or the SSO access token */
    const char *host;     /* tls/starttls: Finesse node to connect to */
    int port;             /* tls/starttls: 5223 / 5222 */
    const char *url;      /* websocket: ws[s]://node:8445/ws */
    const char *resource; /* never "desktop"; e.g. "fsc" */
    bool tls_required;    /* starttls: STARTTLS mandatory (production) */
    const char *ca_file;  /* adds a trust anchor for the node's certificate */
};

/* Spawns workers lazily (the first connect). NULL with err on failure. */
struct fin_xmpp_pool *fin_xmpp_pool_new(const struct fin_xmpp_pool_opts *o,
                                        fin_xmpp_cb cb, void *cls,
                                        struct cmn_err *err);
/* (Re)connect an agent: an existing connection for the same agent is
 * closed first. Any thread. */
int fin_xmpp_pool_connect(struct fin_xmpp_pool *p,
                          const struct fin_xmpp_login *login) CMN_NODISCARD;
/* Send unavailable presence and close. Any thread. */
int fin_xmpp_pool_disconnect(struct fin_xmpp_pool *p, const char *agent);
/* Connections the workers hold, and how many workers run. */
void fin_xmpp_pool_stats(struct fin_xmpp_pool *p, int *connections,
                         int *workers);
/* Stops the workers and the reader thread. */
void fin_xmpp_pool_free(struct fin_xmpp_pool *p);

/* The worker's main(): reads commands on the socket the pool gives it
 * (see fin_xmpp_worker.c). Returns the process exit code. */
int fin_xmpp_worker_main(int argc, char **argv);

#endif
