/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_popmark.c - pop marks in Redis; see cti_popmark.h. Key:
 * <prefix>agent:<id>:popped:<dialog id>, value: the process that popped
 * (its host and a random id drawn at start: the same host after a
 * restart is another process, and must not pop again). */
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

/* first mark, or our own mark seen again (a retry after a lost reply) */
static struct cmn_redis_script mark_script = {
    .source = "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) "
              "then return 1 end\n"
              "if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end\n"
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

bool
cti_popmark_first(struct cti_popmark *m, const char *agent,
                  const char *dialog_id)
{
    struct cmn_err err = {{0}};
    char key[512], ttl[16];
    const char *args[3];
    redisReply *r;
    bool first = true;

    if (m == NULL) {
        return true;
    }
    snprintf(key, sizeof(key), "%sagent:%s:popped:%s",
             cmn_redis_prefix(m->redis), agent, dialog_id);
    snprintf(ttl, sizeof(ttl), "%d", CTI_POPMARK_TTL_S);
    args[0] = key;
    args[1] = m->self;
    args[2] = ttl;
    r = cmn_redis_eval(m->redis, &mark_script, CMN_REDIS_RETRY, 1, 2, args,
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
