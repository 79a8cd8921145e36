/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_store.c - sealed records in Redis: login state, sessions, handoff
 * codes and the refresh lock. See sso_store.h for the key layout. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_log.h"
#include "cmn_seal.h"
#include "sso_store.h"
#include "sso_store_int.h"

#define KEY_MAX SSO_STORE_KEY_MAX

/* CAS on the version prefix; -1 when the session is gone, so a refresh
 * finishing after a logout cannot bring the session back. */
static struct cmn_redis_script cas_script = {
    .source = "local cur = redis.call('GET', KEYS[1])\n"
              "if not cur then return -1 end\n"
              "local v = string.match(cur, '^(%d+):')\n"
              "if v ~= ARGV[1] then return 0 end\n"
              "redis.call('SET', KEYS[1], ARGV[2], 'EXAT', ARGV[3])\n"
              "return 1\n",
};

static struct cmn_redis_script unlock_script = {
    .source = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
              "  return redis.call('DEL', KEYS[1])\n"
              "end\n"
              "return 0\n",
};

bool
sso_id_valid(const char *id)
{
    size_t n = id != NULL ? strlen(id) : 0;

    if (n != SSO_ID_LEN - 1) {
        return false;
    }
    return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                      "0123456789-_") == n;
}

static void
make_key(const struct sso_store *st, const char *kind, const char *id,
         char key[KEY_MAX])
{
    char hex[65];

    cmn_sha256_hex(id, strlen(id), hex);
    snprintf(key, KEY_MAX, "%ssso:%s:%s", cmn_redis_prefix(st->redis), kind,
             hex);
}

static void
wipe_free(char *s)
{
    if (s != NULL) {
        cmn_wipe(s, strlen(s));
        free(s);
    }
}

/* Seal a JSON object under aad; *out malloc'd. */
static int
seal_json(struct sso_store *st, const char *aad, json_t *obj,
          unsigned char **out, size_t *out_len)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    int rc;

    if (text == NULL) {
        return CMN_NOMEM;
    }
    rc = cmn_seal_seal(st->cfg->seal, aad, strlen(aad), text, strlen(text), out,
                       out_len);
    wipe_free(text);
    return rc;
}

static json_t *
open_json(struct sso_store *st, const char *aad, const unsigned char *in,
          size_t in_len)
{
    unsigned char *pt = NULL;
    size_t pt_len = 0;
    json_error_t jerr;
    json_t *obj;

    if (cmn_seal_open(st->cfg->seal, aad, strlen(aad), in, in_len, &pt,
                      &pt_len) != CMN_OK) {
        cmn_log_err("event=sealed_record_rejected detail=\"tampered, "
                    "truncated or sealed with another key\"");
        return NULL;
    }
    obj = json_loadb((const char *)pt, pt_len, 0, &jerr);
    cmn_wipe(pt, pt_len);
    free(pt);
    if (obj != NULL && !json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
    }
    return obj;
}

static int
reply_status(redisReply *r, struct cmn_err *err)
{
    if (r == NULL) {
        return CMN_IO;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        cmn_err_set(err, "redis: %.200s", r->str);
        return CMN_ERR;
    }
    return CMN_OK;
}

/* SET key value [NX] EX|PX ttl, binary value. */
static int
set_value(struct sso_store *st, const char *key, const unsigned char *val,
          size_t val_len, const char *unit, long ttl, bool nx, int flags,
          struct cmn_err *err)
{
    char ttlbuf[32];
    const char *argv[6] = {"SET", key, (const char *)val, unit, ttlbuf, "NX"};
    size_t lens[6];
    redisReply *r;
    int rc;

    snprintf(ttlbuf, sizeof(ttlbuf), "%ld", ttl);
    for (int i = 0; i < 6; i++) {
        /* the value is binary: never strlen() it */
        lens[i] = i == 2 ? val_len : strlen(argv[i]);
    }
    r = cmn_redis_cmd(st->redis, flags, nx ? 6 : 5, argv, lens, err);
    rc = reply_status(r, err);
    if (rc == CMN_OK && r->type == REDIS_REPLY_NIL) {
        rc = CMN_AGAIN; /* NX and the key exists */
    }
    freeReplyObject(r);
    return rc;
}

/* GETDEL key: *out malloc'd copy, CMN_NOTFOUND when absent. DURABLE (WAIT
 * [redis] wait_replicas): a consumed state, handoff code or SAML request
 * must stay consumed on the replica a failover promotes, or it could be
 * used a second time for the rest of its life. */
static int
take_value(struct sso_store *st, const char *key, unsigned char **out,
           size_t *out_len, struct cmn_err *err)
{
    const char *argv[2] = {"GETDEL", key};
    size_t lens[2] = {6, strlen(key)};
    redisReply *r =
        cmn_redis_cmd(st->redis, CMN_REDIS_DURABLE, 2, argv, lens, err);
    int rc = reply_status(r, err);

    if (rc == CMN_OK) {
        if (r->type == REDIS_REPLY_STRING) {
            *out = malloc(r->len + 1);
            if (*out == NULL) {
                rc = CMN_NOMEM;
            } else {
                memcpy(*out, r->str, r->len);
                (*out)[r->len] = 0;
                *out_len = r->len;
            }
        } else {
            rc = CMN_NOTFOUND;
        }
    }
    freeReplyObject(r);
    return rc;
}

static void
copy_str(char *dst, size_t size, json_t *v)
{
    const char *s = json_string_value(v);

    snprintf(dst, size, "%s", s != NULL ? s : "");
}

/* --- login state --- */

int
sso_store_state_put(struct sso_store *st, const char *state,
                    const struct sso_login_state *ls, struct cmn_err *err)
{
    char key[KEY_MAX];
    unsigned char *sealed = NULL;
    size_t sealed_len = 0;
    json_t *o;
    int rc;

    make_key(st, "state", state, key);
    o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:I, s:s, s:s, s:s, s:s}", "n",
                  ls->nonce, "v", ls->verifier, "r", ls->return_to, "h",
                  ls->login_hint, "p", ls->popup, "t", (json_int_t)ls->created,
                  "su", ls->saml_user, "sn", ls->saml_name_id, "si",
                  ls->saml_session_index, "b", ls->bind_hash);
    if (o == NULL) {
        return CMN_NOMEM;
    }
    /* the SAML NameID's attributes, for the session's LogoutRequest */
    json_object_set_new(o, "sf", json_string(ls->saml_name_id_format));
    json_object_set_new(o, "sq", json_string(ls->saml_name_qualifier));
    json_object_set_new(o, "sp", json_string(ls->saml_sp_name_qualifier));
    json_object_set_new(o, "sa", json_integer(ls->saml_authn_instant));
    rc = seal_json(st, key, o, &sealed, &sealed_len);
    json_decref(o);
    if (rc == CMN_OK) {
        rc = set_value(st, key, sealed, sealed_len, "EX", st->cfg->state_ttl_s,
                       true, CMN_REDIS_RETRY, err);
    }
    free(sealed);
    return rc;
}

int
sso_store_state_take(struct sso_store *st, const char *state,
                     struct sso_login_state *ls, struct cmn_err *err)
{
    char key[KEY_MAX];
    unsigned char *val = NULL;
    size_t len = 0;
    json_t *o;
    int rc;

    memset(ls, 0, sizeof(*ls));
    make_key(st, "state", state, key);
    rc = take_value(st, key, &val, &len, err);
    if (rc != CMN_OK) {
        return rc;
    }
    o = open_json(st, key, val, len);
    free(val);
    if (o == NULL) {
        cmn_err_set(err, "login state record unreadable");
        return CMN_INVALID;
    }
    copy_str(ls->nonce, sizeof(ls->nonce), json_object_get(o, "n"));
    copy_str(ls->verifier, sizeof(ls->verifier), json_object_get(o, "v"));
    copy_str(ls->return_to, sizeof(ls->return_to), json_object_get(o, "r"));
    copy_str(ls->login_hint, sizeof(ls->login_hint), json_object_get(o, "h"));
    ls->popup = json_is_true(json_object_get(o, "p"));
    ls->created = json_integer_value(json_object_get(o, "t"));
    copy_str(ls->saml_name_id_format, sizeof(ls->saml_name_id_format),
             json_object_get(o, "sf"));
    copy_str(ls->saml_name_qualifier, sizeof(ls->saml_name_qualifier),
             json_object_get(o, "sq"));
    copy_str(ls->saml_sp_name_qualifier, sizeof(ls->saml_sp_name_qualifier),
             json_object_get(o, "sp"));
    ls->saml_authn_instant = json_integer_value(json_object_get(o, "sa"));
    copy_str(ls->saml_user, sizeof(ls->saml_user), json_object_get(o, "su"));
    copy_str(ls->saml_name_id, sizeof(ls->saml_name_id),
             json_object_get(o, "sn"));
    copy_str(ls->saml_session_index, sizeof(ls->saml_session_index),
             json_object_get(o, "si"));
    copy_str(ls->bind_hash, sizeof(ls->bind_hash), json_object_get(o, "b"));
    json_decref(o);
    return CMN_OK;
}

/* --- sessions --- */

void
sso_session_cleanup(struct sso_session *s)
{
    wipe_free(s->access_token);
    wipe_free(s->refresh_token);
    s->access_token = NULL;
    s->refresh_token = NULL;
}

/* The session key expires with the session: at the refresh token's expiry
 * or the configured maximum lifetime, whichever comes first. */
static long long
session_expire_at(const struct sso_store *st, const struct sso_session *s)
{
    long long at = s->created_at + st->cfg->max_lifetime_s;

    if (s->refresh_expires_at > 0 && s->refresh_expires_at < at) {
        at = s->refresh_expires_at;
    }
    if (s->refresh_token == NULL && s->access_expires_at < at) {
        at = s->access_expires_at;
    }
    if (s->ended[0] != '\0') {
        /* keep an ended session a short while so callers learn why */
        at = cmn_wall_sec() + 300;
    }
    return at;
}

/* "<version>:" + seal(json, aad = key + ":" + version) */
static int
encode_session(struct sso_store *st, const char *key,
               const struct sso_session *s, unsigned char **out,
               size_t *out_len)
{
    char aad[KEY_MAX + 24], prefix[24];
    unsigned char *sealed = NULL;
    size_t sealed_len = 0;
    json_t *o;
    int rc;

    o = json_pack("{s:s, s:s, s:s?, s:s?, s:I, s:I, s:I, s:I, s:s, s:s, s:s, "
                  "s:s, s:s, s:s, s:I, s:b}",
                  "u", s->user, "h", s->user_hint, "at", s->access_token, "rt",
                  s->refresh_token, "ai", (json_int_t)s->access_issued_at, "ae",
                  (json_int_t)s->access_expires_at, "re",
                  (json_int_t)s->refresh_expires_at, "c",
                  (json_int_t)s->created_at, "e", s->ended, "sn",
                  s->saml_name_id, "si", s->saml_session_index, "sf",
                  s->saml_name_id_format, "sq", s->saml_name_qualifier, "sp",
                  s->saml_sp_name_qualifier, "sa",
                  (json_int_t)s->saml_authn_instant, "so", s->saml_only);
    if (o == NULL) {
        return CMN_NOMEM;
    }
    snprintf(aad, sizeof(aad), "%s:%lld", key, s->version);
    rc = seal_json(st, aad, o, &sealed, &sealed_len);
    json_decref(o);
    if (rc != CMN_OK) {
        return rc;
    }
    int plen = snprintf(prefix, sizeof(prefix), "%lld:", s->version);
    *out = malloc((size_t)plen + sealed_len);
    if (*out == NULL) {
        free(sealed);
        return CMN_NOMEM;
    }
    memcpy(*out, prefix, (size_t)plen);
    memcpy(*out + plen, sealed, sealed_len);
    *out_len = (size_t)plen + sealed_len;
    free(sealed);
    return CMN_OK;
}

static int
decode_session(struct sso_store *st, const char *key, const char *val,
               size_t len, struct sso_session *s)
{
    char aad[KEY_MAX + 24];
    const char *colon = memchr(val, ':', len < 24 ? len : 24);
    char *end;
    json_t *o, *v;

    memset(s, 0, sizeof(*s));
    if (colon == NULL) {
        return CMN_INVALID;
    }
    s->version = strtoll(val, &end, 10);
    if (end != colon || s->version < 1) {
        return CMN_INVALID;
    }
    snprintf(aad, sizeof(aad), "%s:%lld", key, s->version);
    o = open_json(st, aad, (const unsigned char *)colon + 1,
                  len - (size_t)(colon + 1 - val));
    if (o == NULL) {
        return CMN_INVALID;
    }
    copy_str(s->user, sizeof(s->user), json_object_get(o, "u"));
    copy_str(s->user_hint, sizeof(s->user_hint), json_object_get(o, "h"));
    copy_str(s->ended, sizeof(s->ended), json_object_get(o, "e"));
    v = json_object_get(o, "at");
    s->access_token = json_is_string(v) ? strdup(json_string_value(v)) : NULL;
    v = json_object_get(o, "rt");
    s->refresh_token = json_is_string(v) ? strdup(json_string_value(v)) : NULL;
    s->access_issued_at = json_integer_value(json_object_get(o, "ai"));
    s->access_expires_at = json_integer_value(json_object_get(o, "ae"));
    s->refresh_expires_at = json_integer_value(json_object_get(o, "re"));
    s->created_at = json_integer_value(json_object_get(o, "c"));
    copy_str(s->saml_name_id, sizeof(s->saml_name_id),
             json_object_get(o, "sn"));
    copy_str(s->saml_session_index, sizeof(s->saml_session_index),
             json_object_get(o, "si"));
    copy_str(s->saml_name_id_format, sizeof(s->saml_name_id_format),
             json_object_get(o, "sf"));
    copy_str(s->saml_name_qualifier, sizeof(s->saml_name_qualifier),
             json_object_get(o, "sq"));
    copy_str(s->saml_sp_name_qualifier, sizeof(s->saml_sp_name_qualifier),
             json_object_get(o, "sp"));
    s->saml_authn_instant = json_integer_value(json_object_get(o, "sa"));
    s->saml_only = json_is_true(json_object_get(o, "so"));
    json_decref(o);
    if (s->access_token == NULL && s->ended[0] == '\0' && !s->saml_only) {
        sso_session_cleanup(s);
        return CMN_INVALID;
    }
    return CMN_OK;
}

/* Add sid to the set kind:<sha256(id)> (members are the session keys'
 * hashes, never ids). The set lives as long as the newest session can. */
int
sso_store_index_add(struct sso_store *st, const char *kind, const char *id,
                    const char *sid, struct cmn_err *err)
{
    char key[KEY_MAX], member[65], ttl[24];
    redisReply *r;
    int rc;

    make_key(st, kind, id, key);
    cmn_sha256_hex(sid, strlen(sid), member);
    snprintf(ttl, sizeof(ttl), "%ld", st->cfg->max_lifetime_s);
    r = cmn_redis_cmdf(st->redis, CMN_REDIS_RETRY, err, "SADD %s %s", key,
                       member);
    rc = reply_status(r, err);
    if (rc == CMN_OK) {
        freeReplyObject(r);
        r = cmn_redis_cmdf(st->redis, CMN_REDIS_RETRY, err, "EXPIRE %s %s", key,
                           ttl);
        rc = reply_status(r, err);
    }
    freeReplyObject(r);
    return rc;
}

/* Remember sid under its user, so that `fscctl session revoke USER` can
 * find it. A failure here costs only that revocation by user: logged, the
 * sign-in goes on. */
static void
user_index_add(struct sso_store *st, const char *user, const char *sid)
{
    struct cmn_err err = {{0}};

    if (sso_store_index_add(st, "user", user, sid, &err) != CMN_OK) {
        cmn_log_warn("event=user_index_failed detail=\"%s\"", err.msg);
    }
}

int
sso_store_session_create(struct sso_store *st, struct sso_session *s,
                         char sid[SSO_ID_LEN], struct cmn_err *err)
{
    char key[KEY_MAX];
    unsigned char *val = NULL;
    size_t len = 0;
    int rc;

    if (cmn_random_id(sid, SSO_ID_LEN, SSO_ID_BYTES) != CMN_OK) {
        cmn_err_set(err, "no randomness");
        return CMN_ERR;
    }
    make_key(st, "sess", sid, key);
    if (s->saml_name_id[0] != '\0') {
        /* before the session exists: a session the IdP's LogoutRequest
         * could not find must not be created at all */
        rc = sso_store_saml_index_add(st, s->saml_name_id, sid, err);
        if (rc != CMN_OK) {
            return rc;
        }
    }
    s->version = 1;
    rc = encode_session(st, key, s, &val, &len);
    if (rc == CMN_OK) {
        long long ttl = session_expire_at(st, s) - cmn_wall_sec();
        rc = set_value(st, key, val, len, "EX", ttl > 1 ? (long)ttl : 1, true,
                       CMN_REDIS_DURABLE, err);
    }
    free(val);
    if (rc == CMN_OK && s->saml_name_id[0] != '\0') {
        /* after the write, so that a LogoutRequest either is seen here or
         * finds this session through the index (sso_store_slo.c) */
        rc = sso_store_saml_logged_out(st, s->saml_name_id,
                                       s->saml_session_index,
                                       s->saml_authn_instant, err);
        if (rc != CMN_OK) {
            struct sso_session gone;
            struct cmn_err derr = {{0}};
            if (sso_store_session_delete(st, sid, &gone, &derr) == CMN_OK) {
                sso_session_cleanup(&gone);
            }
            if (rc == CMN_DENIED) {
                cmn_err_set(err, "the IdP logged this sign-in out");
            }
            cmn_wipe(sid, SSO_ID_LEN);
            return rc;
        }
    }
    if (rc == CMN_OK && s->user[0] != '\0') {
        user_index_add(st, s->user, sid);
    }
    return rc;
}

int
sso_store_session_get(struct sso_store *st, const char *sid,
                      struct sso_session *s, struct cmn_err *err)
{
    char key[KEY_MAX];
    redisReply *r;
    int rc;

    memset(s, 0, sizeof(*s));
    make_key(st, "sess", sid, key);
    r = cmn_redis_cmdf(st->redis, CMN_REDIS_RETRY, err, "GET %s", key);
    rc = reply_status(r, err);
    if (rc == CMN_OK) {
        if (r->type != REDIS_REPLY_STRING) {
            rc = CMN_NOTFOUND;
        } else if (decode_session(st, key, r->str, r->len, s) != CMN_OK) {
            cmn_err_set(err, "session record unreadable");
            rc = CMN_INVALID;
        }
    }
    freeReplyObject(r);
    return rc;
}

int
sso_store_session_cas(struct sso_store *st, const char *sid,
                      long long expected_version, struct sso_session *s,
                      struct cmn_err *err)
{
    char key[KEY_MAX], expbuf[24], atbuf[24];
    unsigned char *val = NULL;
    size_t len = 0;
    redisReply *r;
    int rc;

    make_key(st, "sess", sid, key);
    s->version = expected_version + 1;
    rc = encode_session(st, key, s, &val, &len);
    if (rc != CMN_OK) {
        return rc;
    }
    snprintf(expbuf, sizeof(expbuf), "%lld", expected_version);
    snprintf(atbuf, sizeof(atbuf), "%lld", session_expire_at(st, s));
    const char *args[4] = {key, expbuf, (const char *)val, atbuf};
    size_t lens[4] = {strlen(key), strlen(expbuf), len, strlen(atbuf)};
    r = cmn_redis_eval(st->redis, &cas_script, CMN_REDIS_DURABLE, 1, 3, args,
                       lens, err);
    free(val);
    rc = reply_status(r, err);
    if (rc == CMN_OK) {
        if (r->type != REDIS_REPLY_INTEGER) {
            rc = CMN_ERR;
        } else if (r->integer == -1) {
            rc = CMN_NOTFOUND;
        } else if (r->integer == 0) {
            rc = CMN_AGAIN;
        }
    }
    freeReplyObject(r);
    return rc;
}

int
sso_store_session_delete(struct sso_store *st, const char *sid,
                         struct sso_session *s, struct cmn_err *err)
{
    char key[KEY_MAX];
    unsigned char *val = NULL;
    size_t len = 0;
    int rc;

    memset(s, 0, sizeof(*s));
    make_key(st, "sess", sid, key);
    rc = take_value(st, key, &val, &len, err);
    if (rc != CMN_OK) {
        return rc;
    }
    if (decode_session(st, key, (const char *)val, len, s) != CMN_OK) {
        memset(s, 0, sizeof(*s)); /* deleted anyway; nothing to revoke */
    }
    cmn_wipe(val, len);
    free(val);
    return CMN_OK;
}

/* Read a session without taking it: CMN_NOTFOUND when gone. */
static int
peek_session(struct sso_store *st, const char *skey, struct sso_session *s,
             struct cmn_err *err)
{
    redisReply *r =
        cmn_redis_cmdf(st->redis, CMN_REDIS_RETRY, err, "GET %s", skey);
    int rc = reply_status(r, err);

    memset(s, 0, sizeof(*s));
    if (rc == CMN_OK) {
        if (r->type != REDIS_REPLY_STRING) {
            rc = CMN_NOTFOUND;
        } else if (decode_session(st, skey, r->str, r->len, s) != CMN_OK) {
            rc = CMN_INVALID;
        }
    }
    freeReplyObject(r);
    return rc;
}

/* GETDEL each session in the set kind:<sha256(id)> that match accepts
 * (all when match is NULL); SREM what was handled, so a sign-in racing
 * with the revocation keeps its own entry. A session match refuses stays
 * in the set. */
int
sso_store_index_sessions_delete(struct sso_store *st, const char *kind,
                                const char *id, sso_store_match_fn match,
                                void *match_arg, sso_store_ended_fn each,
                                void *arg, size_t *n, struct cmn_err *err)
{
    char key[KEY_MAX], skey[KEY_MAX];
    redisReply *members;
    int rc;

    *n = 0;
    make_key(st, kind, id, key);
    members =
        cmn_redis_cmdf(st->redis, CMN_REDIS_RETRY, err, "SMEMBERS %s", key);
    rc = reply_status(members, err);
    if (rc != CMN_OK || members->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(members);
        return rc != CMN_OK ? rc : CMN_ERR;
    }
    for (size_t i = 0; i < members->elements && rc == CMN_OK; i++) {
        const redisReply *m = members->element[i];
        unsigned char *val = NULL;
        size_t len = 0;
        struct sso_session s;

        if (m->type != REDIS_REPLY_STRING || m->len != 64 ||
            strspn(m->str, "0123456789abcdef") != 64) {
            continue; /* not ours: leave it alone */
        }
        snprintf(skey, sizeof(skey), "%ssso:sess:%s",
                 cmn_redis_prefix(st->redis), m->str);
        if (match != NULL) {
            rc = peek_session(st, skey, &s, err);
            if (rc == CMN_OK) {
                bool wanted = match(&s, match_arg);
                sso_session_cleanup(&s);
                if (!wanted) {
                    continue;
                }
            } else if (rc == CMN_INVALID) {
                rc = CMN_OK; /* unreadable: not provably this subject's */
                continue;
            } else if (rc != CMN_NOTFOUND) {
                break;
            }
        }
        rc = take_value(st, skey, &val, &len, err);
        if (rc == CMN_OK) {
            /* the record as taken: its refresh token is the current one */
            if (decode_session(st, skey, (const char *)val, len, &s) ==
                CMN_OK) {
                if (each != NULL) {
                    each(&s, arg);
                }
                sso_session_cleanup(&s);
            }
            cmn_wipe(val, len);
            free(val);
            (*n)++;
        } else if (rc == CMN_NOTFOUND) {
            rc = CMN_OK; /* expired or logged out already */
        } else {
            break;
        }
        redisReply *r = cmn_redis_cmdf(st->redis, CMN_REDIS_RETRY, err,
                                       "SREM %s %s", key, m->str);
        rc = reply_status(r, err);
        freeReplyObject(r);
    }
    freeReplyObject(members);
    return rc;
}

int
sso_store_user_sessions_delete(struct sso_store *st, const char *user,
                               sso_store_ended_fn each, void *arg, size_t *n,
                               struct cmn_err *err)
{
    return sso_store_index_sessions_delete(st, "user", user, NULL, NULL, each,
                                           arg, n, err);
}

/* --- handoff codes --- */

int
sso_store_handoff_put(struct sso_store *st, const char *code, const char *sid,
                      struct cmn_err *err)
{
    char key[KEY_MAX];
    unsigned char *sealed = NULL;
    size_t sealed_len = 0;
    int rc;

    make_key(st, "handoff", code, key);
    rc = cmn_seal_seal(st->cfg->seal, key, strlen(key), sid, strlen(sid),
                       &sealed, &sealed_len);
    if (rc == CMN_OK) {
        rc = set_value(st, key, sealed, sealed_len, "EX", 60, true,
                       CMN_REDIS_DURABLE, err);
    }
    free(sealed);
    return rc;
}

int
sso_store_handoff_take(struct sso_store *st, const char *code,
                       char sid[SSO_ID_LEN], struct cmn_err *err)
{
    char key[KEY_MAX];
    unsigned char *val = NULL, *pt = NULL;
    size_t len = 0, pt_len = 0;
    int rc;

    make_key(st, "handoff", code, key);
    rc = take_value(st, key, &val, &len, err);
    if (rc != CMN_OK) {
        return rc;
    }
    rc = cmn_seal_open(st->cfg->seal, key, strlen(key), val, len, &pt, &pt_len);
    free(val);
    if (rc != CMN_OK || pt_len != SSO_ID_LEN - 1) {
        cmn_err_set(err, "handoff record unreadable");
        rc = CMN_INVALID;
    } else {
        memcpy(sid, pt, pt_len);
        sid[pt_len] = '\0';
    }
    if (pt != NULL) {
        cmn_wipe(pt, pt_len);
        free(pt);
    }
    return rc;
}

/* --- IdS token keys --- */

#define IDSKEY_TTL_S 86400

static void
idskey_key(const struct sso_store *st, char key[KEY_MAX])
{
    snprintf(key, KEY_MAX, "%ssso:idskey", cmn_redis_prefix(st->redis));
}

int
sso_store_idskey_put(struct sso_store *st, const char *text,
                     struct cmn_err *err)
{
    char key[KEY_MAX];
    unsigned char *sealed = NULL;
    size_t sealed_len = 0;
    int rc;

    idskey_key(st, key);
    rc = cmn_seal_seal(st->cfg->seal, key, strlen(key), text, strlen(text),
                       &sealed, &sealed_len);
    if (rc == CMN_OK) {
        rc = set_value(st, key, sealed, sealed_len, "EX", IDSKEY_TTL_S, false,
                       CMN_REDIS_RETRY, err);
    }
    free(sealed);
    return rc;
}

int
sso_store_idskey_get(struct sso_store *st, char **text, struct cmn_err *err)
{
    char key[KEY_MAX];
    unsigned char *pt = NULL;
    size_t pt_len = 0;
    redisReply *r;
    int rc;

    *text = NULL;
    idskey_key(st, key);
    r = cmn_redis_cmdf(st->redis, CMN_REDIS_RETRY, err, "GET %s", key);
    rc = reply_status(r, err);
    if (rc == CMN_OK && r->type != REDIS_REPLY_STRING) {
        rc = CMN_NOTFOUND;
    }
    if (rc == CMN_OK) {
        if (cmn_seal_open(st->cfg->seal, key, strlen(key),
                          (const unsigned char *)r->str, r->len, &pt,
                          &pt_len) != CMN_OK) {
            cmn_err_set(err, "cached IdS key does not open under the seal "
                             "key");
            rc = CMN_INVALID;
        } else {
            *text = malloc(pt_len + 1);
            if (*text == NULL) {
                rc = CMN_NOMEM;
            } else {
                memcpy(*text, pt, pt_len);
                (*text)[pt_len] = '\0';
            }
            free(pt);
        }
    }
    freeReplyObject(r);
    return rc;
}

/* --- SAML --- */

int
sso_store_saml_request_put(struct sso_store *st, const char *id,
                           const struct sso_saml_request *rq,
                           struct cmn_err *err)
{
    char key[KEY_MAX];
    json_t *o;
    int rc;

    make_key(st, "samlreq", id, key);
    o = json_pack("{s:s, s:s, s:s, s:b, s:I, s:s}", "rs", rq->relay_state, "r",
                  rq->return_to, "h", rq->login_hint, "p", rq->popup, "t",
                  (json_int_t)rq->created, "b", rq->bind_hash);
    if (o == NULL) {
        return CMN_NOMEM;
    }
    rc = sso_store_put_sealed(st, key, o, st->cfg->state_ttl_s, err);
    json_decref(o);
    return rc;
}

int
sso_store_saml_request_take(struct sso_store *st, const char *id,
                            struct sso_saml_request *rq, struct cmn_err *err)
{
    char key[KEY_MAX];
    json_t *o;
    int rc;

    memset(rq, 0, sizeof(*rq));
    make_key(st, "samlreq", id, key);
    rc = sso_store_take_sealed(st, key, &o, err);
    if (rc != CMN_OK) {
        return rc;
    }
    copy_str(rq->relay_state, sizeof(rq->relay_state),
             json_object_get(o, "rs"));
    copy_str(rq->return_to, sizeof(rq->return_to), json_object_get(o, "r"));
    copy_str(rq->login_hint, sizeof(rq->login_hint), json_object_get(o, "h"));
    rq->popup = json_is_true(json_object_get(o, "p"));
    rq->created = json_integer_value(json_object_get(o, "t"));
    copy_str(rq->bind_hash, sizeof(rq->bind_hash), json_object_get(o, "b"));
    json_decref(o);
    return CMN_OK;
}

int
sso_store_saml_seen(struct sso_store *st, const char *issuer,
                    const char *assertion_id, long long expire_at,
                    struct cmn_err *err)
{
    char key[KEY_MAX], at[24], hex[65];
    const char *argv[6];
    size_t lens[6];
    size_t n = strlen(issuer) + strlen(assertion_id) + 2;
    char *both = malloc(n);
    redisReply *r;
    int rc;

    if (both == NULL) {
        return CMN_NOMEM;
    }
    /* issuer|ID: IDs are unique per issuer only */
    snprintf(both, n, "%s|%s", issuer, assertion_id);
    cmn_sha256_hex(both, strlen(both), hex);
    free(both);
    snprintf(key, KEY_MAX, "%ssso:samlseen:%s", cmn_redis_prefix(st->redis),
             hex);
    snprintf(at, sizeof(at), "%lld", expire_at);
    argv[0] = "SET";
    argv[1] = key;
    argv[2] = "1";
    argv[3] = "NX";
    argv[4] = "EXAT";
    argv[5] = at;
    for (int i = 0; i < 6; i++) {
        lens[i] = strlen(argv[i]);
    }
    /* DURABLE: a replay cache entry lost in a failover would let the
     * same assertion in twice */
    r = cmn_redis_cmd(st->redis, CMN_REDIS_DURABLE, 6, argv, lens, err);
    rc = reply_status(r, err);
    if (rc == CMN_OK && r->type == REDIS_REPLY_NIL) {
        rc = CMN_AGAIN;
    } else if (rc == CMN_OK && r->type != REDIS_REPLY_STATUS) {
        cmn_err_set(err, "redis: unexpected reply to SET NX");
        rc = CMN_ERR;
    }
    freeReplyObject(r);
    return rc;
}

/* --- refresh lock --- */

int
sso_store_lock(struct sso_store *st, const char *sid, const char *owner,
               struct cmn_err *err)
{
    char key[KEY_MAX];

    make_key(st, "lock", sid, key);
    return set_value(st, key, (const unsigned char *)owner, strlen(owner), "PX",
                     st->cfg->lock_ttl_ms, true, 0, err);
}

void
sso_store_unlock(struct sso_store *st, const char *sid, const char *owner)
{
    char key[KEY_MAX];
    struct cmn_err err;
    const char *args[2];
    size_t lens[2];

    make_key(st, "lock", sid, key);
    args[0] = key;
    args[1] = owner;
    lens[0] = strlen(key);
    lens[1] = strlen(owner);
    freeReplyObject(cmn_redis_eval(st->redis, &unlock_script, CMN_REDIS_RETRY,
                                   1, 1, args, lens, &err));
}

void
sso_store_refresh_backoff_set(struct sso_store *st, const char *sid, long ms)
{
    char key[KEY_MAX];
    struct cmn_err err;

    make_key(st, "rfail", sid, key);
    freeReplyObject(
        cmn_redis_cmdf(st->redis, 0, &err, "SET %s 1 PX %ld", key, ms));
}

bool
sso_store_refresh_backoff(struct sso_store *st, const char *sid)
{
    char key[KEY_MAX];
    struct cmn_err err;
    redisReply *r;
    bool on;

    make_key(st, "rfail", sid, key);
    r = cmn_redis_cmdf(st->redis, 0, &err, "EXISTS %s", key);
    on = r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    return on;
}

/* --- shared with sso_store_slo.c (sso_store_int.h) --- */

void
sso_store_key(const struct sso_store *st, const char *kind, const char *id,
              char key[SSO_STORE_KEY_MAX])
{
    make_key(st, kind, id, key);
}

int
sso_store_put_sealed(struct sso_store *st, const char *key, json_t *obj,
                     long ttl_s, struct cmn_err *err)
{
    unsigned char *sealed = NULL;
    size_t sealed_len = 0;
    int rc = seal_json(st, key, obj, &sealed, &sealed_len);

    if (rc == CMN_OK) {
        rc = set_value(st, key, sealed, sealed_len, "EX", ttl_s, true,
                       CMN_REDIS_DURABLE, err);
    }
    free(sealed);
    return rc;
}

int
sso_store_take_sealed(struct sso_store *st, const char *key, json_t **obj,
                      struct cmn_err *err)
{
    unsigned char *val = NULL;
    size_t len = 0;
    int rc = take_value(st, key, &val, &len, err);

    *obj = NULL;
    if (rc != CMN_OK) {
        return rc;
    }
    *obj = open_json(st, key, val, len);
    cmn_wipe(val, len);
    free(val);
    if (*obj == NULL) {
        cmn_err_set(err, "sealed record unreadable");
        return CMN_INVALID;
    }
    return CMN_OK;
}

void
sso_store_copy_str(char *dst, size_t size, json_t *v)
{
    copy_str(dst, size, v);
}
