/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fin_xmpp_loop.c - the libwebsockets context XMPP transports share
 * (fin_xmpp_loop.h): raw descriptors, timers, deferred calls, and one TLS
 * client context (and lws vhost) per CA file. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "cmn_log.h"
#include "fin_xmpp_loop.h"

#define LOOP_MAX_CAS      4
#define LOOP_RAW_PROTOCOL "fsc-raw"

struct loop_ca {
    char *path; /* NULL: system roots only */
    SSL_CTX *tls;
    struct lws_vhost *vh;
};

struct fin_xmpp_loop {
    struct lws_context *ctx;
    struct lws_vhost *raw_vh; /* adopted descriptors (no TLS) */
    struct loop_ca cas[LOOP_MAX_CAS];
    int ncas;
    lws_sorted_usec_list_t tick;
    struct fin_xmpp_defer *defers; /* scheduled, not yet run */
    bool dying;
    int tick_ms;
    void (*tick_cb)(void *cls);
    void *tick_cls;
};

struct fin_xmpp_watch {
    struct lws *wsi;
    struct fin_xmpp_watch_ops ops;
    void *cls;
    bool closing;
};

/* -- lws protocol for adopted descriptors ---------------------------------- */

static int
loop_raw_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                  void *in, size_t len)
{
    struct fin_xmpp_watch *w = wsi ? lws_get_opaque_user_data(wsi) : NULL;

    switch (reason) {
    case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
        /* lws sends this to the first protocol whatever the connection:
         * here only WebSocket clients verify through lws */
        fin_xmpp_ws_on_cert_verify(wsi, user, (int)len);
        (void)in;
        return 0;
    case LWS_CALLBACK_RAW_RX_FILE:
        if (w != NULL && !w->closing) {
            w->ops.readable(w->cls);
        }
        return w != NULL && w->closing ? -1 : 0;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        if (w != NULL && !w->closing) {
            w->ops.writable(w->cls);
        }
        return w != NULL && w->closing ? -1 : 0;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (w != NULL) {
            lws_set_opaque_user_data(wsi, NULL);
            w->wsi = NULL;
            w->ops.closed(w->cls);
            free(w);
        }
        return 0;
    default:
        return 0;
    }
}

/* The WebSocket receive buffer is per connection: 4 KiB keeps 500
 * connections of a worker at 2 MB (64 KiB would be 32 MB); bigger messages
 * arrive in pieces that fin_xmpp_ws.c puts together. */
#define LOOP_WS_RX_BUFFER 4096

static const struct lws_protocols loop_protocols[] = {
    {LOOP_RAW_PROTOCOL, loop_raw_callback, 0, 0, 0, NULL, 0},
    {FIN_XMPP_WS_PROTOCOL, fin_xmpp_ws_lws_callback, 0, LOOP_WS_RX_BUFFER, 0,
     NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* -- logging -------------------------------------------------------------- */

static void
loop_lws_log(int level, const char *line)
{
    char msg[300];
    size_t n;

    snprintf(msg, sizeof(msg), "%s", line);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) {
        msg[--n] = '\0';
    }
    /* lws at ERR/WARN: handshake and TLS failures, never payloads */
    if (level == LLL_ERR) {
        cmn_log_warn("event=lws msg=\"%s\"", msg);
    } else {
        cmn_log_info("event=lws msg=\"%s\"", msg);
    }
}

/* -- context ----------------------------------------------------------------
 */

struct fin_xmpp_loop *
fin_xmpp_loop_new(int max_fds, struct cmn_err *err)
{
    struct fin_xmpp_loop *l = calloc(1, sizeof(*l));
    struct lws_context_creation_info info;

    (void)max_fds; /* lws sizes its tables from RLIMIT_NOFILE: callers cap it */
    if (l == NULL) {
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    /* FSC_LWS_DEBUG=1: lws's own trace, for debugging a handshake */
    lws_set_log_level(getenv("FSC_LWS_DEBUG") != NULL
                          ? LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO
                          : LLL_ERR | LLL_WARN,
                      loop_lws_log);
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = loop_protocols;
    info.gid = -1;
    info.uid = -1;
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                   LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    l->ctx = lws_create_context(&info);
    if (l->ctx == NULL) {
        cmn_err_set(err, "libwebsockets context creation failed");
        free(l);
        return NULL;
    }
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = loop_protocols;
    info.vhost_name = "raw";
    l->raw_vh = lws_create_vhost(l->ctx, &info);
    if (l->raw_vh == NULL) {
        cmn_err_set(err, "libwebsockets vhost creation failed");
        fin_xmpp_loop_free(l);
        return NULL;
    }
    return l;
}

void
fin_xmpp_loop_free(struct fin_xmpp_loop *l)
{
    if (l == NULL) {
        return;
    }
    lws_sul_cancel(&l->tick);
    /* lws forgets its timers with the context: take ours out first, and
     * run anything deferred during the teardown at once */
    while (l->defers != NULL) {
        fin_xmpp_defer_cancel(l->defers);
    }
    l->dying = true;
    if (l->ctx != NULL) {
        lws_context_destroy(l->ctx);
    }
    for (int i = 0; i < l->ncas; i++) {
        free(l->cas[i].path);
        SSL_CTX_free(l->cas[i].tls);
    }
    free(l);
}

struct lws_context *
fin_xmpp_loop_lws(struct fin_xmpp_loop *l)
{
    return l->ctx;
}

void
fin_xmpp_loop_run_once(struct fin_xmpp_loop *l)
{
    lws_service(l->ctx, 0);
}

static void
loop_on_tick(lws_sorted_usec_list_t *sul)
{
    struct fin_xmpp_loop *l = lws_container_of(sul, struct fin_xmpp_loop, tick);

    lws_sul_schedule(l->ctx, 0, &l->tick, loop_on_tick,
                     (lws_usec_t)l->tick_ms * LWS_US_PER_MS);
    l->tick_cb(l->tick_cls);
}

void
fin_xmpp_loop_every(struct fin_xmpp_loop *l, int interval_ms,
                    void (*cb)(void *cls), void *cls)
{
    l->tick_ms = interval_ms > 0 ? interval_ms : 20;
    l->tick_cb = cb;
    l->tick_cls = cls;
    lws_sul_schedule(l->ctx, 0, &l->tick, loop_on_tick,
                     (lws_usec_t)l->tick_ms * LWS_US_PER_MS);
}

/* -- TLS --------------------------------------------------------------------
 */

/* RFC 6066 §3: SNI carries a DNS name, never an IP literal; lws sends
 * the URL's host whatever it is, and servers with virtual hosts (prosody,
 * for one) answer an unknown name with an "unrecognized name" alert. So a
 * URL or node given by address goes without SNI. */
static void
loop_tls_info(const SSL *ssl, int where, int ret)
{
    const char *name;
    struct in6_addr a6;
    struct in_addr a4;

    (void)ret;
    if (!(where & SSL_CB_HANDSHAKE_START)) {
        return;
    }
    name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name != NULL && (inet_pton(AF_INET, name, &a4) == 1 ||
                         inet_pton(AF_INET6, name, &a6) == 1)) {
        SSL_set_tlsext_host_name((SSL *)ssl, NULL);
    }
}

static SSL_CTX *
loop_tls_new(const char *ca_file, struct cmn_err *err)
{
    SSL_CTX *tls = SSL_CTX_new(TLS_client_method());

    if (tls == NULL) {
        cmn_err_set(err, "tls: out of memory");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(tls, TLS1_2_VERSION);
    SSL_CTX_set_verify(tls, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_info_callback(tls, loop_tls_info);
    SSL_CTX_set_mode(tls, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* the system's roots, plus the configured anchor (a private Finesse
     * CA, or a node's self-signed certificate) */
    if (SSL_CTX_set_default_verify_paths(tls) != 1) {
        ERR_clear_error();
    }
    if (ca_file != NULL &&
        SSL_CTX_load_verify_locations(tls, ca_file, NULL) != 1) {
        unsigned long e = ERR_get_error();
        cmn_err_set(err, "tls: cannot load ca_file %s: %s", ca_file,
                    e ? ERR_reason_error_string(e) : "unknown error");
        ERR_clear_error();
        SSL_CTX_free(tls);
        return NULL;
    }
    return tls;
}

static struct loop_ca *
loop_ca(struct fin_xmpp_loop *l, const char *ca_file, struct cmn_err *err)
{
    struct loop_ca *ca;

    for (int i = 0; i < l->ncas; i++) {
        ca = &l->cas[i];
        if ((ca->path == NULL && ca_file == NULL) ||
            (ca->path != NULL && ca_file != NULL &&
             strcmp(ca->path, ca_file) == 0)) {
            return ca;
        }
    }
    if (l->ncas == LOOP_MAX_CAS) {
        cmn_err_set(err, "tls: more than %d different ca_file values",
                    LOOP_MAX_CAS);
        return NULL;
    }
    ca = &l->cas[l->ncas];
    memset(ca, 0, sizeof(*ca));
    ca->tls = loop_tls_new(ca_file, err);
    if (ca->tls == NULL) {
        return NULL;
    }
    if (ca_file != NULL && (ca->path = strdup(ca_file)) == NULL) {
        SSL_CTX_free(ca->tls);
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    l->ncas++;
    return ca;
}

SSL_CTX *
fin_xmpp_loop_tls(struct fin_xmpp_loop *l, const char *ca_file,
                  struct cmn_err *err)
{
    struct loop_ca *ca = loop_ca(l, ca_file, err);

    return ca != NULL ? ca->tls : NULL;
}

struct lws_vhost *
fin_xmpp_loop_vhost(struct fin_xmpp_loop *l, const char *ca_file,
                    struct cmn_err *err)
{
    struct loop_ca *ca = loop_ca(l, ca_file, err);
    struct lws_context_creation_info info;
    char name[16];

    if (ca == NULL) {
        return NULL;
    }
    if (ca->vh != NULL) {
        return ca->vh;
    }
    snprintf(name, sizeof(name), "ca%d", (int)(ca - l->cas));
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = loop_protocols;
    info.vhost_name = name;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    /* lws uses our context as is (the loop keeps ownership) */
    info.provided_client_ssl_ctx = ca->tls;
    ca->vh = lws_create_vhost(l->ctx, &info);
    if (ca->vh == NULL) {
        cmn_err_set(err, "libwebsockets vhost creation failed");
    }
    return ca->vh;
}

/* -- watched descriptors ----------------------------------------------------
 */

struct fin_xmpp_watch *
fin_xmpp_loop_watch(struct fin_xmpp_loop *l, int fd,
                    const struct fin_xmpp_watch_ops *ops, void *cls,
                    struct cmn_err *err)
{
    struct fin_xmpp_watch *w = calloc(1, sizeof(*w));
    lws_adopt_desc_t ad;

    if (w == NULL) {
        close(fd);
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    w->ops = *ops;
    w->cls = cls;
    memset(&ad, 0, sizeof(ad));
    ad.vh = l->raw_vh;
    ad.type = LWS_ADOPT_RAW_FILE_DESC;
    ad.fd.filefd = fd;
    ad.vh_prot_name = LOOP_RAW_PROTOCOL;
    ad.opaque = w;
    w->wsi = lws_adopt_descriptor_vhost_via_info(&ad);
    if (w->wsi == NULL) {
        /* lws closed fd */
        free(w);
        cmn_err_set(err, "libwebsockets refused the descriptor");
        return NULL;
    }
    return w;
}

void
fin_xmpp_watch_want_write(struct fin_xmpp_watch *w)
{
    if (w->wsi != NULL && !w->closing) {
        lws_callback_on_writable(w->wsi);
    }
}

void
fin_xmpp_watch_close(struct fin_xmpp_watch *w)
{
    if (w->wsi == NULL || w->closing) {
        return;
    }
    w->closing = true;
    lws_set_timeout(w->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* -- deferred calls
 * ------------------------------------------------------------ */

static void
defer_unlink(struct fin_xmpp_defer *d)
{
    struct fin_xmpp_loop *l = d->loop;

    if (l == NULL) {
        return;
    }
    if (d->prev != NULL) {
        d->prev->next = d->next;
    } else {
        l->defers = d->next;
    }
    if (d->next != NULL) {
        d->next->prev = d->prev;
    }
    d->prev = d->next = NULL;
    d->loop = NULL;
}

static void
loop_defer_fire(lws_sorted_usec_list_t *sul)
{
    struct fin_xmpp_defer *d =
        lws_container_of(sul, struct fin_xmpp_defer, sul);

    defer_unlink(d);
    d->cb(d->cls);
}

void
fin_xmpp_loop_defer(struct fin_xmpp_loop *l, struct fin_xmpp_defer *d,
                    void (*cb)(void *cls), void *cls)
{
    fin_xmpp_defer_cancel(d);
    d->cb = cb;
    d->cls = cls;
    if (l->dying) {
        cb(cls);
        return;
    }
    d->loop = l;
    d->prev = NULL;
    d->next = l->defers;
    if (l->defers != NULL) {
        l->defers->prev = d;
    }
    l->defers = d;
    lws_sul_schedule(l->ctx, 0, &d->sul, loop_defer_fire, 1);
}

void
fin_xmpp_defer_cancel(struct fin_xmpp_defer *d)
{
    if (d->loop == NULL) {
        return;
    }
    lws_sul_cancel(&d->sul);
    defer_unlink(d);
}
