/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_store_slo.c - what SAML Single Logout keeps in Redis (sso_store.h
 * lists the keys): the index from a SAML subject to its sessions, the
 * one-time logout codes of SP-initiated logouts and our LogoutRequests in
 * flight. Like every record here: hashed keys, sealed values, a TTL, and
 * consumed with GETDEL so that A and B see each one used once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_redis.h"
#include "cmn_seal.h"
#include "sso_saml_config.h"
#include "sso_store_int.h"

#define LOGOUT_CODE_TTL_S 60

/* Keep the latest logout instant: an older LogoutRequest arriving late
 * must not shorten what a newer one covers. */
static struct cmn_redis_script mark_script = {
    .source = "local cur = tonumber(redis.call('GET', KEYS[1]) or '-1')\n"
              "if tonumber(ARGV[1]) > cur then\n"
              "  redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[2])\n"
              "else\n"
              "  redis.call('EXPIREAT', KEYS[1], ARGV[2], 'GT')\n"
              "end\n"
              "return 1\n",
};

/* NameIDs are scoped by the IdP that issued them: "<entityID>|<NameID>".
 * malloc'd. */
static char *
subject_id(const struct sso_store *st, const char *name_id)
{
    const char *idp = st->cfg->saml != NULL && st->cfg->saml->idp.entity_id
                          ? st->cfg->saml->idp.entity_id
                          : "";
    size_t n = strlen(idp) + strlen(name_id) + 2;
    char *s = malloc(n);

    if (s != NULL) {
        snprintf(s, n, "%s|%s", idp, name_id);
    }
    return s;
}

int
sso_store_saml_index_add(struct sso_store *st, const char *name_id,
                         const char *sid, struct cmn_err *err)
{
    char *id = subject_id(st, name_id);
    int rc;

    if (id == NULL) {
        return CMN_NOMEM;
    }
    rc = sso_store_index_add(st, "samlsub", id, sid, err);
    free(id);
    return rc;
}

struct subject_match {
    const char *name_id;
    char *const *session_indexes;
    size_t nsi;
};

/* The index already says "this subject"; the record must agree (a member
 * planted in the set ends nobody else's session), and with SessionIndexes
 * only the sessions of those IdP sessions go (saml-core-2.0-os §3.7.3.2). */
static bool
subject_matches(const struct sso_session *s, void *arg)
{
    const struct subject_match *m = arg;

    if (strcmp(s->saml_name_id, m->name_id) != 0) {
        return false;
    }
    if (m->nsi == 0) {
        return true;
    }
    for (size_t i = 0; i < m->nsi; i++) {
        if (strcmp(s->saml_session_index, m->session_indexes[i]) == 0) {
            return true;
        }
    }
    return false;
}

int
sso_store_saml_sessions_delete(struct sso_store *st, const char *name_id,
                               char *const *session_indexes, size_t nsi,
                               sso_store_ended_fn each, void *arg, size_t *n,
                               struct cmn_err *err)
{
    struct subject_match m = {name_id, session_indexes, nsi};
    char *id = subject_id(st, name_id);
    int rc;

    *n = 0;
    if (id == NULL) {
        return CMN_NOMEM;
    }
    rc = sso_store_index_sessions_delete(st, "samlsub", id, subject_matches, &m,
                                         each, arg, n, err);
    free(id);
    return rc;
}

/* --- what a LogoutRequest leaves behind for sign-ins in flight --- */

/* "<entityID>|<NameID>|<SessionIndex or empty>", hashed into the key */
static void
gone_key(struct sso_store *st, const char *name_id, const char *session_index,
         char key[SSO_STORE_KEY_MAX])
{
    char *subject = subject_id(st, name_id);
    size_t n = (subject ? strlen(subject) : 0) + strlen(session_index) + 2;
    char *id = subject ? malloc(n) : NULL;

    if (id != NULL) {
        snprintf(id, n, "%s|%s", subject, session_index);
    }
    /* out of memory: a key no one writes, so a check fails closed below */
    sso_store_key(st, "samlgone", id != NULL ? id : "\n", key);
    free(id);
    free(subject);
}

int
sso_store_saml_logout_mark(struct sso_store *st, const char *name_id,
                           char *const *session_indexes, size_t nsi,
                           long long logout_instant, long long expire_at,
                           struct cmn_err *err)
{
    char key[SSO_STORE_KEY_MAX], at[24], when[24];
    int rc = CMN_OK;

    snprintf(at, sizeof(at), "%lld", expire_at);
    snprintf(when, sizeof(when), "%lld", logout_instant);
    for (size_t i = 0; i < (nsi > 0 ? nsi : 1) && rc == CMN_OK; i++) {
        const char *args[3] = {key, when, at};
        size_t lens[3];
        redisReply *r;

        gone_key(st, name_id, nsi > 0 ? session_indexes[i] : "", key);
        lens[0] = strlen(key);
        lens[1] = strlen(when);
        lens[2] = strlen(at);
        /* DURABLE: a marker lost in a failover would let a sign-in that
         * the IdP logged out complete */
        r = cmn_redis_eval(st->redis, &mark_script, CMN_REDIS_DURABLE, 1, 2,
                           args, lens, err);
        if (r == NULL) {
            rc = CMN_IO;
        } else if (r->type == REDIS_REPLY_ERROR) {
            cmn_err_set(err, "redis: %.200s", r->str);
            rc = CMN_ERR;
        }
        freeReplyObject(r);
    }
    return rc;
}

int
sso_store_saml_logged_out(struct sso_store *st, const char *name_id,
                          const char *session_index, long long authn_instant,
                          struct cmn_err *err)
{
    char all[SSO_STORE_KEY_MAX], one[SSO_STORE_KEY_MAX];
    bool with_si = session_index != NULL && session_index[0] != '\0';
    redisReply *r;
    int rc = CMN_OK;

    gone_key(st, name_id, "", all);
    if (with_si) {
        gone_key(st, name_id, session_index, one);
    }
    r = with_si
            ? cmn_redis_cmdf(st->redis, CMN_REDIS_RETRY, err, "MGET %s %s", all,
                             one)
            : cmn_redis_cmdf(st->redis, CMN_REDIS_RETRY, err, "MGET %s", all);
    if (r == NULL) {
        return CMN_IO;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        cmn_err_set(err, "redis: unexpected reply to MGET");
        freeReplyObject(r);
        return CMN_ERR;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        /* the instants are the IdP's: a sign-in authenticated at or
         * before the logout is covered by it */
        if (e->type == REDIS_REPLY_STRING &&
            strtoll(e->str, NULL, 10) >= authn_instant) {
            rc = CMN_DENIED;
        }
    }
    freeReplyObject(r);
    return rc;
}

/* --- SP-initiated logout: the browser's one-time code --- */

int
sso_store_saml_logout_code_put(struct sso_store *st, const char *code,
                               const struct sso_saml_logout *lo,
                               struct cmn_err *err)
{
    char key[SSO_STORE_KEY_MAX];
    json_t *o;
    int rc;

    sso_store_key(st, "samlout", code, key);
    o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "sn", lo->name_id, "sf",
                  lo->name_id_format, "sq", lo->name_qualifier, "sp",
                  lo->sp_name_qualifier, "si", lo->session_index, "r",
                  lo->return_to);
    if (o == NULL) {
        return CMN_NOMEM;
    }
    rc = sso_store_put_sealed(st, key, o, LOGOUT_CODE_TTL_S, err);
    json_decref(o);
    return rc;
}

int
sso_store_saml_logout_code_take(struct sso_store *st, const char *code,
                                struct sso_saml_logout *lo, struct cmn_err *err)
{
    char key[SSO_STORE_KEY_MAX];
    json_t *o = NULL;
    int rc;

    memset(lo, 0, sizeof(*lo));
    sso_store_key(st, "samlout", code, key);
    rc = sso_store_take_sealed(st, key, &o, err);
    if (rc != CMN_OK) {
        return rc;
    }
    sso_store_copy_str(lo->name_id, sizeof(lo->name_id),
                       json_object_get(o, "sn"));
    sso_store_copy_str(lo->name_id_format, sizeof(lo->name_id_format),
                       json_object_get(o, "sf"));
    sso_store_copy_str(lo->name_qualifier, sizeof(lo->name_qualifier),
                       json_object_get(o, "sq"));
    sso_store_copy_str(lo->sp_name_qualifier, sizeof(lo->sp_name_qualifier),
                       json_object_get(o, "sp"));
    sso_store_copy_str(lo->session_index, sizeof(lo->session_index),
                       json_object_get(o, "si"));
    sso_store_copy_str(lo->return_to, sizeof(lo->return_to),
                       json_object_get(o, "r"));
    json_decref(o);
    return lo->name_id[0] != '\0' ? CMN_OK : CMN_INVALID;
}

/* --- our LogoutRequests in flight --- */

int
sso_store_saml_logout_request_put(struct sso_store *st, const char *id,
                                  const struct sso_saml_logout_request *rq,
                                  struct cmn_err *err)
{
    char key[SSO_STORE_KEY_MAX];
    json_t *o;
    int rc;

    sso_store_key(st, "samllogout", id, key);
    o = json_pack("{s:s, s:s, s:I}", "rs", rq->relay_state, "r", rq->return_to,
                  "t", (json_int_t)rq->created);
    if (o == NULL) {
        return CMN_NOMEM;
    }
    rc = sso_store_put_sealed(st, key, o, st->cfg->state_ttl_s, err);
    json_decref(o);
    return rc;
}

int
sso_store_saml_logout_request_take(struct sso_store *st, const char *id,
                                   struct sso_saml_logout_request *rq,
                                   struct cmn_err *err)
{
    char key[SSO_STORE_KEY_MAX];
    json_t *o = NULL;
    int rc;

    memset(rq, 0, sizeof(*rq));
    sso_store_key(st, "samllogout", id, key);
    rc = sso_store_take_sealed(st, key, &o, err);
    if (rc != CMN_OK) {
        return rc;
    }
    sso_store_copy_str(rq->relay_state, sizeof(rq->relay_state),
                       json_object_get(o, "rs"));
    sso_store_copy_str(rq->return_to, sizeof(rq->return_to),
                       json_object_get(o, "r"));
    rq->created = json_integer_value(json_object_get(o, "t"));
    json_decref(o);
    return CMN_OK;
}
