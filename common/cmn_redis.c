/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_redis.c - pool of hiredis 0.14 sync contexts with timeouts, shared
 * reconnect backoff and Sentinel master discovery (hiredis has none). */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <openssl/evp.h>

#include "cmn_log.h"
#include "cmn_redis.h"
#include "cmn_secret.h"

#define DEF_CONNECT_TIMEOUT_MS 500
#define DEF_COMMAND_TIMEOUT_MS 1000
#define DEF_POOL_SIZE          16
#define DEF_BACKOFF_MAX_MS     2000
#define DEF_WAIT_TIMEOUT_MS    100
#define BACKOFF_START_MS       50
/* While connects to the master are backing off, Sentinel is still asked
 * this often whether the master moved, so that a failover is followed
 * within a fraction of a second instead of at the end of the window. */
#define SENTINEL_POLL_MS 200
#define HOST_MAX         256
#define PASSWORD_MAX     512

struct endpoint {
    char host[HOST_MAX]; /* host name, IP, or socket path when is_unix */
    int port;
    bool is_unix;
};

struct url_parts {
    struct endpoint ep;
    const char *pw; /* points into the url, not NUL-terminated */
    size_t pwlen;
    int db;
    bool has_db;
};

/* An idle or checked-out connection. gen is the pool generation it was
 * made in: a flush bumps the generation so that contexts checked out at
 * the time are freed on return instead of going back to the idle list. */
struct conn {
    redisContext *c;
    unsigned long gen;
    struct conn *next;
};

struct cmn_redis {
    struct endpoint direct; /* url mode */
    struct endpoint *sentinels;
    size_t nsentinels;
    char *master_name;
    char *password; /* wiped on free */
    size_t pwlen;
    char *prefix;
    int db;
    int connect_timeout_ms;
    int command_timeout_ms;
    int pool_size;
    int backoff_max_ms;
    int wait_replicas;
    int wait_timeout_ms;

    pthread_mutex_t mu; /* guards everything below except the counters */
    struct conn *idle;
    int nidle;
    unsigned long gen;
    struct endpoint master;  /* last master found through Sentinel */
    bool master_known;       /* false: ask Sentinel on the next connect */
    long long last_poll_ms;  /* last Sentinel probe during backoff */
    long long backoff_until; /* connects fail fast until then */
    int backoff_ms;          /* current window, 0 when healthy */
    bool down;               /* for logging transitions only once */
    unsigned long dropped;   /* dropped contexts not yet replaced */

    atomic_ulong errors;
    atomic_ulong reconnects;
};

static pthread_mutex_t sha_mu = PTHREAD_MUTEX_INITIALIZER;

static struct timeval
ms_tv(int ms)
{
    struct timeval tv;

    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    return tv;
}

static void
set_why(char *why, size_t whylen, const char *msg)
{
    snprintf(why, whylen, "%s", msg);
}

/* "host", "host:port" or "[v6addr]:port" from s[0..len). defport 0 makes
 * the port mandatory. */
static int
parse_hostport(const char *s, size_t len, int defport, struct endpoint *ep,
               char *why, size_t whylen)
{
    const char *host = s;
    const char *portstr = NULL;
    size_t hostlen;
    size_t portlen = 0;
    long port = defport;

    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);

        if (close == NULL) {
            set_why(why, whylen, "missing ']' after IPv6 address");
            return CMN_INVALID;
        }
        host = s + 1;
        hostlen = (size_t)(close - host);
        if (close + 1 < s + len) {
            if (close[1] != ':') {
                set_why(why, whylen, "expected ':' after ']'");
                return CMN_INVALID;
            }
            portstr = close + 2;
            portlen = (size_t)(s + len - portstr);
        }
    } else {
        const char *colon = memchr(s, ':', len);

        hostlen = colon != NULL ? (size_t)(colon - s) : len;
        if (colon != NULL) {
            portstr = colon + 1;
            portlen = (size_t)(s + len - portstr);
        }
    }
    if (hostlen == 0) {
        set_why(why, whylen, "missing host");
        return CMN_INVALID;
    }
    if (hostlen >= sizeof(ep->host)) {
        set_why(why, whylen, "host name too long");
        return CMN_INVALID;
    }
    for (size_t i = 0; i < hostlen; i++) {
        char ch = host[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
                  ch == '_' || (ch == ':' && host != s);

        if (!ok) {
            set_why(why, whylen, "invalid character in host");
            return CMN_INVALID;
        }
    }
    if (portstr != NULL) {
        if (portlen == 0 || portlen > 5) {
            set_why(why, whylen, "invalid port");
            return CMN_INVALID;
        }
        port = 0;
        for (size_t i = 0; i < portlen; i++) {
            if (portstr[i] < '0' || portstr[i] > '9') {
                set_why(why, whylen, "invalid port");
                return CMN_INVALID;
            }
            port = port * 10 + (portstr[i] - '0');
        }
    }
    if (port < 1 || port > 65535) {
        set_why(why, whylen,
                portstr == NULL ? "missing port" : "port out of range");
        return CMN_INVALID;
    }
    memcpy(ep->host, host, hostlen);
    ep->host[hostlen] = '\0';
    ep->port = (int)port;
    ep->is_unix = false;
    return CMN_OK;
}

/* redis://[:password@]host[:port][/db] or unix:///path. The password may
 * contain '@' and '/': the last '@' ends it. Nothing is allocated. */
static int
parse_url(const char *url, struct url_parts *u, char *why, size_t whylen)
{
    const char *rest;
    const char *at;
    const char *slash;
    size_t hostlen;

    memset(u, 0, sizeof(*u));
    if (strncmp(url, "rediss://", 9) == 0) {
        set_why(why, whylen,
                "TLS is not supported by hiredis 0.14 (use a local "
                "stunnel or a unix socket)");
        return CMN_INVALID;
    }
    if (strncmp(url, "unix://", 7) == 0) {
        const char *path = url + 7;
        size_t plen = strlen(path);

        if (plen < 2 || path[0] != '/') {
            set_why(why, whylen, "expected unix:///absolute/path");
            return CMN_INVALID;
        }
        /* sun_path holds 108 bytes including the NUL. */
        if (plen > 107) {
            set_why(why, whylen, "socket path too long");
            return CMN_INVALID;
        }
        memcpy(u->ep.host, path, plen + 1);
        u->ep.is_unix = true;
        return CMN_OK;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        set_why(why, whylen,
                "expected redis://[:password@]host:port[/db] or "
                "unix:///path");
        return CMN_INVALID;
    }
    rest = url + 8;
    at = strrchr(rest, '@');
    if (at != NULL) {
        if (rest[0] != ':') {
            set_why(why, whylen,
                    "user names are not supported, expected "
                    "redis://:password@host:port");
            return CMN_INVALID;
        }
        u->pw = rest + 1;
        u->pwlen = (size_t)(at - u->pw);
        if (u->pwlen == 0) {
            set_why(why, whylen, "empty password");
            return CMN_INVALID;
        }
        if (u->pwlen > PASSWORD_MAX) {
            set_why(why, whylen, "password too long");
            return CMN_INVALID;
        }
        rest = at + 1;
    }
    slash = strchr(rest, '/');
    hostlen = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
    if (parse_hostport(rest, hostlen, 6379, &u->ep, why, whylen) != CMN_OK) {
        return CMN_INVALID;
    }
    if (slash != NULL && slash[1] != '\0') {
        long db = 0;
        const char *p = slash + 1;

        for (; *p != '\0'; p++) {
            if (*p < '0' || *p > '9' || db > 999999) {
                set_why(why, whylen, "db must be a number");
                return CMN_INVALID;
            }
            db = db * 10 + (*p - '0');
        }
        u->db = (int)db;
        u->has_db = true;
    }
    return CMN_OK;
}

static void
describe(const struct endpoint *ep, char *out, size_t outlen)
{
    if (ep->is_unix) {
        snprintf(out, outlen, "unix:%s", ep->host);
    } else if (strchr(ep->host, ':') != NULL) {
        snprintf(out, outlen, "[%s]:%d", ep->host, ep->port);
    } else {
        snprintf(out, outlen, "%s:%d", ep->host, ep->port);
    }
}

static bool
same_endpoint(const struct endpoint *a, const struct endpoint *b)
{
    return a->is_unix == b->is_unix && a->port == b->port &&
           strcmp(a->host, b->host) == 0;
}

/* ---- configuration ---------------------------------------------------- */

int
cmn_redis_opts_from_config(const struct cmn_config *cfg, const char *section,
                           struct cmn_redis_opts *opts, void **storage,
                           struct cmn_err *err)
{
    const char *url = NULL;
    const char *master = NULL;
    const char *prefix = NULL;
    char **list = NULL;
    size_t n = 0;
    struct cmn_secret *pw = NULL;
    long v;
    size_t total;
    char *block = NULL;
    char *p;
    char why[128];
    int rc;

    memset(opts, 0, sizeof(*opts));
    *storage = NULL;
    rc = cmn_config_str(cfg, section, "url", false, NULL, &url, err);
    if (rc != CMN_OK) {
        goto out;
    }
    if (cmn_config_get(cfg, section, "sentinels") != NULL) {
        rc = cmn_config_list(cfg, section, "sentinels", false, &list, &n, err);
        if (rc != CMN_OK) {
            goto out;
        }
    }
    rc = cmn_config_str(cfg, section, "master", false, NULL, &master, err);
    if (rc != CMN_OK) {
        goto out;
    }
    rc = CMN_INVALID;
    if (url != NULL && n > 0) {
        cmn_config_errf(cfg, section, "sentinels", err,
                        "set either url or sentinels, not both");
        goto out;
    }
    if (url == NULL && n == 0) {
        cmn_config_errf(cfg, section, "url", err,
                        "required (or sentinels and master)");
        goto out;
    }
    if (n > 0 && (master == NULL || master[0] == '\0')) {
        cmn_config_errf(cfg, section, "master", err, "required with sentinels");
        goto out;
    }
    if (n == 0 && master != NULL) {
        cmn_config_errf(cfg, section, "master", err,
                        "only used with sentinels");
        goto out;
    }
    if (url != NULL) {
        struct url_parts u;

        if (parse_url(url, &u, why, sizeof(why)) != CMN_OK) {
            cmn_config_errf(cfg, section, "url", err, "%s", why);
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct endpoint ep;

        if (parse_hostport(list[i], strlen(list[i]), 0, &ep, why,
                           sizeof(why)) != CMN_OK) {
            cmn_config_errf(cfg, section, "sentinels", err, "%s: %s", why,
                            list[i]);
            goto out;
        }
    }
    rc = cmn_config_str(cfg, section, "prefix", false, "fsc:", &prefix, err);
    if (rc != CMN_OK) {
        goto out;
    }
    rc = cmn_config_secret(cfg, section, "password", false, PASSWORD_MAX, true,
                           &pw, err);
    if (rc != CMN_OK) {
        goto out;
    }
    opts->url = url;
    opts->master = n > 0 ? master : NULL;
    opts->prefix = prefix;
    opts->backoff_max_ms = DEF_BACKOFF_MAX_MS;
    rc = cmn_config_long(cfg, section, "connect_timeout_ms",
                         DEF_CONNECT_TIMEOUT_MS, 1, 60000, &v, err);
    if (rc != CMN_OK) {
        goto out;
    }
    opts->connect_timeout_ms = (int)v;
    rc = cmn_config_long(cfg, section, "command_timeout_ms",
                         DEF_COMMAND_TIMEOUT_MS, 1, 600000, &v, err);
    if (rc != CMN_OK) {
        goto out;
    }
    opts->command_timeout_ms = (int)v;
    rc = cmn_config_long(cfg, section, "pool_size", DEF_POOL_SIZE, 1, 1024, &v,
                         err);
    if (rc != CMN_OK) {
        goto out;
    }
    opts->pool_size = (int)v;
    rc = cmn_config_long(cfg, section, "wait_replicas", 0, 0, 100, &v, err);
    if (rc != CMN_OK) {
        goto out;
    }
    opts->wait_replicas = (int)v;
    rc = cmn_config_long(cfg, section, "wait_timeout_ms", DEF_WAIT_TIMEOUT_MS,
                         1, 60000, &v, err);
    if (rc != CMN_OK) {
        goto out;
    }
    opts->wait_timeout_ms = (int)v;
    /* WAIT runs inside the command timeout: a longer WAIT would kill the
     * connection on every durable write. */
    if (opts->wait_replicas > 0 &&
        opts->wait_timeout_ms >= opts->command_timeout_ms) {
        cmn_config_errf(cfg, section, "wait_timeout_ms", err,
                        "must be below command_timeout_ms (%d)",
                        opts->command_timeout_ms);
        rc = CMN_INVALID;
        goto out;
    }

    /* One block: the sentinel pointer array, the strings, the password. */
    total = (n + 1) * sizeof(char *);
    for (size_t i = 0; i < n; i++) {
        total += strlen(list[i]) + 1;
    }
    if (pw != NULL) {
        total += pw->len + 1;
    }
    block = malloc(total);
    if (block == NULL) {
        cmn_err_set(err, "out of memory");
        rc = CMN_NOMEM;
        goto out;
    }
    p = block + (n + 1) * sizeof(char *);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(list[i]) + 1;

        ((char **)(void *)block)[i] = p;
        memcpy(p, list[i], len);
        p += len;
    }
    ((char **)(void *)block)[n] = NULL;
    if (n > 0) {
        opts->sentinels = (const char *const *)(void *)block;
    }
    if (pw != NULL) {
        memcpy(p, pw->data, pw->len);
        p[pw->len] = '\0';
        opts->password = p;
    }
    *storage = block;
    block = NULL;
    rc = CMN_OK;
out:
    if (rc != CMN_OK) {
        memset(opts, 0, sizeof(*opts));
    }
    free(block);
    free(list);
    cmn_secret_free(pw);
    return rc;
}

/* ---- construction ----------------------------------------------------- */

struct cmn_redis *
cmn_redis_new(const struct cmn_redis_opts *opts, struct cmn_err *err)
{
    struct cmn_redis *r;
    struct url_parts u;
    const char *pw = NULL;
    size_t pwlen = 0;
    char why[128];
    bool ok = false;

    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        free(r);
        cmn_err_set(err, "redis: mutex init failed");
        return NULL;
    }
    atomic_init(&r->errors, 0);
    atomic_init(&r->reconnects, 0);
    memset(&u, 0, sizeof(u));
    if (opts->url != NULL) {
        if (parse_url(opts->url, &u, why, sizeof(why)) != CMN_OK) {
            cmn_err_set(err, "redis url: %s", why);
            goto out;
        }
        r->direct = u.ep;
        pw = u.pw;
        pwlen = u.pwlen;
    }
    if (opts->sentinels != NULL && opts->sentinels[0] != NULL) {
        size_t n = 0;

        while (opts->sentinels[n] != NULL) {
            n++;
        }
        if (opts->master == NULL || opts->master[0] == '\0') {
            cmn_err_set(err, "redis: sentinels given without a master name");
            goto out;
        }
        r->sentinels = calloc(n, sizeof(*r->sentinels));
        r->master_name = strdup(opts->master);
        if (r->sentinels == NULL || r->master_name == NULL) {
            cmn_err_set(err, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            const char *s = opts->sentinels[i];

            if (parse_hostport(s, strlen(s), 0, &r->sentinels[i], why,
                               sizeof(why)) != CMN_OK) {
                cmn_err_set(err, "redis sentinel %s: %s", s, why);
                goto out;
            }
        }
        r->nsentinels = n;
    } else if (opts->url == NULL) {
        cmn_err_set(err, "redis: neither url nor sentinels given");
        goto out;
    }
    if (opts->password != NULL) {
        pw = opts->password;
        pwlen = strlen(pw);
    }
    if (pw != NULL) {
        r->password = malloc(pwlen + 1);
        if (r->password == NULL) {
            cmn_err_set(err, "out of memory");
            goto out;
        }
        memcpy(r->password, pw, pwlen);
        r->password[pwlen] = '\0';
        r->pwlen = pwlen;
    }
    r->prefix = strdup(opts->prefix != NULL ? opts->prefix : "");
    if (r->prefix == NULL) {
        cmn_err_set(err, "out of memory");
        goto out;
    }
    r->db = u.has_db ? u.db : opts->db;
    r->connect_timeout_ms = opts->connect_timeout_ms > 0
                                ? opts->connect_timeout_ms
                                : DEF_CONNECT_TIMEOUT_MS;
    r->command_timeout_ms = opts->command_timeout_ms > 0
                                ? opts->command_timeout_ms
                                : DEF_COMMAND_TIMEOUT_MS;
    r->pool_size = opts->pool_size > 0 ? opts->pool_size : DEF_POOL_SIZE;
    r->backoff_max_ms =
        opts->backoff_max_ms > 0 ? opts->backoff_max_ms : DEF_BACKOFF_MAX_MS;
    if (r->backoff_max_ms < BACKOFF_START_MS) {
        r->backoff_max_ms = BACKOFF_START_MS;
    }
    r->wait_replicas = opts->wait_replicas > 0 ? opts->wait_replicas : 0;
    /* WAIT 0 would block forever. */
    r->wait_timeout_ms =
        opts->wait_timeout_ms > 0 ? opts->wait_timeout_ms : DEF_WAIT_TIMEOUT_MS;
    ok = true;
out:
    if (!ok) {
        cmn_redis_free(r);
        return NULL;
    }
    return r;
}

static void
free_list(struct conn *list)
{
    while (list != NULL) {
        struct conn *next = list->next;

        redisFree(list->c);
        free(list);
        list = next;
    }
}

void
cmn_redis_free(struct cmn_redis *r)
{
    if (r == NULL) {
        return;
    }
    free_list(r->idle);
    pthread_mutex_destroy(&r->mu);
    if (r->password != NULL) {
        cmn_wipe(r->password, r->pwlen);
        free(r->password);
    }
    free(r->sentinels);
    free(r->master_name);
    free(r->prefix);
    free(r);
}

const char *
cmn_redis_prefix(const struct cmn_redis *r)
{
    return r->prefix;
}

unsigned long
cmn_redis_errors(const struct cmn_redis *r)
{
    return atomic_load(&r->errors);
}

unsigned long
cmn_redis_reconnects(const struct cmn_redis *r)
{
    return atomic_load(&r->reconnects);
}

/* ---- connections ------------------------------------------------------ */

static bool
reply_is_str(const redisReply *rep)
{
    return rep != NULL &&
           (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS);
}

/* Connects and sets the command timeout; nothing else. */
static redisContext *
connect_raw(const struct endpoint *ep, int connect_ms, int command_ms,
            struct cmn_err *err)
{
    redisContext *c;
    char name[HOST_MAX + 16];

    describe(ep, name, sizeof(name));
    if (ep->is_unix) {
        c = redisConnectUnixWithTimeout(ep->host, ms_tv(connect_ms));
    } else {
        c = redisConnectWithTimeout(ep->host, ep->port, ms_tv(connect_ms));
    }
    if (c == NULL) {
        cmn_err_set(err, "redis connect %s: out of memory", name);
        return NULL;
    }
    if (c->err != 0) {
        cmn_err_set(err, "redis connect %s: %s", name, c->errstr);
        redisFree(c);
        return NULL;
    }
    if (redisSetTimeout(c, ms_tv(command_ms)) != REDIS_OK) {
        cmn_err_set(err, "redis connect %s: set timeout: %s", name, c->errstr);
        redisFree(c);
        return NULL;
    }
    /* Keepalive notices a peer that vanished without a FIN (host crash,
     * network partition) on idle pooled connections. */
    if (!ep->is_unix && redisEnableKeepAlive(c) != REDIS_OK) {
        cmn_err_set(err, "redis connect %s: keepalive: %s", name, c->errstr);
        redisFree(c);
        return NULL;
    }
    return c;
}

/* Connects to a data node: AUTH, SELECT, and with Sentinel a ROLE check
 * because the address Sentinel gave may be stale. */
static redisContext *
connect_node(struct cmn_redis *r, const struct endpoint *ep,
             struct cmn_err *err)
{
    redisContext *c;
    redisReply *rep = NULL;
    char name[HOST_MAX + 16];
    bool ok = false;

    describe(ep, name, sizeof(name));
    c = connect_raw(ep, r->connect_timeout_ms, r->command_timeout_ms, err);
    if (c == NULL) {
        return NULL;
    }
    if (r->password != NULL) {
        rep = redisCommand(c, "AUTH %b", r->password, r->pwlen);
        if (rep == NULL) {
            cmn_err_set(err, "redis %s: AUTH: %s", name, c->errstr);
            goto out;
        }
        if (rep->type == REDIS_REPLY_ERROR) {
            /* The server's text ("WRONGPASS ...") never echoes the
             * password. */
            cmn_err_set(err, "redis %s: AUTH refused: %s", name, rep->str);
            goto out;
        }
        freeReplyObject(rep);
        rep = NULL;
    }
    if (r->db != 0) {
        rep = redisCommand(c, "SELECT %d", r->db);
        if (rep == NULL) {
            cmn_err_set(err, "redis %s: SELECT: %s", name, c->errstr);
            goto out;
        }
        if (rep->type == REDIS_REPLY_ERROR) {
            cmn_err_set(err, "redis %s: SELECT %d: %s", name, r->db, rep->str);
            goto out;
        }
        freeReplyObject(rep);
        rep = NULL;
    }
    if (r->nsentinels > 0) {
        rep = redisCommand(c, "ROLE");
        if (rep == NULL) {
            cmn_err_set(err, "redis %s: ROLE: %s", name, c->errstr);
            goto out;
        }
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
            !reply_is_str(rep->element[0]) ||
            strcmp(rep->element[0]->str, "master") != 0) {
            cmn_err_set(err, "redis %s: not a master (stale Sentinel answer)",
                        name);
            goto out;
        }
    }
    ok = true;
out:
    if (rep != NULL) {
        freeReplyObject(rep);
    }
    if (!ok) {
        redisFree(c);
        return NULL;
    }
    return c;
}

/* Asks one sentinel where the master is. */
static int
ask_sentinel(struct cmn_redis *r, const struct endpoint *s,
             struct endpoint *out, struct cmn_err *err)
{
    redisContext *c;
    redisReply *rep = NULL;
    char name[HOST_MAX + 16];
    int rc = CMN_IO;

    describe(s, name, sizeof(name));
    /* Short timeouts on both: a hung sentinel must not delay the next. */
    c = connect_raw(s, r->connect_timeout_ms, r->connect_timeout_ms, err);
    if (c == NULL) {
        return CMN_IO;
    }
    rep =
        redisCommand(c, "SENTINEL get-master-addr-by-name %s", r->master_name);
    if (rep == NULL) {
        cmn_err_set(err, "redis sentinel %s: %s", name, c->errstr);
        goto out;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        !reply_is_str(rep->element[0]) || !reply_is_str(rep->element[1])) {
        cmn_err_set(err, "redis sentinel %s: master %s unknown", name,
                    r->master_name);
        goto out;
    }
    /* Sentinel gives a bare address (IPv6 without brackets). */
    if (rep->element[0]->len == 0 ||
        rep->element[0]->len >= sizeof(out->host) ||
        strpbrk(rep->element[0]->str, " []/") != NULL) {
        cmn_err_set(err, "redis sentinel %s: bad master host", name);
        goto out;
    }
    memcpy(out->host, rep->element[0]->str, rep->element[0]->len + 1);
    out->is_unix = false;
    {
        char *end = NULL;
        long port = strtol(rep->element[1]->str, &end, 10);

        if (end == rep->element[1]->str || *end != '\0' || port < 1 ||
            port > 65535) {
            cmn_err_set(err, "redis sentinel %s: bad master port", name);
            goto out;
        }
        out->port = (int)port;
    }
    rc = CMN_OK;
out:
    if (rep != NULL) {
        freeReplyObject(rep);
    }
    redisFree(c);
    return rc;
}

/* Finds the master through the sentinels in turn and connects to it.
 * avoid (probe during backoff): if a sentinel still names that address,
 * give up at once, since connecting to it is what the backoff forbids. */
static redisContext *
discover(struct cmn_redis *r, const struct endpoint *avoid,
         struct endpoint *found, struct cmn_err *err)
{
    for (size_t i = 0; i < r->nsentinels; i++) {
        struct endpoint ep;
        redisContext *c;

        if (ask_sentinel(r, &r->sentinels[i], &ep, err) != CMN_OK) {
            continue;
        }
        if (avoid != NULL && same_endpoint(&ep, avoid)) {
            cmn_err_set(err, "redis unavailable (backing off)");
            return NULL;
        }
        c = connect_node(r, &ep, err);
        if (c != NULL) {
            *found = ep;
            return c;
        }
    }
    return NULL;
}

static void
note_failure_locked(struct cmn_redis *r, long long now)
{
    /* Several threads failing together extend the window only once. */
    if (now < r->backoff_until) {
        return;
    }
    if (r->backoff_ms == 0) {
        r->backoff_ms = BACKOFF_START_MS;
    } else if (r->backoff_ms < r->backoff_max_ms) {
        r->backoff_ms *= 2;
        if (r->backoff_ms > r->backoff_max_ms) {
            r->backoff_ms = r->backoff_max_ms;
        }
    }
    r->backoff_until = now + r->backoff_ms;
}

/* Drops every idle context and, with Sentinel, forgets the master. Used
 * when one connection proves the server gone or no longer master: the
 * others point at the same place. */
static void
flush_locked(struct cmn_redis *r, struct conn **dead)
{
    struct conn *list = r->idle;

    r->dropped += (unsigned long)r->nidle;
    r->idle = NULL;
    r->nidle = 0;
    r->gen++;
    r->master_known = false;
    *dead = list;
}

/* Takes an idle connection, or makes one. fresh skips the idle list (a
 * retry must not land on another context to the same dead server). */
static struct conn *
checkout(struct cmn_redis *r, bool fresh, struct cmn_err *err)
{
    struct conn *pc = NULL;
    struct endpoint target;
    struct endpoint avoid;
    struct endpoint found;
    redisContext *c = NULL;
    bool use_sentinel;
    bool probe = false;
    bool moved = false;
    bool was_down;
    long long now;
    char name[HOST_MAX + 16];

    pthread_mutex_lock(&r->mu);
    if (!fresh && r->idle != NULL) {
        pc = r->idle;
        r->idle = pc->next;
        r->nidle--;
        pthread_mutex_unlock(&r->mu);
        pc->next = NULL;
        return pc;
    }
    now = cmn_now_ms();
    use_sentinel = r->nsentinels > 0 && !r->master_known;
    if (now < r->backoff_until) {
        if (r->nsentinels == 0 || now - r->last_poll_ms < SENTINEL_POLL_MS) {
            pthread_mutex_unlock(&r->mu);
            cmn_err_set(err, "redis unavailable (backing off)");
            return NULL;
        }
        /* This thread alone may probe Sentinel for a moved master. */
        r->last_poll_ms = now;
        probe = true;
        use_sentinel = true;
    }
    target = r->nsentinels > 0 ? r->master : r->direct;
    avoid = r->master;
    pthread_mutex_unlock(&r->mu);

    if (use_sentinel) {
        c = discover(r, probe ? &avoid : NULL, &found, err);
    } else {
        c = connect_node(r, &target, err);
        found = target;
    }

    pthread_mutex_lock(&r->mu);
    now = cmn_now_ms();
    if (c == NULL) {
        /* A probe that found the master unmoved is not a new failure. */
        if (!probe) {
            note_failure_locked(r, now);
        }
        /* Whatever the cached master was, ask Sentinel again next time. */
        r->master_known = false;
        if (!r->down) {
            r->down = true;
            pthread_mutex_unlock(&r->mu);
            cmn_log_warn("event=redis_down reason=\"%s\"", err->msg);
            return NULL;
        }
        pthread_mutex_unlock(&r->mu);
        return NULL;
    }
    pc = calloc(1, sizeof(*pc));
    if (pc == NULL) {
        pthread_mutex_unlock(&r->mu);
        redisFree(c);
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    pc->c = c;
    r->backoff_ms = 0;
    r->backoff_until = 0;
    if (r->dropped > 0) {
        r->dropped--;
        atomic_fetch_add(&r->reconnects, 1);
    }
    was_down = r->down;
    if (r->nsentinels > 0) {
        moved = !same_endpoint(&r->master, &found) && r->master.port != 0;
        r->master = found;
        r->master_known = true;
    }
    r->down = false;
    pc->gen = r->gen;
    pthread_mutex_unlock(&r->mu);

    if (moved || was_down) {
        describe(&found, name, sizeof(name));
        cmn_log_notice("event=redis_up addr=%s new_master=%s", name,
                       moved ? "yes" : "no");
    }
    return pc;
}

/* Returns a healthy context to the idle list, or frees it when the pool
 * was flushed since it was made or enough are idle already. */
static void
checkin(struct cmn_redis *r, struct conn *pc)
{
    pthread_mutex_lock(&r->mu);
    if (pc->gen == r->gen && r->nidle < r->pool_size) {
        pc->next = r->idle;
        r->idle = pc;
        r->nidle++;
        pc = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    if (pc != NULL) {
        redisFree(pc->c);
        free(pc);
    }
}

/* Frees a context that failed; flush also drops the idle ones and makes
 * Sentinel mode rediscover the master. */
static void
drop(struct cmn_redis *r, struct conn *pc, bool flush)
{
    struct conn *dead = NULL;

    pthread_mutex_lock(&r->mu);
    r->dropped++;
    if (flush && pc->gen == r->gen) {
        flush_locked(r, &dead);
    }
    pthread_mutex_unlock(&r->mu);
    redisFree(pc->c);
    free(pc);
    free_list(dead);
}

/* Error replies that mean "this node is not (or not yet) a usable
 * master": after a failover the old master comes back as a replica. */
static bool
is_failover_error(const redisReply *rep)
{
    static const char *const prefixes[] = {"READONLY", "LOADING", "MASTERDOWN"};

    if (rep->type != REDIS_REPLY_ERROR || rep->str == NULL) {
        return false;
    }
    for (size_t i = 0; i < CMN_ARRAY_LEN(prefixes); i++) {
        size_t n = strlen(prefixes[i]);

        if (strncmp(rep->str, prefixes[i], n) == 0 &&
            (rep->str[n] == ' ' || rep->str[n] == '\0')) {
            return true;
        }
    }
    return false;
}

/* Sends one preformatted command (and WAIT when durable) and reads the
 * reply. NULL means the context is dead. *dead is also set when the
 * command's reply arrived but WAIT's did not. */
static redisReply *
exec_on(struct cmn_redis *r, redisContext *c, const char *cmd, size_t len,
        bool durable, bool *dead, struct cmn_err *err)
{
    void *rep = NULL;
    void *w = NULL;

    *dead = true;
    if (redisAppendFormattedCommand(c, cmd, len) != REDIS_OK) {
        cmn_err_set(err, "redis: %s", c->errstr);
        return NULL;
    }
    if (durable && redisAppendCommand(c, "WAIT %d %d", r->wait_replicas,
                                      r->wait_timeout_ms) != REDIS_OK) {
        cmn_err_set(err, "redis: %s", c->errstr);
        return NULL;
    }
    errno = 0;
    if (redisGetReply(c, &rep) != REDIS_OK) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            cmn_err_set(err, "redis: command timed out after %d ms",
                        r->command_timeout_ms);
        } else {
            cmn_err_set(err, "redis: %s", c->errstr);
        }
        return NULL;
    }
    if (durable) {
        const redisReply *wr;

        if (redisGetReply(c, &w) != REDIS_OK) {
            /* The write itself was answered; only its WAIT is lost. */
            cmn_log_warn("event=redis_wait_failed reason=\"%s\"", c->errstr);
            return rep;
        }
        wr = w;
        if (wr->type == REDIS_REPLY_ERROR) {
            cmn_log_warn("event=redis_wait_failed reason=\"%s\"", wr->str);
        } else if (wr->type == REDIS_REPLY_INTEGER &&
                   wr->integer < r->wait_replicas) {
            cmn_log_warn("event=redis_wait_short acked=%lld wanted=%d "
                         "timeout_ms=%d",
                         wr->integer, r->wait_replicas, r->wait_timeout_ms);
        }
        freeReplyObject(w);
    }
    *dead = false;
    return rep;
}

/* The shared path of cmd, cmdf and eval: cmd is a RESP-formatted command,
 * formatted once so that a retry sends the same bytes. */
static redisReply *
run(struct cmn_redis *r, int flags, const char *cmd, size_t len,
    struct cmn_err *err)
{
    int attempts = (flags & CMN_REDIS_RETRY) ? 2 : 1;
    bool durable = (flags & CMN_REDIS_DURABLE) && r->wait_replicas > 0;
    struct cmn_err scratch;

    if (err == NULL) {
        err = &scratch;
    }

    for (int i = 0; i < attempts; i++) {
        struct conn *pc;
        redisReply *rep;
        bool dead;

        pc = checkout(r, i > 0, err);
        if (pc == NULL) {
            /* Connecting failed (or is backing off): a retry now would
             * only fail the same way. */
            atomic_fetch_add(&r->errors, 1);
            return NULL;
        }
        rep = exec_on(r, pc->c, cmd, len, durable, &dead, err);
        if (rep == NULL) {
            atomic_fetch_add(&r->errors, 1);
            drop(r, pc, true);
            continue;
        }
        if (is_failover_error(rep)) {
            atomic_fetch_add(&r->errors, 1);
            drop(r, pc, true);
            if (i + 1 < attempts) {
                freeReplyObject(rep);
                continue;
            }
            return rep;
        }
        if (dead) {
            drop(r, pc, true);
        } else {
            checkin(r, pc);
        }
        return rep;
    }
    return NULL;
}

redisReply *
cmn_redis_cmd(struct cmn_redis *r, int flags, int argc, const char **argv,
              const size_t *argvlen, struct cmn_err *err)
{
    char *cmd = NULL;
    int len;
    redisReply *rep;

    len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    if (len < 0) {
        cmn_err_set(err, "redis: cannot format command");
        return NULL;
    }
    rep = run(r, flags, cmd, (size_t)len, err);
    redisFreeCommand(cmd);
    return rep;
}

redisReply *
cmn_redis_cmdf(struct cmn_redis *r, int flags, struct cmn_err *err,
               const char *fmt, ...)
{
    char *cmd = NULL;
    int len;
    va_list ap;
    redisReply *rep;

    va_start(ap, fmt);
    len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0) {
        cmn_err_set(err, "redis: cannot format command");
        return NULL;
    }
    rep = run(r, flags, cmd, (size_t)len, err);
    redisFreeCommand(cmd);
    return rep;
}

/* SHA1 of the source, as Redis computes it for EVALSHA. Scripts are shared
 * between threads, hence the lock around the lazily filled field. */
static int
script_sha(struct cmn_redis_script *s, char out[41], struct cmn_err *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    static const char hex[] = "0123456789abcdef";
    int rc = CMN_OK;

    pthread_mutex_lock(&sha_mu);
    if (s->sha[0] == '\0') {
        if (EVP_Digest(s->source, strlen(s->source), md, &mdlen, EVP_sha1(),
                       NULL) != 1 ||
            mdlen != 20) {
            cmn_err_set(err, "redis: SHA1 of script failed");
            rc = CMN_ERR;
            goto out;
        }
        for (unsigned int i = 0; i < mdlen; i++) {
            s->sha[2 * i] = hex[md[i] >> 4];
            s->sha[2 * i + 1] = hex[md[i] & 0xf];
        }
        s->sha[40] = '\0';
    }
    memcpy(out, s->sha, 41);
out:
    pthread_mutex_unlock(&sha_mu);
    return rc;
}

redisReply *
cmn_redis_eval(struct cmn_redis *r, struct cmn_redis_script *s, int flags,
               int nkeys, int nargs, const char **args, const size_t *arglens,
               struct cmn_err *err)
{
    const char **argv = NULL;
    size_t *lens = NULL;
    char sha[41];
    char nk[16];
    redisReply *rep = NULL;

    int total = nkeys + nargs; /* keys first, then arguments */

    if (nargs < 0 || nkeys < 0) {
        cmn_err_set(err, "redis eval: bad key/argument counts");
        return NULL;
    }
    if (script_sha(s, sha, err) != CMN_OK) {
        return NULL;
    }
    argv = calloc((size_t)total + 3, sizeof(*argv));
    lens = calloc((size_t)total + 3, sizeof(*lens));
    if (argv == NULL || lens == NULL) {
        cmn_err_set(err, "out of memory");
        goto out;
    }
    snprintf(nk, sizeof(nk), "%d", nkeys);
    argv[0] = "EVALSHA";
    lens[0] = 7;
    argv[1] = sha;
    lens[1] = 40;
    argv[2] = nk;
    lens[2] = strlen(nk);
    for (int i = 0; i < total; i++) {
        argv[i + 3] = args[i];
        lens[i + 3] = arglens != NULL ? arglens[i] : strlen(args[i]);
    }
    rep = cmn_redis_cmd(r, flags, total + 3, argv, lens, err);
    /* The script cache is per node and not replicated: NOSCRIPT after a
     * restart or failover. EVAL loads it again as a side effect. */
    if (rep != NULL && rep->type == REDIS_REPLY_ERROR &&
        strncmp(rep->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(rep);
        argv[0] = "EVAL";
        lens[0] = 4;
        argv[1] = s->source;
        lens[1] = strlen(s->source);
        rep = cmn_redis_cmd(r, flags, total + 3, argv, lens, err);
    }
out:
    free(argv);
    free(lens);
    return rep;
}

bool
cmn_redis_ping(struct cmn_redis *r, struct cmn_err *err)
{
    redisReply *rep;
    bool ok;

    rep = cmn_redis_cmdf(r, CMN_REDIS_RETRY, err, "PING");
    if (rep == NULL) {
        return false;
    }
    ok = rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "PONG") == 0;
    if (!ok) {
        cmn_err_set(err, "redis PING: unexpected reply%s%s",
                    rep->type == REDIS_REPLY_ERROR ? ": " : "",
                    rep->type == REDIS_REPLY_ERROR ? rep->str : "");
    }
    freeReplyObject(rep);
    return ok;
}
