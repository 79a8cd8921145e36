/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sf_outbox.c - durable call-log outbox: Redis stream + consumer group,
 * idempotent Task upserts, retries with backoff, reclaim of a dead
 * consumer's entries, dead-letter list and replay. See sf_outbox.h for
 * the guarantees and the key layout. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmn_log.h"
#include "cmn_metrics.h"
#include "cmn_seal.h"
#include "sf_outbox.h"

#define KEY_MAX        256
#define CONSUMER_MAX   128
#define ENTRY_ID_MAX   48
#define DEAD_LIST_MAX  1000
#define REDIS_ERR_WAIT 500 /* ms between tries while Redis is away */
#define SWEEP_EVERY_MS (10 * 60 * 1000)
#define SWEEP_IDLE_MS  (24 * 3600 * 1000LL)

/* One stream entry this consumer holds (read or reclaimed, not yet
 * acknowledged), kept in stream order. */
struct held {
    struct held *next;
    unsigned long long ms, seq; /* the entry id, parsed, for ordering */
    char id[ENTRY_ID_MAX];
    char *dialog;      /* NULL: malformed entry */
    char *fields;      /* JSON text as stored */
    char *mac;         /* as stored; NULL when the entry has none */
    long attempts;     /* failed attempts so far (from Redis) */
    long long next_ms; /* not before (monotonic) */
    bool written;      /* upserted, only the XACK is missing */
};

struct sf_outbox {
    struct cmn_redis *redis;
    struct sf *sf;
    struct sf_outbox_opts o;
    unsigned char mac_key[32]; /* [salesforce] outbox_key_file */
    char consumer[CONSUMER_MAX];
    char k_stream[KEY_MAX];
    char k_attempts[KEY_MAX];
    char k_dead[KEY_MAX];

    pthread_t thread;
    bool started;
    atomic_bool stop;
    pthread_mutex_t mu; /* for cv only: the stop wake-up */
    pthread_cond_t cv;

    /* consumer thread only */
    long long single_until; /* batches refused by the org: one PATCH per
                               Task until then */
    long long paused_since; /* when the current pause began */
    struct held *held;
    size_t nheld;
    long long paused_until;
    long long next_heartbeat;

    atomic_ulong written, retries, dead, reclaimed;

    struct cmn_metric *m_pending, *m_written, *m_retries, *m_dead, *m_reclaimed;
    struct cmn_metric *m_unauthenticated;
};

/* ---- scripts ---- */

/* KEYS stream, attempts; ARGV group, id */
static struct cmn_redis_script script_done = {
    .source = "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])\n"
              "redis.call('XDEL', KEYS[1], ARGV[2])\n"
              "redis.call('HDEL', KEYS[2], ARGV[2])\n"
              "return 1\n",
};

/* KEYS stream, attempts, dead; ARGV group, id, record, dead ttl s */
static struct cmn_redis_script script_dead = {
    .source = "redis.call('LPUSH', KEYS[3], ARGV[3])\n"
              "redis.call('EXPIRE', KEYS[3], ARGV[4])\n"
              "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])\n"
              "redis.call('XDEL', KEYS[1], ARGV[2])\n"
              "redis.call('HDEL', KEYS[2], ARGV[2])\n"
              "return 1\n",
};

/* KEYS attempts; ARGV id, ttl ms -> failed attempts so far */
static struct cmn_redis_script script_fail = {
    .source = "local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)\n"
              "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
              "return n\n",
};

/* KEYS stream; ARGV group, consumer, ids... -> the ids no longer ours.
 * Touches (idle = 0) only entries this consumer still owns: a plain XCLAIM
 * would steal back an entry another consumer has reclaimed meanwhile. */
static struct cmn_redis_script script_heartbeat = {
    .source = "local lost = {}\n"
              "for i = 3, #ARGV do\n"
              "  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i],"
              " ARGV[i], 1)\n"
              "  if #p == 1 and p[1][2] == ARGV[2] then\n"
              "    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i],"
              " 'JUSTID')\n"
              "  else\n"
              "    lost[#lost + 1] = ARGV[i]\n"
              "  end\n"
              "end\n"
              "return lost\n",
};

/* KEYS stream, dead; ARGV index, record, dialog, fields, ts, mac -> 1
 * moved, 0 the list changed under us */
static struct cmn_redis_script script_replay = {
    .source = "if redis.call('LINDEX', KEYS[2], ARGV[1]) ~= ARGV[2] then\n"
              "  return 0\n"
              "end\n"
              "redis.call('XADD', KEYS[1], '*', 'dialog', ARGV[3], 'fields',"
              " ARGV[4], 'ts', ARGV[5], 'mac', ARGV[6], 'replay', '1')\n"
              "redis.call('LREM', KEYS[2], 1, ARGV[2])\n"
              "return 1\n",
};

/* KEYS stream; ARGV group, consumer, min idle ms -> consumers removed.
 * Removes the given consumer if it holds nothing (clean stop), and every
 * other consumer holding nothing that was idle for min idle ms (the names
 * of past processes). A consumer with pending entries is never removed:
 * its entries would leave the group's pending list unwritten. */
static struct cmn_redis_script script_sweep = {
    .source = "local n = 0\n"
              "local ok, cs = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1],"
              " ARGV[1])\n"
              "if not ok then return 0 end\n"
              "for _, c in ipairs(cs) do\n"
              "  local f = {}\n"
              "  for j = 1, #c, 2 do f[c[j]] = c[j + 1] end\n"
              "  if f['pending'] == 0 and (f['name'] == ARGV[2] or"
              " f['idle'] >= tonumber(ARGV[3])) then\n"
              "    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1],"
              " f['name'])\n"
              "    n = n + 1\n"
              "  end\n"
              "end\n"
              "return n\n",
};

/* ---- small helpers ---- */

static void
set_default(long *v, long def)
{
    if (*v <= 0) {
        *v = def;
    }
}

void
sf_outbox_opts_from_config(const struct sf_config *cfg,
                           struct sf_outbox_opts *o)
{
    long cmd = cfg->redis.command_timeout_ms > 0 ? cfg->redis.command_timeout_ms
                                                 : 1000;

    memset(o, 0, sizeof(*o));
    o->max_attempts = cfg->outbox_max_attempts;
    o->upsert_batch = cfg->outbox_upsert_batch;
    o->reclaim_ms = cfg->outbox_reclaim_ms;
    o->mac_key = cfg->outbox_key;
    o->backoff_max_ms = cfg->outbox_backoff_max_ms;
    /* a blocked XREADGROUP must end well inside the command timeout */
    o->block_ms = cmd * 2 / 3 < 1000 ? cmd * 2 / 3 : 1000;
    if (o->block_ms < 10) {
        o->block_ms = 10;
    }
}

static void
msleep_or_stop(struct sf_outbox *ob, long long ms)
{
    struct timespec ts;

    if (ms <= 0) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&ob->mu);
    if (!atomic_load(&ob->stop)) {
        pthread_cond_timedwait(&ob->cv, &ob->mu, &ts);
    }
    pthread_mutex_unlock(&ob->mu);
}

static bool
is_err(const redisReply *rep, const char *prefix)
{
    return rep != NULL && rep->type == REDIS_REPLY_ERROR &&
           (prefix == NULL || strncmp(rep->str, prefix, strlen(prefix)) == 0);
}

static bool
dialog_ok(const char *s)
{
    size_t n;

    if (s == NULL) {
        return false;
    }
    n = strlen(s);
    if (n == 0 || n > SF_DIALOG_ID_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            return false;
        }
    }
    return true;
}

/* An entry's MAC: HMAC-SHA256 under the outbox key over a label, the
 * stream's key (an entry copied to another outbox does not verify), the
 * dialog id and the fields exactly as stored, separated by NULs (none of
 * the first three can hold one); base64url. */
static int
entry_mac(const struct sf_outbox *ob, const char *dialog, const char *fields,
          char out[SF_OUTBOX_MAC_LEN])
{
    static const char label[] = "fsc-outbox-v1";
    size_t ls = strlen(ob->k_stream), ld = strlen(dialog), lf = strlen(fields);
    size_t n = sizeof(label) + ls + 1 + ld + 1 + lf;
    unsigned char mac[32];
    char *msg = malloc(n), *p = msg;
    int rc;

    if (msg == NULL) {
        return CMN_NOMEM;
    }
    memcpy(p, label, sizeof(label)); /* with its NUL */
    p += sizeof(label);
    memcpy(p, ob->k_stream, ls + 1);
    p += ls + 1;
    memcpy(p, dialog, ld + 1);
    p += ld + 1;
    memcpy(p, fields, lf);
    rc = cmn_hmac_sha256(ob->mac_key, sizeof(ob->mac_key), msg, n, mac);
    free(msg);
    if (rc == CMN_OK) {
        cmn_base64url_encode(mac, sizeof(mac), out, SF_OUTBOX_MAC_LEN);
    }
    return rc;
}

/* True when mac is the MAC of dialog and fields (constant time). */
static bool
mac_ok(const struct sf_outbox *ob, const char *dialog, const char *fields,
       const char *mac)
{
    char want[SF_OUTBOX_MAC_LEN];

    return dialog != NULL && fields != NULL && mac != NULL &&
           strlen(mac) == SF_OUTBOX_MAC_LEN - 1 &&
           entry_mac(ob, dialog, fields, want) == CMN_OK &&
           cmn_ct_equal(want, mac, SF_OUTBOX_MAC_LEN - 1);
}

static long long
backoff_ms(const struct sf_outbox *ob, long attempts)
{
    long long d = ob->o.backoff_base_ms;
    unsigned char r = 0;

    for (long i = 1; i < attempts && d < ob->o.backoff_max_ms; i++) {
        d *= 2;
    }
    if (d > ob->o.backoff_max_ms) {
        d = ob->o.backoff_max_ms;
    }
    /* jitter in [d/2, d]: workers that failed together spread out */
    if (cmn_random_bytes(&r, 1) != CMN_OK) {
        r = 255;
    }
    return d / 2 + (d / 2) * r / 255;
}

/* ---- lifecycle ---- */

struct sf_outbox *
sf_outbox_new(struct cmn_redis *redis, struct sf *sf,
              const struct sf_outbox_opts *opts, struct cmn_err *err)
{
    struct sf_outbox *ob = calloc(1, sizeof(*ob));
    const char *prefix = cmn_redis_prefix(redis);

    if (ob == NULL) {
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    if (opts == NULL || opts->mac_key == NULL) {
        free(ob);
        cmn_err_set(err, "outbox: no key to authenticate entries with "
                         "([salesforce] outbox_key_file)");
        return NULL;
    }
    ob->redis = redis;
    ob->sf = sf;
    ob->o = *opts;
    memcpy(ob->mac_key, opts->mac_key, sizeof(ob->mac_key));
    ob->o.mac_key = NULL; /* our copy only */
    set_default(&ob->o.max_attempts, 10);
    set_default(&ob->o.reclaim_ms, 30000);
    set_default(&ob->o.backoff_base_ms, 1000);
    set_default(&ob->o.backoff_max_ms, 300000);
    set_default(&ob->o.block_ms, 1000);
    set_default(&ob->o.upsert_batch, 1);
    if (ob->o.upsert_batch > SF_BATCH_MAX) {
        ob->o.upsert_batch = SF_BATCH_MAX;
    }
    set_default(&ob->o.batch, 32);
    if (ob->o.batch < ob->o.upsert_batch) {
        ob->o.batch = ob->o.upsert_batch;
    }
    set_default(&ob->o.max_held, 256);
    set_default(&ob->o.attempts_ttl_s, 7 * 86400);
    set_default(&ob->o.dead_ttl_s, 30 * 86400);
    if (ob->o.consumer != NULL) {
        snprintf(ob->consumer, sizeof(ob->consumer), "%s", ob->o.consumer);
    } else {
        char host[64] = "localhost";

        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        snprintf(ob->consumer, sizeof(ob->consumer), "%s:%ld", host,
                 (long)getpid());
    }
    ob->o.consumer = ob->consumer;
    if (prefix == NULL) {
        prefix = "";
    }
    snprintf(ob->k_stream, sizeof(ob->k_stream), "%soutbox", prefix);
    snprintf(ob->k_attempts, sizeof(ob->k_attempts), "%soutbox:attempts",
             prefix);
    snprintf(ob->k_dead, sizeof(ob->k_dead), "%soutbox:dead", prefix);
    atomic_init(&ob->stop, false);
    pthread_mutex_init(&ob->mu, NULL);
    pthread_cond_init(&ob->cv, NULL);
    ob->m_pending = cmn_metric_gauge("fsc_connector_sf_outbox_pending",
                                     "Call logs in the outbox not yet "
                                     "written to Salesforce");
    ob->m_written = cmn_metric_counter("fsc_connector_sf_outbox_written_total",
                                       "Tasks upserted from the outbox");
    ob->m_retries = cmn_metric_counter(
        "fsc_connector_sf_outbox_retries_total",
        "Outbox writes that failed transiently and will be retried");
    ob->m_dead = cmn_metric_counter("fsc_connector_sf_outbox_dead_total",
                                    "Outbox entries moved to the "
                                    "dead-letter list");
    ob->m_reclaimed = cmn_metric_counter(
        "fsc_connector_sf_outbox_reclaimed_total",
        "Outbox entries taken over from a consumer that stopped");
    ob->m_unauthenticated = cmn_metric_counter(
        "fsc_connector_sf_outbox_unauthenticated_total",
        "Outbox entries whose MAC did not verify (dead-lettered, never "
        "written)");
    return ob;
}

static void held_free(struct held *h);
static void *consumer_main(void *arg);

int
sf_outbox_start(struct sf_outbox *ob, struct cmn_err *err)
{
    if (ob->sf == NULL) {
        cmn_err_set(err, "outbox: no Salesforce client to write with");
        return CMN_INVALID;
    }
    if (ob->started) {
        return CMN_OK;
    }
    atomic_store(&ob->stop, false);
    if (pthread_create(&ob->thread, NULL, consumer_main, ob) != 0) {
        cmn_err_set(err, "outbox: cannot start thread: %s", strerror(errno));
        return CMN_ERR;
    }
    ob->started = true;
    return CMN_OK;
}

void
sf_outbox_stop_begin(struct sf_outbox *ob)
{
    if (ob == NULL || !ob->started) {
        return;
    }
    pthread_mutex_lock(&ob->mu);
    atomic_store(&ob->stop, true);
    pthread_cond_broadcast(&ob->cv);
    pthread_mutex_unlock(&ob->mu);
}

void
sf_outbox_stop(struct sf_outbox *ob)
{
    if (ob == NULL || !ob->started) {
        return;
    }
    sf_outbox_stop_begin(ob);
    pthread_join(ob->thread, NULL);
    ob->started = false;
}

void
sf_outbox_free(struct sf_outbox *ob)
{
    if (ob == NULL) {
        return;
    }
    sf_outbox_stop(ob);
    while (ob->held != NULL) {
        struct held *h = ob->held;
        ob->held = h->next;
        held_free(h);
    }
    pthread_cond_destroy(&ob->cv);
    pthread_mutex_destroy(&ob->mu);
    cmn_wipe(ob->mac_key, sizeof(ob->mac_key));
    free(ob);
}

void
sf_outbox_stats(const struct sf_outbox *ob, struct sf_outbox_stats *s)
{
    struct sf_outbox *m = (struct sf_outbox *)(uintptr_t)ob;

    s->written = atomic_load(&m->written);
    s->retries = atomic_load(&m->retries);
    s->dead = atomic_load(&m->dead);
    s->reclaimed = atomic_load(&m->reclaimed);
}

/* ---- producer side ---- */

static int
xadd(struct sf_outbox *ob, const char *dialog, const char *fields,
     struct cmn_err *err)
{
    char ts[24], mac[SF_OUTBOX_MAC_LEN];
    const char *argv[11];
    size_t lens[11];
    redisReply *rep;
    int rc = CMN_OK;

    if (entry_mac(ob, dialog, fields, mac) != CMN_OK) {
        cmn_err_set(err, "outbox: cannot compute the entry's MAC");
        return CMN_ERR;
    }
    snprintf(ts, sizeof(ts), "%lld", cmn_wall_ms());
    argv[0] = "XADD";
    argv[1] = ob->k_stream;
    argv[2] = "*";
    argv[3] = "dialog";
    argv[4] = dialog;
    argv[5] = "fields";
    argv[6] = fields;
    argv[7] = "ts";
    argv[8] = ts;
    argv[9] = "mac";
    argv[10] = mac;
    for (int i = 0; i < 11; i++) {
        lens[i] = strlen(argv[i]);
    }
    /* RETRY: a repeated XADD after a lost reply makes a second entry for
     * the same dialog, which the idempotent upsert absorbs; losing the
     * entry is the outcome that must not happen. */
    rep = cmn_redis_cmd(ob->redis, CMN_REDIS_RETRY | CMN_REDIS_DURABLE, 11,
                        argv, lens, err);
    if (rep == NULL) {
        return CMN_IO;
    }
    if (rep->type != REDIS_REPLY_STRING) {
        cmn_err_set(err, "outbox: XADD: %s",
                    rep->type == REDIS_REPLY_ERROR ? rep->str : "bad reply");
        rc = CMN_ERR;
    }
    freeReplyObject(rep);
    return rc;
}

int
sf_outbox_put(struct sf_outbox *ob, const char *dialog_id, json_t *task_fields,
              struct cmn_err *err)
{
    char *fields;
    int rc;

    if (!dialog_ok(dialog_id)) {
        cmn_err_set(err, "outbox: bad dialog id");
        return CMN_INVALID;
    }
    if (!json_is_object(task_fields)) {
        cmn_err_set(err, "outbox: task fields must be a JSON object");
        return CMN_INVALID;
    }
    fields = json_dumps(task_fields, JSON_COMPACT);
    if (fields == NULL) {
        cmn_err_set(err, "out of memory");
        return CMN_NOMEM;
    }
    if (strlen(fields) > SF_FIELDS_MAX) {
        free(fields);
        cmn_err_set(err, "outbox: task fields over %d bytes", SF_FIELDS_MAX);
        return CMN_INVALID;
    }
    rc = xadd(ob, dialog_id, fields, err);
    if (rc != CMN_OK) {
        cmn_log_err("event=sf_outbox_put_failed dialog=%s rc=%s detail=%s",
                    dialog_id, cmn_rc_str(rc), err->msg);
    } else {
        cmn_log_debug("event=sf_outbox_put dialog=%s", dialog_id);
    }
    free(fields);
    return rc;
}

/* ---- held entries ---- */

static void
held_free(struct held *h)
{
    if (h == NULL) {
        return;
    }
    free(h->dialog);
    free(h->fields);
    free(h->mac);
    free(h);
}

static struct held *
held_find(struct sf_outbox *ob, const char *id)
{
    for (struct held *h = ob->held; h != NULL; h = h->next) {
        if (strcmp(h->id, id) == 0) {
            return h;
        }
    }
    return NULL;
}

static void
held_remove(struct sf_outbox *ob, struct held *h)
{
    for (struct held **pp = &ob->held; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == h) {
            *pp = h->next;
            ob->nheld--;
            held_free(h);
            return;
        }
    }
}

/* An entry from XREADGROUP / XAUTOCLAIM: [id, [k, v, k, v...]]. Adds it
 * in stream order unless already held. Entries without a payload (deleted
 * meanwhile) are acknowledged away. */
static void
held_add_entry(struct sf_outbox *ob, const redisReply *e, long attempts)
{
    struct held *h;
    const redisReply *kv;
    struct held **pp;

    if (e == NULL || e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
        e->element[0]->type != REDIS_REPLY_STRING ||
        e->element[0]->len >= ENTRY_ID_MAX) {
        return;
    }
    if (held_find(ob, e->element[0]->str) != NULL) {
        return;
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return; /* stays pending: reclaimed later */
    }
    memcpy(h->id, e->element[0]->str, e->element[0]->len);
    if (sscanf(h->id, "%llu-%llu", &h->ms, &h->seq) != 2) {
        h->ms = h->seq = ~0ULL;
    }
    kv = e->element[1];
    if (kv->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < kv->elements; i += 2) {
            const redisReply *k = kv->element[i];
            const redisReply *v = kv->element[i + 1];

            if (k->type != REDIS_REPLY_STRING ||
                v->type != REDIS_REPLY_STRING) {
                continue;
            }
            if (strcmp(k->str, "dialog") == 0 && h->dialog == NULL) {
                h->dialog = strndup(v->str, v->len);
            } else if (strcmp(k->str, "fields") == 0 && h->fields == NULL) {
                h->fields = strndup(v->str, v->len);
            } else if (strcmp(k->str, "mac") == 0 && h->mac == NULL) {
                h->mac = strndup(v->str, v->len);
            }
        }
    }
    h->attempts = attempts;
    h->next_ms = 0;
    pp = &ob->held;
    while (*pp != NULL &&
           ((*pp)->ms < h->ms || ((*pp)->ms == h->ms && (*pp)->seq < h->seq))) {
        pp = &(*pp)->next;
    }
    h->next = *pp;
    *pp = h;
    ob->nheld++;
}

/* ---- consumer: Redis steps ---- */

static int
ensure_group(struct sf_outbox *ob)
{
    struct cmn_err err = {{0}};
    redisReply *rep;
    int rc = CMN_OK;

    /* from 0: entries queued before the group existed are written too */
    rep = cmn_redis_cmdf(ob->redis, CMN_REDIS_RETRY, &err,
                         "XGROUP CREATE %s %s 0 MKSTREAM", ob->k_stream,
                         SF_OUTBOX_GROUP);
    if (rep == NULL) {
        return CMN_IO;
    }
    if (rep->type == REDIS_REPLY_ERROR && !is_err(rep, "BUSYGROUP")) {
        cmn_log_err("event=sf_outbox_group_failed detail=%s", rep->str);
        rc = CMN_ERR;
    }
    freeReplyObject(rep);
    return rc;
}

static redisReply *
run_script(struct sf_outbox *ob, struct cmn_redis_script *s, int flags,
           int nkeys, int nargs, const char **args, struct cmn_err *err)
{
    size_t lens[16];

    for (int i = 0; i < nkeys + nargs && i < 16; i++) {
        lens[i] = strlen(args[i]);
    }
    return cmn_redis_eval(ob->redis, s, flags, nkeys, nargs, args, lens, err);
}

static bool
script_ok(redisReply *rep, const char *what, const char *id,
          const struct cmn_err *err)
{
    bool ok = rep != NULL && rep->type != REDIS_REPLY_ERROR;

    if (!ok) {
        cmn_log_warn("event=sf_outbox_redis_failed step=%s entry=%s "
                     "detail=%s",
                     what, id, rep != NULL ? rep->str : err->msg);
    }
    if (rep != NULL) {
        freeReplyObject(rep);
    }
    return ok;
}

static bool
ack_done(struct sf_outbox *ob, const struct held *h)
{
    struct cmn_err err = {{0}};
    const char *args[] = {ob->k_stream, ob->k_attempts, SF_OUTBOX_GROUP, h->id};

    return script_ok(
        run_script(ob, &script_done, CMN_REDIS_RETRY, 2, 2, args, &err), "ack",
        h->id, &err);
}

/* A dead letter keeps the entry's MAC when it verified (authentic), over
 * the fields as the record holds them, so that a replay can tell it from
 * a record someone planted in the list. */
static bool
dead_letter(struct sf_outbox *ob, const struct held *h, const char *reason,
            long attempts, bool authentic)
{
    struct cmn_err err = {{0}};
    json_t *fields = NULL;
    json_t *rec;
    char *text;
    char ttl[24], mac[SF_OUTBOX_MAC_LEN] = "";
    bool ok;

    if (h->fields != NULL) {
        fields = json_loads(h->fields, 0, NULL);
    }
    if (fields == NULL) {
        fields = h->fields != NULL ? json_string(h->fields) : json_null();
    } else if (authentic && h->dialog != NULL && json_is_object(fields)) {
        char *canon = json_dumps(fields, JSON_COMPACT);
        if (canon == NULL || entry_mac(ob, h->dialog, canon, mac) != CMN_OK) {
            mac[0] = '\0';
        }
        free(canon);
    }
    rec = json_pack("{s:s?, s:o, s:s, s:i, s:I, s:s, s:s?}", "dialog_id",
                    h->dialog, "fields", fields, "reason", reason, "attempts",
                    (int)attempts, "ts", (json_int_t)cmn_wall_sec(), "entry_id",
                    h->id, "mac", mac[0] != '\0' ? mac : NULL);
    text = rec != NULL ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    if (text == NULL) {
        return false;
    }
    snprintf(ttl, sizeof(ttl), "%ld", ob->o.dead_ttl_s);
    {
        const char *args[] = {
            ob->k_stream, ob->k_attempts, ob->k_dead, SF_OUTBOX_GROUP,
            h->id,        text,           ttl};

        ok = script_ok(
            run_script(ob, &script_dead, CMN_REDIS_DURABLE, 3, 4, args, &err),
            "dead", h->id, &err);
    }
    free(text);
    if (ok) {
        atomic_fetch_add(&ob->dead, 1);
        cmn_metric_inc(ob->m_dead);
        cmn_log_err("event=sf_outbox_dead dialog=%s entry=%s attempts=%ld "
                    "reason=%s",
                    h->dialog != NULL ? h->dialog : "-", h->id, attempts,
                    reason);
    }
    return ok;
}

/* Counts a failed attempt in Redis; -1 when Redis did not answer. */
static long
count_failure(struct sf_outbox *ob, const struct held *h)
{
    struct cmn_err err = {{0}};
    char ttl[24];
    const char *args[3];
    redisReply *rep;
    long n = -1;

    snprintf(ttl, sizeof(ttl), "%lld", (long long)ob->o.attempts_ttl_s * 1000);
    args[0] = ob->k_attempts;
    args[1] = h->id;
    args[2] = ttl;
    rep = run_script(ob, &script_fail, 0, 1, 2, args, &err);
    if (rep != NULL && rep->type == REDIS_REPLY_INTEGER) {
        n = (long)rep->integer;
    }
    if (rep != NULL) {
        freeReplyObject(rep);
    }
    return n;
}

static long
stored_attempts(struct sf_outbox *ob, const char *id)
{
    struct cmn_err err = {{0}};
    redisReply *rep = cmn_redis_cmdf(ob->redis, CMN_REDIS_RETRY, &err,
                                     "HGET %s %s", ob->k_attempts, id);
    long n = 0;

    if (rep != NULL && rep->type == REDIS_REPLY_STRING) {
        n = strtol(rep->str, NULL, 10);
    }
    if (rep != NULL) {
        freeReplyObject(rep);
    }
    return n;
}

/* Keep the entries we hold for a retry from looking abandoned, and drop
 * those another consumer took over while we were busy. */
static void
heartbeat(struct sf_outbox *ob)
{
    const char *args[3 + 64];
    struct held *h = ob->held;

    ob->next_heartbeat = cmn_now_ms() + ob->o.reclaim_ms / 3;
    while (h != NULL) {
        struct cmn_err err = {{0}};
        int n = 0;
        size_t lens[3 + 64];
        redisReply *rep;

        args[0] = ob->k_stream;
        args[1] = SF_OUTBOX_GROUP;
        args[2] = ob->consumer;
        for (; h != NULL && n < 64; h = h->next) {
            args[3 + n++] = h->id;
        }
        for (int i = 0; i < 3 + n; i++) {
            lens[i] = strlen(args[i]);
        }
        rep = cmn_redis_eval(ob->redis, &script_heartbeat, 0, 1, 2 + n, args,
                             lens, &err);
        if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
            if (rep != NULL) {
                freeReplyObject(rep);
            }
            return;
        }
        for (size_t i = 0; i < rep->elements; i++) {
            struct held *lost = rep->element[i]->type == REDIS_REPLY_STRING
                                    ? held_find(ob, rep->element[i]->str)
                                    : NULL;
            if (lost != NULL) {
                cmn_log_info("event=sf_outbox_lost entry=%s dialog=%s",
                             lost->id,
                             lost->dialog != NULL ? lost->dialog : "-");
                if (lost == h) {
                    h = h->next;
                }
                held_remove(ob, lost);
            }
        }
        freeReplyObject(rep);
    }
}

static void
maybe_heartbeat(struct sf_outbox *ob)
{
    if (ob->held != NULL && cmn_now_ms() >= ob->next_heartbeat) {
        heartbeat(ob);
    }
}

/* XAUTOCLAIM what dead consumers left (idle > reclaim_ms). */
static void
reclaim(struct sf_outbox *ob)
{
    char cursor[ENTRY_ID_MAX] = "0-0";

    for (int round = 0; round < 16 && !atomic_load(&ob->stop) &&
                        ob->nheld < (size_t)ob->o.max_held;
         round++) {
        struct cmn_err err = {{0}};
        redisReply *rep = cmn_redis_cmdf(
            ob->redis, 0, &err, "XAUTOCLAIM %s %s %s %ld %s COUNT %ld",
            ob->k_stream, SF_OUTBOX_GROUP, ob->consumer, ob->o.reclaim_ms,
            cursor, ob->o.batch);

        if (rep == NULL) {
            return;
        }
        if (is_err(rep, "NOGROUP")) {
            freeReplyObject(rep);
            (void)ensure_group(ob);
            return;
        }
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
            rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[0]->len >= sizeof(cursor) ||
            rep->element[1]->type != REDIS_REPLY_ARRAY) {
            cmn_log_warn("event=sf_outbox_reclaim_failed detail=%s",
                         rep->type == REDIS_REPLY_ERROR ? rep->str
                                                        : "bad reply");
            freeReplyObject(rep);
            return;
        }
        for (size_t i = 0; i < rep->element[1]->elements; i++) {
            const redisReply *e = rep->element[1]->element[i];

            if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
                held_find(ob, e->element[0]->str) != NULL) {
                continue; /* ours already (a late heartbeat) */
            }
            atomic_fetch_add(&ob->reclaimed, 1);
            cmn_metric_inc(ob->m_reclaimed);
            cmn_log_notice("event=sf_outbox_reclaimed entry=%s",
                           e->element[0]->str);
            held_add_entry(ob, e, stored_attempts(ob, e->element[0]->str));
        }
        memcpy(cursor, rep->element[0]->str, rep->element[0]->len);
        cursor[rep->element[0]->len] = '\0';
        freeReplyObject(rep);
        if (strcmp(cursor, "0-0") == 0) {
            return;
        }
    }
}

/* XREADGROUP ... > : new entries. false when Redis is unusable. */
static bool
read_new(struct sf_outbox *ob, long block_ms)
{
    struct cmn_err err = {{0}};
    long count = ob->o.max_held - (long)ob->nheld;
    redisReply *rep;
    const redisReply *entries;

    if (count > ob->o.batch) {
        count = ob->o.batch;
    }
    rep = cmn_redis_cmdf(ob->redis, 0, &err,
                         "XREADGROUP GROUP %s %s COUNT %ld BLOCK %ld "
                         "STREAMS %s >",
                         SF_OUTBOX_GROUP, ob->consumer, count, block_ms,
                         ob->k_stream);
    if (rep == NULL) {
        cmn_log_warn("event=sf_outbox_read_failed detail=%s", err.msg);
        return false;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        cmn_log_warn("event=sf_outbox_read_failed detail=%s", rep->str);
        if (is_err(rep, "NOGROUP")) {
            (void)ensure_group(ob);
        }
        freeReplyObject(rep);
        return false;
    }
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
        rep->element[0]->type == REDIS_REPLY_ARRAY &&
        rep->element[0]->elements == 2) {
        entries = rep->element[0]->element[1];
        for (size_t i = 0;
             entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++) {
            held_add_entry(ob, entries->element[i], 0);
        }
    }
    freeReplyObject(rep);
    return true;
}

static void
update_pending(struct sf_outbox *ob)
{
    long long n;
    struct cmn_err err = {{0}};

    if (sf_outbox_pending(ob, &n, &err) == CMN_OK) {
        cmn_metric_set(ob->m_pending, (double)n);
    }
}

/* ---- consumer: writing ---- */

static bool
earlier_same_dialog(const struct sf_outbox *ob, const struct held *h)
{
    for (const struct held *p = ob->held; p != h && p != NULL; p = p->next) {
        if (p->dialog != NULL && h->dialog != NULL &&
            strcmp(p->dialog, h->dialog) == 0) {
            return true;
        }
    }
    return false;
}

/* What can be done for an entry without writing it: acknowledge one
 * already written, dead-letter a malformed one. True when h was dealt
 * with so (h may have been freed); false with *fields = its parsed
 * fields, to be written. */
static bool
settle_unwritable(struct sf_outbox *ob, struct held *h, json_t **fields)
{
    *fields = NULL;
    if (h->written) {
        if (ack_done(ob, h)) {
            held_remove(ob, h);
        } else {
            h->next_ms = cmn_now_ms() + REDIS_ERR_WAIT;
        }
        return true;
    }
    if (!mac_ok(ob, h->dialog, h->fields, h->mac)) {
        /* not queued by a connector holding the outbox key (someone who
         * can write to Redis, or a version without MACs): never written,
         * kept for an admin to look at */
        const char *why = h->mac == NULL
                              ? "unauthenticated: no MAC (queued without the "
                                "outbox key, or by an older version)"
                              : "unauthenticated: MAC does not verify "
                                "(tampered, or another outbox key)";
        cmn_log_warn("event=sf_outbox_unauthenticated entry=%s dialog=%s "
                     "mac=%s",
                     h->id, dialog_ok(h->dialog) ? h->dialog : "-",
                     h->mac == NULL ? "missing" : "wrong");
        if (dead_letter(ob, h, why, h->attempts, false)) {
            cmn_metric_inc(ob->m_unauthenticated);
            held_remove(ob, h);
        } else {
            h->next_ms = cmn_now_ms() + REDIS_ERR_WAIT;
        }
        return true;
    }
    if (h->dialog == NULL || !dialog_ok(h->dialog) || h->fields == NULL ||
        (*fields = json_loads(h->fields, 0, NULL)) == NULL ||
        !json_is_object(*fields)) {
        json_decref(*fields);
        *fields = NULL;
        if (dead_letter(ob, h, "malformed outbox entry", h->attempts, true)) {
            held_remove(ob, h);
        } else {
            h->next_ms = cmn_now_ms() + REDIS_ERR_WAIT;
        }
        return true;
    }
    return false;
}

/* The outcome of one write of h: acknowledge, dead-letter or schedule a
 * retry. Returns false on a transient failure (the caller pauses), true
 * otherwise (h may have been freed). */
static bool
settle(struct sf_outbox *ob, struct held *h, const struct sf_result *r)
{
    long long now = cmn_now_ms();
    long n;

    if (r->outcome == SF_OK) {
        atomic_fetch_add(&ob->written, 1);
        cmn_metric_inc(ob->m_written);
        cmn_log_info("event=sf_outbox_written dialog=%s entry=%s task=%s "
                     "created=%d attempts=%ld",
                     h->dialog, h->id, r->id, r->created ? 1 : 0,
                     h->attempts + 1);
        h->written = true;
        if (ack_done(ob, h)) {
            held_remove(ob, h);
        } else {
            h->next_ms = now + REDIS_ERR_WAIT;
        }
        return true;
    }
    if (r->outcome == SF_PERMANENT) {
        if (dead_letter(ob, h, r->reason, h->attempts + 1, true)) {
            held_remove(ob, h);
        } else {
            h->next_ms = now + REDIS_ERR_WAIT;
        }
        return true;
    }
    atomic_fetch_add(&ob->retries, 1);
    cmn_metric_inc(ob->m_retries);
    n = count_failure(ob, h);
    if (n < 0) {
        n = h->attempts + 1; /* Redis away: count locally meanwhile */
    }
    h->attempts = n;
    if (n >= ob->o.max_attempts) {
        char reason[CMN_ERRLEN + 64];

        snprintf(reason, sizeof(reason), "gave up after %ld attempts: %s", n,
                 r->reason);
        if (dead_letter(ob, h, reason, n, true)) {
            held_remove(ob, h);
            return true;
        }
        h->next_ms = now + REDIS_ERR_WAIT;
        return false;
    }
    h->next_ms = now + backoff_ms(ob, n);
    ob->paused_until = h->next_ms;
    ob->paused_since = now;
    cmn_log_notice("event=sf_outbox_retry dialog=%s entry=%s attempts=%ld "
                   "in_ms=%lld reason=%s",
                   h->dialog, h->id, n, h->next_ms - now, r->reason);
    return false;
}

/* One PATCH per entry, in order; stops at the first transient failure.
 * fields[i] are consumed. */
static void
write_singly(struct sf_outbox *ob, struct held **batch, json_t **fields,
             size_t n)
{
    bool go_on = true;

    for (size_t i = 0; i < n; i++) {
        struct sf_result r;

        if (go_on && !atomic_load(&ob->stop)) {
            (void)sf_task_upsert(ob->sf, batch[i]->dialog, fields[i], &r);
            go_on = settle(ob, batch[i], &r);
            if (go_on) {
                ob->paused_until = 0;
            }
        }
        json_decref(fields[i]);
    }
}

/* One sObject Collections request for the whole batch (distinct dialogs).
 * fields[i] are consumed. */
static void
write_batch(struct sf_outbox *ob, struct held **batch, json_t **fields,
            size_t n)
{
    struct sf_batch_item items[SF_BATCH_MAX];
    int rc;

    for (size_t i = 0; i < n; i++) {
        items[i].external_id = batch[i]->dialog;
        items[i].fields = fields[i];
    }
    rc = sf_task_upsert_batch(ob->sf, items, n);
    if (rc == CMN_INVALID) {
        /* the org refused the request itself (below API 46, collections
         * off): nothing was written; one PATCH per Task for a while */
        cmn_log_warn("event=sf_outbox_batch_refused records=%zu reason=%s "
                     "action=single_writes_10min",
                     n, items[0].r.reason);
        ob->single_until = cmn_now_ms() + 10 * 60 * 1000;
        write_singly(ob, batch, fields, n);
        return;
    }
    if (rc == CMN_AGAIN) {
        /* the request failed as a whole (outage, 429, timeout): it was one
         * probe, as a single write would have been. Only the oldest entry
         * counts the attempt and sets the pause; the others keep their
         * place and go in the first batch after it (counting a failure on
         * each would scatter their retries over the jittered backoff and
         * slow the drain after an outage) */
        bool probed = false;
        for (size_t i = 0; i < n; i++) {
            if (items[i].r.outcome != SF_TRANSIENT) {
                (void)settle(ob, batch[i], &items[i].r); /* refused here */
            } else if (!probed) {
                (void)settle(ob, batch[i], &items[i].r);
                probed = true;
            }
            json_decref(fields[i]);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        (void)settle(ob, batch[i], &items[i].r);
        json_decref(fields[i]);
    }
    if (rc == CMN_OK) {
        /* Salesforce answered: a record that failed transiently (a locked
         * row) waits for its own retry time, the others go on */
        ob->paused_until = 0;
    }
}

/* Write the due entries, oldest first, at most upsert_batch per request;
 * entries of a dialog wait for its earlier ones (so a batch never holds a
 * dialog twice). A transient failure of the request pauses the whole
 * round: during an outage one request probes Salesforce per backoff step,
 * the rest wait. */
static void
write_due(struct sf_outbox *ob)
{
    struct held *batch[SF_BATCH_MAX];
    json_t *fields[SF_BATCH_MAX];

    for (;;) {
        long long now = cmn_now_ms();
        size_t max = (size_t)ob->o.upsert_batch;
        size_t n = 0;

        if (now < ob->paused_until || atomic_load(&ob->stop)) {
            return;
        }
        maybe_heartbeat(ob); /* drops entries another consumer took over */
        if (now < ob->single_until) {
            max = 1;
        }
        for (struct held *h = ob->held, *next; h != NULL && n < max; h = next) {
            next = h->next;
            if (h->next_ms > now || earlier_same_dialog(ob, h)) {
                continue;
            }
            if (settle_unwritable(ob, h, &fields[n])) {
                continue; /* acknowledged or dead-lettered (h may be gone) */
            }
            batch[n++] = h;
        }
        if (n == 0) {
            return;
        }
        if (n == 1 || max <= 1) {
            write_singly(ob, batch, fields, n);
        } else {
            write_batch(ob, batch, fields, n);
        }
    }
}

/* Earliest time something held can be tried (never before the pause
 * ends); INT64_MAX when nothing is held. */
static long long
next_due(const struct sf_outbox *ob)
{
    long long t = INT64_MAX;

    for (const struct held *h = ob->held; h != NULL; h = h->next) {
        if (h->next_ms < t && !earlier_same_dialog(ob, h)) {
            t = h->next_ms;
        }
    }
    if (t != INT64_MAX && t < ob->paused_until) {
        t = ob->paused_until;
    }
    return t;
}

static void
sweep(struct sf_outbox *ob, bool self)
{
    struct cmn_err err = {{0}};
    char idle[24];
    const char *args[4];
    redisReply *rep;

    snprintf(idle, sizeof(idle), "%lld", self ? INT64_MAX / 2 : SWEEP_IDLE_MS);
    args[0] = ob->k_stream;
    args[1] = SF_OUTBOX_GROUP;
    args[2] = self ? ob->consumer : "";
    args[3] = idle;
    rep = run_script(ob, &script_sweep, 0, 1, 3, args, &err);
    if (rep != NULL) {
        freeReplyObject(rep);
    }
}

/* Another writer of this process got a 2xx from the org since our pause
 * began: Salesforce is back, so end the pause and make the entries that
 * were waiting for their retry due now (otherwise each writer would wait
 * out its own jittered backoff, up to outbox_backoff_max_ms, and the
 * drain after an outage would straggle for that long). */
static void
resume_if_org_back(struct sf_outbox *ob, long long now)
{
    if (ob->paused_until <= now || sf_last_ok_ms(ob->sf) <= ob->paused_since) {
        return;
    }
    ob->paused_until = 0;
    for (struct held *h = ob->held; h != NULL; h = h->next) {
        if (!h->written && h->next_ms > now) {
            h->next_ms = now;
        }
    }
    cmn_log_info("event=sf_outbox_resumed consumer=%s held=%zu", ob->consumer,
                 ob->nheld);
}

static void *
consumer_main(void *arg)
{
    struct sf_outbox *ob = arg;
    long long next_reclaim = 0;
    long long next_gauge = 0;
    long long next_sweep = cmn_now_ms() + SWEEP_EVERY_MS;
    bool group = false;

    cmn_log_info("event=sf_outbox_started consumer=%s stream=%s", ob->consumer,
                 ob->k_stream);
    ob->next_heartbeat = cmn_now_ms() + ob->o.reclaim_ms / 3;
    while (!atomic_load(&ob->stop)) {
        long long now = cmn_now_ms();
        long long due;

        if (!group) {
            group = ensure_group(ob) == CMN_OK;
            if (!group) {
                msleep_or_stop(ob, REDIS_ERR_WAIT);
                continue;
            }
        }
        if (now >= next_gauge) {
            update_pending(ob);
            next_gauge = now + 1000;
        }
        if (now >= next_reclaim) {
            reclaim(ob);
            next_reclaim =
                now + (ob->o.reclaim_ms / 2 > 50 ? ob->o.reclaim_ms / 2 : 50);
        }
        if (now >= next_sweep) {
            sweep(ob, false);
            next_sweep = now + SWEEP_EVERY_MS;
        }
        maybe_heartbeat(ob);
        resume_if_org_back(ob, now);
        write_due(ob);
        if (atomic_load(&ob->stop)) {
            break;
        }
        now = cmn_now_ms();
        due = next_due(ob);
        if (now >= ob->paused_until && ob->nheld < (size_t)ob->o.max_held) {
            long block = ob->o.block_ms;

            if (due - now < block) {
                block = due - now > 1 ? (long)(due - now) : 1;
            }
            if (due <= now) {
                continue; /* something is due: no read, no wait */
            }
            if (!read_new(ob, block)) {
                msleep_or_stop(ob, REDIS_ERR_WAIT);
            }
        } else {
            long long wait = due - now;

            if (wait > 200) {
                wait = 200;
            }
            msleep_or_stop(ob, wait);
        }
    }
    sweep(ob, true);
    cmn_log_info("event=sf_outbox_stopped consumer=%s held=%zu", ob->consumer,
                 ob->nheld);
    return NULL;
}

/* ---- admin ---- */

int
sf_outbox_pending(struct sf_outbox *ob, long long *n, struct cmn_err *err)
{
    redisReply *rep = cmn_redis_cmdf(ob->redis, CMN_REDIS_RETRY, err, "XLEN %s",
                                     ob->k_stream);
    int rc = CMN_ERR;

    *n = 0;
    if (rep == NULL) {
        return CMN_IO;
    }
    if (rep->type == REDIS_REPLY_INTEGER) {
        *n = rep->integer;
        rc = CMN_OK;
    } else {
        cmn_err_set(err, "outbox: XLEN: unexpected reply");
    }
    freeReplyObject(rep);
    return rc;
}

int
sf_outbox_dead_list(struct sf_outbox *ob, json_t **out, struct cmn_err *err)
{
    redisReply *rep;
    json_t *arr;

    *out = NULL;
    rep = cmn_redis_cmdf(ob->redis, CMN_REDIS_RETRY, err, "LRANGE %s 0 %d",
                         ob->k_dead, DEAD_LIST_MAX - 1);
    if (rep == NULL) {
        return CMN_IO;
    }
    if (rep->type != REDIS_REPLY_ARRAY) {
        cmn_err_set(err, "outbox: LRANGE: unexpected reply");
        freeReplyObject(rep);
        return CMN_ERR;
    }
    arr = json_array();
    for (size_t i = 0; arr != NULL && i < rep->elements; i++) {
        json_t *rec = NULL;

        if (rep->element[i]->type == REDIS_REPLY_STRING) {
            rec =
                json_loadb(rep->element[i]->str, rep->element[i]->len, 0, NULL);
        }
        /* keep indexes aligned with the list even for a bad record */
        json_array_append_new(arr, rec != NULL ? rec : json_null());
    }
    freeReplyObject(rep);
    if (arr == NULL) {
        cmn_err_set(err, "out of memory");
        return CMN_NOMEM;
    }
    *out = arr;
    return CMN_OK;
}

/* Move dead entry at index (negative: from the tail) back to the stream.
 * CMN_OK moved, CMN_NOTFOUND no such entry, CMN_AGAIN the list changed. */
static int
replay_one(struct sf_outbox *ob, long index, bool force, struct cmn_err *err)
{
    char idx[24];
    char ts[24], mac[SF_OUTBOX_MAC_LEN];
    redisReply *rep;
    json_t *rec = NULL;
    char *fields = NULL;
    const char *dialog;
    int rc;

    snprintf(idx, sizeof(idx), "%ld", index);
    rep = cmn_redis_cmdf(ob->redis, CMN_REDIS_RETRY, err, "LINDEX %s %s",
                         ob->k_dead, idx);
    if (rep == NULL) {
        return CMN_IO;
    }
    if (rep->type != REDIS_REPLY_STRING) {
        freeReplyObject(rep);
        cmn_err_set(err, "outbox: no dead entry %ld", index);
        return CMN_NOTFOUND;
    }
    rec = json_loadb(rep->str, rep->len, 0, NULL);
    dialog = json_string_value(json_object_get(rec, "dialog_id"));
    if (json_is_object(json_object_get(rec, "fields"))) {
        fields = json_dumps(json_object_get(rec, "fields"), JSON_COMPACT);
    }
    if (!dialog_ok(dialog) || fields == NULL) {
        cmn_err_set(err,
                    "outbox: dead entry %ld cannot be replayed "
                    "(malformed)",
                    index);
        rc = CMN_INVALID;
        goto out;
    }
    if (!force && !mac_ok(ob, dialog, fields,
                          json_string_value(json_object_get(rec, "mac")))) {
        /* planted in the list, or dead-lettered as unauthenticated: an
         * admin looks at it first and replays it with force */
        cmn_err_set(err,
                    "outbox: dead entry %ld is not authenticated (not "
                    "queued by a connector with this outbox key); check its "
                    "fields, then replay it with force",
                    index);
        rc = CMN_DENIED;
        goto out;
    }
    if (entry_mac(ob, dialog, fields, mac) != CMN_OK) {
        cmn_err_set(err, "outbox: cannot compute the entry's MAC");
        rc = CMN_ERR;
        goto out;
    }
    snprintf(ts, sizeof(ts), "%lld", cmn_wall_ms());
    {
        const char *args[] = {ob->k_stream, ob->k_dead, idx, rep->str,
                              dialog,       fields,     ts,  mac};
        size_t lens[] = {
            strlen(ob->k_stream), strlen(ob->k_dead), strlen(idx), rep->len,
            strlen(dialog),       strlen(fields),     strlen(ts),  strlen(mac)};
        redisReply *r2 =
            cmn_redis_eval(ob->redis, &script_replay, CMN_REDIS_DURABLE, 2, 6,
                           args, lens, err);
        if (r2 == NULL) {
            rc = CMN_IO;
            goto out;
        }
        rc = r2->type == REDIS_REPLY_INTEGER && r2->integer == 1 ? CMN_OK
                                                                 : CMN_AGAIN;
        if (r2->type == REDIS_REPLY_ERROR) {
            cmn_err_set(err, "outbox: replay: %s", r2->str);
            rc = CMN_ERR;
        }
        freeReplyObject(r2);
    }
    if (rc == CMN_OK) {
        cmn_log_notice("event=sf_outbox_replayed dialog=%s forced=%d", dialog,
                       force);
    }
out:
    free(fields);
    json_decref(rec);
    freeReplyObject(rep);
    return rc;
}

int
sf_outbox_replay(struct sf_outbox *ob, long index, bool force, size_t *replayed,
                 size_t *unauthenticated, struct cmn_err *err)
{
    redisReply *rep;
    long long n;
    size_t done = 0, denied = 0;
    int rc = CMN_OK;

    if (replayed != NULL) {
        *replayed = 0;
    }
    if (unauthenticated != NULL) {
        *unauthenticated = 0;
    }
    if (index != SF_OUTBOX_ALL) {
        if (index < 0) {
            cmn_err_set(err, "outbox: bad dead-letter index");
            return CMN_INVALID;
        }
        for (int tries = 0; tries < 3; tries++) {
            rc = replay_one(ob, index, force, err);
            if (rc != CMN_AGAIN) {
                break;
            }
        }
        if (rc == CMN_OK && replayed != NULL) {
            *replayed = 1;
        }
        if (rc == CMN_AGAIN) {
            cmn_err_set(err, "outbox: dead-letter list kept changing");
        }
        return rc;
    }
    rep =
        cmn_redis_cmdf(ob->redis, CMN_REDIS_RETRY, err, "LLEN %s", ob->k_dead);
    if (rep == NULL) {
        return CMN_IO;
    }
    n = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
    freeReplyObject(rep);
    /* oldest first, from the tail; bounded by the length seen now so an
     * entry that dies again while we replay is not replayed twice */
    for (long long i = 0, skipped = 0; i < n; i++) {
        rc = replay_one(ob, -1 - skipped, force, err);
        if (rc == CMN_OK) {
            done++;
        } else if (rc == CMN_INVALID || rc == CMN_DENIED) {
            denied += rc == CMN_DENIED;
            skipped++; /* leave it there, look past it */
        } else if (rc == CMN_NOTFOUND) {
            rc = CMN_OK;
            break;
        } else if (rc != CMN_AGAIN) {
            break;
        }
        rc = CMN_OK;
    }
    if (replayed != NULL) {
        *replayed = done;
    }
    if (unauthenticated != NULL) {
        *unauthenticated = denied;
    }
    return rc;
}
