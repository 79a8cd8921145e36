/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fin_xmpp_ws.c - XMPP over WebSocket (RFC 7395), the "websocket"
 * transport: Finesse's wss://<node>:8445/ws, the one XMPP door a stock
 * Finesse 12.5+ leaves open. libwebsockets does the HTTP upgrade, the
 * framing and (wss) TLS with the loop's client context; this file checks
 * what RFC 7395 asks of the client and turns lws callbacks into session
 * reports:
 *   - the server must answer the upgrade with 101 and the "xmpp"
 *     subprotocol (§3.1); lws accepts a 101 without any subprotocol, so
 *     the header is checked here before the connection is established;
 *   - every message is one text frame holding one element; messages are
 *     reassembled from fragments up to FIN_XMPP_WS_MAX_MESSAGE bytes, and
 *     a binary or larger message ends the session (the worker and its
 *     other connections are not affected);
 *   - the certificate (wss) must chain to the loop's trust and name the
 *     URL's host (lws checks the name; the verdict is caught in
 *     fin_xmpp_ws_on_cert_verify so a rejection is reported as such).
 * HTTP/1.1 only (ALPN): RFC 8441 WebSocket over HTTP/2 is not what
 * Finesse serves. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "cmn_log.h"
#include "fin_xmpp_link.h"

#define FIN_XMPP_WS_MAX_MESSAGE ((size_t)4 << 20)
#define WS_OUT_MAX              ((size_t)16 << 20)
#define WS_CLOSE_WAIT_S         3

enum ws_state {
    W_IDLE,
    W_CONNECTING,
    W_UP,
    W_CLOSING,
    W_DOWN, /* reported to the session */
};

struct ws_msg {
    struct ws_msg *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE + len */
};

struct ws {
    struct fin_xmpp_carrier base;
    char *url;
    char *ca_file;
    bool tls;
    char host[256];
    char hosthdr[280];
    char path[512];
    int port;
    enum ws_state state;
    struct lws *wsi;
    struct ws_msg *out_head;
    struct ws_msg *out_tail;
    size_t out_bytes;
    char *in;
    size_t in_len;
    size_t in_cap;
    bool in_bad; /* the current message is being discarded */
    /* the first failure, reported once the wsi is gone */
    bool failed;
    enum fin_xmpp_down why;
    char detail[200];
    char certfail[160]; /* OpenSSL's verdict on the server certificate */
    bool no_subprotocol;
    struct fin_xmpp_defer defer;
};

/* -- reporting -------------------------------------------------------------- */

static void
ws_report(struct ws *t)
{
    if (t->state == W_DOWN) {
        return;
    }
    t->state = W_DOWN;
    fin_xmpp_session_transport_down(t->base.session,
                                    t->failed ? t->why : FIN_XMPP_DOWN_CLOSED,
                                    t->failed ? t->detail : "closed");
}

static void
ws_report_deferred(void *cls)
{
    ws_report(cls);
}

static void ws_fail(struct ws *t, enum fin_xmpp_down why, const char *fmt, ...)
    CMN_PRINTF(3, 4);

static void
ws_fail(struct ws *t, enum fin_xmpp_down why, const char *fmt, ...)
{
    va_list ap;

    if (t->failed || t->state == W_CLOSING || t->state == W_DOWN) {
        return;
    }
    t->failed = true;
    t->why = why;
    va_start(ap, fmt);
    vsnprintf(t->detail, sizeof(t->detail), fmt, ap);
    va_end(ap);
}

static void
ws_free_queue(struct ws *t)
{
    while (t->out_head != NULL) {
        struct ws_msg *m = t->out_head;
        t->out_head = m->next;
        explicit_bzero(m->buf, LWS_PRE + m->len);
        free(m);
    }
    t->out_tail = NULL;
    t->out_bytes = 0;
}

/* Ends the connection now (no close handshake); the report follows from
 * lws's close callback, or from the loop when there is no wsi. */
static void
ws_kill(struct ws *t)
{
    if (t->wsi != NULL) {
        lws_set_timeout(t->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    } else if (t->state != W_DOWN) {
        fin_xmpp_loop_defer(t->base.loop, &t->defer, ws_report_deferred, t);
    }
    if (t->state != W_DOWN) {
        t->state = W_CLOSING;
    }
}

/* -- lws callbacks ------------------------------------------------------------ */

void
fin_xmpp_ws_on_cert_verify(struct lws *wsi, X509_STORE_CTX *x509,
                           int preverify_ok)
{
    struct ws *t = wsi ? lws_get_opaque_user_data(wsi) : NULL;

    if (t == NULL || preverify_ok || x509 == NULL || t->certfail[0] != '\0') {
        return;
    }
    int e = X509_STORE_CTX_get_error(x509);
    if (e != X509_V_OK) {
        snprintf(t->certfail, sizeof(t->certfail), "%s",
                 X509_verify_cert_error_string(e));
    }
}

/* CONNECTION_ERROR: why the connection never became a WebSocket. */
static void
ws_on_connect_error(struct ws *t, struct lws *wsi, const char *in)
{
    const char *why = in != NULL && in[0] ? in : "connection failed";
    int status = wsi != NULL ? (int)lws_http_client_http_response(wsi) : 0;

    if (t->state == W_CLOSING && !t->failed) {
        /* we closed it before it was up: nothing to explain */
    } else if (t->certfail[0] != '\0') {
        fin_xmpp_carrier_note(&t->base, "tls", "certificate rejected: %s",
                                t->certfail);
        ws_fail(t, FIN_XMPP_DOWN_TLS_CERT, "%s", t->certfail);
    } else if (t->no_subprotocol) {
        fin_xmpp_carrier_note(&t->base, "websocket",
                                "%s answered 101 without the xmpp subprotocol",
                                t->url);
        ws_fail(t, FIN_XMPP_DOWN_WS_SUBPROTOCOL, "%s", t->url);
    } else if (strstr(why, "not 101") != NULL ||
               strstr(why, "unauthorized") != NULL || status >= 200) {
        fin_xmpp_carrier_note(&t->base, "websocket",
                                "%s refused the upgrade: HTTP %d", t->url,
                                status);
        ws_fail(t, FIN_XMPP_DOWN_WS_REFUSED, "%s answered HTTP %d", t->url,
                status);
    } else if (strstr(why, "PROTOCOL") != NULL ||
               strstr(why, "protocol") != NULL) {
        ws_fail(t, FIN_XMPP_DOWN_WS_SUBPROTOCOL, "%s: %s", t->url, why);
    } else if (strstr(why, "SSL") != NULL || strstr(why, "ssl") != NULL ||
               strstr(why, "tls") != NULL) {
        fin_xmpp_carrier_note(&t->base, "tls", "handshake failed: %s", why);
        ws_fail(t, FIN_XMPP_DOWN_TLS, "%s", why);
    } else {
        fin_xmpp_carrier_note(&t->base, "tcp", "%s: %s", t->url, why);
        ws_fail(t, FIN_XMPP_DOWN_CONNECT, "%s: %s", t->url, why);
    }
    /* lws frees the wsi after this callback: report from the loop, also
     * because this may run inside lws_client_connect_via_info */
    t->wsi = NULL;
    fin_xmpp_loop_defer(t->base.loop, &t->defer, ws_report_deferred, t);
}

/* The last look at the upgrade response before lws accepts it. */
static int
ws_check_subprotocol(struct ws *t, struct lws *wsi)
{
    char proto[64];
    int n = lws_hdr_copy(wsi, proto, sizeof(proto), WSI_TOKEN_PROTOCOL);

    if (n <= 0 || strcmp(proto, "xmpp") != 0) {
        t->no_subprotocol = true;
        return -1;
    }
    return 0;
}

static void
ws_on_receive(struct ws *t, struct lws *wsi, const void *in, size_t len)
{
    bool first = lws_is_first_fragment(wsi);
    bool last = lws_is_final_fragment(wsi) &&
                lws_remaining_packet_payload(wsi) == 0;

    if (first) {
        t->in_len = 0;
        t->in_bad = false;
    }
    if (t->in_bad) {
        return;
    }
    if (lws_frame_is_binary(wsi)) {
        /* RFC 7395 §3.2: "text" frames only */
        t->in_bad = true;
        ws_fail(t, FIN_XMPP_DOWN_PROTOCOL, "binary message");
        ws_kill(t);
        return;
    }
    if (len == 0 && !last) {
        return;
    }
    if (t->in_len + len > FIN_XMPP_WS_MAX_MESSAGE) {
        t->in_bad = true;
        ws_fail(t, FIN_XMPP_DOWN_PROTOCOL, "message larger than %zu bytes",
                FIN_XMPP_WS_MAX_MESSAGE);
        ws_kill(t);
        return;
    }
    if (t->in_len + len > t->in_cap) {
        size_t cap = t->in_cap ? t->in_cap : 8192;
        while (cap < t->in_len + len) {
            cap *= 2;
        }
        char *nb = realloc(t->in, cap);
        if (nb == NULL) {
            t->in_bad = true;
            ws_fail(t, FIN_XMPP_DOWN_LOST, "out of memory");
            ws_kill(t);
            return;
        }
        t->in = nb;
        t->in_cap = cap;
    }
    if (len > 0) {
        memcpy(t->in + t->in_len, in, len);
        t->in_len += len;
    }
    if (last) {
        size_t n = t->in_len;
        t->in_len = 0;
        fin_xmpp_session_message(t->base.session, t->in, n);
        if (t->in_cap > 65536 && t->state == W_UP) {
            /* one big message should not pin its buffer for the session's
             * life */
            free(t->in);
            t->in = NULL;
            t->in_cap = 0;
        }
    }
}

/* One queued message per writable callback (lws's rule). */
static int
ws_on_writable(struct ws *t, struct lws *wsi)
{
    struct ws_msg *m = t->out_head;

    if (m != NULL) {
        t->out_head = m->next;
        if (t->out_head == NULL) {
            t->out_tail = NULL;
        }
        t->out_bytes -= m->len;
        int n = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
        explicit_bzero(m->buf, LWS_PRE + m->len);
        free(m);
        if (n < 0) {
            ws_fail(t, FIN_XMPP_DOWN_LOST, "write failed");
            return -1;
        }
    }
    if (t->out_head != NULL) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    if (t->state == W_CLOSING) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
        return -1;
    }
    return 0;
}

int
fin_xmpp_ws_lws_callback(struct lws *wsi, enum lws_callback_reasons reason,
                         void *user, void *in, size_t len)
{
    struct ws *t = wsi ? lws_get_opaque_user_data(wsi) : NULL;

    (void)user;
    if (t == NULL) {
        return 0;
    }
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        ws_on_connect_error(t, wsi, in);
        lws_set_opaque_user_data(wsi, NULL);
        return 0;
    case LWS_CALLBACK_CLIENT_FILTER_PRE_ESTABLISH:
        return ws_check_subprotocol(t, wsi);
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (t->state != W_CONNECTING) {
            return -1; /* closed while connecting */
        }
        t->state = W_UP;
        fin_xmpp_carrier_note(&t->base, "websocket",
                                "%s upgraded (subprotocol xmpp)", t->url);
        fin_xmpp_session_transport_up(t->base.session, t->tls);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (t->state == W_UP) {
            ws_on_receive(t, wsi, in, len);
        }
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return ws_on_writable(t, wsi);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (t->state == W_UP) {
            unsigned code = len >= 2 ? ((unsigned)((unsigned char *)in)[0] << 8 |
                                        ((unsigned char *)in)[1])
                                     : 1005;
            ws_fail(t, FIN_XMPP_DOWN_LOST,
                    "the server closed the WebSocket (code %u)", code);
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (t->state == W_UP) {
            ws_fail(t, FIN_XMPP_DOWN_LOST, "the WebSocket was closed");
        }
        t->wsi = NULL;
        lws_set_opaque_user_data(wsi, NULL);
        ws_report(t);
        return 0;
    default:
        return 0;
    }
}

/* -- ops -------------------------------------------------------------------- */

static void
ws_start(struct fin_xmpp_carrier *base)
{
    struct ws *t = (struct ws *)base;
    struct cmn_err err = {{0}};
    struct lws_client_connect_info i;
    struct lws_vhost *vh = fin_xmpp_loop_vhost(t->base.loop, t->ca_file, &err);

    t->state = W_CONNECTING;
    if (vh == NULL) {
        ws_fail(t, FIN_XMPP_DOWN_TLS, "%s", err.msg);
        ws_kill(t);
        return;
    }
    memset(&i, 0, sizeof(i));
    i.context = fin_xmpp_loop_lws(t->base.loop);
    i.vhost = vh;
    i.address = t->host;
    i.port = t->port;
    i.path = t->path;
    i.host = t->hosthdr;
    i.protocol = "xmpp";
    i.local_protocol_name = FIN_XMPP_WS_PROTOCOL;
    i.ssl_connection = t->tls ? LCCSCF_USE_SSL : 0;
    i.alpn = "http/1.1";
    i.opaque_user_data = t;
    i.pwsi = &t->wsi;
    if (lws_client_connect_via_info(&i) == NULL && t->state == W_CONNECTING &&
        !t->failed) {
        /* refused before any callback (e.g. no memory) */
        t->wsi = NULL;
        ws_fail(t, FIN_XMPP_DOWN_CONNECT, "%s: connection could not start",
                t->url);
        ws_kill(t);
    }
}

static int
ws_send(struct fin_xmpp_carrier *base, const char *data, size_t len)
{
    struct ws *t = (struct ws *)base;
    struct ws_msg *m;

    if (t->state != W_UP || t->wsi == NULL) {
        return CMN_IO;
    }
    if (t->out_bytes + len > WS_OUT_MAX) {
        ws_fail(t, FIN_XMPP_DOWN_LOST, "send queue full");
        ws_kill(t);
        return CMN_IO;
    }
    m = malloc(sizeof(*m) + LWS_PRE + len);
    if (m == NULL) {
        ws_fail(t, FIN_XMPP_DOWN_LOST, "out of memory");
        ws_kill(t);
        return CMN_NOMEM;
    }
    m->next = NULL;
    m->len = len;
    memcpy(m->buf + LWS_PRE, data, len);
    if (t->out_tail != NULL) {
        t->out_tail->next = m;
    } else {
        t->out_head = m;
    }
    t->out_tail = m;
    t->out_bytes += len;
    lws_callback_on_writable(t->wsi);
    return CMN_OK;
}

static void
ws_close(struct fin_xmpp_carrier *base)
{
    struct ws *t = (struct ws *)base;

    if (t->state == W_CLOSING || t->state == W_DOWN) {
        return;
    }
    if (t->state == W_UP && t->wsi != NULL && !t->failed) {
        /* flush the queue (the stream's <close/>), then a close frame */
        t->state = W_CLOSING;
        lws_set_timeout(t->wsi, PENDING_TIMEOUT_CLOSE_SEND, WS_CLOSE_WAIT_S);
        lws_callback_on_writable(t->wsi);
        return;
    }
    ws_kill(t);
}

static void
ws_free(struct fin_xmpp_carrier *base)
{
    struct ws *t = (struct ws *)base;

    fin_xmpp_defer_cancel(&t->defer);
    if (t->wsi != NULL) {
        /* never while lws still knows us; be safe anyway */
        lws_set_opaque_user_data(t->wsi, NULL);
        lws_set_timeout(t->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
    ws_free_queue(t);
    if (t->in != NULL) {
        explicit_bzero(t->in, t->in_cap);
        free(t->in);
    }
    free(t->url);
    free(t->ca_file);
    free(t);
}

static const struct fin_xmpp_carrier_ops ws_ops = {
    .start = ws_start,
    .send = ws_send,
    .start_tls = NULL,
    .close = ws_close,
    .free = ws_free,
};

struct fin_xmpp_carrier *
fin_xmpp_ws_new(struct fin_xmpp_loop *l, const struct fin_xmpp_target *tg,
                struct cmn_err *err)
{
    struct ws *t;

    if (tg->url == NULL) {
        cmn_err_set(err, "xmpp websocket: no URL");
        return NULL;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    if (fin_xmpp_parse_ws_url(tg->url, &t->tls, t->host, sizeof(t->host),
                              &t->port, t->path, sizeof(t->path)) != CMN_OK) {
        free(t);
        cmn_err_set(err, "xmpp websocket: bad URL (want ws[s]://host[:port]/path)");
        return NULL;
    }
    if (t->port == (t->tls ? 443 : 80)) {
        snprintf(t->hosthdr, sizeof(t->hosthdr), "%s", t->host);
    } else {
        snprintf(t->hosthdr, sizeof(t->hosthdr),
                 strchr(t->host, ':') ? "[%s]:%d" : "%s:%d", t->host, t->port);
    }
    t->base.ops = &ws_ops;
    t->base.loop = l;
    t->base.note = tg->note;
    t->base.note_cls = tg->note_cls;
    t->url = strdup(tg->url);
    t->ca_file = tg->ca_file ? strdup(tg->ca_file) : NULL;
    if (t->url == NULL || (tg->ca_file != NULL && t->ca_file == NULL)) {
        ws_free(&t->base);
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    return &t->base;
}
