/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fin_xmpp_link.c - a session wired to its transport (fin_xmpp_link.h), the
 * transport names, and the WebSocket URL parser. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fin_xmpp_link.h"

struct fin_xmpp_link {
    struct fin_xmpp_carrier *t;
    struct fin_xmpp_session *s;
};

const char *
fin_xmpp_transport_name(enum fin_xmpp_transport t)
{
    switch (t) {
    case FIN_XMPP_TRANSPORT_WEBSOCKET:
        return "websocket";
    case FIN_XMPP_TRANSPORT_TLS:
        return "tls";
    case FIN_XMPP_TRANSPORT_STARTTLS:
        return "starttls";
    }
    return "?";
}

int
fin_xmpp_transport_parse(const char *name, enum fin_xmpp_transport *t)
{
    static const enum fin_xmpp_transport all[] = {
        FIN_XMPP_TRANSPORT_WEBSOCKET, FIN_XMPP_TRANSPORT_TLS,
        FIN_XMPP_TRANSPORT_STARTTLS};

    for (size_t i = 0; i < CMN_ARRAY_LEN(all); i++) {
        if (name != NULL && strcmp(name, fin_xmpp_transport_name(all[i])) == 0) {
            *t = all[i];
            return CMN_OK;
        }
    }
    return CMN_INVALID;
}

void
fin_xmpp_carrier_note(struct fin_xmpp_carrier *t, const char *what,
                        const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    if (t->note == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    t->note(t->note_cls, what, buf);
}

static int
link_send(void *io, const char *data, size_t len)
{
    struct fin_xmpp_carrier *t = io;

    return t->ops->send(t, data, len);
}

static int
link_start_tls(void *io)
{
    struct fin_xmpp_carrier *t = io;

    return t->ops->start_tls != NULL ? t->ops->start_tls(t) : CMN_INVALID;
}

static void
link_close(void *io)
{
    struct fin_xmpp_carrier *t = io;

    t->ops->close(t);
}

struct fin_xmpp_link *
fin_xmpp_link_new(struct fin_xmpp_loop *l, const struct fin_xmpp_target *t,
                  const struct fin_xmpp_session_opts *so,
                  const struct fin_xmpp_session_io *io, long long now,
                  struct cmn_err *err)
{
    struct fin_xmpp_link *k = calloc(1, sizeof(*k));
    struct fin_xmpp_session_opts o = *so;
    struct fin_xmpp_session_io sio = *io;

    if (k == NULL) {
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    k->t = t->transport == FIN_XMPP_TRANSPORT_WEBSOCKET
               ? fin_xmpp_ws_new(l, t, err)
               : fin_xmpp_tcp_new(l, t, err);
    if (k->t == NULL) {
        free(k);
        return NULL;
    }
    o.framing = t->transport == FIN_XMPP_TRANSPORT_WEBSOCKET
                    ? FIN_XMPP_FRAMING_WEBSOCKET
                    : FIN_XMPP_FRAMING_STREAM;
    o.starttls = t->transport == FIN_XMPP_TRANSPORT_STARTTLS;
    if (t->transport != FIN_XMPP_TRANSPORT_STARTTLS) {
        /* direct TLS is secure by construction; a ws:// URL is what the
         * admin chose (tests, or TLS terminated on a trusted hop) */
        o.tls_required = false;
    }
    sio.send = link_send;
    sio.start_tls = link_start_tls;
    sio.close = link_close;
    sio.io = k->t;
    k->s = fin_xmpp_session_new(&o, &sio, now, err);
    if (k->s == NULL) {
        k->t->ops->free(k->t);
        free(k);
        return NULL;
    }
    k->t->session = k->s;
    k->t->ops->start(k->t);
    return k;
}

struct fin_xmpp_session *
fin_xmpp_link_session(struct fin_xmpp_link *k)
{
    return k->s;
}

void
fin_xmpp_link_free(struct fin_xmpp_link *k)
{
    if (k == NULL) {
        return;
    }
    k->t->ops->free(k->t);
    fin_xmpp_session_free(k->s);
    free(k);
}

int
fin_xmpp_parse_ws_url(const char *url, bool *tls, char *host, size_t host_len,
                      int *port, char *path, size_t path_len)
{
    const char *p, *h, *hend, *slash;
    size_t hl;

    if (strncmp(url, "wss://", 6) == 0) {
        *tls = true;
        p = url + 6;
    } else if (strncmp(url, "ws://", 5) == 0) {
        *tls = false;
        p = url + 5;
    } else {
        return CMN_INVALID;
    }
    *port = *tls ? 443 : 80;
    slash = strchr(p, '/');
    if (slash == NULL) {
        slash = p + strlen(p);
    }
    if (memchr(p, '@', (size_t)(slash - p)) != NULL ||
        memchr(p, '?', (size_t)(slash - p)) != NULL) {
        return CMN_INVALID; /* no userinfo, no query in the authority */
    }
    h = p;
    if (*p == '[') { /* IPv6 literal */
        hend = memchr(p, ']', (size_t)(slash - p));
        if (hend == NULL) {
            return CMN_INVALID;
        }
        h = p + 1;
        p = hend + 1;
    } else {
        hend = memchr(p, ':', (size_t)(slash - p));
        if (hend == NULL) {
            hend = slash;
        }
        p = hend;
    }
    hl = (size_t)(hend - h);
    if (hl == 0 || hl >= host_len) {
        return CMN_INVALID;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (*p == ':') {
        char *end;
        long v = strtol(p + 1, &end, 10);
        if (end != slash || v < 1 || v > 65535) {
            return CMN_INVALID;
        }
        *port = (int)v;
    } else if (p != slash) {
        return CMN_INVALID;
    }
    if (*slash == '\0') {
        if (path_len < 2) {
            return CMN_INVALID;
        }
        snprintf(path, path_len, "/");
    } else if (snprintf(path, path_len, "%s", slash) >= (int)path_len) {
        return CMN_INVALID;
    }
    return CMN_OK;
}
