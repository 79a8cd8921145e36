/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_popmark.c - pop marks in Redis; see cti_popmark.h. A mark's value
 * is the process that popped (its host and a random id drawn at start: the
 * same host after a restart is another process, and must not pop again). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_log.h"
#include "cmn_seal.h"
#include "cti_popmark.h"

struct cti_popmark {
    struct cmn_redis *redis;
    char self[600]; /* host + " " + process id */
};

/* first mark, or our own mark seen again (a retry after a lost reply):
 * 1, and the agent's hash lives CTI_POPMARK_TTL_S from now; else 0 */
static struct cmn_redis_script mark_script = {
    .source = "if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 or "
              "redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then\n"
              "  redis.call('EXPIRE', KEYS[1], ARGV[3])\n"
              "  return 1\n"
              "end\n"
              "return 0\n",
};

struct cti_popmark *
cti_popmark_new(const struct cti_config *cfg, struct cmn_err *err)
{
    struct cti_popmark *m;

    if (!cfg->redis_enabled) {
        return NULL;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    m->redis = cmn_redis_new(&cfg->redis, err);
    if (m->redis == NULL) {
        free(m);
        return NULL;
    }
    char proc[32];
    if (cmn_random_id(proc, sizeof(proc), 12) != CMN_OK) {
        cmn_err_set(err, "no randomness");
        cti_popmark_free(m);
        return NULL;
    }
    snprintf(m->self, sizeof(m->self), "%.500s %s",
             cfg->public_url != NULL ? cfg->public_url : cfg->listen, proc);
    return m;
}

void
cti_popmark_free(struct cti_popmark *m)
{
    if (m != NULL) {
        cmn_redis_free(m->redis);
        free(m);
    }
}

static void
key_of(const struct cti_popmark *m, const char *agent, char *out, size_t size)
{
    snprintf(out, size, "%sagent:%s:popped", cmn_redis_prefix(m->redis), agent);
}

bool
cti_popmark_first(struct cti_popmark *m, const char *agent,
                  const char *dialog_id)
{
    struct cmn_err err = {{0}};
    char key[512], ttl[16];
    const char *args[4];
    redisReply *r;
    bool first = true;

    if (m == NULL) {
        return true;
    }
    key_of(m, agent, key, sizeof(key));
    snprintf(ttl, sizeof(ttl), "%d", CTI_POPMARK_TTL_S);
    args[0] = key;
    args[1] = dialog_id;
    args[2] = m->self;
    args[3] = ttl;
    r = cmn_redis_eval(m->redis, &mark_script, CMN_REDIS_RETRY, 1, 3, args,
                       NULL, &err);
    if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
        cmn_log_warn("event=popmark_unavailable agent=%s dialog=%s "
                     "detail=\"%s\"",
                     agent, dialog_id,
                     r != NULL && r->str != NULL ? r->str : err.msg);
    } else {
        first = r->integer == 1;
    }
    freeReplyObject(r);
    return first;
}

void
cti_popmark_done(struct cti_popmark *m, const char *agent,
                 const char *dialog_id)
{
    struct cmn_err err = {{0}};
    char key[512];

    if (m != NULL) {
        key_of(m, agent, key, sizeof(key));
        freeReplyObject(cmn_redis_cmdf(m->redis, CMN_REDIS_RETRY, &err,
                                       "HDEL %s %s", key, dialog_id));
    }
}

void
cti_popmark_forget(struct cti_popmark *m, const char *agent)
{
    struct cmn_err err = {{0}};
    char key[512];

    if (m != NULL) {
        key_of(m, agent, key, sizeof(key));
        freeReplyObject(
            cmn_redis_cmdf(m->redis, CMN_REDIS_RETRY, &err, "DEL %s", key));
    }
}
