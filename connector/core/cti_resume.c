/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_resume.c - the Redis side of resumable agent sessions: sealed
 * session records, token hashes and this host's agent set; see
 * cti_resume.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cmn_log.h"
#include "cmn_redis.h"
#include "cmn_seal.h"
#include "cti_resume.h"

#define RESUME_KEY_MAX  768
#define RESUME_BLOB_MAX 16384 /* a sealed record, base64url */

struct cti_resume {
    struct cmn_redis *redis;
    struct cmn_seal *seal;
    char self[512]; /* this host: public_url, or listen */
    long ttl_s;
};

void
cti_resume_record_cleanup(struct cti_resume_record *rec)
{
    cmn_secret_free(rec->password);
    cmn_secret_free(rec->sso_session);
    rec->password = rec->sso_session = NULL;
}

struct cti_resume *
cti_resume_new(const struct cti_config *cfg, struct cmn_err *err)
{
    struct cti_resume *rs;

    if (cfg->session_key_file == NULL || !cfg->redis_enabled) {
        return NULL;
    }
    rs = calloc(1, sizeof(*rs));
    if (rs == NULL) {
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    rs->seal = cmn_seal_load(cfg->session_key_file, err);
    rs->redis = rs->seal != NULL ? cmn_redis_new(&cfg->redis, err) : NULL;
    if (rs->redis == NULL) {
        cti_resume_free(rs);
        return NULL;
    }
    snprintf(rs->self, sizeof(rs->self), "%s",
             cfg->public_url != NULL ? cfg->public_url : cfg->listen);
    rs->ttl_s = cfg->session_idle_s;
    return rs;
}

void
cti_resume_free(struct cti_resume *rs)
{
    if (rs == NULL) {
        return;
    }
    cmn_redis_free(rs->redis);
    cmn_seal_free(rs->seal);
    free(rs);
}

/* <prefix><head><name><tail> */
static void
key_of(const struct cti_resume *rs, char out[RESUME_KEY_MAX], const char *head,
       const char *name, const char *tail)
{
    snprintf(out, RESUME_KEY_MAX, "%s%s%s%s", cmn_redis_prefix(rs->redis), head,
             name, tail);
}

/* One command, reply checked for an error; false on any failure. */
static bool
cmd_ok(redisReply *r, const char *what, const struct cmn_err *err)
{
    bool ok = r != NULL && r->type != REDIS_REPLY_ERROR;

    if (!ok) {
        cmn_log_warn("event=resume_store_failed op=%s detail=\"%s\"", what,
                     r != NULL ? r->str : err->msg);
    }
    freeReplyObject(r);
    return ok;
}

/* pt sealed under the session key, bound to key (AAD), as base64url:
 * malloc'd, NULL on failure */
static char *
seal_b64(const struct cti_resume *rs, const char *key, const char *pt)
{
    unsigned char *sealed = NULL;
    size_t sealed_len = 0;
    char *b64 = NULL;

    if (cmn_seal_seal(rs->seal, key, strlen(key), pt, strlen(pt), &sealed,
                      &sealed_len) == CMN_OK &&
        (b64 = malloc(sealed_len * 4 / 3 + 4)) != NULL) {
        cmn_base64url_encode(sealed, sealed_len, b64, sealed_len * 4 / 3 + 4);
    }
    free(sealed);
    return b64;
}

/* The other way: *pt (NUL-terminated; cmn_wipe + free) or CMN_INVALID
 * when it does not open under our key for this key name. */
static int
open_b64(const struct cti_resume *rs, const char *key, const char *b64,
         size_t len, unsigned char **pt, size_t *pt_len)
{
    unsigned char *sealed = NULL;
    size_t sealed_len = 0;
    int rc = CMN_INVALID;

    *pt = NULL;
    if (len <= RESUME_BLOB_MAX &&
        cmn_base64url_decode(b64, len, &sealed, &sealed_len) == CMN_OK &&
        cmn_seal_open(rs->seal, key, strlen(key), sealed, sealed_len, pt,
                      pt_len) == CMN_OK) {
        rc = CMN_OK;
    }
    free(sealed);
    return rc;
}

int
cti_resume_save(struct cti_resume *rs, const struct cti_resume_record *rec)
{
    struct cmn_err err = {{0}};
    char key[RESUME_KEY_MAX], host[RESUME_KEY_MAX];
    json_t *o;
    char *pt = NULL;
    char *b64 = NULL;
    int rc = CMN_NOMEM;

    if (rs == NULL) {
        return CMN_OK;
    }
    key_of(rs, key, "agent:", rec->agent, ":session");
    key_of(rs, host, "host:", rs->self, ":agents");
    o = json_pack("{s:s, s:s, s:s}", "agent", rec->agent, "extension",
                  rec->extension, "login_name", rec->login_name);
    if (o != NULL && rec->password != NULL) {
        json_object_set_new(o, "password",
                            json_stringn((const char *)rec->password->data,
                                         rec->password->len));
    }
    if (o != NULL && rec->sso_session != NULL) {
        json_object_set_new(o, "sso_session",
                            json_stringn((const char *)rec->sso_session->data,
                                         rec->sso_session->len));
    }
    pt = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o); /* jansson does not wipe: the copy in pt is wiped */
    if (pt == NULL || (b64 = seal_b64(rs, key, pt)) == NULL) {
        goto out;
    }
    rc = CMN_IO;
    if (cmd_ok(cmn_redis_cmdf(rs->redis, CMN_REDIS_RETRY | CMN_REDIS_DURABLE,
                              &err, "SET %s %s EX %ld", key, b64, rs->ttl_s),
               "save", &err) &&
        cmd_ok(cmn_redis_cmdf(rs->redis, CMN_REDIS_RETRY, &err, "SADD %s %s",
                              host, rec->agent),
               "save_host", &err)) {
        rc = CMN_OK;
    }
out:
    if (pt != NULL) {
        cmn_wipe(pt, strlen(pt));
        free(pt);
    }
    free(b64);
    return rc;
}

int
cti_resume_save_token(struct cti_resume *rs, const char *agent,
                      const char *token_hash)
{
    struct cmn_err err = {{0}};
    char key[RESUME_KEY_MAX], set[RESUME_KEY_MAX];

    if (rs == NULL) {
        return CMN_OK;
    }
    key_of(rs, key, "token:", token_hash, "");
    key_of(rs, set, "agent:", agent, ":tokens");
    /* the agent id sealed under the session key: a mapping planted by
     * someone who can write to Redis (their own token -> someone else's
     * agent) does not open, so it cannot take an agent over */
    char *value = seal_b64(rs, key, agent);
    bool saved =
        value != NULL &&
        cmd_ok(cmn_redis_cmdf(rs->redis, CMN_REDIS_RETRY | CMN_REDIS_DURABLE,
                              &err, "SET %s %s EX %ld", key, value, rs->ttl_s),
               "save_token", &err);
    free(value);
    if (!saved ||
        !cmd_ok(cmn_redis_cmdf(rs->redis, CMN_REDIS_RETRY, &err, "SADD %s %s",
                               set, token_hash),
                "save_token_set", &err) ||
        !cmd_ok(cmn_redis_cmdf(rs->redis, CMN_REDIS_RETRY, &err,
                               "EXPIRE %s %ld", set, rs->ttl_s),
                "save_token_ttl", &err)) {
        return CMN_IO;
    }
    return CMN_OK;
}

int
cti_resume_agent_of(struct cti_resume *rs, const char *token_hash, char *agent,
                    size_t agent_size)
{
    struct cmn_err err = {{0}};
    char key[RESUME_KEY_MAX];
    redisReply *r;
    int rc;

    if (rs == NULL) {
        return CMN_NOTFOUND;
    }
    key_of(rs, key, "token:", token_hash, "");
    r = cmn_redis_cmdf(rs->redis, CMN_REDIS_RETRY, &err, "GET %s", key);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        rc = CMN_IO;
    } else if (r->type != REDIS_REPLY_STRING) {
        rc = CMN_NOTFOUND;
    } else {
        unsigned char *pt = NULL;
        size_t pt_len = 0;
        rc = CMN_NOTFOUND;
        if (open_b64(rs, key, r->str, r->len, &pt, &pt_len) != CMN_OK) {
            cmn_log_warn("event=resume_token_rejected detail=\"the token "
                         "mapping does not open under the session key\"");
        } else if (pt_len > 0 && pt_len < agent_size &&
                   strlen((const char *)pt) == pt_len) {
            memcpy(agent, pt, pt_len + 1);
            rc = CMN_OK;
        }
        if (pt != NULL) {
            cmn_wipe(pt, pt_len);
            free(pt);
        }
    }
    freeReplyObject(r);
    return rc;
}

static int
copy_field(const json_t *o, const char *name, char *out, size_t size)
{
    const char *v = json_string_value(json_object_get(o, name));

    if (v == NULL || strlen(v) >= size) {
        return CMN_INVALID;
    }
    memcpy(out, v, strlen(v) + 1);
    return CMN_OK;
}

static struct cmn_secret *
secret_field(const json_t *o, const char *name)
{
    const json_t *v = json_object_get(o, name);

    return json_is_string(v)
               ? cmn_secret_new(json_string_value(v), json_string_length(v))
               : NULL;
}

int
cti_resume_load(struct cti_resume *rs, const char *agent,
                struct cti_resume_record *rec)
{
    struct cmn_err err = {{0}};
    char key[RESUME_KEY_MAX];
    redisReply *r;
    unsigned char *pt = NULL;
    size_t pt_len = 0;
    json_t *o = NULL;
    int rc;

    memset(rec, 0, sizeof(*rec));
    if (rs == NULL) {
        return CMN_NOTFOUND;
    }
    key_of(rs, key, "agent:", agent, ":session");
    r = cmn_redis_cmdf(rs->redis, CMN_REDIS_RETRY, &err, "GET %s", key);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        freeReplyObject(r);
        return CMN_IO;
    }
    if (r->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        return CMN_NOTFOUND;
    }
    rc = CMN_INVALID;
    if (open_b64(rs, key, r->str, r->len, &pt, &pt_len) == CMN_OK &&
        (o = json_loadb((const char *)pt, pt_len, 0, NULL)) != NULL &&
        copy_field(o, "agent", rec->agent, sizeof(rec->agent)) == CMN_OK &&
        strcmp(rec->agent, agent) == 0 &&
        copy_field(o, "extension", rec->extension, sizeof(rec->extension)) ==
            CMN_OK &&
        copy_field(o, "login_name", rec->login_name, sizeof(rec->login_name)) ==
            CMN_OK) {
        rec->password = secret_field(o, "password");
        rec->sso_session = secret_field(o, "sso_session");
        rc = rec->password != NULL || rec->sso_session != NULL ? CMN_OK
                                                               : CMN_INVALID;
    }
    if (rc != CMN_OK) {
        cti_resume_record_cleanup(rec);
        cmn_log_warn("event=resume_record_rejected agent=%s "
                     "detail=\"does not open under the session key\"",
                     agent);
    }
    json_decref(o);
    if (pt != NULL) {
        cmn_wipe(pt, pt_len);
        free(pt);
    }
    freeReplyObject(r);
    return rc;
}

void
cti_resume_forget(struct cti_resume *rs, const char *agent)
{
    struct cmn_err err = {{0}};
    char key[RESUME_KEY_MAX], set[RESUME_KEY_MAX], host[RESUME_KEY_MAX];
    redisReply *r;

    if (rs == NULL) {
        return;
    }
    key_of(rs, key, "agent:", agent, ":session");
    key_of(rs, set, "agent:", agent, ":tokens");
    key_of(rs, host, "host:", rs->self, ":agents");
    r = cmn_redis_cmdf(rs->redis, CMN_REDIS_RETRY, &err, "SMEMBERS %s", set);
    for (size_t i = 0;
         r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        char tok[RESUME_KEY_MAX];
        if (r->element[i]->type == REDIS_REPLY_STRING) {
            key_of(rs, tok, "token:", r->element[i]->str, "");
            (void)cmd_ok(
                cmn_redis_cmdf(rs->redis, CMN_REDIS_RETRY, &err, "DEL %s", tok),
                "forget_token", &err);
        }
    }
    freeReplyObject(r);
    (void)cmd_ok(cmn_redis_cmdf(rs->redis, CMN_REDIS_RETRY | CMN_REDIS_DURABLE,
                                &err, "DEL %s %s", key, set),
                 "forget", &err);
    (void)cmd_ok(cmn_redis_cmdf(rs->redis, CMN_REDIS_RETRY, &err, "SREM %s %s",
                                host, agent),
                 "forget_host", &err);
}

void
cti_resume_disown(struct cti_resume *rs, const char *agent)
{
    struct cmn_err err = {{0}};
    char host[RESUME_KEY_MAX];

    if (rs == NULL) {
        return;
    }
    key_of(rs, host, "host:", rs->self, ":agents");
    (void)cmd_ok(cmn_redis_cmdf(rs->redis, CMN_REDIS_RETRY, &err, "SREM %s %s",
                                host, agent),
                 "disown", &err);
}

void
cti_resume_touch(struct cti_resume *rs, const char *agent)
{
    struct cmn_err err = {{0}};
    char key[RESUME_KEY_MAX], set[RESUME_KEY_MAX], host[RESUME_KEY_MAX];

    if (rs == NULL) {
        return;
    }
    key_of(rs, key, "agent:", agent, ":session");
    key_of(rs, set, "agent:", agent, ":tokens");
    key_of(rs, host, "host:", rs->self, ":agents");
    redisReply *e = cmn_redis_cmdf(rs->redis, CMN_REDIS_RETRY, &err,
                                   "EXPIRE %s %ld", key, rs->ttl_s);
    bool alive = e != NULL && e->type == REDIS_REPLY_INTEGER && e->integer == 1;

    freeReplyObject(e);
    if (!alive) {
        return; /* forgotten (the session ended) or Redis away */
    }
    (void)cmd_ok(cmn_redis_cmdf(rs->redis, CMN_REDIS_RETRY, &err,
                                "EXPIRE %s %ld", set, rs->ttl_s),
                 "touch_tokens", &err);
    /* the tokens themselves: each one's own TTL, from its issue; a tab
     * keeps its token for the whole shift, so they are refreshed too */
    redisReply *r =
        cmn_redis_cmdf(rs->redis, CMN_REDIS_RETRY, &err, "SMEMBERS %s", set);
    for (size_t i = 0;
         r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        char tok[RESUME_KEY_MAX];
        if (r->element[i]->type == REDIS_REPLY_STRING) {
            key_of(rs, tok, "token:", r->element[i]->str, "");
            (void)cmd_ok(cmn_redis_cmdf(rs->redis, CMN_REDIS_RETRY, &err,
                                        "EXPIRE %s %ld", tok, rs->ttl_s),
                         "touch_token", &err);
        }
    }
    freeReplyObject(r);
    (void)cmd_ok(cmn_redis_cmdf(rs->redis, CMN_REDIS_RETRY, &err, "SADD %s %s",
                                host, agent),
                 "touch_host", &err);
}

int
cti_resume_host_agents(struct cti_resume *rs, char ***agents, size_t *n)
{
    struct cmn_err err = {{0}};
    char host[RESUME_KEY_MAX];
    redisReply *r;
    char **list;
    size_t k = 0;

    *agents = NULL;
    *n = 0;
    if (rs == NULL) {
        return CMN_OK;
    }
    key_of(rs, host, "host:", rs->self, ":agents");
    r = cmn_redis_cmdf(rs->redis, CMN_REDIS_RETRY, &err, "SMEMBERS %s", host);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        cmn_log_warn("event=resume_store_failed op=host_agents detail=\"%s\"",
                     r != NULL && r->str != NULL ? r->str : err.msg);
        freeReplyObject(r);
        return CMN_IO;
    }
    list = calloc(r->elements + 1, sizeof(*list));
    for (size_t i = 0; list != NULL && i < r->elements; i++) {
        if (r->element[i]->type == REDIS_REPLY_STRING &&
            r->element[i]->len < FIN_ID_MAX &&
            (list[k] = strdup(r->element[i]->str)) != NULL) {
            k++;
        }
    }
    freeReplyObject(r);
    if (list == NULL) {
        return CMN_NOMEM;
    }
    *agents = list;
    *n = k;
    return CMN_OK;
}

void
cti_resume_list_free(char **agents, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(agents[i]);
    }
    free(agents);
}
