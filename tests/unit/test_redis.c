/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_redis.c - cmn_redis against real redis-server processes: commands,
 * scripts, pool threads, timeouts, backoff, config, Sentinel failover. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cmn_config.h"
#include "cmn_log.h"
#include "cmn_redis.h"

/* tests/lib is not a library target yet: build the fixture into this
 * test. */
#include "../lib/redis_fixture.c"

static char tmpdir[64];
static struct tst_redis main_srv;
static char main_url[64];
/* The Sentinel scenario's processes, stopped by group_teardown even when
 * an assertion ends the test early. */
static struct tst_redis sent_m;
static struct tst_redis sent_rp;
static struct tst_redis sent_s[3];

static void
msleep(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static struct cmn_redis *
new_pool(const char *url, int command_timeout_ms)
{
    struct cmn_redis_opts o;
    struct cmn_err err = {{0}};
    struct cmn_redis *r;

    memset(&o, 0, sizeof(o));
    o.url = url;
    o.prefix = "fsc:test:";
    o.connect_timeout_ms = 200;
    o.command_timeout_ms = command_timeout_ms;
    o.pool_size = 4;
    o.backoff_max_ms = 400;
    r = cmn_redis_new(&o, &err);
    if (r == NULL) {
        fail_msg("cmn_redis_new: %s", err.msg);
    }
    return r;
}

static bool
reply_is(const redisReply *rep, int type, const char *str)
{
    return rep != NULL && rep->type == type &&
           (str == NULL || strcmp(rep->str, str) == 0);
}

static int
group_setup(void **state)
{
    int port;

    (void)state;
    cmn_log_init("test_redis", CMN_LOG_WARN);
    if (tst_redis_tmpdir(tmpdir, sizeof(tmpdir)) != 0) {
        return -1;
    }
    port = tst_redis_free_port();
    if (port < 0 || tst_redis_start(&main_srv, tmpdir, port, NULL) != 0) {
        return -1;
    }
    snprintf(main_url, sizeof(main_url), "redis://127.0.0.1:%d", port);
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    tst_redis_stop(&main_srv);
    tst_redis_kill(&sent_m);
    tst_redis_stop(&sent_rp);
    for (int i = 0; i < 3; i++) {
        tst_redis_stop(&sent_s[i]);
    }
    tst_redis_rmtree(tmpdir);
    return 0;
}

static void
test_redis_roundtrip_binary(void **state)
{
    struct cmn_redis *r = new_pool(main_url, 1000);
    struct cmn_err err = {{0}};
    static const char val[] = {'a', '\0', 'b', '\r', '\n', (char)0xff, 'z'};
    const char *set[] = {"SET", "fsc:test:bin", val};
    size_t setlen[] = {3, 12, sizeof(val)};
    const char *get[] = {"GET", "fsc:test:bin"};
    size_t getlen[] = {3, 12};
    redisReply *rep;

    (void)state;
    assert_string_equal(cmn_redis_prefix(r), "fsc:test:");
    rep = cmn_redis_cmd(r, 0, 3, set, setlen, &err);
    assert_true(reply_is(rep, REDIS_REPLY_STATUS, "OK"));
    freeReplyObject(rep);
    rep = cmn_redis_cmd(r, CMN_REDIS_RETRY, 2, get, getlen, &err);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    assert_int_equal(rep->len, sizeof(val));
    assert_memory_equal(rep->str, val, sizeof(val));
    freeReplyObject(rep);
    /* A Redis error is a reply, not a failure. */
    rep = cmn_redis_cmdf(r, 0, &err, "NOSUCHCOMMAND");
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_ERROR);
    freeReplyObject(rep);
    assert_true(cmn_redis_ping(r, &err));
    assert_int_equal(cmn_redis_errors(r), 0);
    cmn_redis_free(r);
}

static void
test_redis_cmdf(void **state)
{
    struct cmn_redis *r = new_pool(main_url, 1000);
    struct cmn_err err = {{0}};
    redisReply *rep;

    (void)state;
    rep = cmn_redis_cmdf(r, 0, &err, "SET %s %d EX %d", "fsc:test:n", 41, 60);
    assert_true(reply_is(rep, REDIS_REPLY_STATUS, "OK"));
    freeReplyObject(rep);
    rep = cmn_redis_cmdf(r, CMN_REDIS_RETRY, &err, "INCR %s", "fsc:test:n");
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    assert_int_equal(rep->integer, 42);
    freeReplyObject(rep);
    rep = cmn_redis_cmdf(r, 0, &err, "SET %b %b", "fsc:test:b", (size_t)10,
                         "x\0y", (size_t)3);
    assert_true(reply_is(rep, REDIS_REPLY_STATUS, "OK"));
    freeReplyObject(rep);
    rep = cmn_redis_cmdf(r, 0, &err, "STRLEN fsc:test:b");
    assert_non_null(rep);
    assert_int_equal(rep->integer, 3);
    freeReplyObject(rep);
    cmn_redis_free(r);
}

static void
test_redis_eval_noscript_fallback(void **state)
{
    struct cmn_redis *r = new_pool(main_url, 1000);
    struct cmn_err err = {{0}};
    struct cmn_redis_script cas = {
        .source = "local v=redis.call('GET',KEYS[1]) "
                  "if v==ARGV[1] then redis.call('SET',KEYS[1],ARGV[2]) "
                  "return 1 end return 0",
    };
    const char *args[] = {"fsc:test:cas", "old", "new"};
    const char *args2[] = {"fsc:test:cas", "new", "newer"};
    redisReply *rep;

    (void)state;
    rep = cmn_redis_cmdf(r, 0, &err, "SET fsc:test:cas old");
    freeReplyObject(rep);
    rep = cmn_redis_cmdf(r, 0, &err, "SCRIPT FLUSH");
    assert_true(reply_is(rep, REDIS_REPLY_STATUS, "OK"));
    freeReplyObject(rep);

    /* Unknown SHA: EVALSHA gets NOSCRIPT, EVAL runs it. */
    rep = cmn_redis_eval(r, &cas, 0, 1, 2, args, NULL, &err);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    assert_int_equal(rep->integer, 1);
    freeReplyObject(rep);

    /* The locally computed SHA is the one Redis uses. */
    rep = cmn_redis_cmdf(r, 0, &err, "SCRIPT LOAD %s", cas.source);
    assert_true(reply_is(rep, REDIS_REPLY_STRING, cas.sha));
    freeReplyObject(rep);

    rep = cmn_redis_eval(r, &cas, 0, 1, 2, args2, NULL, &err);
    assert_non_null(rep);
    assert_int_equal(rep->integer, 1);
    freeReplyObject(rep);

    /* As after a failover: the cache is empty again. */
    rep = cmn_redis_cmdf(r, 0, &err, "SCRIPT FLUSH");
    freeReplyObject(rep);
    rep = cmn_redis_eval(r, &cas, CMN_REDIS_RETRY, 1, 2, args2, NULL, &err);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    assert_int_equal(rep->integer, 0); /* value is "newer" now */
    freeReplyObject(rep);
    rep = cmn_redis_cmdf(r, 0, &err, "GET fsc:test:cas");
    assert_true(reply_is(rep, REDIS_REPLY_STRING, "newer"));
    freeReplyObject(rep);
    cmn_redis_free(r);
}

#define NTHREADS 8
#define NITER    250

struct worker {
    struct cmn_redis *r;
    int failures;
    int id;
};

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    struct cmn_err err;
    char key[64];

    snprintf(key, sizeof(key), "fsc:test:w%d", w->id);
    for (int i = 0; i < NITER; i++) {
        redisReply *rep;

        rep = cmn_redis_cmdf(w->r, CMN_REDIS_RETRY, &err,
                             "INCR fsc:test:counter");
        if (rep == NULL || rep->type != REDIS_REPLY_INTEGER) {
            w->failures++;
        }
        if (rep != NULL) {
            freeReplyObject(rep);
        }
        rep = cmn_redis_cmdf(w->r, 0, &err, "SET %s %d", key, i);
        if (!reply_is(rep, REDIS_REPLY_STATUS, "OK")) {
            w->failures++;
        }
        if (rep != NULL) {
            freeReplyObject(rep);
        }
    }
    return NULL;
}

static void
test_redis_pool_threads(void **state)
{
    struct cmn_redis *r = new_pool(main_url, 1000);
    struct cmn_err err = {{0}};
    struct worker w[NTHREADS];
    pthread_t th[NTHREADS];
    redisReply *rep;

    (void)state;
    rep = cmn_redis_cmdf(r, 0, &err, "DEL fsc:test:counter");
    freeReplyObject(rep);
    for (int i = 0; i < NTHREADS; i++) {
        w[i].r = r;
        w[i].failures = 0;
        w[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    rep = cmn_redis_cmdf(r, 0, &err, "GET fsc:test:counter");
    assert_true(reply_is(rep, REDIS_REPLY_STRING, NULL));
    assert_int_equal(atoi(rep->str), NTHREADS * NITER);
    freeReplyObject(rep);
    assert_int_equal(cmn_redis_errors(r), 0);
    cmn_redis_free(r);
}

static void
test_redis_command_timeout(void **state)
{
    struct cmn_redis *r = new_pool(main_url, 200);
    struct cmn_err err = {{0}};
    redisReply *rep;
    long long t0;
    long long dt;

    (void)state;
    assert_true(cmn_redis_ping(r, &err));
    /* BLPOP holds only this connection, so the server stays usable. */
    t0 = cmn_now_ms();
    rep = cmn_redis_cmdf(r, 0, &err, "BLPOP fsc:test:never 2");
    dt = cmn_now_ms() - t0;
    assert_null(rep);
    assert_non_null(strstr(err.msg, "timed out"));
    assert_in_range(dt, 150, 400);
    assert_int_equal(cmn_redis_errors(r), 1);
    /* The dead context was dropped: the next command works. */
    rep = cmn_redis_cmdf(r, 0, &err, "SET fsc:test:after_timeout 1");
    assert_true(reply_is(rep, REDIS_REPLY_STATUS, "OK"));
    freeReplyObject(rep);
    assert_true(cmn_redis_ping(r, &err));
    cmn_redis_free(r);
}

static void
test_redis_outage_backoff_and_recovery(void **state)
{
    struct cmn_redis *r = new_pool(main_url, 500);
    struct cmn_err err = {{0}};
    redisReply *rep;
    long long t0;
    bool back = false;

    (void)state;
    assert_true(cmn_redis_ping(r, &err));
    tst_redis_stop(&main_srv);

    /* The idle context is dead; its replacement cannot connect. */
    rep = cmn_redis_cmdf(r, CMN_REDIS_RETRY, &err, "PING");
    assert_null(rep);
    assert_non_null(strstr(err.msg, "refused"));

    /* Inside the backoff window nothing touches the network. */
    t0 = cmn_now_ms();
    for (int i = 0; i < 20; i++) {
        rep = cmn_redis_cmdf(r, CMN_REDIS_RETRY, &err, "PING");
        assert_null(rep);
        assert_string_equal(err.msg, "redis unavailable (backing off)");
    }
    assert_true(cmn_now_ms() - t0 < 20);
    assert_true(cmn_redis_errors(r) >= 21);

    /* Window over: one real attempt, then a longer window. */
    msleep(60);
    rep = cmn_redis_cmdf(r, 0, &err, "PING");
    assert_null(rep);
    assert_non_null(strstr(err.msg, "refused"));
    msleep(60);
    rep = cmn_redis_cmdf(r, 0, &err, "PING");
    assert_null(rep);
    assert_string_equal(err.msg, "redis unavailable (backing off)");

    assert_int_equal(tst_redis_restart(&main_srv), 0);
    t0 = cmn_now_ms();
    while (cmn_now_ms() - t0 < 3000) {
        if (cmn_redis_ping(r, &err)) {
            back = true;
            break;
        }
        msleep(20);
    }
    assert_true(back);
    /* backoff_max_ms is 400 here. */
    assert_true(cmn_now_ms() - t0 < 600);
    assert_true(cmn_redis_reconnects(r) >= 1);
    cmn_redis_free(r);
}

static void
test_redis_auth_and_db(void **state)
{
    char url[128];
    struct cmn_redis *r;
    struct cmn_redis *bad;
    struct cmn_redis *db0;
    struct cmn_err err = {{0}};
    redisReply *rep;
    char *logbuf = NULL;
    size_t loglen = 0;
    FILE *logfp;

    (void)state;
    rep = tst_redis_cmd(main_srv.port, "CONFIG SET requirepass %s", "p@ss/w");
    assert_true(reply_is(rep, REDIS_REPLY_STATUS, "OK"));
    freeReplyObject(rep);
    logfp = open_memstream(&logbuf, &loglen);
    assert_non_null(logfp);
    cmn_log_set_stream(logfp);

    snprintf(url, sizeof(url), "redis://:p@ss/w@127.0.0.1:%d/3", main_srv.port);
    r = new_pool(url, 1000);
    rep = cmn_redis_cmdf(r, 0, &err, "SET fsc:test:indb3 yes");
    assert_true(reply_is(rep, REDIS_REPLY_STATUS, "OK"));
    freeReplyObject(rep);

    snprintf(url, sizeof(url), "redis://:p@ss/w@127.0.0.1:%d/0", main_srv.port);
    db0 = new_pool(url, 1000);
    rep = cmn_redis_cmdf(db0, 0, &err, "EXISTS fsc:test:indb3");
    assert_non_null(rep);
    assert_int_equal(rep->integer, 0);
    freeReplyObject(rep);

    snprintf(url, sizeof(url), "redis://:wrongpw@127.0.0.1:%d", main_srv.port);
    bad = new_pool(url, 1000);
    rep = cmn_redis_cmdf(bad, 0, &err, "PING");
    assert_null(rep);
    assert_non_null(strstr(err.msg, "AUTH refused"));
    assert_null(strstr(err.msg, "wrongpw"));

    rep = cmn_redis_cmdf(r, 0, &err, "CONFIG SET requirepass %s", "");
    assert_true(reply_is(rep, REDIS_REPLY_STATUS, "OK"));
    freeReplyObject(rep);
    cmn_redis_free(r);
    cmn_redis_free(db0);
    cmn_redis_free(bad);

    cmn_log_set_stream(NULL);
    fclose(logfp);
    assert_true(loglen > 0); /* redis_down was logged */
    assert_null(strstr(logbuf, "wrongpw"));
    assert_null(strstr(logbuf, "p@ss/w"));
    free(logbuf);
}

/* ---- configuration ---------------------------------------------------- */

static struct cmn_config *
parse_cfg(const char *text)
{
    struct cmn_err err = {{0}};
    struct cmn_config *cfg;

    cfg = cmn_config_parse("test.ini", text, strlen(text), &err);
    if (cfg == NULL) {
        fail_msg("cmn_config_parse: %s", err.msg);
    }
    return cfg;
}

static void
expect_bad(const char *text, const char *needle)
{
    struct cmn_config *cfg = parse_cfg(text);
    struct cmn_redis_opts o;
    struct cmn_err err = {{0}};
    void *storage = (void *)1;
    int rc;

    rc = cmn_redis_opts_from_config(cfg, "redis", &o, &storage, &err);
    if (rc == CMN_OK || strstr(err.msg, needle) == NULL) {
        fail_msg("config accepted or wrong message for:\n%s\n-> rc=%d "
                 "msg=%s (wanted %s)",
                 text, rc, err.msg, needle);
    }
    assert_null(storage);
    cmn_config_free(cfg);
}

static void
test_redis_opts_from_config(void **state)
{
    struct cmn_config *cfg;
    struct cmn_redis_opts o;
    struct cmn_err err = {{0}};
    void *storage = NULL;
    char pwpath[128];
    char text[512];
    FILE *fp;

    (void)state;
    cfg = parse_cfg("[redis]\nurl = redis://127.0.0.1:6379/2\n");
    assert_int_equal(
        cmn_redis_opts_from_config(cfg, "redis", &o, &storage, &err), CMN_OK);
    assert_string_equal(o.url, "redis://127.0.0.1:6379/2");
    assert_string_equal(o.prefix, "fsc:");
    assert_null(o.sentinels);
    assert_null(o.password);
    assert_int_equal(o.connect_timeout_ms, 500);
    assert_int_equal(o.command_timeout_ms, 1000);
    assert_int_equal(o.pool_size, 16);
    assert_int_equal(o.wait_replicas, 0);
    free(storage);
    cmn_config_free(cfg);

    snprintf(pwpath, sizeof(pwpath), "%s/redis.pw", tmpdir);
    fp = fopen(pwpath, "w");
    assert_non_null(fp);
    fputs("s3cret\n", fp);
    fclose(fp);
    chmod(pwpath, 0600);
    snprintf(text, sizeof(text),
             "[redis]\nsentinels = 127.0.0.1:26379, [::1]:26380\n"
             "master = sso\nprefix = x:\npassword_file = %s\n"
             "pool_size = 4\nwait_replicas = 1\nwait_timeout_ms = 50\n"
             "command_timeout_ms = 300\n",
             pwpath);
    cfg = parse_cfg(text);
    assert_int_equal(
        cmn_redis_opts_from_config(cfg, "redis", &o, &storage, &err), CMN_OK);
    assert_null(o.url);
    assert_non_null(o.sentinels);
    assert_string_equal(o.sentinels[0], "127.0.0.1:26379");
    assert_string_equal(o.sentinels[1], "[::1]:26380");
    assert_null(o.sentinels[2]);
    assert_string_equal(o.master, "sso");
    assert_string_equal(o.prefix, "x:");
    assert_string_equal(o.password, "s3cret");
    assert_int_equal(o.pool_size, 4);
    assert_int_equal(o.wait_replicas, 1);
    assert_int_equal(o.wait_timeout_ms, 50);
    /* The options are usable as they are. */
    {
        struct cmn_redis *r = cmn_redis_new(&o, &err);

        assert_non_null(r);
        cmn_redis_free(r);
    }
    free(storage);
    cmn_config_free(cfg);

    expect_bad("[redis]\nurl = http://127.0.0.1:6379\n", "[redis] url");
    expect_bad("[redis]\nurl = redis://\n", "[redis] url: missing host");
    expect_bad("[redis]\nurl = redis://h:0\n", "port out of range");
    expect_bad("[redis]\nurl = redis://h:65536\n", "port out of range");
    expect_bad("[redis]\nurl = redis://h:12ab\n", "invalid port");
    expect_bad("[redis]\nurl = redis://h:\n", "invalid port");
    expect_bad("[redis]\nurl = redis://user:pw@h:1\n", "user names");
    expect_bad("[redis]\nurl = redis://:@h:1\n", "empty password");
    expect_bad("[redis]\nurl = redis://h:1/x\n", "db must be a number");
    expect_bad("[redis]\nurl = redis://h o:1\n", "invalid character");
    expect_bad("[redis]\nurl = redis://[::1:1\n", "missing ']'");
    expect_bad("[redis]\nurl = rediss://h:1\n", "TLS");
    expect_bad("[redis]\nurl = unix://relative\n", "unix:///");
    expect_bad("[redis]\nprefix = x\n", "[redis] url: required");
    expect_bad("[redis]\nurl = redis://h:1\nsentinels = h:2\nmaster = m\n",
               "[redis] sentinels: set either");
    expect_bad("[redis]\nsentinels = h:2\n", "[redis] master: required");
    expect_bad("[redis]\nurl = redis://h:1\nmaster = m\n",
               "[redis] master: only used");
    expect_bad("[redis]\nsentinels = h\nmaster = m\n",
               "[redis] sentinels: missing port");
    expect_bad("[redis]\nurl = redis://h:1\npool_size = 0\n", "pool_size");
    expect_bad("[redis]\nurl = redis://h:1\nwait_replicas = 1\n"
               "wait_timeout_ms = 1000\n",
               "[redis] wait_timeout_ms: must be below");
    expect_bad("[redis]\nurl = redis://h:1\npassword = inline\n",
               "password_file");
}

/* ---- Sentinel --------------------------------------------------------- */

/* Field of "SENTINEL master <name>" (a flat name/value array). */
static long
sentinel_field(int port, const char *name, const char *field)
{
    redisReply *rep = tst_redis_cmd(port, "SENTINEL master %s", name);
    long v = -1;

    if (rep != NULL && rep->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < rep->elements; i += 2) {
            if (strcmp(rep->element[i]->str, field) == 0) {
                v = atol(rep->element[i + 1]->str);
            }
        }
    }
    if (rep != NULL) {
        freeReplyObject(rep);
    }
    return v;
}

static bool
replica_linked(int port)
{
    redisReply *rep = tst_redis_cmd(port, "INFO replication");
    bool ok;

    ok = rep != NULL && rep->type == REDIS_REPLY_STRING &&
         strstr(rep->str, "master_link_status:up") != NULL;
    if (rep != NULL) {
        freeReplyObject(rep);
    }
    return ok;
}

static long
pool_port(struct cmn_redis *r)
{
    struct cmn_err err;
    redisReply *rep =
        cmn_redis_cmdf(r, CMN_REDIS_RETRY, &err, "CONFIG GET port");
    long port = -1;

    if (rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
        port = atol(rep->element[1]->str);
    }
    if (rep != NULL) {
        freeReplyObject(rep);
    }
    return port;
}

static void
test_redis_sentinel_failover(void **state)
{
    struct tst_redis *m = &sent_m;
    struct tst_redis *rp = &sent_rp;
    struct tst_redis *s = sent_s;
    char sent_addr[3][32];
    const char *sentinels[4];
    char extra[64];
    struct cmn_redis_opts o;
    struct cmn_redis *r = NULL;
    struct cmn_err err = {{0}};
    redisReply *rep;
    long long t0;
    long long dt = -1;
    bool ready = false;

    (void)state;
    assert_int_equal(tst_redis_start(m, tmpdir, tst_redis_free_port(), NULL),
                     0);
    snprintf(extra, sizeof(extra), "replicaof 127.0.0.1 %d", m->port);
    assert_int_equal(tst_redis_start(rp, tmpdir, tst_redis_free_port(), extra),
                     0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tst_redis_start_sentinel(&s[i], tmpdir,
                                                  tst_redis_free_port(), "t",
                                                  m->port),
                         0);
        snprintf(sent_addr[i], sizeof(sent_addr[i]), "127.0.0.1:%d", s[i].port);
        sentinels[i] = sent_addr[i];
    }
    sentinels[3] = NULL;

    /* A failover needs the replica linked and the sentinels aware of each
     * other (hello messages every 2 s). */
    t0 = cmn_now_ms();
    while (cmn_now_ms() - t0 < 15000 && !ready) {
        ready = replica_linked(rp->port);
        for (int i = 0; i < 3 && ready; i++) {
            ready =
                sentinel_field(s[i].port, "t", "num-other-sentinels") == 2 &&
                sentinel_field(s[i].port, "t", "num-slaves") == 1;
        }
        if (!ready) {
            msleep(100);
        }
    }
    assert_true(ready);

    memset(&o, 0, sizeof(o));
    o.sentinels = sentinels;
    o.master = "t";
    o.prefix = "fsc:test:";
    o.connect_timeout_ms = 200;
    o.command_timeout_ms = 1000;
    o.pool_size = 4;
    o.wait_replicas = 1;
    o.wait_timeout_ms = 500;
    r = cmn_redis_new(&o, &err);
    assert_non_null(r);
    assert_int_equal(pool_port(r), m->port);

    rep = cmn_redis_cmdf(r, CMN_REDIS_DURABLE, &err,
                         "SET fsc:test:durable before");
    assert_true(reply_is(rep, REDIS_REPLY_STATUS, "OK"));
    freeReplyObject(rep);
    for (int i = 0; i < 10; i++) {
        rep = cmn_redis_cmdf(r, CMN_REDIS_RETRY, &err, "SET fsc:test:k%d %d", i,
                             i);
        assert_true(reply_is(rep, REDIS_REPLY_STATUS, "OK"));
        freeReplyObject(rep);
    }

    tst_redis_kill(m);
    t0 = cmn_now_ms();
    while (cmn_now_ms() - t0 < 10000) {
        rep = cmn_redis_cmdf(r, CMN_REDIS_RETRY, &err,
                             "SET fsc:test:after %lld", cmn_now_ms());
        if (reply_is(rep, REDIS_REPLY_STATUS, "OK")) {
            freeReplyObject(rep);
            dt = cmn_now_ms() - t0;
            break;
        }
        if (rep != NULL) {
            freeReplyObject(rep);
        }
        msleep(50);
    }
    print_message("writes resumed %lld ms after the kill (errors=%lu "
                  "reconnects=%lu)\n",
                  dt, cmn_redis_errors(r), cmn_redis_reconnects(r));
    assert_true(dt >= 0);
    assert_int_equal(pool_port(r), rp->port);
    rep = cmn_redis_cmdf(r, CMN_REDIS_RETRY, &err, "GET fsc:test:durable");
    assert_true(reply_is(rep, REDIS_REPLY_STRING, "before"));
    freeReplyObject(rep);
    assert_true(cmn_redis_errors(r) > 0);
    assert_true(cmn_redis_reconnects(r) >= 1);

    cmn_redis_free(r);
    for (int i = 0; i < 3; i++) {
        tst_redis_stop(&s[i]);
    }
    tst_redis_stop(rp);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_opts_from_config),
        cmocka_unit_test(test_redis_roundtrip_binary),
        cmocka_unit_test(test_redis_cmdf),
        cmocka_unit_test(test_redis_eval_noscript_fallback),
        cmocka_unit_test(test_redis_pool_threads),
        cmocka_unit_test(test_redis_command_timeout),
        cmocka_unit_test(test_redis_auth_and_db),
        cmocka_unit_test(test_redis_outage_backoff_and_recovery),
        cmocka_unit_test(test_redis_sentinel_failover),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
