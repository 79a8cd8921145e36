/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fin_xmpp_tcp.c - XMPP over TCP: the "tls" transport (TLS from the first
 * byte, Finesse's 5223) and the "starttls" one (clear stream, TLS after
 * <proceed/>, Finesse's 5222), on one non-blocking socket adopted into the
 * loop, with OpenSSL driven by readiness.
 *
 * The certificate must chain to the loop's trust for the configured CA
 * file and name the XMPP domain (RFC 6120 §13.7.2.1), or the host we
 * connected to when that is a name. A failure is reported as "tls
 * certificate rejected: <OpenSSL's verify error>".
 *
 * The host is resolved with getaddrinfo (blocking, as libstrophe did;
 * Finesse nodes are named in the config, an IP needs no lookup), and the
 * first address is used. TCP keepalive (60 s idle, 3 probes 30 s apart)
 * backs up the session's XMPP pings. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cmn_log.h"
#include "fin_xmpp_link.h"

#define TCP_READ_CHUNK 16384
#define TCP_OUT_MAX    ((size_t)16 << 20)

enum tcp_state {
    T_IDLE,
    T_CONNECTING, /* TCP connect in progress */
    T_HANDSHAKE,  /* TLS handshake in progress */
    T_UP,
    T_CLOSING,
    T_DOWN, /* reported to the session */
};

struct tcp {
    struct fin_xmpp_carrier base;
    char *host;
    char *domain;
    char *ca_file;
    int port;
    bool direct_tls;
    bool starttls_done;
    enum tcp_state state;
    int fd;
    struct fin_xmpp_watch *watch;
    SSL *ssl;
    char *out;
    size_t out_len;
    size_t out_cap;
    bool want_write;
    /* the first failure, reported when the descriptor is gone */
    bool failed;
    enum fin_xmpp_down why;
    char detail[200];
    struct fin_xmpp_defer defer;
};

static void tcp_fail(struct tcp *t, enum fin_xmpp_down why, const char *fmt,
                     ...) CMN_PRINTF(3, 4);

/* -- reporting down --------------------------------------------------------- */

static void
tcp_report(struct tcp *t)
{
    if (t->state == T_DOWN) {
        return;
    }
    t->state = T_DOWN;
    fin_xmpp_session_transport_down(t->base.session,
                                    t->failed ? t->why : FIN_XMPP_DOWN_CLOSED,
                                    t->failed ? t->detail : "closed");
}

static void
tcp_report_deferred(void *cls)
{
    tcp_report(cls);
}

/* Ends the connection; the session hears about it once the descriptor is
 * closed (or on the next loop round when there never was one). */
static void
tcp_finish(struct tcp *t)
{
    if (t->state == T_DOWN) {
        return;
    }
    if (t->watch != NULL) {
        fin_xmpp_watch_close(t->watch);
    } else if (t->fd >= 0) {
        close(t->fd);
        t->fd = -1;
        fin_xmpp_loop_defer(t->base.loop, &t->defer, tcp_report_deferred, t);
    } else {
        fin_xmpp_loop_defer(t->base.loop, &t->defer, tcp_report_deferred, t);
    }
    if (t->state != T_CLOSING) {
        t->state = T_CLOSING;
    }
}

static void
tcp_fail(struct tcp *t, enum fin_xmpp_down why, const char *fmt, ...)
{
    va_list ap;

    if (!t->failed && t->state != T_CLOSING && t->state != T_DOWN) {
        t->failed = true;
        t->why = why;
        va_start(ap, fmt);
        vsnprintf(t->detail, sizeof(t->detail), fmt, ap);
        va_end(ap);
    }
    tcp_finish(t);
}

/* OpenSSL's first queued error, or what errno says. */
static void
tcp_ssl_error(char *buf, size_t len, int ssl_err)
{
    unsigned long e = ERR_get_error();

    if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        snprintf(buf, len, "connection closed by the peer");
    } else if (e != 0) {
        ERR_error_string_n(e, buf, len);
    } else if (ssl_err == SSL_ERROR_SYSCALL && errno != 0) {
        snprintf(buf, len, "%s", strerror(errno));
    } else if (ssl_err == SSL_ERROR_ZERO_RETURN || ssl_err == SSL_ERROR_SYSCALL) {
        snprintf(buf, len, "connection closed by the peer");
    } else {
        snprintf(buf, len, "tls error %d", ssl_err);
    }
    ERR_clear_error();
}

/* -- TLS ---------------------------------------------------------------- */

static bool
is_ip_literal(const char *s)
{
    struct in6_addr a6;
    struct in_addr a4;

    return inet_pton(AF_INET, s, &a4) == 1 || inet_pton(AF_INET6, s, &a6) == 1;
}

static void
tcp_note_peer(struct tcp *t)
{
    X509 *peer = SSL_get1_peer_certificate(t->ssl);
    char subject[256] = "", issuer[256] = "";

    if (peer != NULL) {
        X509_NAME_oneline(X509_get_subject_name(peer), subject, sizeof(subject));
        X509_NAME_oneline(X509_get_issuer_name(peer), issuer, sizeof(issuer));
        X509_free(peer);
    }
    fin_xmpp_carrier_note(&t->base, "tls",
                            "%s, certificate %s issued by %s, verified",
                            SSL_get_version(t->ssl), subject, issuer);
}

static void
tcp_handshake(struct tcp *t)
{
    int rc, err;
    char msg[160];

    ERR_clear_error();
    rc = SSL_connect(t->ssl);
    if (rc == 1) {
        tcp_note_peer(t);
        t->state = T_UP;
        if (t->direct_tls) {
            fin_xmpp_session_transport_up(t->base.session, true);
        } else {
            t->starttls_done = true;
            fin_xmpp_session_secured(t->base.session);
        }
        return;
    }
    err = SSL_get_error(t->ssl, rc);
    if (err == SSL_ERROR_WANT_READ) {
        return; /* readable wakes us */
    }
    if (err == SSL_ERROR_WANT_WRITE) {
        fin_xmpp_watch_want_write(t->watch);
        return;
    }
    {
        long v = SSL_get_verify_result(t->ssl);
        if (v != X509_V_OK) {
            ERR_clear_error();
            fin_xmpp_carrier_note(&t->base, "tls", "certificate rejected: %s",
                                    X509_verify_cert_error_string(v));
            tcp_fail(t, FIN_XMPP_DOWN_TLS_CERT, "%s",
                     X509_verify_cert_error_string(v));
            return;
        }
    }
    tcp_ssl_error(msg, sizeof(msg), err);
    fin_xmpp_carrier_note(&t->base, "tls", "handshake failed: %s", msg);
    tcp_fail(t, FIN_XMPP_DOWN_TLS, "%s", msg);
}

static int
tcp_start_tls_now(struct tcp *t)
{
    struct cmn_err err = {{0}};
    SSL_CTX *ctx = fin_xmpp_loop_tls(t->base.loop, t->ca_file, &err);
    X509_VERIFY_PARAM *param;

    if (ctx == NULL) {
        tcp_fail(t, FIN_XMPP_DOWN_TLS, "%s", err.msg);
        return CMN_ERR;
    }
    t->ssl = SSL_new(ctx);
    if (t->ssl == NULL || SSL_set_fd(t->ssl, t->fd) != 1) {
        tcp_fail(t, FIN_XMPP_DOWN_TLS, "out of memory");
        return CMN_ERR;
    }
    /* SNI names the XMPP service (XEP-0368), as servers with several
     * virtual hosts expect */
    SSL_set_tlsext_host_name(t->ssl, t->domain);
    param = SSL_get0_param(t->ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(t->ssl, t->domain) != 1 ||
        (!is_ip_literal(t->host) && strcmp(t->host, t->domain) != 0 &&
         SSL_add1_host(t->ssl, t->host) != 1)) {
        tcp_fail(t, FIN_XMPP_DOWN_TLS, "cannot set the certificate name");
        return CMN_ERR;
    }
    t->state = T_HANDSHAKE;
    tcp_handshake(t);
    return CMN_OK;
}

/* -- I/O ---------------------------------------------------------------- */

static void
tcp_flush(struct tcp *t)
{
    size_t done = 0;

    if (t->out_len == 0) {
        return;
    }
    while (done < t->out_len) {
        ssize_t n;
        if (t->ssl != NULL) {
            ERR_clear_error();
            int rc = SSL_write(t->ssl, t->out + done, (int)(t->out_len - done));
            if (rc > 0) {
                done += (size_t)rc;
                continue;
            }
            int err = SSL_get_error(t->ssl, rc);
            if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
                fin_xmpp_watch_want_write(t->watch);
                break;
            }
            char msg[160];
            tcp_ssl_error(msg, sizeof(msg), err);
            tcp_fail(t, FIN_XMPP_DOWN_LOST, "%s", msg);
            return;
        }
        n = send(t->fd, t->out + done, t->out_len - done,
                 MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            fin_xmpp_watch_want_write(t->watch);
            break;
        }
        tcp_fail(t, FIN_XMPP_DOWN_LOST, "%s", strerror(errno));
        return;
    }
    /* written bytes may be SASL data: wipe before moving the rest down */
    explicit_bzero(t->out, done);
    memmove(t->out, t->out + done, t->out_len - done);
    t->out_len -= done;
}

static void
tcp_on_writable(void *cls)
{
    struct tcp *t = cls;

    if (t->state == T_CONNECTING) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) {
            soerr = errno;
        }
        if (soerr != 0) {
            fin_xmpp_carrier_note(&t->base, "tcp", "%s:%d: %s", t->host,
                                    t->port, strerror(soerr));
            tcp_fail(t, FIN_XMPP_DOWN_CONNECT, "%s:%d: %s", t->host, t->port,
                     strerror(soerr));
            return;
        }
        fin_xmpp_carrier_note(&t->base, "tcp", "connected to %s:%d", t->host,
                                t->port);
        if (t->direct_tls) {
            (void)tcp_start_tls_now(t);
        } else {
            t->state = T_UP;
            fin_xmpp_session_transport_up(t->base.session, false);
        }
        return;
    }
    if (t->state == T_HANDSHAKE) {
        tcp_handshake(t);
        return;
    }
    if (t->state == T_UP) {
        tcp_flush(t);
    }
}

static void
tcp_on_readable(void *cls)
{
    struct tcp *t = cls;
    char buf[TCP_READ_CHUNK];

    if (t->state == T_CONNECTING) {
        tcp_on_writable(t); /* an error shows as readable too */
        return;
    }
    if (t->state == T_HANDSHAKE) {
        tcp_handshake(t);
        return;
    }
    while (t->state == T_UP) {
        ssize_t n;
        bool was_clear = t->ssl == NULL;
        if (t->ssl != NULL) {
            ERR_clear_error();
            int rc = SSL_read(t->ssl, buf, sizeof(buf));
            if (rc <= 0) {
                int err = SSL_get_error(t->ssl, rc);
                if (err == SSL_ERROR_WANT_READ) {
                    return;
                }
                if (err == SSL_ERROR_WANT_WRITE) {
                    fin_xmpp_watch_want_write(t->watch);
                    return;
                }
                char msg[160];
                tcp_ssl_error(msg, sizeof(msg), err);
                tcp_fail(t, FIN_XMPP_DOWN_LOST, "%s", msg);
                return;
            }
            n = rc;
        } else {
            n = recv(t->fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return;
            }
            if (n < 0) {
                tcp_fail(t, FIN_XMPP_DOWN_LOST, "%s", strerror(errno));
                return;
            }
            if (n == 0) {
                tcp_fail(t, FIN_XMPP_DOWN_LOST, "connection closed by the peer");
                return;
            }
        }
        fin_xmpp_session_data(t->base.session, buf, (size_t)n);
        if (was_clear && t->state == T_HANDSHAKE) {
            return; /* STARTTLS began: the rest is TLS */
        }
    }
}

static void
tcp_on_closed(void *cls)
{
    struct tcp *t = cls;

    t->watch = NULL;
    t->fd = -1; /* the loop closed it */
    tcp_report(t);
}

static const struct fin_xmpp_watch_ops tcp_watch_ops = {
    .readable = tcp_on_readable,
    .writable = tcp_on_writable,
    .closed = tcp_on_closed,
};

static void
tcp_sockopts(int fd)
{
    int on = 1, idle = 60, intvl = 30, cnt = 3;

    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

/* -- ops -------------------------------------------------------------------- */

static void
tcp_start(struct fin_xmpp_carrier *base)
{
    struct tcp *t = (struct tcp *)base;
    struct addrinfo hints, *res = NULL;
    struct cmn_err err = {{0}};
    char port[8];
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%d", t->port);
    t->state = T_CONNECTING;
    rc = getaddrinfo(t->host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        fin_xmpp_carrier_note(&t->base, "tcp", "cannot resolve %s: %s",
                                t->host, gai_strerror(rc));
        tcp_fail(t, FIN_XMPP_DOWN_CONNECT, "cannot resolve %s: %s", t->host,
                 gai_strerror(rc));
        return;
    }
    t->fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                   0);
    if (t->fd < 0) {
        freeaddrinfo(res);
        tcp_fail(t, FIN_XMPP_DOWN_CONNECT, "socket: %s", strerror(errno));
        return;
    }
    tcp_sockopts(t->fd);
    rc = connect(t->fd, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (rc != 0 && errno != EINPROGRESS) {
        fin_xmpp_carrier_note(&t->base, "tcp", "%s:%d: %s", t->host, t->port,
                                strerror(errno));
        tcp_fail(t, FIN_XMPP_DOWN_CONNECT, "%s:%d: %s", t->host, t->port,
                 strerror(errno));
        return;
    }
    t->watch = fin_xmpp_loop_watch(t->base.loop, t->fd, &tcp_watch_ops, t, &err);
    if (t->watch == NULL) {
        t->fd = -1; /* the loop closed it */
        tcp_fail(t, FIN_XMPP_DOWN_CONNECT, "%s", err.msg);
        return;
    }
    fin_xmpp_watch_want_write(t->watch); /* writable = connected */
}

static int
tcp_send(struct fin_xmpp_carrier *base, const char *data, size_t len)
{
    struct tcp *t = (struct tcp *)base;

    if (t->state != T_UP) {
        return CMN_IO;
    }
    if (t->out_len + len > TCP_OUT_MAX) {
        /* the server stopped reading */
        tcp_fail(t, FIN_XMPP_DOWN_LOST, "send buffer full");
        return CMN_IO;
    }
    if (t->out_len + len > t->out_cap) {
        size_t cap = t->out_cap ? t->out_cap : 4096;
        while (cap < t->out_len + len) {
            cap *= 2;
        }
        char *nb = malloc(cap);
        if (nb == NULL) {
            tcp_fail(t, FIN_XMPP_DOWN_LOST, "out of memory");
            return CMN_NOMEM;
        }
        if (t->out != NULL) {
            memcpy(nb, t->out, t->out_len);
            explicit_bzero(t->out, t->out_cap);
            free(t->out);
        }
        t->out = nb;
        t->out_cap = cap;
    }
    memcpy(t->out + t->out_len, data, len);
    t->out_len += len;
    tcp_flush(t);
    return CMN_OK;
}

static int
tcp_start_tls(struct fin_xmpp_carrier *base)
{
    struct tcp *t = (struct tcp *)base;

    if (t->direct_tls || t->starttls_done || t->state != T_UP) {
        return CMN_INVALID;
    }
    return tcp_start_tls_now(t);
}

static void
tcp_close(struct fin_xmpp_carrier *base)
{
    struct tcp *t = (struct tcp *)base;

    if (t->state == T_CLOSING || t->state == T_DOWN) {
        return;
    }
    if (t->state == T_UP) {
        tcp_flush(t); /* the close of the stream, if the socket takes it */
        if (t->ssl != NULL && t->state == T_UP) {
            (void)SSL_shutdown(t->ssl); /* close_notify, not awaited */
            ERR_clear_error();
        }
    }
    tcp_finish(t);
}

static void
tcp_free(struct fin_xmpp_carrier *base)
{
    struct tcp *t = (struct tcp *)base;

    fin_xmpp_defer_cancel(&t->defer);
    if (t->ssl != NULL) {
        SSL_free(t->ssl);
    }
    if (t->out != NULL) {
        explicit_bzero(t->out, t->out_cap);
        free(t->out);
    }
    free(t->host);
    free(t->domain);
    free(t->ca_file);
    free(t);
}

static const struct fin_xmpp_carrier_ops tcp_ops = {
    .start = tcp_start,
    .send = tcp_send,
    .start_tls = tcp_start_tls,
    .close = tcp_close,
    .free = tcp_free,
};

struct fin_xmpp_carrier *
fin_xmpp_tcp_new(struct fin_xmpp_loop *l, const struct fin_xmpp_target *tg,
                 struct cmn_err *err)
{
    struct tcp *t;

    if (tg->host == NULL || tg->host[0] == '\0' || tg->port < 1 ||
        tg->port > 65535 || tg->domain == NULL || tg->domain[0] == '\0') {
        cmn_err_set(err, "xmpp: host, port and domain are required");
        return NULL;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    t->base.ops = &tcp_ops;
    t->base.loop = l;
    t->base.note = tg->note;
    t->base.note_cls = tg->note_cls;
    t->fd = -1;
    t->port = tg->port;
    t->direct_tls = tg->transport == FIN_XMPP_TRANSPORT_TLS;
    t->host = strdup(tg->host);
    t->domain = strdup(tg->domain);
    t->ca_file = tg->ca_file ? strdup(tg->ca_file) : NULL;
    if (t->host == NULL || t->domain == NULL ||
        (tg->ca_file != NULL && t->ca_file == NULL)) {
        tcp_free(&t->base);
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    return &t->base;
}
