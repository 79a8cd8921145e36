/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_sso_store_slo.c - what SAML Single Logout keeps in Redis, against a
 * real redis-server: sessions indexed by SAML subject and ended by NameID
 * (and SessionIndex) with the record as taken, a member planted in another
 * subject's set ending nobody; logout markers (the latest instant kept,
 * per SessionIndex or for all) refusing sign-ins authenticated before them,
 * also at session creation (nothing left behind); one-time logout codes
 * and logout requests, sealed. */
#include <errno.h>
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

#include "cmn_log.h"
#include "cmn_redis.h"
#include "cmn_seal.h"
#include "sso_saml_config.h"
#include "sso_store.h"

/* tests/lib is not a library target yet: build the fixture into this
 * test. */
#include "../lib/redis_fixture.c"

static char tmpdir[64];
static struct tst_redis srv;
static struct sso_config cfg;
static struct sso_saml_config saml;
static struct sso_store st;
static char idp_a[] = "https://idp.test/idp";
static char idp_b[] = "https://other.test/idp";

static int
group_setup(void **state)
{
    static const unsigned char key[32] = "0123456789abcdef0123456789abcdef";
    struct cmn_redis_opts o;
    struct cmn_err err = {{0}};
    char url[64];
    int port;

    (void)state;
    cmn_log_init("test_sso_store_slo", CMN_LOG_WARN);
    if (tst_redis_tmpdir(tmpdir, sizeof(tmpdir)) != 0 ||
        (port = tst_redis_free_port()) < 0 ||
        tst_redis_start(&srv, tmpdir, port, NULL) != 0) {
        return -1;
    }
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    memset(&o, 0, sizeof(o));
    o.url = url;
    o.prefix = "fsc:";
    o.connect_timeout_ms = 200;
    o.command_timeout_ms = 1000;
    o.pool_size = 2;
    o.backoff_max_ms = 400;
    st.redis = cmn_redis_new(&o, &err);
    cfg.seal = cmn_seal_new(key, sizeof(key), &err);
    if (st.redis == NULL || cfg.seal == NULL) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    cfg.max_lifetime_s = 43200;
    cfg.state_ttl_s = 600;
    saml.idp.entity_id = idp_a;
    cfg.saml = &saml;
    st.cfg = &cfg;
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    cmn_redis_free(st.redis);
    cmn_seal_free(cfg.seal);
    tst_redis_stop(&srv);
    tst_redis_rmtree(tmpdir);
    return 0;
}

/* A SAML-only session of name_id / session_index, authenticated at authn;
 * returns the create result, sid filled on success. */
static int
saml_session(const char *name_id, const char *si, long long authn,
             char sid[SSO_ID_LEN])
{
    struct sso_session s = {0};
    struct cmn_err err = {{0}};

    snprintf(s.user, sizeof(s.user), "%s", name_id);
    snprintf(s.saml_name_id, sizeof(s.saml_name_id), "%s", name_id);
    snprintf(s.saml_session_index, sizeof(s.saml_session_index), "%s", si);
    snprintf(s.saml_name_id_format, sizeof(s.saml_name_id_format), "%s",
             "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent");
    s.saml_authn_instant = authn;
    s.saml_only = true;
    s.created_at = time(NULL);
    s.access_expires_at = s.created_at + 3600;
    return sso_store_session_create(&st, &s, sid, &err);
}

static bool
exists(const char *sid)
{
    struct sso_session s;
    struct cmn_err err = {{0}};
    int rc = sso_store_session_get(&st, sid, &s, &err);

    assert_true(rc == CMN_OK || rc == CMN_NOTFOUND);
    sso_session_cleanup(&s);
    return rc == CMN_OK;
}

static long long
count_keys(const char *pattern)
{
    redisReply *r =
        tst_redis_cmd(srv.port, "EVAL %s 0 %s",
                      "return #redis.call('KEYS', ARGV[1])", pattern);
    long long n;

    assert_non_null(r);
    n = r->integer;
    freeReplyObject(r);
    return n;
}

struct seen {
    char users[8][SSO_USER_MAX];
    char formats[8][SSO_SAML_ATTR_MAX];
    size_t n;
};

static void
record(const struct sso_session *s, void *arg)
{
    struct seen *sn = arg;

    if (sn->n < 8) {
        snprintf(sn->users[sn->n], sizeof(sn->users[0]), "%s", s->user);
        snprintf(sn->formats[sn->n], sizeof(sn->formats[0]), "%s",
                 s->saml_name_id_format);
        sn->n++;
    }
}

static void
test_sessions_ended_by_subject(void **state)
{
    char a1[SSO_ID_LEN], a2[SSO_ID_LEN], b1[SSO_ID_LEN];
    char s1[] = "s1", *only_s1[] = {s1};
    struct seen sn = {0};
    struct cmn_err err = {{0}};
    size_t n = 0;
    redisReply *r;

    (void)state;
    assert_int_equal(saml_session("alice@example.com", "s1", 100, a1), CMN_OK);
    assert_int_equal(saml_session("alice@example.com", "s2", 100, a2), CMN_OK);
    assert_int_equal(saml_session("bob@example.com", "s1", 100, b1), CMN_OK);
    /* one set per subject, of 64-hex members only, with a TTL */
    assert_int_equal(count_keys("fsc:sso:samlsub:*"), 2);
    r = tst_redis_cmd(srv.port, "EVAL %s 0",
                      "local n = 0 for _, k in ipairs(redis.call('KEYS', "
                      "'fsc:sso:samlsub:*')) do for _, m in "
                      "ipairs(redis.call('SMEMBERS', k)) do if "
                      "string.match(m, '^%x+$') and #m == 64 then n = n + 1 "
                      "end end if redis.call('TTL', k) <= 0 then return -1 "
                      "end end return n");
    assert_non_null(r);
    assert_int_equal(r->integer, 3);
    freeReplyObject(r);

    /* SessionIndex s1: alice's s1 only (bob's s1 is another subject) */
    assert_int_equal(sso_store_saml_sessions_delete(&st, "alice@example.com",
                                                    only_s1, 1, record, &sn, &n,
                                                    &err),
                     CMN_OK);
    assert_int_equal(n, 1);
    assert_int_equal(sn.n, 1);
    assert_string_equal(sn.users[0], "alice@example.com");
    assert_string_equal(sn.formats[0],
                        "urn:oasis:names:tc:SAML:2.0:nameid-format:"
                        "persistent");
    assert_false(exists(a1));
    assert_true(exists(a2));
    assert_true(exists(b1));
    /* no SessionIndex: every session of the subject */
    assert_int_equal(sso_store_saml_sessions_delete(&st, "alice@example.com",
                                                    NULL, 0, NULL, NULL, &n,
                                                    &err),
                     CMN_OK);
    assert_int_equal(n, 1);
    assert_false(exists(a2));
    assert_true(exists(b1));
    /* nothing left to end: not an error */
    assert_int_equal(sso_store_saml_sessions_delete(&st, "alice@example.com",
                                                    NULL, 0, NULL, NULL, &n,
                                                    &err),
                     CMN_OK);
    assert_int_equal(n, 0);
}

static void
test_planted_member_ends_nobody(void **state)
{
    char c1[SSO_ID_LEN], d1[SSO_ID_LEN], hex[65];
    struct cmn_err err = {{0}};
    size_t n = 9;
    redisReply *r;

    (void)state;
    assert_int_equal(saml_session("carol@example.com", "c", 100, c1), CMN_OK);
    assert_int_equal(saml_session("dave@example.com", "d", 100, d1), CMN_OK);
    /* dave's session key hash added to every other subject's set: the
     * records must agree with the index before anything ends */
    cmn_sha256_hex(d1, strlen(d1), hex);
    r = tst_redis_cmd(srv.port, "EVAL %s 0 %s",
                      "for _, k in ipairs(redis.call('KEYS', "
                      "'fsc:sso:samlsub:*')) do redis.call('SADD', k, "
                      "ARGV[1]) end return 1",
                      hex);
    freeReplyObject(r);
    assert_int_equal(sso_store_saml_sessions_delete(&st, "carol@example.com",
                                                    NULL, 0, NULL, NULL, &n,
                                                    &err),
                     CMN_OK);
    assert_int_equal(n, 1);
    assert_false(exists(c1));
    assert_true(exists(d1));
}

static void
test_markers(void **state)
{
    char e1[] = "e1", *si[] = {e1};
    long long far = time(NULL) + 600;
    struct cmn_err err = {{0}};

    (void)state;
    assert_int_equal(sso_store_saml_logged_out(&st, "erin", "e1", 0, &err),
                     CMN_OK);
    assert_int_equal(
        sso_store_saml_logout_mark(&st, "erin", NULL, 0, 1000, far, &err),
        CMN_OK);
    /* at or before the logout: covered; after: a new authentication */
    assert_int_equal(sso_store_saml_logged_out(&st, "erin", "e9", 999, &err),
                     CMN_DENIED);
    assert_int_equal(sso_store_saml_logged_out(&st, "erin", "", 1000, &err),
                     CMN_DENIED);
    assert_int_equal(sso_store_saml_logged_out(&st, "erin", "e9", 1001, &err),
                     CMN_OK);
    /* an older LogoutRequest arriving late keeps the latest instant */
    assert_int_equal(
        sso_store_saml_logout_mark(&st, "erin", NULL, 0, 900, far, &err),
        CMN_OK);
    assert_int_equal(sso_store_saml_logged_out(&st, "erin", "e9", 950, &err),
                     CMN_DENIED);
    /* per SessionIndex: that IdP session only */
    assert_int_equal(
        sso_store_saml_logout_mark(&st, "fred", si, 1, 500, far, &err), CMN_OK);
    assert_int_equal(sso_store_saml_logged_out(&st, "fred", "e1", 400, &err),
                     CMN_DENIED);
    assert_int_equal(sso_store_saml_logged_out(&st, "fred", "e2", 400, &err),
                     CMN_OK);
    assert_int_equal(sso_store_saml_logged_out(&st, "fred", "", 400, &err),
                     CMN_OK);
    /* another IdP's subject of the same NameID is someone else */
    saml.idp.entity_id = idp_b;
    assert_int_equal(sso_store_saml_logged_out(&st, "erin", "e9", 999, &err),
                     CMN_OK);
    saml.idp.entity_id = idp_a;
}

static void
test_session_refused_after_logout(void **state)
{
    char sid[SSO_ID_LEN];
    long long now = time(NULL), before = count_keys("fsc:sso:sess:*");
    struct cmn_err err = {{0}};

    (void)state;
    assert_int_equal(
        sso_store_saml_logout_mark(&st, "gina", NULL, 0, now, now + 600, &err),
        CMN_OK);
    /* its assertion was issued before the logout: refused, nothing kept */
    assert_int_equal(saml_session("gina", "g1", now - 10, sid), CMN_DENIED);
    assert_int_equal(count_keys("fsc:sso:sess:*"), before);
    /* a new authentication after it */
    assert_int_equal(saml_session("gina", "g2", now + 10, sid), CMN_OK);
    assert_true(exists(sid));
}

static void
test_logout_code_and_request_once(void **state)
{
    struct sso_saml_logout lo = {0}, got;
    struct sso_saml_logout_request rq = {0}, rgot;
    struct cmn_err err = {{0}};
    redisReply *r;

    (void)state;
    snprintf(lo.name_id, sizeof(lo.name_id), "hank@example.com");
    snprintf(lo.session_index, sizeof(lo.session_index), "h1");
    snprintf(lo.return_to, sizeof(lo.return_to), "https://c.test/softphone/");
    assert_int_equal(sso_store_saml_logout_code_put(&st, "code-1", &lo, &err),
                     CMN_OK);
    /* sealed: the NameID is nowhere in Redis in the clear */
    r = tst_redis_cmd(srv.port, "EVAL %s 0",
                      "for _, k in ipairs(redis.call('KEYS', "
                      "'fsc:sso:samlout:*')) do local v = redis.call('GET', "
                      "k) if string.find(v, 'hank', 1, true) then return 1 "
                      "end end return 0");
    assert_non_null(r);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    assert_int_equal(sso_store_saml_logout_code_take(&st, "code-1", &got, &err),
                     CMN_OK);
    assert_string_equal(got.name_id, "hank@example.com");
    assert_string_equal(got.session_index, "h1");
    assert_string_equal(got.return_to, "https://c.test/softphone/");
    assert_int_equal(sso_store_saml_logout_code_take(&st, "code-1", &got, &err),
                     CMN_NOTFOUND);

    snprintf(rq.relay_state, sizeof(rq.relay_state), "relay");
    snprintf(rq.return_to, sizeof(rq.return_to), "https://c.test/x");
    assert_int_equal(sso_store_saml_logout_request_put(&st, "_id1", &rq, &err),
                     CMN_OK);
    assert_int_equal(
        sso_store_saml_logout_request_take(&st, "_id1", &rgot, &err), CMN_OK);
    assert_string_equal(rgot.relay_state, "relay");
    assert_int_equal(
        sso_store_saml_logout_request_take(&st, "_id1", &rgot, &err),
        CMN_NOTFOUND);
    /* an AuthnRequest's ID is not a LogoutRequest's */
    assert_int_equal(
        sso_store_saml_logout_request_take(&st, "_nope", &rgot, &err),
        CMN_NOTFOUND);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sessions_ended_by_subject),
        cmocka_unit_test(test_planted_member_ends_nobody),
        cmocka_unit_test(test_markers),
        cmocka_unit_test(test_session_refused_after_logout),
        cmocka_unit_test(test_logout_code_and_request_once),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
