/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fin_xmpp_session.c - the XMPP client session (fin_xmpp_session.h): stream
 * negotiation, SASL PLAIN, bind, presence, pings, and turning server
 * stanzas into fin_xmpp_events. Transport-independent and I/O-free. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cmn_log.h"
#include "fin_xmpp_session.h"

#define NS_TLS        "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL       "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_BIND       "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SESSION    "urn:ietf:params:xml:ns:xmpp-session"
#define NS_STANZAS    "urn:ietf:params:xml:ns:xmpp-stanzas"
#define NS_STREAMS_EE "urn:ietf:params:xml:ns:xmpp-streams"
#define NS_PING       "urn:xmpp:ping"
#define NS_PUBSUB_EV  "http://jabber.org/protocol/pubsub#event"

#define ID_BIND          "fscbind"
#define ID_SESSION       "fscsess"
#define ID_PRESENCE_ACK  "fscready"
#define DEFAULT_NEGOTIATION_MS 15000
#define DEFAULT_MAX_STANZA ((size_t)4 << 20)

enum sess_state {
    S_CONNECTING,   /* waiting for the transport */
    S_WAIT_OPEN,    /* our stream header sent */
    S_WAIT_FEATURES,
    S_WAIT_PROCEED, /* <starttls/> sent */
    S_TLS,          /* TLS handshake running in the transport */
    S_WAIT_AUTH,    /* <auth/> sent */
    S_WAIT_BIND,
    S_WAIT_SESSION,
    S_WAIT_READY,   /* presence + ping sent: ONLINE on the answer */
    S_ONLINE,
    S_CLOSING,      /* we asked the transport to close */
    S_DONE,         /* the transport is down */
};

struct fin_xmpp_session {
    struct fin_xmpp_session_opts o;
    struct fin_xmpp_session_io io;
    struct fin_xmpp_parser *parser;
    char *agent;
    char *bare;     /* own bare JID */
    char *local;    /* its node part: the SASL authentication id */
    char *domain;
    char *pubsub;   /* "pubsub.<domain>": the only accepted event sender */
    char *resource;
    char *password; /* wiped once the <auth/> is written */
    char *bound;    /* full JID the server bound */
    enum sess_state state;
    bool secured;
    bool authenticated;
    bool stream_open;     /* our header written, not yet closed */
    bool quiet;           /* owner closed it: no more events */
    bool reported;        /* the final event went out */
    bool session_required;
    bool restart;         /* after the current input: reset, new header */
    bool start_tls;       /* after the current input: io->start_tls */
    long long now;
    long long started_ms;
    long long next_ping_ms;
    long long ping_wait_ms; /* send time of the oldest unanswered ping */
    unsigned ping_seq;
};

/* -- events ------------------------------------------------------------- */

static void
sess_emit(struct fin_xmpp_session *s, const struct fin_xmpp_event *ev)
{
    if (!s->quiet && s->io.event != NULL) {
        s->io.event(s->io.cls, ev);
    }
}

/* The one final event of a session. */
static void
sess_final(struct fin_xmpp_session *s, enum fin_xmpp_event_kind kind,
           bool fatal, const char *fmt, ...) CMN_PRINTF(4, 5);

static void
sess_final(struct fin_xmpp_session *s, enum fin_xmpp_event_kind kind,
           bool fatal, const char *fmt, ...)
{
    char detail[256];
    va_list ap;

    if (s->reported) {
        return;
    }
    s->reported = true;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    struct fin_xmpp_event ev = {
        .kind = kind, .agent = s->agent, .detail = detail, .fatal = fatal};
    sess_emit(s, &ev);
}

static void
sess_progress(struct fin_xmpp_session *s, enum fin_xmpp_milestone m,
              const char *detail)
{
    if (s->io.progress != NULL && !s->quiet) {
        s->io.progress(s->io.cls, m, detail != NULL ? detail : "");
    }
}

/* -- output ------------------------------------------------------------- */

static void
sess_send(struct fin_xmpp_session *s, struct fin_xmpp_out *out)
{
    if (out->oom) {
        cmn_log_err("event=xmpp_oom agent=%s", s->agent);
    } else if (s->state != S_DONE && s->io.send(s->io.io, out->data, out->len) !=
                                         CMN_OK) {
        cmn_log_info("event=xmpp_send_failed agent=%s bytes=%zu", s->agent,
                     out->len);
    }
    fin_xmpp_out_free(out);
}

static void
sess_send_header(struct fin_xmpp_session *s)
{
    struct fin_xmpp_out o = {0};

    if (s->o.framing == FIN_XMPP_FRAMING_WEBSOCKET) {
        fin_xmpp_out_raw(&o, "<open xmlns='" FIN_XMPP_NS_FRAMING "' to='");
        fin_xmpp_out_esc(&o, s->domain);
        fin_xmpp_out_raw(&o, "' version='1.0'/>");
    } else {
        fin_xmpp_out_raw(&o, "<?xml version='1.0'?><stream:stream to='");
        fin_xmpp_out_esc(&o, s->domain);
        fin_xmpp_out_raw(&o, "' version='1.0' xmlns='" FIN_XMPP_NS_CLIENT
                             "' xmlns:stream='" FIN_XMPP_NS_STREAM "'>");
    }
    s->stream_open = true;
    s->state = S_WAIT_OPEN;
    sess_send(s, &o);
}

static void
sess_send_close(struct fin_xmpp_session *s)
{
    struct fin_xmpp_out o = {0};

    if (!s->stream_open) {
        return;
    }
    s->stream_open = false;
    fin_xmpp_out_raw(&o, s->o.framing == FIN_XMPP_FRAMING_WEBSOCKET
                             ? "<close xmlns='" FIN_XMPP_NS_FRAMING "'/>"
                             : "</stream:stream>");
    sess_send(s, &o);
}

static void
sess_send_ping(struct fin_xmpp_session *s, const char *id)
{
    struct fin_xmpp_out o = {0};
    char seq[32];

    if (id == NULL) {
        snprintf(seq, sizeof(seq), "fscping%u", ++s->ping_seq);
        id = seq;
    }
    fin_xmpp_out_raw(&o, "<iq xmlns='" FIN_XMPP_NS_CLIENT "' type='get' id='");
    fin_xmpp_out_esc(&o, id);
    fin_xmpp_out_raw(&o, "' to='");
    fin_xmpp_out_esc(&o, s->domain);
    fin_xmpp_out_raw(&o, "'><ping xmlns='" NS_PING "'/></iq>");
    if (s->ping_wait_ms == 0) {
        s->ping_wait_ms = s->now;
    }
    sess_send(s, &o);
}

/* Ends the session from our side (after a failure, or on request). */
static void
sess_shutdown(struct fin_xmpp_session *s)
{
    if (s->state == S_CLOSING || s->state == S_DONE) {
        return;
    }
    sess_send_close(s);
    s->state = S_CLOSING;
    s->io.close(s->io.io);
}

/* -- negotiation ---------------------------------------------------------- */

static void
sess_auth(struct fin_xmpp_session *s)
{
    struct fin_xmpp_out o = {0};
    size_t ulen = strlen(s->local), plen = strlen(s->password);
    size_t rawlen = ulen + plen + 2;
    unsigned char *raw = malloc(rawlen);
    char *b64 = malloc(4 * ((rawlen + 2) / 3) + 1);

    if (raw == NULL || b64 == NULL) {
        free(raw);
        free(b64);
        sess_final(s, FIN_XMPP_OFFLINE, false, "out of memory");
        sess_shutdown(s);
        return;
    }
    /* RFC 4616: [authzid] NUL authcid NUL passwd, no authzid */
    raw[0] = '\0';
    memcpy(raw + 1, s->local, ulen);
    raw[1 + ulen] = '\0';
    memcpy(raw + 2 + ulen, s->password, plen);
    EVP_EncodeBlock((unsigned char *)b64, raw, (int)rawlen);
    explicit_bzero(raw, rawlen);
    free(raw);
    fin_xmpp_out_raw(&o, "<auth xmlns='" NS_SASL "' mechanism='PLAIN'>");
    fin_xmpp_out_raw(&o, b64);
    fin_xmpp_out_raw(&o, "</auth>");
    explicit_bzero(b64, strlen(b64));
    free(b64);
    explicit_bzero(s->password, plen);
    s->state = S_WAIT_AUTH;
    sess_send(s, &o);
}

/* "starttls,PLAIN,SCRAM-SHA-1,bind": what the server offered, for people */
static void
sess_describe_features(const struct fin_xmpp_el *f, char *buf, size_t len)
{
    size_t n = 0;
    const struct fin_xmpp_el *mechs = fin_xmpp_el_child(f, "mechanisms", NS_SASL);

    buf[0] = '\0';
    if (fin_xmpp_el_child(f, "starttls", NS_TLS) != NULL) {
        n += (size_t)snprintf(buf + n, len - n, "starttls");
    }
    for (const struct fin_xmpp_el *m = mechs ? mechs->children : NULL;
         m != NULL && n < len; m = m->next) {
        if (fin_xmpp_el_is(m, "mechanism", NS_SASL)) {
            n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "," : "",
                                  m->text);
        }
    }
    if (n < len && fin_xmpp_el_child(f, "bind", NS_BIND) != NULL) {
        n += (size_t)snprintf(buf + n, len - n, "%sbind", n ? "," : "");
    }
}

static void
sess_on_features(struct fin_xmpp_session *s, const struct fin_xmpp_el *f)
{
    char offered[200];

    sess_describe_features(f, offered, sizeof(offered));
    sess_progress(s, FIN_XMPP_MS_FEATURES, offered);
    if (s->state != S_WAIT_FEATURES) {
        return; /* the owner closed it (a probe that only wanted to know) */
    }
    if (s->authenticated) {
        struct fin_xmpp_out o = {0};
        const struct fin_xmpp_el *sess = fin_xmpp_el_child(f, "session",
                                                           NS_SESSION);
        if (fin_xmpp_el_child(f, "bind", NS_BIND) == NULL) {
            sess_final(s, FIN_XMPP_OFFLINE, false,
                       "server offers no resource binding");
            sess_shutdown(s);
            return;
        }
        /* RFC 3921 sessions: Openfire used to require them; RFC 6121
         * servers mark them optional or do not offer them */
        s->session_required =
            sess != NULL && fin_xmpp_el_child(sess, "optional", NULL) == NULL;
        fin_xmpp_out_raw(&o, "<iq xmlns='" FIN_XMPP_NS_CLIENT
                             "' type='set' id='" ID_BIND "'><bind xmlns='" NS_BIND
                             "'><resource>");
        fin_xmpp_out_esc(&o, s->resource);
        fin_xmpp_out_raw(&o, "</resource></bind></iq>");
        s->state = S_WAIT_BIND;
        sess_send(s, &o);
        return;
    }
    if (!s->secured && s->o.starttls &&
        fin_xmpp_el_child(f, "starttls", NS_TLS) != NULL) {
        struct fin_xmpp_out o = {0};
        fin_xmpp_out_raw(&o, "<starttls xmlns='" NS_TLS "'/>");
        s->state = S_WAIT_PROCEED;
        sess_send(s, &o);
        return;
    }
    if (!s->secured && s->o.tls_required) {
        sess_final(s, FIN_XMPP_OFFLINE, true,
                   "tls required but the server offers no STARTTLS "
                   "(offers: %s)", offered[0] ? offered : "nothing");
        sess_shutdown(s);
        return;
    }
    {
        const struct fin_xmpp_el *mechs =
            fin_xmpp_el_child(f, "mechanisms", NS_SASL);
        bool plain = false;
        for (const struct fin_xmpp_el *m = mechs ? mechs->children : NULL;
             m != NULL; m = m->next) {
            if (fin_xmpp_el_is(m, "mechanism", NS_SASL) &&
                strcmp(m->text, "PLAIN") == 0) {
                plain = true;
            }
        }
        if (!plain) {
            sess_final(s, FIN_XMPP_OFFLINE, true,
                       "server offers no SASL PLAIN (offers: %s)",
                       offered[0] ? offered : "nothing");
            sess_shutdown(s);
            return;
        }
    }
    sess_auth(s);
}

/* First child element's name: the defined condition of a failure. */
static const char *
sess_condition(const struct fin_xmpp_el *el, const char *ns)
{
    for (const struct fin_xmpp_el *c = el ? el->children : NULL; c != NULL;
         c = c->next) {
        if ((ns == NULL || (c->ns && strcmp(c->ns, ns) == 0)) &&
            strcmp(c->name, "text") != 0) {
            return c->name;
        }
    }
    return "undefined-condition";
}

static void
sess_on_sasl(struct fin_xmpp_session *s, const struct fin_xmpp_el *st)
{
    if (fin_xmpp_el_is(st, "success", NS_SASL)) {
        s->authenticated = true;
        sess_progress(s, FIN_XMPP_MS_AUTHENTICATED, NULL);
        /* RFC 6120 §6.4.6: a new stream, nothing of the old one is kept */
        s->restart = true;
        fin_xmpp_parser_stop(s->parser);
        return;
    }
    if (fin_xmpp_el_is(st, "failure", NS_SASL)) {
        const char *cond = sess_condition(st, NS_SASL);
        bool creds = strcmp(cond, "not-authorized") == 0 ||
                     strcmp(cond, "account-disabled") == 0 ||
                     strcmp(cond, "credentials-expired") == 0;
        sess_final(s, creds ? FIN_XMPP_AUTH_FAILED : FIN_XMPP_OFFLINE, false,
                   "sasl authentication failed: %s", cond);
        sess_shutdown(s);
        return;
    }
    sess_final(s, FIN_XMPP_OFFLINE, false,
               "unexpected <%s> during authentication", st->name);
    sess_shutdown(s);
}

static void
sess_ready(struct fin_xmpp_session *s)
{
    struct fin_xmpp_out o = {0};

    /* Finesse: non-negative priority or not every event is delivered */
    fin_xmpp_out_raw(&o, "<presence xmlns='" FIN_XMPP_NS_CLIENT
                         "'><priority>0</priority></presence>");
    sess_send(s, &o);
    /* ONLINE only once the server has processed that presence: the engine
     * signs the agent in to Finesse on ONLINE, and a notification routed
     * to our bare JID before the server saw us available is dropped. A
     * server answers one stream's stanzas in order, so the answer to a
     * ping sent after the presence proves it. */
    s->state = S_WAIT_READY;
    s->ping_wait_ms = 0;
    s->next_ping_ms = s->now + s->o.ping_interval_ms;
    sess_send_ping(s, ID_PRESENCE_ACK);
}

/* -- stanzas ---------------------------------------------------------------- */

static bool
jid_is(const char *jid, const char *bare)
{
    size_t n = strlen(bare);

    return jid != NULL && strncmp(jid, bare, n) == 0 &&
           (jid[n] == '\0' || jid[n] == '/');
}

static void
sess_on_message(struct fin_xmpp_session *s, const struct fin_xmpp_el *st)
{
    const char *from = fin_xmpp_el_attr(st, "from");
    const struct fin_xmpp_el *ev = fin_xmpp_el_child(st, "event", NS_PUBSUB_EV);

    if (ev == NULL) {
        return;
    }
    /* only the pubsub service may send notifications: anybody else in the
     * domain could otherwise forge agent or call state */
    if (!jid_is(from, s->pubsub)) {
        cmn_log_warn("event=foreign_pubsub_event agent=%s from=%s", s->agent,
                     from ? from : "");
        return;
    }
    for (const struct fin_xmpp_el *items = ev->children; items != NULL;
         items = items->next) {
        const char *node = fin_xmpp_el_attr(items, "node");
        if (!fin_xmpp_el_is(items, "items", NS_PUBSUB_EV) || node == NULL) {
            continue;
        }
        for (const struct fin_xmpp_el *it = items->children; it != NULL;
             it = it->next) {
            const struct fin_xmpp_el *n;
            if (!fin_xmpp_el_is(it, "item", NS_PUBSUB_EV)) {
                continue;
            }
            /* Finesse: <notification xmlns='http://jabber.org/protocol/
             * pubsub'> holding the escaped <Update> (reference/finesse.md
             * §2); the namespace is not checked, the sender is */
            n = fin_xmpp_el_child(it, "notification", NULL);
            if (n == NULL || n->text_len == 0) {
                continue;
            }
            struct fin_xmpp_event up = {.kind = FIN_XMPP_UPDATE,
                                        .agent = s->agent,
                                        .node = node,
                                        .payload = n->text,
                                        .payload_len = n->text_len};
            cmn_log_debug("event=update agent=%s node=%s bytes=%zu", s->agent,
                          node, n->text_len);
            sess_emit(s, &up);
        }
    }
}

static void
sess_on_presence(struct fin_xmpp_session *s, const struct fin_xmpp_el *st)
{
    const char *from = fin_xmpp_el_attr(st, "from");
    const char *type = fin_xmpp_el_attr(st, "type");

    if (from == NULL || jid_is(from, s->bare)) {
        return; /* our own resources */
    }
    if (type != NULL && strcmp(type, "unavailable") != 0) {
        return; /* subscribe, error, probe...: not availability */
    }
    struct fin_xmpp_event ev = {.kind = FIN_XMPP_PRESENCE,
                                .agent = s->agent,
                                .from = from,
                                .available = type == NULL};
    sess_emit(s, &ev);
}

static void
sess_iq_reply(struct fin_xmpp_session *s, const struct fin_xmpp_el *st,
              bool error)
{
    struct fin_xmpp_out o = {0};
    const char *id = fin_xmpp_el_attr(st, "id");
    const char *from = fin_xmpp_el_attr(st, "from");

    fin_xmpp_out_raw(&o, "<iq xmlns='" FIN_XMPP_NS_CLIENT "' type='");
    fin_xmpp_out_raw(&o, error ? "error" : "result");
    fin_xmpp_out_raw(&o, "' id='");
    fin_xmpp_out_esc(&o, id != NULL ? id : "");
    fin_xmpp_out_raw(&o, "'");
    if (from != NULL) {
        fin_xmpp_out_raw(&o, " to='");
        fin_xmpp_out_esc(&o, from);
        fin_xmpp_out_raw(&o, "'");
    }
    if (error) {
        fin_xmpp_out_raw(&o, "><error type='cancel'><service-unavailable "
                             "xmlns='" NS_STANZAS "'/></error></iq>");
    } else {
        fin_xmpp_out_raw(&o, "/>");
    }
    sess_send(s, &o);
}

static void
sess_on_iq(struct fin_xmpp_session *s, const struct fin_xmpp_el *st)
{
    const char *type = fin_xmpp_el_attr(st, "type");
    const char *id = fin_xmpp_el_attr(st, "id");

    if (type == NULL) {
        return;
    }
    if (strcmp(type, "get") == 0 || strcmp(type, "set") == 0) {
        /* RFC 6120 §8.2.3: every request gets an answer */
        bool ping = strcmp(type, "get") == 0 &&
                    fin_xmpp_el_child(st, "ping", NS_PING) != NULL;
        sess_iq_reply(s, st, !ping);
        return;
    }
    if (id == NULL) {
        return;
    }
    if (s->state == S_WAIT_BIND && strcmp(id, ID_BIND) == 0) {
        const struct fin_xmpp_el *jid =
            fin_xmpp_el_child(fin_xmpp_el_child(st, "bind", NS_BIND), "jid",
                              NS_BIND);
        if (strcmp(type, "result") != 0) {
            sess_final(s, FIN_XMPP_OFFLINE, false,
                       "resource binding refused: %s",
                       sess_condition(fin_xmpp_el_child(st, "error", NULL),
                                      NS_STANZAS));
            sess_shutdown(s);
            return;
        }
        free(s->bound);
        s->bound = strdup(jid != NULL && jid->text_len ? jid->text : s->bare);
        sess_progress(s, FIN_XMPP_MS_BOUND, s->bound);
        if (s->state != S_WAIT_BIND) {
            return;
        }
        if (s->session_required) {
            struct fin_xmpp_out o = {0};
            fin_xmpp_out_raw(&o, "<iq xmlns='" FIN_XMPP_NS_CLIENT
                                 "' type='set' id='" ID_SESSION
                                 "'><session xmlns='" NS_SESSION "'/></iq>");
            s->state = S_WAIT_SESSION;
            sess_send(s, &o);
        } else {
            sess_ready(s);
        }
        return;
    }
    if (s->state == S_WAIT_SESSION && strcmp(id, ID_SESSION) == 0) {
        if (strcmp(type, "result") != 0) {
            sess_final(s, FIN_XMPP_OFFLINE, false, "session establishment refused");
            sess_shutdown(s);
            return;
        }
        sess_ready(s);
        return;
    }
    if (strcmp(id, ID_PRESENCE_ACK) == 0) {
        /* any answer, even an error, proves liveness and ordering */
        s->ping_wait_ms = 0;
        if (s->state == S_WAIT_READY) {
            s->state = S_ONLINE;
            struct fin_xmpp_event ev = {.kind = FIN_XMPP_ONLINE,
                                        .agent = s->agent};
            sess_emit(s, &ev);
        }
        return;
    }
    if (strncmp(id, "fscping", 7) == 0) {
        s->ping_wait_ms = 0;
    }
}

static void
sess_on_stream_error(struct fin_xmpp_session *s, const struct fin_xmpp_el *st)
{
    const char *cond = sess_condition(st, NS_STREAMS_EE);
    const struct fin_xmpp_el *text = fin_xmpp_el_child(st, "text", NULL);
    bool auth = !s->authenticated && strcmp(cond, "not-authorized") == 0;

    sess_final(s, auth ? FIN_XMPP_AUTH_FAILED : FIN_XMPP_OFFLINE, false,
               "stream error: %s%s%.120s", cond, text ? ": " : "",
               text ? text->text : "");
    /* RFC 6120 §4.9.1.1: the stream is closed after a stream error */
    sess_shutdown(s);
}

/* -- parser callbacks -------------------------------------------------------- */

static void
sess_on_open(void *cls, const struct fin_xmpp_el *root)
{
    struct fin_xmpp_session *s = cls;
    const char *version = fin_xmpp_el_attr(root, "version");

    if (s->state != S_WAIT_OPEN) {
        return;
    }
    if (version == NULL || strncmp(version, "1.", 2) != 0) {
        sess_final(s, FIN_XMPP_OFFLINE, true,
                   "server does not speak XMPP 1.0 (version %s)",
                   version ? version : "missing");
        sess_shutdown(s);
        return;
    }
    s->state = S_WAIT_FEATURES;
    sess_progress(s, FIN_XMPP_MS_STREAM_OPEN, fin_xmpp_el_attr(root, "id"));
}

static void
sess_on_close(void *cls)
{
    struct fin_xmpp_session *s = cls;

    if (s->state == S_CLOSING || s->state == S_DONE) {
        return;
    }
    sess_final(s, FIN_XMPP_OFFLINE, false, "closed by the server");
    sess_shutdown(s);
}

static void
sess_on_stanza(void *cls, const struct fin_xmpp_el *st)
{
    struct fin_xmpp_session *s = cls;

    if (s->state == S_CLOSING || s->state == S_DONE) {
        return;
    }
    if (fin_xmpp_el_is(st, "error", FIN_XMPP_NS_STREAM)) {
        sess_on_stream_error(s, st);
        return;
    }
    switch (s->state) {
    case S_WAIT_FEATURES:
        if (fin_xmpp_el_is(st, "features", FIN_XMPP_NS_STREAM)) {
            sess_on_features(s, st);
        }
        return;
    case S_WAIT_PROCEED:
        if (fin_xmpp_el_is(st, "proceed", NS_TLS)) {
            s->start_tls = true;
            fin_xmpp_parser_stop(s->parser); /* TLS bytes follow */
        } else {
            sess_final(s, FIN_XMPP_OFFLINE, s->o.tls_required,
                       "tls: the server refused STARTTLS");
            sess_shutdown(s);
        }
        return;
    case S_WAIT_AUTH:
        sess_on_sasl(s, st);
        return;
    case S_CONNECTING:
    case S_WAIT_OPEN:
    case S_TLS:
    case S_CLOSING:
    case S_DONE:
        return;
    case S_WAIT_BIND:
    case S_WAIT_SESSION:
    case S_WAIT_READY:
    case S_ONLINE:
        break;
    }
    if (fin_xmpp_el_is(st, "message", NULL)) {
        sess_on_message(s, st);
    } else if (fin_xmpp_el_is(st, "presence", NULL)) {
        sess_on_presence(s, st);
    } else if (fin_xmpp_el_is(st, "iq", NULL)) {
        sess_on_iq(s, st);
    }
}

/* -- public ------------------------------------------------------------------ */

static char *
dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

struct fin_xmpp_session *
fin_xmpp_session_new(const struct fin_xmpp_session_opts *o,
                     const struct fin_xmpp_session_io *io, long long now,
                     struct cmn_err *err)
{
    struct fin_xmpp_session *s;
    const char *at = o->jid ? strchr(o->jid, '@') : NULL;
    const char *res = o->resource && o->resource[0] ? o->resource : "fsc";
    struct fin_xmpp_parser_cbs cbs = {
        .on_open = sess_on_open, .on_stanza = sess_on_stanza,
        .on_close = sess_on_close};

    if (at == NULL || at == o->jid || at[1] == '\0' || strchr(o->jid, '/')) {
        cmn_err_set(err, "invalid jid");
        return NULL;
    }
    if (strcmp(res, "desktop") == 0) {
        /* the Finesse desktop's resource: using it kicks the agent's own
         * desktop session */
        cmn_err_set(err, "resource \"desktop\" is reserved by Finesse");
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    s->o = *o;
    s->io = *io;
    if (s->o.negotiation_timeout_ms <= 0) {
        s->o.negotiation_timeout_ms = DEFAULT_NEGOTIATION_MS;
    }
    if (s->o.max_stanza == 0) {
        s->o.max_stanza = DEFAULT_MAX_STANZA;
    }
    if (s->o.ping_interval_ms <= 0) {
        s->o.ping_interval_ms = 10000;
    }
    if (s->o.ping_timeout_ms <= 0) {
        s->o.ping_timeout_ms = 2 * s->o.ping_interval_ms;
    }
    s->agent = dup_or_null(o->agent ? o->agent : o->jid);
    s->bare = strdup(o->jid);
    s->local = strndup(o->jid, (size_t)(at - o->jid));
    s->domain = strdup(at + 1);
    s->resource = strdup(res);
    s->password = strdup(o->password ? o->password : "");
    s->pubsub = s->domain ? malloc(strlen(s->domain) + 8) : NULL;
    s->parser = fin_xmpp_parser_new(o->framing, s->o.max_stanza, &cbs, s);
    if (s->agent == NULL || s->bare == NULL || s->local == NULL ||
        s->domain == NULL || s->resource == NULL || s->password == NULL ||
        s->pubsub == NULL || s->parser == NULL) {
        fin_xmpp_session_free(s);
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    snprintf(s->pubsub, strlen(s->domain) + 8, "pubsub.%s", s->domain);
    s->o.agent = s->o.jid = s->o.resource = s->o.password = NULL;
    s->now = s->started_ms = now;
    s->state = S_CONNECTING;
    return s;
}

void
fin_xmpp_session_free(struct fin_xmpp_session *s)
{
    if (s == NULL) {
        return;
    }
    fin_xmpp_parser_free(s->parser);
    if (s->password != NULL) {
        explicit_bzero(s->password, strlen(s->password));
    }
    free(s->password);
    free(s->agent);
    free(s->bare);
    free(s->local);
    free(s->domain);
    free(s->pubsub);
    free(s->resource);
    free(s->bound);
    free(s);
}

/* After the parser returned: what a stanza asked for that cannot happen
 * inside the parser's own callback. */
static void
sess_after_input(struct fin_xmpp_session *s)
{
    if (s->state == S_CLOSING || s->state == S_DONE) {
        s->start_tls = s->restart = false; /* closed meanwhile */
        return;
    }
    if (s->start_tls) {
        s->start_tls = false;
        s->state = S_TLS;
        if (s->io.start_tls == NULL || s->io.start_tls(s->io.io) != CMN_OK) {
            sess_final(s, FIN_XMPP_OFFLINE, false, "tls: handshake could not start");
            sess_shutdown(s);
        }
        return;
    }
    if (s->restart) {
        s->restart = false;
        if (fin_xmpp_parser_reset(s->parser) != CMN_OK) {
            sess_final(s, FIN_XMPP_OFFLINE, false, "out of memory");
            sess_shutdown(s);
            return;
        }
        sess_send_header(s);
    }
}

static void
sess_on_parse_error(struct fin_xmpp_session *s)
{
    sess_final(s, FIN_XMPP_OFFLINE, false, "bad XML from the server: %s",
               fin_xmpp_parser_error(s->parser));
    /* no close element: the stream is not well-formed any more */
    s->stream_open = false;
    sess_shutdown(s);
}

void
fin_xmpp_session_transport_up(struct fin_xmpp_session *s, bool secured)
{
    if (s->state != S_CONNECTING) {
        return;
    }
    s->secured = secured;
    sess_send_header(s);
}

void
fin_xmpp_session_secured(struct fin_xmpp_session *s)
{
    if (s->state != S_TLS) {
        return;
    }
    s->secured = true;
    sess_progress(s, FIN_XMPP_MS_TLS, NULL);
    if (fin_xmpp_parser_reset(s->parser) != CMN_OK) {
        sess_final(s, FIN_XMPP_OFFLINE, false, "out of memory");
        sess_shutdown(s);
        return;
    }
    sess_send_header(s);
}

void
fin_xmpp_session_data(struct fin_xmpp_session *s, const char *buf, size_t len)
{
    if (s->state == S_DONE || s->state == S_CLOSING || s->state == S_TLS) {
        return;
    }
    if (fin_xmpp_parser_feed(s->parser, buf, len) != CMN_OK) {
        sess_on_parse_error(s);
        return;
    }
    sess_after_input(s);
}

void
fin_xmpp_session_message(struct fin_xmpp_session *s, const char *buf,
                         size_t len)
{
    if (s->state == S_DONE || s->state == S_CLOSING) {
        return;
    }
    if (fin_xmpp_parser_message(s->parser, buf, len) != CMN_OK) {
        sess_on_parse_error(s);
        return;
    }
    sess_after_input(s);
}

void
fin_xmpp_session_transport_down(struct fin_xmpp_session *s,
                                enum fin_xmpp_down why, const char *detail)
{
    enum sess_state was = s->state;
    const char *d = detail != NULL && detail[0] ? detail : "no detail";

    s->state = S_DONE;
    s->stream_open = false;
    if (was == S_CLOSING || was == S_DONE) {
        return;
    }
    switch (why) {
    case FIN_XMPP_DOWN_CONNECT:
        sess_final(s, FIN_XMPP_OFFLINE, false, "connect failed: %s", d);
        break;
    case FIN_XMPP_DOWN_TLS_CERT:
        cmn_log_warn("event=tls_cert_rejected agent=%s error=\"%s\"", s->agent,
                     d);
        sess_final(s, FIN_XMPP_OFFLINE, true, "tls certificate rejected: %s", d);
        break;
    case FIN_XMPP_DOWN_TLS:
        sess_final(s, FIN_XMPP_OFFLINE, false, "tls handshake failed: %s", d);
        break;
    case FIN_XMPP_DOWN_WS_REFUSED:
        sess_final(s, FIN_XMPP_OFFLINE, true,
                   "websocket upgrade refused: %s", d);
        break;
    case FIN_XMPP_DOWN_WS_SUBPROTOCOL:
        sess_final(s, FIN_XMPP_OFFLINE, true,
                   "websocket: the server did not accept the xmpp "
                   "subprotocol (RFC 7395): %s", d);
        break;
    case FIN_XMPP_DOWN_PROTOCOL:
        sess_final(s, FIN_XMPP_OFFLINE, false, "bad frame from the server: %s", d);
        break;
    case FIN_XMPP_DOWN_LOST:
    case FIN_XMPP_DOWN_CLOSED:
        if (was == S_CONNECTING) {
            sess_final(s, FIN_XMPP_OFFLINE, false, "connect failed: %s", d);
        } else {
            sess_final(s, FIN_XMPP_OFFLINE, false, "connection lost: %s", d);
        }
        break;
    }
}

void
fin_xmpp_session_tick(struct fin_xmpp_session *s, long long now)
{
    s->now = now;
    switch (s->state) {
    case S_ONLINE:
        if (s->ping_wait_ms != 0 &&
            now - s->ping_wait_ms >= s->o.ping_timeout_ms) {
            sess_final(s, FIN_XMPP_OFFLINE, false, "ping timeout");
            sess_shutdown(s);
        } else if (now >= s->next_ping_ms) {
            sess_send_ping(s, NULL);
            s->next_ping_ms = now + s->o.ping_interval_ms;
        }
        return;
    case S_CLOSING:
    case S_DONE:
        return;
    default:
        if (now - s->started_ms >= s->o.negotiation_timeout_ms) {
            static const char *const names[] = {
                [S_CONNECTING] = "connecting",
                [S_WAIT_OPEN] = "waiting for the stream",
                [S_WAIT_FEATURES] = "waiting for stream features",
                [S_WAIT_PROCEED] = "waiting for STARTTLS",
                [S_TLS] = "in the TLS handshake",
                [S_WAIT_AUTH] = "waiting for SASL",
                [S_WAIT_BIND] = "waiting for resource binding",
                [S_WAIT_SESSION] = "waiting for the session",
                [S_WAIT_READY] = "waiting for the presence to be processed",
            };
            sess_final(s, FIN_XMPP_OFFLINE, false,
                       "stream negotiation timed out %s", names[s->state]);
            sess_shutdown(s);
        }
        return;
    }
}

void
fin_xmpp_session_close(struct fin_xmpp_session *s, bool quiet)
{
    if (quiet) {
        s->quiet = true;
    }
    if (s->state == S_ONLINE || s->state == S_WAIT_READY) {
        struct fin_xmpp_out o = {0};
        fin_xmpp_out_raw(&o, "<presence xmlns='" FIN_XMPP_NS_CLIENT
                             "' type='unavailable'/>");
        sess_send(s, &o);
    }
    if (!quiet) {
        sess_final(s, FIN_XMPP_OFFLINE, false, "closed");
    }
    sess_shutdown(s);
}

bool
fin_xmpp_session_done(const struct fin_xmpp_session *s)
{
    return s->state == S_DONE;
}

bool
fin_xmpp_session_online(const struct fin_xmpp_session *s)
{
    return s->state == S_ONLINE;
}

bool
fin_xmpp_session_secured_now(const struct fin_xmpp_session *s)
{
    return s->secured;
}
