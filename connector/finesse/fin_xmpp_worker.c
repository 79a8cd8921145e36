/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fin_xmpp_worker.c - the XMPP worker process: one thread, one libstrophe
 * ctx, at most agents_per_worker connections, driven by frames from the
 * pool on a socketpair (fin_xmpp_proto.h).
 *
 * Command line (after whatever the pool's worker_argv puts first):
 *   --xmpp-fd N        control socket (default 3: the pool dup2()s it there)
 *   --log-level LEVEL  err|warn|notice|info|debug (default info)
 *
 * Loop: xmpp_run_once(ctx, 20 ms), release connections that ended, read
 * commands (non-blocking), start queued connects (at most
 * connects_per_100ms per 100 ms window), send XEP-0199 pings, flush events.
 * Events are queued and written non-blocking, so the worker never waits on
 * the parent while the parent may be writing a command to it.
 *
 * AUTH_FAILED vs OFFLINE: libstrophe 0.12 has no "auth failed" event. When
 * SASL fails it logs and calls xmpp_disconnect() itself, so the handler sees
 * DISCONNECT with error 0 - and so does a refused TCP connect (measured
 * here). We therefore watch the captured socket: while connecting, each
 * loop pass checks getpeername() on it (SASL needs at least two more
 * round trips after TCP is up, so a pass always sees it). We report
 * AUTH_FAILED when the connection ended before XMPP_CONN_CONNECT, after
 * the TCP connection was seen up, with error 0, no stream error other than
 * not-authorized, no certificate rejection, TLS up if it was required, and
 * within 14 s of the start (libstrophe's own features/bind timeouts are
 * 15 s and also end with error 0). Everything else is OFFLINE with a
 * reason ("connect failed: ...", "stream error: ...", "ping timeout").
 *
 * Other rules: a disconnect command or a reconnect of the same agent ends
 * the old session without any event (the pool asked for it). Pubsub events
 * are accepted only from "pubsub.<jid domain>" (anyone in the domain can
 * send a message). A ping goes out every ping_interval_s; when the oldest
 * unanswered one is ping_timeout_s old the session is OFFLINE "ping
 * timeout", so detection takes at most interval + timeout. Descriptors:
 * the soft RLIMIT_NOFILE is capped at FD_SETSIZE and inherited descriptors
 * above the control socket are closed at start, so select() can never see
 * an fd >= 1024; the sockopt callback refuses one anyway. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <strophe.h>

#include "cmn_log.h"
#include "fin_xmpp.h"
#include "fin_xmpp_proto.h"

#define WK_PROC            "fsc-connector-xmpp"
#define WK_DEFAULT_FD      3
#define WK_RUN_MS          20
#define WK_AUTH_WINDOW_MS  14000
#define WK_CLOSE_GRACE_MS  5000
#define WK_OUT_MAX         ((size_t)64 << 20)
#define WK_READ_CHUNK      65536
#define WK_NS_PUBSUB_EVENT "http://jabber.org/protocol/pubsub#event"
#define WK_NS_PING         "urn:xmpp:ping"

enum wk_state {
    WK_QUEUED,     /* waiting for a connect slot */
    WK_CONNECTING, /* xmpp_connect_client called */
    WK_ONLINE,     /* XMPP_CONN_CONNECT seen */
    WK_CLOSING,    /* xmpp_disconnect called, waiting for the handler */
    WK_DEAD,       /* handler reported the end: release on next pass */
};

struct wk;

struct wk_agent {
    struct wk *ag_w;
    char *ag_id;       /* agent id */
    char *ag_full_jid; /* jid/resource */
    char *ag_bare;     /* own bare jid, to skip own presence */
    char *ag_pubsub;   /* "pubsub.<domain>": the only accepted event sender */
    char *ag_domain;
    char *ag_host;
    char *ag_password; /* wiped once handed to libstrophe */
    char *ag_ca_file;
    int ag_port;
    long long ag_gen; /* pool's session number, echoed in events */
    bool ag_tls_required;
    xmpp_conn_t *ag_conn;
    int ag_fd;
    enum wk_state ag_state;
    bool ag_detached; /* replaced or disconnected: no events, not found */
    bool ag_reported; /* final OFFLINE/AUTH_FAILED already sent */
    bool ag_was_online;
    bool ag_tcp_up; /* the socket was seen connected (getpeername) */
    long long ag_started_ms;
    long long ag_closing_ms;
    long long ag_next_ping_ms;
    long long ag_ping_wait_ms; /* send time of the oldest unanswered ping */
    unsigned ag_ping_seq;
    char ag_certfail[128];
    struct wk_agent *ag_next;   /* all agents */
    struct wk_agent *ag_q_next; /* connect queue */
};

struct wk {
    xmpp_ctx_t *ctx;
    int fd;
    struct fin_xmpp_framer in;
    char *out;
    size_t out_len;
    size_t out_cap;
    struct wk_agent *agents;
    struct wk_agent *q_head;
    struct wk_agent *q_tail;
    int ping_interval_ms;
    int ping_timeout_ms;
    int per_100ms;
    long long win_start_ms;
    int win_count;
    bool stop;
};

/* libstrophe gives sockopt and certfail callbacks no user data; there is
 * one worker per process. */
static struct wk *wk_self;
/* libstrophe 0.12.2's xmpp_tlscert_get_conn() gives NULL in the certfail
 * callback, so a rejection cannot always be pinned on its connection: the
 * last one is kept here and given to a connection that fails unsecured
 * right after (every agent of a worker talks to the same Finesse node with
 * the same trust, so the verdict is the same for all of them). */
static char wk_last_certfail[128];
static long long wk_last_certfail_ms;

/* -- events to the parent ------------------------------------------------- */

static void
wk_out_append(struct wk *w, const char *buf, size_t len)
{
    if (w->out_len + len > WK_OUT_MAX) {
        /* the parent stopped reading: it will see us die and restart */
        cmn_log_err("event=out_overflow bytes=%zu", w->out_len);
        exit(3);
    }
    if (w->out_len + len > w->out_cap) {
        size_t cap = w->out_cap ? w->out_cap : 65536;
        while (cap < w->out_len + len) {
            cap *= 2;
        }
        char *nb = realloc(w->out, cap);
        if (nb == NULL) {
            cmn_log_err("event=oom");
            exit(3);
        }
        w->out = nb;
        w->out_cap = cap;
    }
    memcpy(w->out + w->out_len, buf, len);
    w->out_len += len;
}

/* Writes what the socket takes now; false when the parent is gone. */
static bool
wk_flush(struct wk *w)
{
    size_t done = 0;

    if (w->out_len == 0) {
        return true;
    }
    while (done < w->out_len) {
        ssize_t n = send(w->fd, w->out + done, w->out_len - done,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        return false;
    }
    memmove(w->out, w->out + done, w->out_len - done);
    w->out_len -= done;
    return true;
}

static void
wk_emit(struct wk *w, const struct fin_xmpp_event *ev, long long gen)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = fin_xmpp_proto_encode_event(ev, gen, &buf, &len);

    if (rc != CMN_OK) {
        cmn_log_warn("event=encode_failed agent=%s kind=%d rc=%s", ev->agent,
                     (int)ev->kind, cmn_rc_str(rc));
        return;
    }
    wk_out_append(w, buf, len);
    free(buf);
}

static void
wk_emit_simple(struct wk_agent *a, enum fin_xmpp_event_kind kind,
               const char *detail)
{
    struct fin_xmpp_event ev = {
        .kind = kind, .agent = a->ag_id, .detail = detail};

    if (a->ag_detached) {
        return;
    }
    if (kind == FIN_XMPP_OFFLINE || kind == FIN_XMPP_AUTH_FAILED) {
        if (a->ag_reported) {
            return;
        }
        a->ag_reported = true;
    }
    cmn_log_info("event=%s agent=%s detail=%s", fin_xmpp_proto_event_name(kind),
                 a->ag_id, detail ? detail : "");
    wk_emit(a->ag_w, &ev, a->ag_gen);
}

/* -- agents ------------------------------------------------------------- */

static struct wk_agent *
wk_find(struct wk *w, const char *id)
{
    for (struct wk_agent *a = w->agents; a != NULL; a = a->ag_next) {
        if (!a->ag_detached && strcmp(a->ag_id, id) == 0) {
            return a;
        }
    }
    return NULL;
}

static struct wk_agent *
wk_find_conn(struct wk *w, const xmpp_conn_t *conn)
{
    for (struct wk_agent *a = w->agents; a != NULL; a = a->ag_next) {
        if (a->ag_conn == conn) {
            return a;
        }
    }
    return NULL;
}

static void
wk_wipe_str(char **s)
{
    if (*s != NULL) {
        explicit_bzero(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

static void
wk_agent_free(struct wk_agent *a)
{
    if (a == NULL) {
        return;
    }
    if (a->ag_conn != NULL) {
        xmpp_conn_release(a->ag_conn);
    }
    wk_wipe_str(&a->ag_password);
    free(a->ag_id);
    free(a->ag_full_jid);
    free(a->ag_bare);
    free(a->ag_pubsub);
    free(a->ag_domain);
    free(a->ag_host);
    free(a->ag_ca_file);
    free(a);
}

static void
wk_queue_remove(struct wk *w, struct wk_agent *a)
{
    struct wk_agent *prev = NULL;

    for (struct wk_agent *q = w->q_head; q != NULL; q = q->ag_q_next) {
        if (q != a) {
            prev = q;
            continue;
        }
        if (prev != NULL) {
            prev->ag_q_next = a->ag_q_next;
        } else {
            w->q_head = a->ag_q_next;
        }
        if (w->q_tail == a) {
            w->q_tail = prev;
        }
        a->ag_q_next = NULL;
        return;
    }
}

/* Ends a connection on our side: unavailable presence, stream close. The
 * agent is released once libstrophe reports the disconnect. */
static void
wk_close(struct wk_agent *a, bool send_unavailable)
{
    if (a->ag_state == WK_QUEUED) {
        wk_queue_remove(a->ag_w, a);
        a->ag_state = WK_DEAD;
        return;
    }
    if (a->ag_state != WK_CONNECTING && a->ag_state != WK_ONLINE) {
        return;
    }
    if (a->ag_state == WK_ONLINE && send_unavailable) {
        xmpp_stanza_t *p = xmpp_presence_new(a->ag_w->ctx);
        if (p != NULL) {
            xmpp_stanza_set_type(p, "unavailable");
            xmpp_send(a->ag_conn, p);
            xmpp_stanza_release(p);
        }
    }
    a->ag_state = WK_CLOSING;
    a->ag_closing_ms = cmn_now_ms();
    xmpp_disconnect(a->ag_conn);
}

/* -- libstrophe handlers -------------------------------------------------- */

static int
wk_on_sockopt(xmpp_conn_t *conn, void *sock)
{
    struct wk *w = wk_self;
    int fd = *(int *)sock;
    struct wk_agent *a = wk_find_conn(w, conn);

    if (a != NULL) {
        a->ag_fd = fd;
    }
    if (fd < 0 || fd >= FD_SETSIZE) {
        /* select() would abort the process (runtime.md §1.1) */
        cmn_log_err("event=fd_too_high agent=%s fd=%d", a ? a->ag_id : "-", fd);
        return -1;
    }
    return xmpp_sockopt_cb_keepalive(conn, sock);
}

static int
wk_on_certfail(const xmpp_tlscert_t *cert, const char *const errmsg)
{
    xmpp_conn_t *conn = xmpp_tlscert_get_conn(cert);
    struct wk *w = wk_self;
    struct wk_agent *a = wk_find_conn(w, conn);

    if (a != NULL) {
        snprintf(a->ag_certfail, sizeof(a->ag_certfail), "%s",
                 errmsg ? errmsg : "certificate rejected");
    }
    snprintf(wk_last_certfail, sizeof(wk_last_certfail), "%s",
             errmsg ? errmsg : "certificate rejected");
    wk_last_certfail_ms = cmn_now_ms();
    cmn_log_warn("event=tls_cert_rejected agent=%s error=%s",
                 a ? a->ag_id : "-", errmsg ? errmsg : "");
    return 0;
}

/* True when jid is bare itself or one of its resources. */
static bool
wk_jid_is(const char *jid, const char *bare)
{
    size_t n = strlen(bare);

    return jid != NULL && strncmp(jid, bare, n) == 0 &&
           (jid[n] == '\0' || jid[n] == '/');
}

static int
wk_on_message(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    struct wk_agent *a = ud;
    const char *from = xmpp_stanza_get_from(st);
    xmpp_stanza_t *evst;
    xmpp_stanza_t *items;
    const char *node;

    (void)conn;
    evst = xmpp_stanza_get_child_by_ns(st, WK_NS_PUBSUB_EVENT);
    if (evst == NULL) {
        return 1;
    }
    /* only the pubsub service may send notifications: anybody else in the
     * domain could otherwise forge agent or call state */
    if (!wk_jid_is(from, a->ag_pubsub)) {
        cmn_log_warn("event=foreign_pubsub_event agent=%s from=%s", a->ag_id,
                     from ? from : "");
        return 1;
    }
    for (items = xmpp_stanza_get_children(evst); items != NULL;
         items = xmpp_stanza_get_next(items)) {
        const char *name = xmpp_stanza_get_name(items);
        if (name == NULL || strcmp(name, "items") != 0) {
            continue;
        }
        node = xmpp_stanza_get_attribute(items, "node");
        if (node == NULL) {
            continue;
        }
        for (xmpp_stanza_t *it = xmpp_stanza_get_children(items); it != NULL;
             it = xmpp_stanza_get_next(it)) {
            const char *iname = xmpp_stanza_get_name(it);
            xmpp_stanza_t *n;
            char *txt;
            if (iname == NULL || strcmp(iname, "item") != 0) {
                continue;
            }
            n = xmpp_stanza_get_child_by_name(it, "notification");
            if (n == NULL) {
                continue;
            }
            txt = xmpp_stanza_get_text(n);
            if (txt != NULL && txt[0] != '\0' && !a->ag_detached) {
                struct fin_xmpp_event ev = {.kind = FIN_XMPP_UPDATE,
                                            .agent = a->ag_id,
                                            .node = node,
                                            .payload = txt,
                                            .payload_len = strlen(txt)};
                cmn_log_debug("event=update agent=%s node=%s bytes=%zu",
                              a->ag_id, node, ev.payload_len);
                wk_emit(a->ag_w, &ev, a->ag_gen);
            }
            if (txt != NULL) {
                xmpp_free(a->ag_w->ctx, txt);
            }
        }
    }
    return 1;
}

static int
wk_on_presence(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    struct wk_agent *a = ud;
    const char *from = xmpp_stanza_get_from(st);
    const char *type = xmpp_stanza_get_type(st);

    (void)conn;
    if (from == NULL || a->ag_detached) {
        return 1;
    }
    if (wk_jid_is(from, a->ag_bare)) {
        return 1; /* our own resources */
    }
    if (type != NULL && strcmp(type, "unavailable") != 0) {
        return 1; /* subscribe, error, probe...: not availability */
    }
    struct fin_xmpp_event ev = {.kind = FIN_XMPP_PRESENCE,
                                .agent = a->ag_id,
                                .from = from,
                                .available = type == NULL};
    wk_emit(a->ag_w, &ev, a->ag_gen);
    return 1;
}

static int
wk_on_ping_request(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    xmpp_stanza_t *reply = xmpp_stanza_reply(st);

    (void)ud;
    if (reply != NULL) {
        /* xmpp_stanza_reply copies name and attributes, not children */
        xmpp_stanza_set_type(reply, "result");
        xmpp_send(conn, reply);
        xmpp_stanza_release(reply);
    }
    return 1;
}

static int
wk_on_pong(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    struct wk_agent *a = ud;

    (void)conn;
    (void)st;
    a->ag_ping_wait_ms = 0; /* any answer, even an error, proves liveness */
    return 0;
}

/* The answer to the ping sent right after our first presence: the server
 * now routes notifications to this session (see wk_on_online). */
static int
wk_on_presence_acked(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    struct wk_agent *a = ud;

    wk_on_pong(conn, st, ud);
    if (a->ag_state == WK_ONLINE) {
        wk_emit_simple(a, FIN_XMPP_ONLINE, NULL);
    }
    return 0;
}

static void wk_send_ping(struct wk *w, struct wk_agent *a, long long now,
                         xmpp_handler on_answer);

static const char *
wk_stream_error_name(xmpp_error_type_t t)
{
    switch (t) {
    case XMPP_SE_CONFLICT:
        return "conflict";
    case XMPP_SE_NOT_AUTHORIZED:
        return "not-authorized";
    case XMPP_SE_SYSTEM_SHUTDOWN:
        return "system-shutdown";
    case XMPP_SE_POLICY_VIOLATION:
        return "policy-violation";
    case XMPP_SE_CONN_TIMEOUT:
        return "connection-timeout";
    case XMPP_SE_HOST_UNKNOWN:
        return "host-unknown";
    case XMPP_SE_RESOURCE_CONSTRAINT:
        return "resource-constraint";
    case XMPP_SE_SEE_OTHER_HOST:
        return "see-other-host";
    default:
        return "other";
    }
}

static void
wk_on_online(struct wk_agent *a, xmpp_conn_t *conn)
{
    struct wk *w = a->ag_w;
    xmpp_stanza_t *pres = xmpp_presence_new(w->ctx);
    xmpp_stanza_t *prio = xmpp_stanza_new(w->ctx);
    xmpp_stanza_t *txt = xmpp_stanza_new(w->ctx);

    a->ag_was_online = true;
    if (a->ag_state == WK_CLOSING) {
        /* disconnect arrived while connecting: finish closing */
        xmpp_disconnect(conn);
        goto out;
    }
    a->ag_state = WK_ONLINE;
    if (pres == NULL || prio == NULL || txt == NULL) {
        wk_emit_simple(a, FIN_XMPP_OFFLINE, "out of memory");
        wk_close(a, false);
        goto out;
    }
    /* Finesse: non-negative priority or not every event is delivered */
    xmpp_stanza_set_name(prio, "priority");
    xmpp_stanza_set_text(txt, "0");
    xmpp_stanza_add_child(prio, txt);
    xmpp_stanza_add_child(pres, prio);
    xmpp_send(conn, pres);
    /* ONLINE only once the server has processed that presence: the engine
     * signs the agent in to Finesse on ONLINE, and a notification routed
     * to our bare JID before the server saw us available is dropped. The
     * server answers stanzas of one stream in order, so the answer to a
     * ping sent after the presence proves it (wk_on_presence_acked). An
     * unanswered one is a ping timeout like any other. */
    a->ag_next_ping_ms = cmn_now_ms() + w->ping_interval_ms;
    a->ag_ping_wait_ms = 0;
    wk_send_ping(w, a, cmn_now_ms(), wk_on_presence_acked);
out:
    if (pres != NULL) {
        xmpp_stanza_release(pres);
    }
    if (prio != NULL) {
        xmpp_stanza_release(prio);
    }
    if (txt != NULL) {
        xmpp_stanza_release(txt);
    }
}

static void
wk_on_conn(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
           xmpp_stream_error_t *se, void *ud)
{
    struct wk_agent *a = ud;
    char detail[256];
    bool auth = false;

    if (status == XMPP_CONN_CONNECT) {
        wk_on_online(a, conn);
        return;
    }
    if (status == XMPP_CONN_RAW_CONNECT) {
        return;
    }
    /* DISCONNECT or FAIL: the end of this connection */
    cmn_log_debug("event=conn_end agent=%s status=%d error=%d se=%d", a->ag_id,
                  (int)status, error, se ? (int)se->type : -1);
    if (a->ag_was_online) {
        if (se != NULL) {
            snprintf(detail, sizeof(detail), "stream error: %s%s%s",
                     wk_stream_error_name(se->type), se->text ? ": " : "",
                     se->text ? se->text : "");
        } else if (error != 0) {
            snprintf(detail, sizeof(detail), "connection lost: %s",
                     strerror(error));
        } else {
            snprintf(detail, sizeof(detail), "closed");
        }
    } else if (a->ag_certfail[0] != '\0' ||
               (!xmpp_conn_is_secured(conn) && wk_last_certfail_ms != 0 &&
                cmn_now_ms() - wk_last_certfail_ms < 2000)) {
        /* the handshake aborts the connection (error ECONNABORTED): the
         * certificate is the reason, say so */
        snprintf(detail, sizeof(detail), "tls certificate rejected: %s",
                 a->ag_certfail[0] != '\0' ? a->ag_certfail : wk_last_certfail);
    } else if (error != 0 || !a->ag_tcp_up) {
        /* libstrophe 0.12 reports a refused connect with error 0 */
        snprintf(detail, sizeof(detail), "connect failed: %s",
                 error ? strerror(error) : "no connection");
    } else if (a->ag_tls_required && !xmpp_conn_is_secured(conn)) {
        snprintf(detail, sizeof(detail), "tls required but not established");
    } else if (se != NULL && se->type != XMPP_SE_NOT_AUTHORIZED) {
        snprintf(detail, sizeof(detail), "stream error: %s%s%s",
                 wk_stream_error_name(se->type), se->text ? ": " : "",
                 se->text ? se->text : "");
    } else if (cmn_now_ms() - a->ag_started_ms >= WK_AUTH_WINDOW_MS) {
        snprintf(detail, sizeof(detail), "stream negotiation timed out");
    } else {
        snprintf(detail, sizeof(detail), "sasl authentication failed");
        auth = true;
    }
    wk_emit_simple(a, auth ? FIN_XMPP_AUTH_FAILED : FIN_XMPP_OFFLINE, detail);
    a->ag_state = WK_DEAD;
}

/* -- commands ------------------------------------------------------------- */

static char *
wk_strdup(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static int
wk_cmd_connect(struct wk *w, const struct fin_xmpp_login *l, long long gen)
{
    struct wk_agent *old = wk_find(w, l->agent);
    struct wk_agent *a;
    const char *res =
        l->resource != NULL && l->resource[0] ? l->resource : "fsc";
    const char *at = strchr(l->jid, '@');
    const char *slash = strchr(l->jid, '/');
    size_t bare_len = slash ? (size_t)(slash - l->jid) : strlen(l->jid);
    size_t n;

    if (old != NULL) {
        /* reconnect: the old session goes quietly */
        old->ag_detached = true;
        wk_close(old, true);
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return CMN_NOMEM;
    }
    a->ag_w = w;
    a->ag_fd = -1;
    a->ag_id = strdup(l->agent);
    a->ag_bare = strndup(l->jid, bare_len);
    a->ag_host = strdup(l->host);
    a->ag_password = strdup(l->password);
    a->ag_ca_file = wk_strdup(l->ca_file);
    a->ag_port = l->port;
    a->ag_gen = gen;
    a->ag_tls_required = l->tls_required;
    a->ag_next = w->agents;
    w->agents = a;
    a->ag_state = WK_DEAD; /* until queued below */
    if (a->ag_id == NULL || a->ag_bare == NULL || a->ag_host == NULL ||
        a->ag_password == NULL || (l->ca_file && a->ag_ca_file == NULL)) {
        wk_emit_simple(a, FIN_XMPP_OFFLINE, "out of memory");
        return CMN_NOMEM;
    }
    if (strcmp(res, "desktop") == 0 || at == NULL || at == l->jid ||
        at + 1 >= l->jid + bare_len) {
        /* "desktop" is the Finesse desktop's resource: using it kicks the
         * agent's own desktop session */
        wk_emit_simple(a, FIN_XMPP_OFFLINE, "invalid jid or resource");
        return CMN_INVALID;
    }
    a->ag_domain = strndup(at + 1, (size_t)(l->jid + bare_len - at - 1));
    n = strlen(a->ag_bare) + strlen(res) + 2;
    a->ag_full_jid = malloc(n);
    n = a->ag_domain ? strlen(a->ag_domain) + 8 : 0;
    a->ag_pubsub = n ? malloc(n) : NULL;
    if (a->ag_domain == NULL || a->ag_full_jid == NULL ||
        a->ag_pubsub == NULL) {
        wk_emit_simple(a, FIN_XMPP_OFFLINE, "out of memory");
        return CMN_NOMEM;
    }
    snprintf(a->ag_full_jid, strlen(a->ag_bare) + strlen(res) + 2, "%s/%s",
             a->ag_bare, res);
    snprintf(a->ag_pubsub, n, "pubsub.%s", a->ag_domain);
    a->ag_state = WK_QUEUED;
    if (w->q_tail != NULL) {
        w->q_tail->ag_q_next = a;
    } else {
        w->q_head = a;
    }
    w->q_tail = a;
    return CMN_OK;
}

static void
wk_start_connect(struct wk *w, struct wk_agent *a)
{
    long flags = XMPP_CONN_FLAG_DISABLE_SM;
    int rc;

    a->ag_conn = xmpp_conn_new(w->ctx);
    if (a->ag_conn == NULL) {
        wk_emit_simple(a, FIN_XMPP_OFFLINE, "out of memory");
        a->ag_state = WK_DEAD;
        return;
    }
    if (a->ag_tls_required) {
        flags |= XMPP_CONN_FLAG_MANDATORY_TLS;
    }
    xmpp_conn_set_flags(a->ag_conn, flags);
    xmpp_conn_set_jid(a->ag_conn, a->ag_full_jid);
    xmpp_conn_set_pass(a->ag_conn, a->ag_password);
    wk_wipe_str(&a->ag_password);
    if (a->ag_ca_file != NULL) {
        xmpp_conn_set_cafile(a->ag_conn, a->ag_ca_file);
    }
    xmpp_conn_set_certfail_handler(a->ag_conn, wk_on_certfail);
    xmpp_conn_set_sockopt_callback(a->ag_conn, wk_on_sockopt);
    xmpp_handler_add(a->ag_conn, wk_on_message, NULL, "message", NULL, a);
    xmpp_handler_add(a->ag_conn, wk_on_presence, NULL, "presence", NULL, a);
    xmpp_handler_add(a->ag_conn, wk_on_ping_request, WK_NS_PING, "iq", "get",
                     a);
    a->ag_started_ms = cmn_now_ms();
    a->ag_state = WK_CONNECTING;
    /* the host as altdomain: no SRV lookup; an IP needs no DNS at all */
    rc = xmpp_connect_client(a->ag_conn, a->ag_host, (unsigned short)a->ag_port,
                             wk_on_conn, a);
    if (rc != XMPP_EOK && a->ag_state != WK_DEAD) {
        wk_emit_simple(a, FIN_XMPP_OFFLINE, "connect failed");
        a->ag_state = WK_DEAD;
    }
}

static void
wk_cmd(struct wk *w, const struct fin_xmpp_cmd *c)
{
    struct wk_agent *a;

    switch (c->op) {
    case FIN_XMPP_OP_CONFIG:
        w->ping_interval_ms = c->ping_interval_s * 1000;
        w->ping_timeout_ms = c->ping_timeout_s * 1000;
        w->per_100ms = c->connects_per_100ms;
        cmn_log_info("event=config ping_interval_s=%d ping_timeout_s=%d "
                     "connects_per_100ms=%d",
                     c->ping_interval_s, c->ping_timeout_s,
                     c->connects_per_100ms);
        break;
    case FIN_XMPP_OP_CONNECT:
        cmn_log_info("event=connect agent=%s jid=%s host=%s port=%d tls=%d",
                     c->login.agent, c->login.jid, c->login.host, c->login.port,
                     (int)c->login.tls_required);
        (void)wk_cmd_connect(w, &c->login, c->gen);
        break;
    case FIN_XMPP_OP_DISCONNECT:
        a = wk_find(w, c->login.agent);
        cmn_log_info("event=disconnect agent=%s known=%d", c->login.agent,
                     a != NULL);
        if (a != NULL) {
            a->ag_detached = true;
            wk_close(a, true);
        }
        break;
    case FIN_XMPP_OP_SHUTDOWN:
        w->stop = true;
        break;
    }
}

/* Reads and runs pending commands; false when the parent is gone or broke
 * the protocol. */
static bool
wk_read_commands(struct wk *w)
{
    char buf[WK_READ_CHUNK];

    for (int round = 0; round < 16; round++) {
        ssize_t n = recv(w->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return true;
        }
        if (n <= 0) {
            cmn_log_notice("event=parent_gone");
            return false;
        }
        int rc = fin_xmpp_framer_feed(&w->in, buf, (size_t)n);
        explicit_bzero(buf, (size_t)n);
        if (rc != CMN_OK) {
            cmn_log_err("event=bad_frame rc=%s", cmn_rc_str(rc));
            return false;
        }
        for (;;) {
            const char *p;
            size_t len;
            struct fin_xmpp_cmd c;
            rc = fin_xmpp_framer_next(&w->in, &p, &len);
            if (rc == CMN_AGAIN) {
                break;
            }
            if (rc != CMN_OK ||
                fin_xmpp_proto_decode_cmd(p, len, &c) != CMN_OK) {
                cmn_log_err("event=bad_command bytes=%zu", len);
                return false;
            }
            wk_cmd(w, &c);
            fin_xmpp_proto_cmd_cleanup(&c);
        }
    }
    return true;
}

/* -- loop ----------------------------------------------------------------- */

static void
wk_start_queued(struct wk *w, long long now)
{
    if (now - w->win_start_ms >= 100) {
        w->win_start_ms = now;
        w->win_count = 0;
    }
    while (w->q_head != NULL && w->win_count < w->per_100ms) {
        struct wk_agent *a = w->q_head;
        w->q_head = a->ag_q_next;
        if (w->q_head == NULL) {
            w->q_tail = NULL;
        }
        a->ag_q_next = NULL;
        w->win_count++;
        wk_start_connect(w, a);
    }
}

static void
wk_send_ping(struct wk *w, struct wk_agent *a, long long now,
             xmpp_handler on_answer)
{
    char id[48];
    xmpp_stanza_t *iq;
    xmpp_stanza_t *ping;

    snprintf(id, sizeof(id), "fscping%u", ++a->ag_ping_seq);
    iq = xmpp_iq_new(w->ctx, "get", id);
    ping = xmpp_stanza_new(w->ctx);
    if (iq != NULL && ping != NULL) {
        xmpp_stanza_set_to(iq, a->ag_domain);
        xmpp_stanza_set_name(ping, "ping");
        xmpp_stanza_set_ns(ping, WK_NS_PING);
        xmpp_stanza_add_child(iq, ping);
        xmpp_id_handler_add(a->ag_conn, on_answer, id, a);
        xmpp_send(a->ag_conn, iq);
        if (a->ag_ping_wait_ms == 0) {
            a->ag_ping_wait_ms = now;
        }
    }
    if (ping != NULL) {
        xmpp_stanza_release(ping);
    }
    if (iq != NULL) {
        xmpp_stanza_release(iq);
    }
}

/* Pings, ping timeouts, stuck closes, and release of ended connections. */
static void
wk_housekeeping(struct wk *w, long long now)
{
    struct wk_agent **pp = &w->agents;

    while (*pp != NULL) {
        struct wk_agent *a = *pp;
        if (a->ag_state == WK_CONNECTING && !a->ag_tcp_up && a->ag_fd >= 0) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof(ss);
            a->ag_tcp_up =
                getpeername(a->ag_fd, (struct sockaddr *)&ss, &sl) == 0;
        }
        if (a->ag_state == WK_ONLINE) {
            if (a->ag_ping_wait_ms != 0 &&
                now - a->ag_ping_wait_ms >= w->ping_timeout_ms) {
                wk_emit_simple(a, FIN_XMPP_OFFLINE, "ping timeout");
                wk_close(a, false);
            } else if (now >= a->ag_next_ping_ms) {
                wk_send_ping(w, a, now, wk_on_pong);
                a->ag_next_ping_ms = now + w->ping_interval_ms;
            }
        } else if (a->ag_state == WK_CLOSING &&
                   now - a->ag_closing_ms > WK_CLOSE_GRACE_MS) {
            /* libstrophe's own disconnect timeout is 2 s; never wait
             * forever on a handler that does not come */
            cmn_log_warn("event=close_forced agent=%s", a->ag_id);
            wk_emit_simple(a, FIN_XMPP_OFFLINE, "closed");
            a->ag_state = WK_DEAD;
        }
        if (a->ag_state == WK_DEAD) {
            *pp = a->ag_next;
            wk_agent_free(a);
            continue;
        }
        pp = &a->ag_next;
    }
}

static void
wk_libstrophe_log(void *ud, xmpp_log_level_t level, const char *area,
                  const char *msg)
{
    (void)ud;
    /* debug/info carry raw stanzas (SASL data): never forwarded */
    if (level == XMPP_LEVEL_ERROR) {
        cmn_log_warn("event=libstrophe area=%s msg=%s", area, msg);
    } else if (level == XMPP_LEVEL_WARN) {
        cmn_log_info("event=libstrophe area=%s msg=%s", area, msg);
    }
}

/* Closes every session and gives libstrophe a moment to send the stream
 * ends. */
static void
wk_drain(struct wk *w)
{
    long long until = cmn_now_ms() + 2500;

    for (struct wk_agent *a = w->agents; a != NULL; a = a->ag_next) {
        a->ag_detached = true;
        wk_close(a, true);
    }
    while (cmn_now_ms() < until) {
        bool busy = false;
        xmpp_run_once(w->ctx, WK_RUN_MS);
        for (struct wk_agent *a = w->agents; a != NULL; a = a->ag_next) {
            if (a->ag_state == WK_CLOSING) {
                busy = true;
            }
        }
        if (!busy) {
            break;
        }
    }
    while (w->agents != NULL) {
        struct wk_agent *a = w->agents;
        w->agents = a->ag_next;
        wk_agent_free(a);
    }
}

/* Allocators for libstrophe and jansson in this process: frees are wiped,
 * so the password copies they make (conn->pass, the decoded command) do
 * not linger in freed heap. */
static void *
wk_alloc(size_t size, void *ud)
{
    (void)ud;
    return malloc(size);
}

static void *
wk_realloc(void *p, size_t size, void *ud)
{
    (void)ud;
    return realloc(p, size);
}

static void
wk_free(void *p, void *ud)
{
    (void)ud;
    if (p != NULL) {
        explicit_bzero(p, malloc_usable_size(p));
        free(p);
    }
}

static void *
wk_json_alloc(size_t size)
{
    return malloc(size);
}

static void
wk_json_free(void *p)
{
    wk_free(p, NULL);
}

/* select() aborts on fd >= FD_SETSIZE; with the soft limit at FD_SETSIZE a
 * new socket fails with EMFILE instead (a clean connect error). */
static void
wk_cap_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > FD_SETSIZE) {
        rl.rlim_cur = FD_SETSIZE;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            cmn_log_warn("event=setrlimit_failed errno=%d", errno);
        }
    }
}

int
fin_xmpp_worker_main(int argc, char **argv)
{
    struct wk w;
    xmpp_log_t log = {.handler = wk_libstrophe_log, .userdata = NULL};
    xmpp_mem_t mem = {.alloc = wk_alloc,
                      .free = wk_free,
                      .realloc = wk_realloc,
                      .userdata = NULL};
    enum cmn_log_level level = CMN_LOG_INFO;
    int rc = 0;

    memset(&w, 0, sizeof(w));
    w.fd = WK_DEFAULT_FD;
    w.ping_interval_ms = 10000;
    w.ping_timeout_ms = 20000;
    w.per_100ms = 20;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--xmpp-fd") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end != '\0' || v < 0 || v >= FD_SETSIZE) {
                fprintf(stderr, "bad --xmpp-fd\n");
                return 2;
            }
            w.fd = (int)v;
        } else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc) {
            if (cmn_log_parse_level(argv[++i], &level) != CMN_OK) {
                fprintf(stderr, "bad --log-level\n");
                return 2;
            }
        }
    }
    cmn_log_init(WK_PROC, level);
    signal(SIGPIPE, SIG_IGN);
    /* the connector may have let descriptors leak into us: keep ours low */
    if (w.fd > 2) {
        (void)close_range((unsigned)w.fd + 1, ~0U, 0);
    }
    if (fcntl(w.fd, F_GETFD) < 0) {
        cmn_log_err("event=no_control_socket fd=%d", w.fd);
        return 2;
    }
    (void)fcntl(w.fd, F_SETFD, FD_CLOEXEC);
    wk_cap_nofile();
    wk_self = &w;
    fin_xmpp_framer_init(&w.in);
    json_set_alloc_funcs(wk_json_alloc, wk_json_free);
    xmpp_initialize();
    w.ctx = xmpp_ctx_new(&mem, &log);
    if (w.ctx == NULL) {
        cmn_log_err("event=ctx_new_failed");
        rc = 1;
        goto out;
    }
    cmn_log_info("event=start pid=%d fd=%d", (int)getpid(), w.fd);
    while (!w.stop) {
        long long now;
        xmpp_run_once(w.ctx, WK_RUN_MS);
        now = cmn_now_ms();
        wk_housekeeping(&w, now);
        if (!wk_read_commands(&w)) {
            break;
        }
        wk_start_queued(&w, now);
        if (!wk_flush(&w)) {
            cmn_log_notice("event=parent_gone");
            break;
        }
    }
    wk_drain(&w);
    (void)wk_flush(&w);
    cmn_log_info("event=stop");
out:
    fin_xmpp_framer_cleanup(&w.in);
    free(w.out);
    if (w.ctx != NULL) {
        xmpp_ctx_free(w.ctx);
    }
    xmpp_shutdown();
    wk_self = NULL;
    return rc;
}
