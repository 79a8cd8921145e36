/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fin_xmpp_worker.c - the XMPP worker process: one thread, one event loop
 * (fin_xmpp_loop.h), at most agents_per_worker links (fin_xmpp_link.h) of
 * the one transport its config names, driven by frames from the pool on a
 * socketpair (fin_xmpp_proto.h).
 *
 * Command line (after whatever the pool's worker_argv puts first):
 *   --xmpp-fd N        control socket (default 3: the pool dup2()s it there)
 *   --log-level LEVEL  err|warn|notice|info|debug (default info)
 *
 * The control socket is watched by the loop like any connection: commands
 * are read when it is readable, events are queued and written without
 * blocking (so the worker never waits on the parent while the parent may
 * be writing a command to it) as soon as the socket takes them. Connects
 * start at most connects_per_100ms per 100 ms window (after a Finesse
 * failover every agent reconnects at once): right away while the window
 * has room, the rest from the 20 ms tick, which also drives the sessions'
 * timers (pings, timeouts) and releases links whose transport is down.
 *
 * A disconnect command or a reconnect of the same agent ends the old
 * session quietly: no event (the pool asked for it). Everything else that
 * ends a session produces one OFFLINE or AUTH_FAILED. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cmn_log.h"
#include "cmn_xml.h"
#include "fin_xmpp.h"
#include "fin_xmpp_link.h"
#include "fin_xmpp_proto.h"

#define WK_PROC       "fsc-connector-xmpp"
#define WK_DEFAULT_FD 3
#define WK_TICK_MS    20
#define WK_DRAIN_MS   2500
#define WK_OUT_MAX    ((size_t)64 << 20)
#define WK_READ_CHUNK 65536
#define WK_MAX_FDS    8192

enum wk_state {
    WK_QUEUED, /* waiting for a connect slot */
    WK_LINKED, /* the link runs (until its session is done) */
    WK_DEAD,   /* release on the next tick */
};

struct wk;

struct wk_agent {
    struct wk *ag_w;
    char *ag_id;
    long long ag_gen; /* pool's session number, echoed in events */
    /* the connect command, kept until the connect starts */
    char *ag_jid;
    char *ag_password; /* wiped once handed to the session */
    char *ag_host;
    char *ag_url;
    char *ag_resource;
    char *ag_ca_file;
    int ag_port;
    bool ag_tls_required;
    struct fin_xmpp_link *ag_link;
    enum wk_state ag_state;
    bool ag_detached;         /* replaced or disconnected: not found any more */
    struct wk_agent *ag_next; /* all agents */
    struct wk_agent *ag_q_next; /* connect queue */
};

struct wk {
    struct fin_xmpp_loop *loop;
    struct fin_xmpp_watch *ctl;
    int fd;
    struct fin_xmpp_framer in;
    char *out;
    size_t out_len;
    size_t out_cap;
    struct wk_agent *agents;
    struct wk_agent *q_head;
    struct wk_agent *q_tail;
    enum fin_xmpp_transport transport;
    int ping_interval_ms;
    int ping_timeout_ms;
    int per_100ms;
    long long win_start_ms;
    int win_count;
    bool stop;
    bool parent_gone;
};

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
    /* sent when the loop next finds the socket writable, in this pass or
     * the next: events of one pass go out together, none waits for the
     * tick (a notification waited 10 ms on average for it) */
    if (w->ctl != NULL) {
        fin_xmpp_watch_want_write(w->ctl);
    }
}

/* Writes what the socket takes now; asks the loop for the rest. */
static void
wk_flush(struct wk *w)
{
    size_t done = 0;

    if (w->out_len == 0) {
        return;
    }
    while (done < w->out_len && !w->parent_gone) {
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
            if (w->ctl != NULL) {
                fin_xmpp_watch_want_write(w->ctl);
            }
            break;
        }
        cmn_log_notice("event=parent_gone");
        w->parent_gone = true;
        w->stop = true;
    }
    memmove(w->out, w->out + done, w->out_len - done);
    w->out_len -= done;
}

static void
wk_on_session_event(void *cls, const struct fin_xmpp_event *ev)
{
    struct wk_agent *a = cls;
    char *buf = NULL;
    size_t len = 0;

    if (a->ag_detached) {
        return;
    }
    if (ev->kind == FIN_XMPP_OFFLINE || ev->kind == FIN_XMPP_AUTH_FAILED ||
        ev->kind == FIN_XMPP_ONLINE) {
        cmn_log_info("event=%s agent=%s detail=\"%s\"%s",
                     fin_xmpp_proto_event_name(ev->kind), a->ag_id,
                     ev->detail ? ev->detail : "", ev->fatal ? " fatal=1" : "");
    }
    if (fin_xmpp_proto_encode_event(ev, a->ag_gen, &buf, &len) != CMN_OK) {
        cmn_log_warn("event=encode_failed agent=%s kind=%d", a->ag_id,
                     (int)ev->kind);
        return;
    }
    wk_out_append(a->ag_w, buf, len);
    free(buf);
}

/* A final event for an agent that never got a link. */
static void
wk_emit_offline(struct wk_agent *a, const char *detail, bool fatal)
{
    struct fin_xmpp_event ev = {.kind = FIN_XMPP_OFFLINE,
                                .agent = a->ag_id,
                                .detail = detail,
                                .fatal = fatal};
    wk_on_session_event(a, &ev);
}

/* -- agents ------------------------------------------------------------- */

static struct wk_agent *
wk_find(struct wk *w, const char *id)
{
    for (struct wk_agent *a = w->agents; a != NULL; a = a->ag_next) {
        if (!a->ag_detached && a->ag_state != WK_DEAD &&
            strcmp(a->ag_id, id) == 0) {
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
    fin_xmpp_link_free(a->ag_link);
    wk_wipe_str(&a->ag_password);
    free(a->ag_id);
    free(a->ag_jid);
    free(a->ag_host);
    free(a->ag_url);
    free(a->ag_resource);
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

/* Ends an agent's session on our side, quietly (the pool asked). */
static void
wk_end_quietly(struct wk_agent *a)
{
    a->ag_detached = true;
    if (a->ag_state == WK_QUEUED) {
        wk_queue_remove(a->ag_w, a);
        a->ag_state = WK_DEAD;
    } else if (a->ag_state == WK_LINKED) {
        fin_xmpp_session_close(fin_xmpp_link_session(a->ag_link), true);
    }
}

static char *
wk_strdup(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static void
wk_cmd_connect(struct wk *w, const struct fin_xmpp_login *l, long long gen)
{
    struct wk_agent *old = wk_find(w, l->agent);
    struct wk_agent *a;

    if (old != NULL) {
        wk_end_quietly(old); /* reconnect: the old session goes quietly */
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        cmn_log_err("event=oom agent=%s", l->agent);
        return;
    }
    a->ag_w = w;
    a->ag_gen = gen;
    a->ag_port = l->port;
    a->ag_tls_required = l->tls_required;
    a->ag_id = strdup(l->agent);
    a->ag_jid = strdup(l->jid);
    a->ag_password = strdup(l->password);
    a->ag_host = wk_strdup(l->host);
    a->ag_url = wk_strdup(l->url);
    a->ag_resource = wk_strdup(l->resource);
    a->ag_ca_file = wk_strdup(l->ca_file);
    a->ag_next = w->agents;
    w->agents = a;
    a->ag_state = WK_DEAD;
    if (a->ag_id == NULL || a->ag_jid == NULL || a->ag_password == NULL ||
        (l->host && !a->ag_host) || (l->url && !a->ag_url) ||
        (l->resource && !a->ag_resource) || (l->ca_file && !a->ag_ca_file)) {
        if (a->ag_id != NULL) {
            wk_emit_offline(a, "out of memory", false);
        }
        return;
    }
    a->ag_state = WK_QUEUED;
    if (w->q_tail != NULL) {
        w->q_tail->ag_q_next = a;
    } else {
        w->q_head = a;
    }
    w->q_tail = a;
}

static void
wk_start_connect(struct wk *w, struct wk_agent *a)
{
    struct cmn_err err = {{0}};
    const char *at = strchr(a->ag_jid, '@');
    struct fin_xmpp_target tg = {
        .transport = w->transport,
        .host = a->ag_host,
        .port = a->ag_port,
        .url = a->ag_url,
        .domain = at != NULL ? at + 1 : NULL,
        .ca_file = a->ag_ca_file,
    };
    struct fin_xmpp_session_opts so = {
        .agent = a->ag_id,
        .jid = a->ag_jid,
        .resource = a->ag_resource,
        .password = a->ag_password,
        .tls_required = a->ag_tls_required,
        .ping_interval_ms = w->ping_interval_ms,
        .ping_timeout_ms = w->ping_timeout_ms,
    };
    struct fin_xmpp_session_io io = {.event = wk_on_session_event, .cls = a};

    a->ag_link = fin_xmpp_link_new(w->loop, &tg, &so, &io, cmn_now_ms(), &err);
    wk_wipe_str(&a->ag_password); /* the session has its own copy */
    if (a->ag_link == NULL) {
        /* a bad target (no URL for websocket, no host for tls) or no
         * memory: nothing a retry fixes */
        wk_emit_offline(a, err.msg, true);
        a->ag_state = WK_DEAD;
        return;
    }
    a->ag_state = WK_LINKED;
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
        w->transport = c->transport;
        cmn_log_info("event=config transport=%s ping_interval_s=%d "
                     "ping_timeout_s=%d connects_per_100ms=%d",
                     fin_xmpp_transport_name(c->transport), c->ping_interval_s,
                     c->ping_timeout_s, c->connects_per_100ms);
        break;
    case FIN_XMPP_OP_CONNECT:
        if (c->login.url != NULL) {
            cmn_log_info("event=connect agent=%s jid=%s transport=%s url=%s",
                         c->login.agent, c->login.jid,
                         fin_xmpp_transport_name(w->transport), c->login.url);
        } else {
            cmn_log_info("event=connect agent=%s jid=%s transport=%s host=%s "
                         "port=%d tls=%d",
                         c->login.agent, c->login.jid,
                         fin_xmpp_transport_name(w->transport),
                         c->login.host ? c->login.host : "", c->login.port,
                         (int)c->login.tls_required);
        }
        wk_cmd_connect(w, &c->login, c->gen);
        break;
    case FIN_XMPP_OP_DISCONNECT:
        a = wk_find(w, c->login.agent);
        cmn_log_info("event=disconnect agent=%s known=%d", c->login.agent,
                     a != NULL);
        if (a != NULL) {
            wk_end_quietly(a);
        }
        break;
    case FIN_XMPP_OP_SHUTDOWN:
        w->stop = true;
        break;
    }
}

/* -- the control socket ---------------------------------------------------- */

static void wk_start_queued(struct wk *w, long long now);

static void
wk_read_commands(struct wk *w)
{
    char buf[WK_READ_CHUNK];

    for (int round = 0; round < 16 && !w->stop; round++) {
        ssize_t n = recv(w->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        if (n <= 0) {
            cmn_log_notice("event=parent_gone");
            w->parent_gone = true;
            w->stop = true;
            return;
        }
        int rc = fin_xmpp_framer_feed(&w->in, buf, (size_t)n);
        explicit_bzero(buf, (size_t)n);
        if (rc != CMN_OK) {
            cmn_log_err("event=bad_frame rc=%s", cmn_rc_str(rc));
            w->stop = true;
            return;
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
                w->stop = true;
                return;
            }
            wk_cmd(w, &c);
            fin_xmpp_proto_cmd_cleanup(&c);
        }
    }
}

static void
wk_on_ctl_readable(void *cls)
{
    struct wk *w = cls;

    wk_read_commands(w);
    /* connects just asked for start now if the window has room, not on
     * the next tick (each sign-in waited 10 ms on average for it) */
    wk_start_queued(w, cmn_now_ms());
}

static void
wk_on_ctl_writable(void *cls)
{
    wk_flush(cls);
}

static void
wk_on_ctl_closed(void *cls)
{
    struct wk *w = cls;

    w->ctl = NULL;
    w->parent_gone = true;
    w->stop = true;
}

static const struct fin_xmpp_watch_ops wk_ctl_ops = {
    .readable = wk_on_ctl_readable,
    .writable = wk_on_ctl_writable,
    .closed = wk_on_ctl_closed,
};

/* -- the tick ------------------------------------------------------------- */

static void
wk_start_queued(struct wk *w, long long now)
{
    if (now - w->win_start_ms >= 100) {
        w->win_start_ms = now;
        w->win_count = 0;
    }
    while (w->q_head != NULL && w->win_count < w->per_100ms && !w->stop) {
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

/* Session timers, and release of agents whose link is done. */
static void
wk_housekeeping(struct wk *w, long long now)
{
    struct wk_agent **pp = &w->agents;

    while (*pp != NULL) {
        struct wk_agent *a = *pp;
        if (a->ag_state == WK_LINKED) {
            struct fin_xmpp_session *s = fin_xmpp_link_session(a->ag_link);
            fin_xmpp_session_tick(s, now);
            if (fin_xmpp_session_done(s)) {
                a->ag_state = WK_DEAD;
            }
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
wk_on_tick(void *cls)
{
    struct wk *w = cls;
    long long now = cmn_now_ms();

    wk_housekeeping(w, now);
    wk_start_queued(w, now);
    wk_flush(w);
}

/* Closes every session and gives the transports a moment to send the
 * stream ends. */
static void
wk_drain(struct wk *w)
{
    long long until = cmn_now_ms() + WK_DRAIN_MS;

    for (struct wk_agent *a = w->agents; a != NULL; a = a->ag_next) {
        wk_end_quietly(a);
    }
    while (cmn_now_ms() < until) {
        bool busy = false;
        for (struct wk_agent *a = w->agents; a != NULL; a = a->ag_next) {
            if (a->ag_state == WK_LINKED &&
                !fin_xmpp_session_done(fin_xmpp_link_session(a->ag_link))) {
                busy = true;
            }
        }
        if (!busy) {
            break;
        }
        fin_xmpp_loop_run_once(w->loop);
    }
}

/* -- process set-up ----------------------------------------------------------
 */

/* Allocators for jansson and OpenSSL's callers in this process: frees are
 * wiped, so copies of passwords (the decoded command) do not linger in
 * freed heap. */
static void *
wk_json_alloc(size_t size)
{
    return malloc(size);
}

static void
wk_json_free(void *p)
{
    if (p != NULL) {
        explicit_bzero(p, malloc_usable_size(p));
        free(p);
    }
}

/* libwebsockets sizes its descriptor tables by the open-file limit: keep
 * it at what a worker can use. */
static void
wk_cap_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > WK_MAX_FDS) {
        rl.rlim_cur = WK_MAX_FDS;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            cmn_log_warn("event=setrlimit_failed errno=%d", errno);
        }
    }
}

int
fin_xmpp_worker_main(int argc, char **argv)
{
    struct wk w;
    struct cmn_err err = {{0}};
    enum cmn_log_level level = CMN_LOG_INFO;
    int rc = 0;

    memset(&w, 0, sizeof(w));
    w.fd = WK_DEFAULT_FD;
    w.ping_interval_ms = 10000;
    w.ping_timeout_ms = 20000;
    w.per_100ms = 20;
    w.transport = FIN_XMPP_TRANSPORT_STARTTLS;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--xmpp-fd") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end != '\0' || v < 0 || v >= WK_MAX_FDS) {
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
    /* the connector may have let descriptors leak into us */
    if (w.fd > 2) {
        (void)close_range((unsigned)w.fd + 1, ~0U, 0);
    }
    if (fcntl(w.fd, F_GETFD) < 0) {
        cmn_log_err("event=no_control_socket fd=%d", w.fd);
        return 2;
    }
    (void)fcntl(w.fd, F_SETFD, FD_CLOEXEC);
    (void)fcntl(w.fd, F_SETFL, fcntl(w.fd, F_GETFL) | O_NONBLOCK);
    wk_cap_nofile();
    fin_xmpp_framer_init(&w.in);
    json_set_alloc_funcs(wk_json_alloc, wk_json_free);
    cmn_xml_init();
    w.loop = fin_xmpp_loop_new(WK_MAX_FDS, &err);
    if (w.loop == NULL) {
        cmn_log_err("event=loop_failed error=\"%s\"", err.msg);
        rc = 1;
        goto out;
    }
    w.ctl = fin_xmpp_loop_watch(w.loop, w.fd, &wk_ctl_ops, &w, &err);
    if (w.ctl == NULL) {
        cmn_log_err("event=control_socket_refused error=\"%s\"", err.msg);
        rc = 1;
        goto out;
    }
    fin_xmpp_loop_every(w.loop, WK_TICK_MS, wk_on_tick, &w);
    cmn_log_info("event=start pid=%d fd=%d", (int)getpid(), w.fd);
    while (!w.stop) {
        fin_xmpp_loop_run_once(w.loop);
    }
    wk_drain(&w);
    wk_flush(&w);
    cmn_log_info("event=stop");
out:
    /* the loop first: closing what is left reports to the sessions, which
     * must still exist */
    fin_xmpp_loop_free(w.loop);
    while (w.agents != NULL) {
        struct wk_agent *a = w.agents;
        w.agents = a->ag_next;
        wk_agent_free(a);
    }
    fin_xmpp_framer_cleanup(&w.in);
    free(w.out);
    return rc;
}
