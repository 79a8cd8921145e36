/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_lease.c - agent leases in Redis; see cti_lease.h. The value is this
 * host's identity (its public URL, or listen address), so an owner check
 * is a string compare inside one Lua call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_log.h"
#include "cti_lease.h"

struct cti_lease {
    struct cmn_redis *redis;
    char self[512];
    long ttl_ms;
};

/* take or keep: returns {1} when ours, {0, owner} otherwise */
static struct cmn_redis_script take_script = {
    .source = "local cur = redis.call('GET', KEYS[1])\n"
              "if cur == false or cur == ARGV[1] then\n"
              "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
              "  return {1}\n"
              "end\n"
              "return {0, cur}\n",
};

/* renew: ours -> extended; gone (Redis restarted empty, or failed over to
 * a replica that had not seen it) -> taken again, nobody else holds it;
 * another host's -> 0 (lost) */
static struct cmn_redis_script renew_script = {
    .source = "local cur = redis.call('GET', KEYS[1])\n"
              "if cur == false or cur == ARGV[1] then\n"
              "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
              "  return 1\n"
              "end\n"
              "return 0\n",
};

static struct cmn_redis_script release_script = {
    .source = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
              "  return redis.call('DEL', KEYS[1])\n"
              "end\n"
              "return 0\n",
};

struct cti_lease *
cti_lease_new(const struct cti_config *cfg, struct cmn_err *err)
{
    struct cti_lease *l;

    if (!cfg->redis_enabled) {
        return NULL;
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    l->redis = cmn_redis_new(&cfg->redis, err);
    if (l->redis == NULL) {
        free(l);
        return NULL;
    }
    snprintf(l->self, sizeof(l->self), "%s",
             cfg->public_url != NULL ? cfg->public_url : cfg->listen);
    l->ttl_ms = cfg->agent_lease_s * 1000;
    return l;
}

void
cti_lease_free(struct cti_lease *l)
{
    if (l == NULL) {
        return;
    }
    cmn_redis_free(l->redis);
    free(l);
}

static redisReply *
run(struct cti_lease *l, struct cmn_redis_script *script, const char *agent,
    struct cmn_err *err)
{
    char key[256], ttl[24];
    const char *args[3];

    snprintf(key, sizeof(key), "%sagent:%s:owner", cmn_redis_prefix(l->redis),
             agent);
    snprintf(ttl, sizeof(ttl), "%ld", l->ttl_ms);
    args[0] = key;
    args[1] = l->self;
    args[2] = ttl;
    return cmn_redis_eval(l->redis, script, CMN_REDIS_RETRY, 1, 2, args, NULL,
                          err);
}

int
cti_lease_take(struct cti_lease *l, const char *agent, char *owner,
               size_t owner_size)
{
    struct cmn_err err = {{0}};
    redisReply *r;
    int rc = CMN_IO;

    if (l == NULL) {
        return CMN_OK;
    }
    r = run(l, &take_script, agent, &err);
    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
        r->element[0]->type == REDIS_REPLY_INTEGER) {
        if (r->element[0]->integer == 1) {
            rc = CMN_OK;
        } else {
            rc = CMN_DENIED;
            snprintf(owner, owner_size, "%s",
                     r->elements > 1 && r->element[1]->str != NULL
                         ? r->element[1]->str
                         : "");
        }
    } else {
        cmn_log_err("event=lease_failed agent=%s detail=\"%s\"", agent,
                    r != NULL && r->type == REDIS_REPLY_ERROR ? r->str
                                                              : err.msg);
    }
    freeReplyObject(r);
    return rc;
}

int
cti_lease_owner(struct cti_lease *l, const char *agent, char *owner,
                size_t owner_size)
{
    struct cmn_err err = {{0}};
    char key[256];
    redisReply *r;
    int rc = CMN_NOTFOUND;

    if (l == NULL) {
        return CMN_NOTFOUND;
    }
    snprintf(key, sizeof(key), "%sagent:%s:owner", cmn_redis_prefix(l->redis),
             agent);
    r = cmn_redis_cmdf(l->redis, CMN_REDIS_RETRY, &err, "GET %s", key);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        rc = CMN_IO;
    } else if (r->type == REDIS_REPLY_STRING && strcmp(r->str, l->self) != 0) {
        snprintf(owner, owner_size, "%s", r->str);
        rc = CMN_OK;
    }
    freeReplyObject(r);
    return rc;
}

bool
cti_lease_renew(struct cti_lease *l, const char *agent)
{
    struct cmn_err err = {{0}};
    redisReply *r;
    bool ok;

    if (l == NULL) {
        return true;
    }
    r = run(l, &renew_script, agent, &err);
    /* Redis unreachable: keep serving (the lease may still be ours); only
     * a definite "someone else holds it" counts as lost */
    ok = r == NULL || r->type != REDIS_REPLY_INTEGER || r->integer == 1;
    freeReplyObject(r);
    return ok;
}

void
cti_lease_release(struct cti_lease *l, const char *agent)
{
    struct cmn_err err = {{0}};

    if (l != NULL) {
        freeReplyObject(run(l, &release_script, agent, &err));
    }
}
