/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_sf_outbox.c - the durable call-log outbox against a real
 * redis-server and an in-process fake Salesforce: written exactly once,
 * retries with backoff through an outage, dead letters and replay, a
 * consumer that dies holding entries, a 200-entry burst shared by two
 * consumers, per-dialog order, TTLs on every key but the stream; batched
 * writes (sObject Collections): exactly once, a bad record dead alone, an
 * org without collections served one PATCH per Task. Entries carry a MAC:
 * one queued without it, with a wrong one, tampered with, or from another
 * outbox key is dead-lettered and never sent; a planted dead letter is not
 * replayed unless forced; the config requires outbox_key_file. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cmn_config.h"
#include "cmn_httpc.h"
#include "cmn_log.h"
#include "cmn_redis.h"
#include "salesforce/sf_config.h"
#include "salesforce/sf_outbox.h"
#include "salesforce/sf_rest.h"

#include "../lib/redis_fixture.c"
#include "test_sf_fake.h"

static char tmpdir[64];
static char ini_path[600];
static char redis_url[64];
static struct tst_redis srv;
static struct cmn_config *ini;
static struct sf_config cfg;
static struct sf *sf;

/* per test */
static struct cmn_redis *pool;
static char prefix[32];
static char k_stream[64];
static int test_no;

static void
msleep(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int
group_setup(void **state)
{
    struct cmn_err err = {{0}};
    int port;

    (void)state;
    cmn_log_init("test_sf_outbox", CMN_LOG_ERR);
    if (cmn_httpc_global_init() != CMN_OK ||
        tst_redis_tmpdir(tmpdir, sizeof(tmpdir)) != 0) {
        return -1;
    }
    port = tst_redis_free_port();
    if (port < 0 || tst_redis_start(&srv, tmpdir, port, NULL) != 0) {
        return -1;
    }
    snprintf(redis_url, sizeof(redis_url), "redis://127.0.0.1:%d/0", port);
    if (fake_start(tmpdir, redis_url, NULL, ini_path, sizeof(ini_path)) != 0) {
        return -1;
    }
    ini = cmn_config_load(ini_path, &err);
    if (ini == NULL || sf_config_load(ini, &cfg, &err) != CMN_OK) {
        fprintf(stderr, "config: %s\n", err.msg);
        return -1;
    }
    sf = sf_new(&cfg, &err);
    return sf != NULL ? 0 : -1;
}

static int
group_teardown(void **state)
{
    (void)state;
    sf_free(sf);
    sf_config_cleanup(&cfg);
    cmn_config_free(ini);
    fake_stop();
    tst_redis_stop(&srv);
    tst_redis_rmtree(tmpdir);
    return 0;
}

/* A fresh prefix per test: no test sees another's stream. */
static int
setup(void **state)
{
    struct cmn_redis_opts o = cfg.redis;
    struct cmn_err err = {{0}};

    (void)state;
    fake_reset();
    snprintf(prefix, sizeof(prefix), "fsc:t%d:", ++test_no);
    snprintf(k_stream, sizeof(k_stream), "%soutbox", prefix);
    o.prefix = prefix;
    pool = cmn_redis_new(&o, &err);
    return pool != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    cmn_redis_free(pool);
    pool = NULL;
    return 0;
}

static struct sf_outbox *
outbox(const char *consumer, long reclaim_ms, long max_attempts)
{
    struct sf_outbox_opts o;
    struct cmn_err err = {{0}};
    struct sf_outbox *ob;

    memset(&o, 0, sizeof(o));
    o.consumer = consumer;
    o.mac_key = cfg.outbox_key;
    o.reclaim_ms = reclaim_ms;
    o.max_attempts = max_attempts;
    o.backoff_base_ms = 40;
    o.backoff_max_ms = 300;
    o.block_ms = 200;
    ob = sf_outbox_new(pool, sf, &o, &err);
    assert_non_null(ob);
    return ob;
}

/* A consumer that writes up to `batch` Tasks per Salesforce request. */
static struct sf_outbox *
outbox_batched(const char *consumer, long batch)
{
    struct sf_outbox_opts o;
    struct cmn_err err = {{0}};
    struct sf_outbox *ob;

    memset(&o, 0, sizeof(o));
    o.consumer = consumer;
    o.mac_key = cfg.outbox_key;
    o.reclaim_ms = 5000;
    o.max_attempts = 10;
    o.backoff_base_ms = 40;
    o.backoff_max_ms = 300;
    o.block_ms = 200;
    o.upsert_batch = batch;
    ob = sf_outbox_new(pool, sf, &o, &err);
    assert_non_null(ob);
    return ob;
}

static json_t *
fields(const char *dialog, const char *status)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "Subject", "Call", "CallType",
                     "Inbound", "CallObject", dialog, "Status", status,
                     "Finesse_Call_Id__c", dialog);
}

static void
put(struct sf_outbox *ob, const char *dialog, const char *status)
{
    struct cmn_err err = {{0}};
    json_t *f = fields(dialog, status);

    assert_int_equal(sf_outbox_put(ob, dialog, f, &err), CMN_OK);
    json_decref(f);
}

static long long
xlen(void)
{
    redisReply *r = tst_redis_cmd(srv.port, "XLEN %s", k_stream);
    long long n = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r != NULL) {
        freeReplyObject(r);
    }
    return n;
}

static long long
key_int(const char *cmd, const char *suffix)
{
    redisReply *r = tst_redis_cmd(srv.port, "%s %s%s", cmd, prefix, suffix);
    long long n =
        r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -99;
    if (r != NULL) {
        freeReplyObject(r);
    }
    return n;
}

/* Waits (10 s max) until every id in [first, first+n) was written at
 * least once and the stream is empty. */
static bool
wait_written(int first, int n)
{
    for (int waited = 0; waited < 10000; waited += 20) {
        bool all = xlen() == 0;

        for (int i = 0; all && i < n; i++) {
            char id[32];
            snprintf(id, sizeof(id), "%d", first + i);
            all = fake_task(id).writes > 0;
        }
        if (all) {
            return true;
        }
        msleep(20);
    }
    return false;
}

static void
test_sf_outbox_put_written_once(void **state)
{
    struct sf_outbox *ob = outbox("solo", 5000, 10);
    struct cmn_err err = {{0}};
    struct sf_outbox_stats st;
    long long pending;

    (void)state;
    put(ob, "10001", "Completed");
    assert_int_equal(sf_outbox_pending(ob, &pending, &err), CMN_OK);
    assert_int_equal(pending, 1); /* accepted before any consumer ran */
    assert_int_equal(sf_outbox_start(ob, &err), CMN_OK);
    assert_true(wait_written(10001, 1));
    msleep(100);
    assert_int_equal(fake_task("10001").writes, 1);
    assert_int_equal(fake_task("10001").creates, 1);
    assert_int_equal(xlen(), 0);
    assert_int_equal(key_int("EXISTS", "outbox:attempts"), 0);
    sf_outbox_stats(ob, &st);
    assert_int_equal(st.written, 1);
    assert_int_equal(st.retries, 0);
    /* the stream itself stays, without a TTL (the one exception) */
    assert_int_equal(key_int("TTL", "outbox"), -1);
    sf_outbox_free(ob);
    /* bad input changes nothing */
    ob = outbox("solo", 5000, 10);
    {
        json_t *arr = json_array();
        assert_int_equal(sf_outbox_put(ob, "", arr, &err), CMN_INVALID);
        assert_int_equal(sf_outbox_put(ob, "1\n2", arr, &err), CMN_INVALID);
        assert_int_equal(sf_outbox_put(ob, "1", arr, &err), CMN_INVALID);
        json_decref(arr);
    }
    assert_int_equal(xlen(), 0);
    sf_outbox_free(ob);
}

static void
test_sf_outbox_outage_retried_with_backoff(void **state)
{
    struct sf_outbox *ob = outbox("solo", 5000, 10);
    struct cmn_err err = {{0}};
    struct sf_outbox_stats st;
    long long t0;

    (void)state;
    pthread_mutex_lock(&fake.mu);
    fake.fail_503 = 4;
    fake.fail_403_limit = 1;
    pthread_mutex_unlock(&fake.mu);
    put(ob, "20001", "Completed");
    put(ob, "20002", "Completed");
    t0 = cmn_now_ms();
    assert_int_equal(sf_outbox_start(ob, &err), CMN_OK);
    assert_true(wait_written(20001, 2));
    /* 5 failures, backoff 40, 80, 160, 300, 300 ms (jitter: >= half) */
    assert_true(cmn_now_ms() - t0 >= (20 + 40 + 80 + 150 + 150));
    msleep(100);
    sf_outbox_stats(ob, &st);
    assert_int_equal(st.retries, 5);
    assert_int_equal(st.written, 2);
    assert_int_equal(st.dead, 0);
    assert_int_equal(fake_task("20001").writes, 1);
    assert_int_equal(fake_task("20002").writes, 1);
    /* during the outage only one entry probed: 5 failures + 2 writes
     * (+ one 401 per mint: fake_reset killed the cached token) */
    assert_int_equal(fake_upserts(), 7 + fake.mints);
    /* attempt counts are gone once written */
    assert_int_equal(key_int("EXISTS", "outbox:attempts"), 0);
    sf_outbox_free(ob);
}

static void
test_sf_outbox_attempts_counted_with_ttl_then_dead(void **state)
{
    struct sf_outbox *ob = outbox("solo", 5000, 3);
    struct cmn_err err = {{0}};
    json_t *dead = NULL;
    json_t *rec;

    (void)state;
    pthread_mutex_lock(&fake.mu);
    fake.fail_503 = 1000;
    pthread_mutex_unlock(&fake.mu);
    put(ob, "30001", "Completed");
    assert_int_equal(sf_outbox_start(ob, &err), CMN_OK);
    for (int i = 0; i < 200 && key_int("HLEN", "outbox:attempts") == 0; i++) {
        msleep(10);
    }
    /* the attempts hash has a TTL while it exists */
    assert_true(key_int("TTL", "outbox:attempts") > 0);
    for (int i = 0; i < 500 && key_int("LLEN", "outbox:dead") == 0; i++) {
        msleep(10);
    }
    sf_outbox_stop(ob);
    assert_int_equal(key_int("LLEN", "outbox:dead"), 1);
    assert_true(key_int("TTL", "outbox:dead") > 29 * 86400);
    assert_int_equal(xlen(), 0);
    assert_int_equal(key_int("EXISTS", "outbox:attempts"), 0);
    assert_int_equal(sf_outbox_dead_list(ob, &dead, &err), CMN_OK);
    rec = json_array_get(dead, 0);
    assert_string_equal(json_string_value(json_object_get(rec, "dialog_id")),
                        "30001");
    assert_int_equal(json_integer_value(json_object_get(rec, "attempts")), 3);
    assert_non_null(strstr(json_string_value(json_object_get(rec, "reason")),
                           "gave up after 3 attempts"));
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(rec, "fields"), "Status")),
                        "Completed");
    json_decref(dead);
    assert_int_equal(fake_task("30001").writes, 0);
    sf_outbox_free(ob);
}

static void
test_sf_outbox_permanent_dead_then_replay(void **state)
{
    struct sf_outbox *ob = outbox("solo", 5000, 10);
    struct cmn_err err = {{0}};
    json_t *dead = NULL;
    size_t n = 0;
    struct sf_outbox_stats st;

    (void)state;
    pthread_mutex_lock(&fake.mu);
    snprintf(fake.fail_400_ext, sizeof(fake.fail_400_ext), "40001");
    snprintf(fake.fail_300_ext, sizeof(fake.fail_300_ext), "40002");
    pthread_mutex_unlock(&fake.mu);
    put(ob, "40001", "Completed");
    put(ob, "40002", "Completed");
    put(ob, "40003", "Completed");
    assert_int_equal(sf_outbox_start(ob, &err), CMN_OK);
    for (int i = 0; i < 500 && key_int("LLEN", "outbox:dead") < 2; i++) {
        msleep(10);
    }
    assert_true(wait_written(40003, 1));
    assert_int_equal(sf_outbox_dead_list(ob, &dead, &err), CMN_OK);
    assert_int_equal(json_array_size(dead), 2);
    /* newest first: 40002 (300), then 40001 (400) */
    assert_non_null(strstr(
        json_string_value(json_object_get(json_array_get(dead, 0), "reason")),
        "matches 2 records"));
    assert_non_null(strstr(
        json_string_value(json_object_get(json_array_get(dead, 1), "reason")),
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"));
    assert_int_equal(json_integer_value(
                         json_object_get(json_array_get(dead, 1), "attempts")),
                     1);
    json_decref(dead);
    sf_outbox_stats(ob, &st);
    assert_int_equal(st.dead, 2);
    assert_int_equal(st.retries, 0); /* permanent: no retry */

    /* an admin fixes the picklist value; replay just that one */
    pthread_mutex_lock(&fake.mu);
    fake.fail_400_ext[0] = '\0';
    pthread_mutex_unlock(&fake.mu);
    assert_int_equal(sf_outbox_replay(ob, 1, false, &n, NULL, &err), CMN_OK);
    assert_int_equal(n, 1);
    assert_true(wait_written(40001, 1));
    assert_int_equal(fake_task("40001").writes, 1);
    assert_int_equal(key_int("LLEN", "outbox:dead"), 1);
    assert_int_equal(sf_outbox_replay(ob, 5, false, &n, NULL, &err),
                     CMN_NOTFOUND);
    /* replay all: 40002 fails again with 300 and comes back, once */
    assert_int_equal(sf_outbox_replay(ob, SF_OUTBOX_ALL, false, &n, NULL, &err),
                     CMN_OK);
    assert_int_equal(n, 1);
    for (int i = 0; i < 300 && key_int("LLEN", "outbox:dead") < 1; i++) {
        msleep(10);
    }
    msleep(200);
    assert_int_equal(key_int("LLEN", "outbox:dead"), 1);
    assert_int_equal(fake_task("40002").writes, 0);
    sf_outbox_free(ob);
}

/* Consumer A takes entries with XREADGROUP and dies before XACK; B takes
 * them over after reclaim_ms and writes each exactly once. */
static void
test_sf_outbox_crashed_consumer_reclaimed(void **state)
{
    struct sf_outbox *putter = outbox("putter", 300, 10);
    struct sf_outbox *b;
    struct cmn_err err = {{0}};
    redisReply *r;
    struct sf_outbox_stats st;
    long long t0;

    (void)state;
    r = tst_redis_cmd(srv.port, "XGROUP CREATE %s fsc 0 MKSTREAM", k_stream);
    assert_non_null(r);
    freeReplyObject(r);
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%d", 50001 + i);
        put(putter, id, "Completed");
    }
    /* A reads all five ... and is never heard of again */
    r = tst_redis_cmd(srv.port, "XREADGROUP GROUP fsc A COUNT 10 STREAMS %s >",
                      k_stream);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->element[0]->element[1]->elements, 5);
    freeReplyObject(r);
    t0 = cmn_now_ms();
    b = outbox("B", 300, 10);
    assert_int_equal(sf_outbox_start(b, &err), CMN_OK);
    assert_true(wait_written(50001, 5));
    /* not before A's entries were idle for reclaim_ms */
    assert_true(cmn_now_ms() - t0 >= 250);
    msleep(300);
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%d", 50001 + i);
        assert_int_equal(fake_task(id).writes, 1);
    }
    sf_outbox_stats(b, &st);
    assert_int_equal(st.reclaimed, 5);
    assert_int_equal(st.written, 5);
    r = tst_redis_cmd(srv.port, "XPENDING %s fsc", k_stream);
    assert_int_equal(r->element[0]->integer, 0);
    freeReplyObject(r);
    sf_outbox_free(b);
    sf_outbox_free(putter);
}

/* A live consumer in a long backoff keeps its entries: another consumer
 * with a short reclaim_ms does not steal them. */
static void
test_sf_outbox_backoff_entries_not_stolen(void **state)
{
    struct sf_outbox_opts o;
    struct cmn_err err = {{0}};
    struct sf_outbox *a, *b;
    struct sf_outbox_stats sa, sb;

    (void)state;
    memset(&o, 0, sizeof(o));
    o.consumer = "A";
    o.mac_key = cfg.outbox_key;
    o.reclaim_ms = 300;
    o.backoff_base_ms = 1500;
    o.backoff_max_ms = 1500;
    o.block_ms = 100;
    a = sf_outbox_new(pool, sf, &o, &err);
    pthread_mutex_lock(&fake.mu);
    fake.fail_503 = 1;
    pthread_mutex_unlock(&fake.mu);
    put(a, "60001", "Completed");
    assert_int_equal(sf_outbox_start(a, &err), CMN_OK);
    for (int i = 0; i < 200 && fake_upserts() == 0; i++) {
        msleep(10);
    }
    b = outbox("B", 300, 10);
    assert_int_equal(sf_outbox_start(b, &err), CMN_OK);
    assert_true(wait_written(60001, 1));
    msleep(200);
    sf_outbox_stats(a, &sa);
    sf_outbox_stats(b, &sb);
    assert_int_equal(sb.reclaimed, 0);
    assert_int_equal(sa.written, 1);
    assert_int_equal(fake_task("60001").writes, 1);
    sf_outbox_free(b);
    sf_outbox_free(a);
}

/* 200 call logs at once, two consumers sharing the group. */
static void
test_sf_outbox_burst_exactly_once(void **state)
{
    struct sf_outbox *b = outbox("B", 5000, 10);
    struct sf_outbox *c = outbox("C", 5000, 10);
    struct cmn_err err = {{0}};
    struct sf_outbox_stats sb, sc;

    (void)state;
    assert_int_equal(sf_outbox_start(b, &err), CMN_OK);
    assert_int_equal(sf_outbox_start(c, &err), CMN_OK);
    pthread_mutex_lock(&fake.mu);
    fake.fail_503 = 3; /* a hiccup in the middle of it */
    pthread_mutex_unlock(&fake.mu);
    for (int i = 0; i < 200; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%d", 70000 + i);
        put(b, id, "Completed");
    }
    assert_true(wait_written(70000, 200));
    msleep(300);
    for (int i = 0; i < 200; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%d", 70000 + i);
        if (fake_task(id).writes != 1) {
            fail_msg("dialog %s written %d times", id, fake_task(id).writes);
        }
    }
    sf_outbox_stats(b, &sb);
    sf_outbox_stats(c, &sc);
    assert_int_equal(sb.written + sc.written, 200);
    assert_int_equal(fake.mints, 1);
    sf_outbox_free(b);
    sf_outbox_free(c);
    /* a clean stop removes the consumers that hold nothing */
    {
        redisReply *r =
            tst_redis_cmd(srv.port, "XINFO CONSUMERS %s fsc", k_stream);
        assert_non_null(r);
        assert_int_equal(r->elements, 0);
        freeReplyObject(r);
    }
}

/* Two entries for one dialog: the first fails transiently, the second
 * must not overtake it (the last write carries the wrap-up fields). */
static void
test_sf_outbox_dialog_order_kept(void **state)
{
    struct sf_outbox *ob = outbox("solo", 5000, 10);
    struct cmn_err err = {{0}};

    (void)state;
    pthread_mutex_lock(&fake.mu);
    fake.fail_503 = 2;
    pthread_mutex_unlock(&fake.mu);
    put(ob, "80001", "In Progress");
    put(ob, "80001", "Completed");
    assert_int_equal(sf_outbox_start(ob, &err), CMN_OK);
    for (int i = 0; i < 500 && (fake_task("80001").writes < 2 || xlen() != 0);
         i++) {
        msleep(10);
    }
    assert_int_equal(fake_task("80001").writes, 2);
    assert_int_equal(fake_task("80001").creates, 1);
    assert_non_null(strstr(fake_task("80001").body, "\"Completed\""));
    sf_outbox_free(ob);
}

/* Batched: 300 call ends plus 100 wrap-up updates queued before the
 * consumer starts, a 503 on the first request. Every Task is created once
 * and carries its last fields; a few dozen requests instead of 400. */
static void
test_sf_outbox_batched_exactly_once(void **state)
{
    struct sf_outbox *ob = outbox_batched("batcher", 50);
    struct cmn_err err = {{0}};
    struct sf_outbox_stats st;
    unsigned requests, records;

    (void)state;
    pthread_mutex_lock(&fake.mu);
    fake.fail_503 = 1;
    pthread_mutex_unlock(&fake.mu);
    for (int i = 0; i < 300; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%d", 90000 + i);
        put(ob, id, "In Progress");
    }
    for (int i = 0; i < 100; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%d", 90000 + i);
        put(ob, id, "Completed");
    }
    assert_int_equal(sf_outbox_start(ob, &err), CMN_OK);
    assert_true(wait_written(90000, 300));
    msleep(200);
    for (int i = 0; i < 300; i++) {
        char id[16];
        struct fake_task t;
        snprintf(id, sizeof(id), "%d", 90000 + i);
        t = fake_task(id);
        if (t.creates != 1 || t.writes != (i < 100 ? 2 : 1)) {
            fail_msg("dialog %s: %d creates, %d writes", id, t.creates,
                     t.writes);
        }
        if (i < 100 && strstr(t.body, "\"Completed\"") == NULL) {
            fail_msg("dialog %s ends with %s, not the wrap-up", id, t.body);
        }
    }
    pthread_mutex_lock(&fake.mu);
    requests = fake.collection_requests;
    records = fake.collection_records;
    pthread_mutex_unlock(&fake.mu);
    sf_outbox_stats(ob, &st);
    assert_int_equal(st.written, 400);
    assert_true(st.retries >= 1); /* the 503 */
    /* a lone due entry goes as a single PATCH */
    if (records + fake_upserts() != 400) {
        fail_msg("%u records in %u collection requests + %u single upserts "
                 "for 400 writes",
                 records, requests, fake_upserts());
    }
    if (requests > 40) {
        fail_msg("%u collection requests for 400 writes", requests);
    }
    assert_true(fake_upserts() < 20);
    sf_outbox_free(ob);
}

/* One record refused inside a batch goes to the dead letters alone; a
 * record with more than one match too; the rest are written. */
static void
test_sf_outbox_batch_bad_record_alone(void **state)
{
    struct sf_outbox *ob = outbox_batched("batcher", 50);
    struct cmn_err err = {{0}};
    json_t *dead = NULL;

    (void)state;
    pthread_mutex_lock(&fake.mu);
    snprintf(fake.fail_400_ext, sizeof(fake.fail_400_ext), "91003");
    snprintf(fake.fail_300_ext, sizeof(fake.fail_300_ext), "91007");
    pthread_mutex_unlock(&fake.mu);
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%d", 91000 + i);
        put(ob, id, "Completed");
    }
    assert_int_equal(sf_outbox_start(ob, &err), CMN_OK);
    for (int i = 0;
         i < 500 && (key_int("LLEN", "outbox:dead") < 2 || xlen() != 0); i++) {
        msleep(10);
    }
    assert_int_equal(xlen(), 0);
    assert_int_equal(sf_outbox_dead_list(ob, &dead, &err), CMN_OK);
    assert_int_equal(json_array_size(dead), 2);
    for (size_t i = 0; i < 2; i++) {
        const char *d = json_string_value(
            json_object_get(json_array_get(dead, i), "dialog_id"));
        const char *why = json_string_value(
            json_object_get(json_array_get(dead, i), "reason"));
        assert_non_null(d);
        assert_non_null(why);
        assert_true((strcmp(d, "91003") == 0 &&
                     strstr(why, "INVALID_OR_NULL_FOR_RESTRICTED") != NULL) ||
                    (strcmp(d, "91007") == 0 &&
                     strstr(why, "DUPLICATE_EXTERNAL_ID") != NULL));
    }
    json_decref(dead);
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%d", 91000 + i);
        assert_int_equal(fake_task(id).writes, i == 3 || i == 7 ? 0 : 1);
    }
    sf_outbox_free(ob);
}

/* An org without sObject Collections (404): nothing is dead-lettered,
 * every Task is written with one PATCH each. */
static void
test_sf_outbox_batch_refused_falls_back(void **state)
{
    struct sf_outbox *ob = outbox_batched("batcher", 50);
    struct cmn_err err = {{0}};

    (void)state;
    pthread_mutex_lock(&fake.mu);
    fake.collections_404 = true;
    pthread_mutex_unlock(&fake.mu);
    for (int i = 0; i < 20; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%d", 92000 + i);
        put(ob, id, "Completed");
    }
    assert_int_equal(sf_outbox_start(ob, &err), CMN_OK);
    assert_true(wait_written(92000, 20));
    msleep(100);
    assert_int_equal(key_int("EXISTS", "outbox:dead"), 0);
    assert_int_equal(fake_upserts(), 20);
    for (int i = 0; i < 20; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%d", 92000 + i);
        assert_int_equal(fake_task(id).writes, 1);
    }
    sf_outbox_free(ob);
}

/* XADD an entry by hand, as someone with Redis access but no key would;
 * mac NULL: none. */
static void
xadd_raw(const char *dialog, const char *fields, const char *mac)
{
    redisReply *r =
        mac != NULL
            ? tst_redis_cmd(srv.port,
                            "XADD %s * dialog %s fields %s ts 1 mac %s",
                            k_stream, dialog, fields, mac)
            : tst_redis_cmd(srv.port, "XADD %s * dialog %s fields %s ts 1",
                            k_stream, dialog, fields);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
}

/* The "mac" field of the stream's last entry (a genuine one). */
static void
last_mac(char *out, size_t size)
{
    redisReply *r =
        tst_redis_cmd(srv.port, "XREVRANGE %s + - COUNT 1", k_stream);
    out[0] = '\0';
    assert_non_null(r);
    assert_int_equal(r->elements, 1);
    redisReply *kv = r->element[0]->element[1];
    for (size_t i = 0; i + 1 < kv->elements; i += 2) {
        if (strcmp(kv->element[i]->str, "mac") == 0) {
            snprintf(out, size, "%s", kv->element[i + 1]->str);
        }
    }
    freeReplyObject(r);
}

static int
dead_reasons_with(const char *needle)
{
    redisReply *r =
        tst_redis_cmd(srv.port, "LRANGE %soutbox:dead 0 -1", prefix);
    int n = 0;

    for (size_t i = 0; r != NULL && i < r->elements; i++) {
        n += strstr(r->element[i]->str, needle) != NULL;
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
    return n;
}

static void
test_sf_outbox_unauthenticated_dead_never_sent(void **state)
{
    struct sf_outbox *ob = outbox("solo", 5000, 10);
    static const unsigned char other_key[32] = {1, 2, 3};
    struct sf_outbox_opts o;
    struct cmn_err err = {{0}};
    char mac[64], mac_b[64], forged[64];
    json_t *dead = NULL;
    size_t n = 0, unauth = 0;
    (void)state;

    /* genuine: queued through the outbox, with a MAC */
    put(ob, "70001", "Completed");
    last_mac(mac, sizeof(mac));
    assert_int_equal(strlen(mac), 43);
    /* no MAC at all (a version before MACs, or someone with Redis) */
    xadd_raw("70002", "{\"Subject\":\"Call\",\"Status\":\"Completed\"}", NULL);
    /* a genuine entry's MAC on other fields (tampered) */
    xadd_raw("70001", "{\"Subject\":\"Hacked\",\"Status\":\"Completed\"}", mac);
    /* the MAC of another dialog's entry (overwriting another Task) */
    xadd_raw("70003",
             "{\"Subject\":\"Call\",\"CallType\":\"Inbound\","
             "\"CallObject\":\"70001\",\"Status\":\"Completed\","
             "\"Finesse_Call_Id__c\":\"70001\"}",
             mac);
    /* a well-formed entry of an outbox with another key */
    memset(&o, 0, sizeof(o));
    o.consumer = "other";
    o.mac_key = other_key;
    struct sf_outbox *other = sf_outbox_new(pool, NULL, &o, &err);
    assert_non_null(other);
    put(other, "70004", "Completed");
    last_mac(mac_b, sizeof(mac_b));
    sf_outbox_free(other);
    /* garbage in the mac field */
    snprintf(forged, sizeof(forged), "%s",
             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    xadd_raw("70005", "{\"Subject\":\"Call\"}", forged);
    assert_int_equal(xlen(), 6);

    assert_int_equal(sf_outbox_start(ob, &err), CMN_OK);
    for (int i = 0; i < 500 && key_int("LLEN", "outbox:dead") < 5; i++) {
        msleep(10);
    }
    assert_true(wait_written(70001, 1));
    msleep(200);
    /* the genuine entry was written once, with its own fields; the five
     * others never reached Salesforce */
    assert_int_equal(fake_task("70001").writes, 1);
    assert_int_equal(fake_task("70002").writes, 0);
    assert_int_equal(fake_task("70003").writes, 0);
    assert_int_equal(fake_task("70004").writes, 0);
    assert_int_equal(fake_task("70005").writes, 0);
    assert_int_equal(key_int("LLEN", "outbox:dead"), 5);
    assert_int_equal(dead_reasons_with("unauthenticated: no MAC"), 1);
    assert_int_equal(dead_reasons_with("unauthenticated: MAC does not verify"),
                     4);
    assert_int_equal(xlen(), 0);

    /* replay: not without force, one at a time or all */
    assert_int_equal(sf_outbox_replay(ob, 0, false, &n, NULL, &err),
                     CMN_DENIED);
    assert_non_null(strstr(err.msg, "not authenticated"));
    assert_int_equal(
        sf_outbox_replay(ob, SF_OUTBOX_ALL, false, &n, &unauth, &err), CMN_OK);
    assert_int_equal(n, 0);
    assert_int_equal(unauth, 5);
    assert_int_equal(key_int("LLEN", "outbox:dead"), 5);
    /* a dead letter planted in the list is not replayed either */
    redisReply *r = tst_redis_cmd(
        srv.port, "LPUSH %soutbox:dead %s", prefix,
        "{\"dialog_id\":\"70009\",\"fields\":{\"Subject\":\"x\"},"
        "\"reason\":\"x\",\"attempts\":1,\"ts\":1,\"entry_id\":\"1-1\","
        "\"mac\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}");
    freeReplyObject(r);
    assert_int_equal(sf_outbox_replay(ob, 0, false, &n, NULL, &err),
                     CMN_DENIED);
    /* an admin who checked the first one (70002, no MAC) forces it */
    assert_int_equal(sf_outbox_dead_list(ob, &dead, &err), CMN_OK);
    size_t last = json_array_size(dead) - 1;
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(dead, last), "dialog_id")),
                        "70002");
    json_decref(dead);
    assert_int_equal(sf_outbox_replay(ob, (long)last, true, &n, NULL, &err),
                     CMN_OK);
    assert_int_equal(n, 1);
    assert_true(wait_written(70002, 1));
    assert_int_equal(fake_task("70002").writes, 1);
    sf_outbox_free(ob);
}

/* [salesforce] without outbox_key_file is refused, naming the key; an
 * outbox without a key is not made. */
static void
test_sf_outbox_config_requires_key(void **state)
{
    struct cmn_err err = {{0}};
    struct sf_config c;
    struct sf_outbox_opts o;
    struct cmn_config *bad;
    char text[1024];
    (void)state;

    snprintf(text, sizeof(text),
             "[salesforce]\nclient_id = x\nintegration_user = y\n"
             "org_origins = https://acme.lightning.force.com\n"
             "jwt_key_file = %s/sf.key\n"
             "[redis]\nurl = redis://127.0.0.1:1/0\n",
             tmpdir);
    bad = cmn_config_parse("t.ini", text, strlen(text), &err);
    assert_non_null(bad);
    assert_int_equal(sf_config_load(bad, &c, &err), CMN_INVALID);
    assert_non_null(strstr(err.msg, "[salesforce] outbox_key_file: required"));
    sf_config_cleanup(&c);
    cmn_config_free(bad);
    /* and an outbox without a key does not start */
    memset(&o, 0, sizeof(o));
    assert_null(sf_outbox_new(pool, sf, &o, &err));
    assert_non_null(strstr(err.msg, "outbox_key_file"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_sf_outbox_unauthenticated_dead_never_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sf_outbox_config_requires_key,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_sf_outbox_put_written_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_sf_outbox_outage_retried_with_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_sf_outbox_attempts_counted_with_ttl_then_dead, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_sf_outbox_permanent_dead_then_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_sf_outbox_crashed_consumer_reclaimed, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_sf_outbox_backoff_entries_not_stolen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sf_outbox_burst_exactly_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_sf_outbox_dialog_order_kept, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sf_outbox_batched_exactly_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_sf_outbox_batch_bad_record_alone,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_sf_outbox_batch_refused_falls_back,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
