/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fin_xmpp_proto.c - pool <-> worker frames: length-prefixed JSON objects,
 * encoded and decoded without I/O (see fin_xmpp_proto.h). */
#include <stdlib.h>
#include <string.h>

#include "fin_xmpp_proto.h"

void
fin_xmpp_proto_wipe_free(char *p, size_t len)
{
    if (p == NULL) {
        return;
    }
    explicit_bzero(p, len);
    free(p);
}

void
fin_xmpp_framer_init(struct fin_xmpp_framer *f)
{
    memset(f, 0, sizeof(*f));
}

void
fin_xmpp_framer_cleanup(struct fin_xmpp_framer *f)
{
    fin_xmpp_proto_wipe_free((char *)f->buf, f->cap);
    memset(f, 0, sizeof(*f));
}

static uint32_t
get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

static void
put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* True when the frame at f->off announces an oversized length. */
static bool
framer_oversized(const struct fin_xmpp_framer *f)
{
    return f->len - f->off >= FIN_XMPP_PROTO_HDR &&
           get_be32(f->buf + f->off) > FIN_XMPP_PROTO_MAX_FRAME;
}

int
fin_xmpp_framer_feed(struct fin_xmpp_framer *f, const void *data, size_t len)
{
    if (framer_oversized(f)) {
        return CMN_INVALID;
    }
    if (f->off > 0) {
        /* drop what _next already handed out; wipe the freed tail */
        size_t keep = f->len - f->off;
        memmove(f->buf, f->buf + f->off, keep);
        explicit_bzero(f->buf + keep, f->len - keep);
        f->len = keep;
        f->off = 0;
    }
    if (len == 0) {
        return CMN_OK;
    }
    /* one partial frame (<= max + header) plus this chunk, at most */
    if (f->len > FIN_XMPP_PROTO_MAX_FRAME + FIN_XMPP_PROTO_HDR ||
        len > SIZE_MAX / 2 - f->len) {
        return CMN_INVALID;
    }
    if (f->len + len > f->cap) {
        size_t cap = f->cap ? f->cap : 4096;
        while (cap < f->len + len) {
            cap *= 2;
        }
        unsigned char *nb = malloc(cap);
        if (nb == NULL) {
            return CMN_NOMEM;
        }
        if (f->buf != NULL) {
            memcpy(nb, f->buf, f->len);
            explicit_bzero(f->buf, f->cap);
            free(f->buf);
        }
        f->buf = nb;
        f->cap = cap;
    }
    memcpy(f->buf + f->len, data, len);
    f->len += len;
    return framer_oversized(f) ? CMN_INVALID : CMN_OK;
}

int
fin_xmpp_framer_next(struct fin_xmpp_framer *f, const char **payload,
                     size_t *len)
{
    size_t avail = f->len - f->off;
    uint32_t n;

    if (avail < FIN_XMPP_PROTO_HDR) {
        return CMN_AGAIN;
    }
    n = get_be32(f->buf + f->off);
    if (n > FIN_XMPP_PROTO_MAX_FRAME) {
        return CMN_INVALID;
    }
    if (avail - FIN_XMPP_PROTO_HDR < n) {
        return CMN_AGAIN;
    }
    *payload = (const char *)f->buf + f->off + FIN_XMPP_PROTO_HDR;
    *len = n;
    f->off += FIN_XMPP_PROTO_HDR + n;
    return CMN_OK;
}

/* Serialises obj into a frame; the intermediate JSON text is wiped. */
static int
frame_json(json_t *obj, char **out, size_t *outlen)
{
    size_t n = json_dumpb(obj, NULL, 0, JSON_COMPACT);
    char *buf;

    if (n == 0) {
        return CMN_INVALID;
    }
    if (n > FIN_XMPP_PROTO_MAX_FRAME) {
        return CMN_INVALID;
    }
    buf = malloc(FIN_XMPP_PROTO_HDR + n);
    if (buf == NULL) {
        return CMN_NOMEM;
    }
    if (json_dumpb(obj, buf + FIN_XMPP_PROTO_HDR, n, JSON_COMPACT) != n) {
        fin_xmpp_proto_wipe_free(buf, FIN_XMPP_PROTO_HDR + n);
        return CMN_ERR;
    }
    put_be32((unsigned char *)buf, (uint32_t)n);
    *out = buf;
    *outlen = FIN_XMPP_PROTO_HDR + n;
    return CMN_OK;
}

/* Sets key to a string when s is not NULL; false on bad UTF-8 / memory. */
static bool
set_str(json_t *o, const char *key, const char *s)
{
    json_t *v;

    if (s == NULL) {
        return true;
    }
    v = json_string(s);
    return v != NULL && json_object_set_new(o, key, v) == 0;
}

static bool
set_int(json_t *o, const char *key, long long n)
{
    json_t *v = json_integer(n);
    return v != NULL && json_object_set_new(o, key, v) == 0;
}

static const char *const op_names[] = {
    [FIN_XMPP_OP_CONFIG] = "config",
    [FIN_XMPP_OP_CONNECT] = "connect",
    [FIN_XMPP_OP_DISCONNECT] = "disconnect",
    [FIN_XMPP_OP_SHUTDOWN] = "shutdown",
};

static const char *const ev_names[] = {
    [FIN_XMPP_ONLINE] = "online",           [FIN_XMPP_OFFLINE] = "offline",
    [FIN_XMPP_AUTH_FAILED] = "auth_failed", [FIN_XMPP_UPDATE] = "update",
    [FIN_XMPP_PRESENCE] = "presence",
};

const char *
fin_xmpp_proto_event_name(enum fin_xmpp_event_kind k)
{
    if ((unsigned)k >= CMN_ARRAY_LEN(ev_names)) {
        return NULL;
    }
    return ev_names[k];
}

int
fin_xmpp_proto_encode_cmd(const struct fin_xmpp_cmd *c, char **out,
                          size_t *outlen)
{
    const struct fin_xmpp_login *l = &c->login;
    json_t *o;
    bool ok;
    int rc;

    if ((unsigned)c->op >= CMN_ARRAY_LEN(op_names)) {
        return CMN_INVALID;
    }
    o = json_object();
    if (o == NULL) {
        return CMN_NOMEM;
    }
    ok = set_str(o, "op", op_names[c->op]);
    switch (c->op) {
    case FIN_XMPP_OP_CONFIG:
        ok = ok && set_int(o, "ping_interval_s", c->ping_interval_s) &&
             set_int(o, "ping_timeout_s", c->ping_timeout_s) &&
             set_int(o, "connects_per_100ms", c->connects_per_100ms) &&
             set_str(o, "transport", fin_xmpp_transport_name(c->transport));
        break;
    case FIN_XMPP_OP_CONNECT:
        ok = ok && l->agent != NULL && l->jid != NULL && l->password != NULL &&
             (l->host != NULL || l->url != NULL);
        ok = ok && set_str(o, "agent", l->agent) && set_str(o, "jid", l->jid) &&
             set_str(o, "password", l->password) &&
             set_str(o, "host", l->host) &&
             (l->host == NULL || set_int(o, "port", l->port)) &&
             set_str(o, "url", l->url) &&
             set_str(o, "resource", l->resource) &&
             json_object_set_new(o, "tls_required",
                                 json_boolean(l->tls_required)) == 0 &&
             set_str(o, "ca_file", l->ca_file) && set_int(o, "gen", c->gen);
        break;
    case FIN_XMPP_OP_DISCONNECT:
        ok = ok && l->agent != NULL && set_str(o, "agent", l->agent);
        break;
    case FIN_XMPP_OP_SHUTDOWN:
        break;
    }
    rc = ok ? frame_json(o, out, outlen) : CMN_INVALID;
    json_decref(o);
    return rc;
}

int
fin_xmpp_proto_encode_event(const struct fin_xmpp_event *ev, long long gen,
                            char **out, size_t *outlen)
{
    const char *name = fin_xmpp_proto_event_name(ev->kind);
    json_t *o;
    bool ok;
    int rc;

    if (name == NULL || ev->agent == NULL) {
        return CMN_INVALID;
    }
    o = json_object();
    if (o == NULL) {
        return CMN_NOMEM;
    }
    ok = set_str(o, "ev", name) && set_str(o, "agent", ev->agent) &&
         set_str(o, "node", ev->node) && set_str(o, "from", ev->from) &&
         set_str(o, "detail", ev->detail) && set_int(o, "gen", gen);
    if (ok && ev->fatal) {
        ok = json_object_set_new(o, "fatal", json_true()) == 0;
    }
    if (ok && ev->payload != NULL) {
        json_t *v = json_stringn(ev->payload, ev->payload_len);
        ok = v != NULL && json_object_set_new(o, "payload", v) == 0;
    }
    if (ok && ev->kind == FIN_XMPP_PRESENCE) {
        ok = json_object_set_new(o, "available", json_boolean(ev->available)) ==
             0;
    }
    rc = ok ? frame_json(o, out, outlen) : CMN_INVALID;
    json_decref(o);
    return rc;
}

/* Optional string member: absent or null -> NULL; anything else that is not
 * a NUL-free string -> error. */
static int
get_str(json_t *o, const char *key, const char **out)
{
    json_t *v = json_object_get(o, key);

    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        return CMN_OK;
    }
    if (!json_is_string(v)) {
        return CMN_INVALID;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        return CMN_INVALID;
    }
    *out = json_string_value(v);
    return CMN_OK;
}

static int
get_int(json_t *o, const char *key, int lo, int hi, int dflt, int *out)
{
    json_t *v = json_object_get(o, key);
    json_int_t n;

    if (v == NULL) {
        *out = dflt;
        return CMN_OK;
    }
    if (!json_is_integer(v)) {
        return CMN_INVALID;
    }
    n = json_integer_value(v);
    if (n < lo || n > hi) {
        return CMN_INVALID;
    }
    *out = (int)n;
    return CMN_OK;
}

static int
get_gen(json_t *o, long long *out)
{
    json_t *v = json_object_get(o, "gen");

    *out = 0;
    if (v == NULL) {
        return CMN_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        return CMN_INVALID;
    }
    *out = (long long)json_integer_value(v);
    return CMN_OK;
}

static json_t *
load_object(const char *buf, size_t len)
{
    json_t *root;

    if (len > FIN_XMPP_PROTO_MAX_FRAME) {
        return NULL;
    }
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
    if (root != NULL && !json_is_object(root)) {
        json_decref(root);
        return NULL;
    }
    return root;
}

static int
lookup(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; s != NULL && i < n; i++) {
        if (names[i] != NULL && strcmp(names[i], s) == 0) {
            return (int)i;
        }
    }
    return -1;
}

int
fin_xmpp_proto_decode_cmd(const char *buf, size_t len, struct fin_xmpp_cmd *c)
{
    struct fin_xmpp_login *l = &c->login;
    const char *op = NULL;
    const char *name = NULL;
    json_t *root;
    json_t *tls;
    int idx;
    int rc = CMN_INVALID;

    memset(c, 0, sizeof(*c));
    root = load_object(buf, len);
    if (root == NULL) {
        return CMN_INVALID;
    }
    if (get_str(root, "op", &op) != CMN_OK) {
        goto out;
    }
    idx = lookup(op_names, CMN_ARRAY_LEN(op_names), op);
    if (idx < 0) {
        goto out;
    }
    c->op = (enum fin_xmpp_op)idx;
    switch (c->op) {
    case FIN_XMPP_OP_CONFIG:
        if (get_int(root, "ping_interval_s", 1, 3600, 10,
                    &c->ping_interval_s) != CMN_OK ||
            get_int(root, "ping_timeout_s", 1, 3600, 20, &c->ping_timeout_s) !=
                CMN_OK ||
            get_int(root, "connects_per_100ms", 1, 100000, 20,
                    &c->connects_per_100ms) != CMN_OK ||
            get_str(root, "transport", &name) != CMN_OK) {
            goto out;
        }
        c->transport = FIN_XMPP_TRANSPORT_STARTTLS; /* before transports */
        if (name != NULL &&
            fin_xmpp_transport_parse(name, &c->transport) != CMN_OK) {
            goto out;
        }
        break;
    case FIN_XMPP_OP_CONNECT:
        tls = json_object_get(root, "tls_required");
        if (get_str(root, "agent", &l->agent) != CMN_OK ||
            get_str(root, "jid", &l->jid) != CMN_OK ||
            get_str(root, "password", &l->password) != CMN_OK ||
            get_str(root, "host", &l->host) != CMN_OK ||
            get_str(root, "url", &l->url) != CMN_OK ||
            get_str(root, "resource", &l->resource) != CMN_OK ||
            get_str(root, "ca_file", &l->ca_file) != CMN_OK ||
            get_int(root, "port", 1, 65535, 5222, &l->port) != CMN_OK ||
            (tls != NULL && !json_is_boolean(tls))) {
            goto out;
        }
        if (l->agent == NULL || l->jid == NULL || l->password == NULL ||
            (l->host == NULL && l->url == NULL) || l->agent[0] == '\0') {
            goto out;
        }
        l->tls_required = tls != NULL && json_is_true(tls);
        if (l->host == NULL) {
            l->port = 0; /* websocket: the URL says where */
        }
        if (get_gen(root, &c->gen) != CMN_OK) {
            goto out;
        }
        break;
    case FIN_XMPP_OP_DISCONNECT:
        if (get_str(root, "agent", &l->agent) != CMN_OK || l->agent == NULL) {
            goto out;
        }
        break;
    case FIN_XMPP_OP_SHUTDOWN:
        break;
    }
    c->root = root;
    root = NULL;
    rc = CMN_OK;
out:
    json_decref(root);
    if (rc != CMN_OK) {
        memset(c, 0, sizeof(*c));
    }
    return rc;
}

void
fin_xmpp_proto_cmd_cleanup(struct fin_xmpp_cmd *c)
{
    if (c == NULL) {
        return;
    }
    json_decref(c->root);
    memset(c, 0, sizeof(*c));
}

int
fin_xmpp_proto_decode_event(const char *buf, size_t len,
                            struct fin_xmpp_event *ev, long long *gen,
                            json_t **rootp)
{
    const char *name = NULL;
    json_t *root;
    json_t *v;
    int idx;
    int rc = CMN_INVALID;

    memset(ev, 0, sizeof(*ev));
    *rootp = NULL;
    *gen = 0;
    root = load_object(buf, len);
    if (root == NULL) {
        return CMN_INVALID;
    }
    if (get_str(root, "ev", &name) != CMN_OK) {
        goto out;
    }
    idx = lookup(ev_names, CMN_ARRAY_LEN(ev_names), name);
    if (idx < 0) {
        goto out;
    }
    ev->kind = (enum fin_xmpp_event_kind)idx;
    if (get_str(root, "agent", &ev->agent) != CMN_OK || ev->agent == NULL ||
        get_str(root, "node", &ev->node) != CMN_OK ||
        get_str(root, "from", &ev->from) != CMN_OK ||
        get_str(root, "detail", &ev->detail) != CMN_OK) {
        goto out;
    }
    v = json_object_get(root, "payload");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_string(v)) {
            goto out;
        }
        ev->payload = json_string_value(v);
        ev->payload_len = json_string_length(v);
    }
    v = json_object_get(root, "available");
    if (v != NULL && !json_is_boolean(v)) {
        goto out;
    }
    ev->available = v != NULL && json_is_true(v);
    v = json_object_get(root, "fatal");
    if (v != NULL && !json_is_boolean(v)) {
        goto out;
    }
    ev->fatal = v != NULL && json_is_true(v);
    if (get_gen(root, gen) != CMN_OK) {
        goto out;
    }
    if (ev->kind == FIN_XMPP_UPDATE &&
        (ev->node == NULL || ev->payload == NULL)) {
        goto out;
    }
    if (ev->kind == FIN_XMPP_PRESENCE && ev->from == NULL) {
        goto out;
    }
    *rootp = root;
    root = NULL;
    rc = CMN_OK;
out:
    json_decref(root);
    if (rc != CMN_OK) {
        memset(ev, 0, sizeof(*ev));
    }
    return rc;
}
