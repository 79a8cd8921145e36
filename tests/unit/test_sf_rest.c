/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_sf_rest.c - the Salesforce side without Redis: [salesforce] config,
 * SOSL/SOQL escaping, the pure reply parsers, the RS256 assertion, and
 * the REST client against an in-process fake org (token minted once and
 * cached, 401 -> re-mint and retry, error classes, SOSL, SOQL + cache). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cmn_config.h"
#include "cmn_httpc.h"
#include "cmn_log.h"
#include "salesforce/sf_auth.h"
#include "salesforce/sf_config.h"
#include "salesforce/sf_rest.h"

#include "test_sf_fake.h"

static char tmpdir[64];
static char ini_path[600];
static struct cmn_config *ini;
static struct sf_config cfg;

static int
group_setup(void **state)
{
    struct cmn_err err = {{0}};

    (void)state;
    cmn_log_init("test_sf_rest", CMN_LOG_ERR);
    if (cmn_httpc_global_init() != CMN_OK) {
        return -1;
    }
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/fsc-sf-XXXXXX");
    if (mkdtemp(tmpdir) == NULL ||
        fake_start(tmpdir, NULL, NULL, ini_path, sizeof(ini_path)) != 0) {
        return -1;
    }
    ini = cmn_config_load(ini_path, &err);
    if (ini == NULL || sf_config_load(ini, &cfg, &err) != CMN_OK) {
        fprintf(stderr, "config: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int
group_teardown(void **state)
{
    char cmd[128];

    (void)state;
    sf_config_cleanup(&cfg);
    cmn_config_free(ini);
    fake_stop();
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0) {
        return -1;
    }
    return 0;
}

/* ---- config ---- */

static int
load_text(const char *text, struct sf_config *c, struct cmn_err *err,
          struct cmn_config **out)
{
    *out = cmn_config_parse("sf-test.ini", text, strlen(text), err);
    if (*out == NULL) {
        return CMN_INVALID;
    }
    return sf_config_load(*out, c, err);
}

static void
test_sf_config_defaults(void **state)
{
    (void)state;
    assert_true(cfg.sf_enabled);
    assert_string_equal(cfg.login_url, fake.base); /* '/' trimmed */
    assert_string_equal(cfg.task_external_id_field, "Finesse_Call_Id__c");
    assert_string_equal(cfg.agent_user_field, "Finesse_Agent_Id__c");
    assert_string_equal(cfg.api_version, "60.0");
    assert_int_equal(cfg.outbox_max_attempts, 20);
    assert_int_equal(cfg.outbox_writers, 8);
    assert_int_equal(cfg.outbox_upsert_batch, 50);
    assert_int_equal(cfg.outbox_backoff_max_ms, 60000);
    assert_int_equal(cfg.pop, SF_POP_ANI);
    assert_int_equal(cfg.pop_on, SF_POP_ON_RING);
    assert_int_equal(cfg.norg_origins, 2);
    assert_string_equal(cfg.org_origins[1], "https://acme.my.salesforce.com");
    assert_non_null(cfg.jwt_key);
    assert_string_equal(cfg.redis.prefix, "fsc:sf:");
}

static void
test_sf_config_absent_is_not_configured(void **state)
{
    struct sf_config c;
    struct cmn_config *i;
    struct cmn_err err = {{0}};

    (void)state;
    assert_int_equal(load_text("[server]\nlisten = :1\n", &c, &err, &i),
                     CMN_OK);
    assert_false(c.sf_enabled);
    sf_config_cleanup(&c);
    cmn_config_free(i);
}

/* Each bad line must fail naming its key. */
static void
test_sf_config_errors_name_the_key(void **state)
{
    static const struct {
        const char *line;
        const char *key;
    } cases[] = {
        {"login_url = ftp://x", "login_url"},
        {"login_url = http://evil.example", "login_url"},
        {"pop = phonebook", "pop"},
        {"pop = callvariable:", "pop"},
        {"pop_on = hangup", "pop_on"},
        {"task_external_id_field = Id/../x", "task_external_id_field"},
        {"agent_user_field = a' OR '1", "agent_user_field"},
        {"api_version = 60", "api_version"},
        {"outbox_max_attempts = 0", "outbox_max_attempts"},
        {"jwt_key = inline-secret", "jwt_key"},
    };
    char base[1024];
    FILE *f = fopen(ini_path, "r");
    size_t n;

    (void)state;
    assert_non_null(f);
    n = fread(base, 1, sizeof(base) - 1, f);
    fclose(f);
    base[n] = '\0';
    for (size_t k = 0; k < CMN_ARRAY_LEN(cases); k++) {
        char text[2048];
        char *split = strstr(base, "[redis]");
        struct sf_config c;
        struct cmn_config *i = NULL;
        struct cmn_err err = {{0}};

        assert_non_null(split);
        snprintf(text, sizeof(text), "%.*s%s\n%s", (int)(split - base), base,
                 cases[k].line, split);
        if (strncmp(cases[k].line, "login_url", 9) == 0 ||
            strncmp(cases[k].line, "jwt_key", 7) == 0) {
            /* replace, not add: drop the original line */
            char *orig = strstr(text, strncmp(cases[k].line, "login", 5) == 0
                                          ? "login_url = http://127"
                                          : "jwt_key_file");
            assert_non_null(orig);
            orig[0] = '#';
        }
        assert_int_not_equal(load_text(text, &c, &err, &i), CMN_OK);
        if (strstr(err.msg, cases[k].key) == NULL) {
            fail_msg("case %zu (%s): message '%s' lacks the key", k,
                     cases[k].line, err.msg);
        }
        sf_config_cleanup(&c);
        cmn_config_free(i);
    }
}

static void
test_sf_config_pop_callvariable(void **state)
{
    char text[2048];
    struct sf_config c;
    struct cmn_config *i = NULL;
    struct cmn_err err = {{0}};
    FILE *f = fopen(ini_path, "r");
    size_t n;
    char *split;

    (void)state;
    n = fread(text, 1, sizeof(text) / 2, f);
    fclose(f);
    text[n] = '\0';
    split = strstr(text, "[redis]");
    {
        const char *add = "pop = callvariable:callVariable3\npop_on = answer\n";
        size_t al = strlen(add);

        memmove(split + al, split, strlen(split) + 1);
        memcpy(split, add, al);
    }
    assert_int_equal(load_text(text, &c, &err, &i), CMN_OK);
    assert_int_equal(c.pop, SF_POP_CALLVARIABLE);
    assert_string_equal(c.pop_callvariable, "callVariable3");
    assert_int_equal(c.pop_on, SF_POP_ON_ANSWER);
    sf_config_cleanup(&c);
    cmn_config_free(i);
}

/* ---- escaping ---- */

static void
test_sf_sosl_phone_query(void **state)
{
    char q[256];

    (void)state;
    assert_int_equal(sf_sosl_phone_query("+1 (415) 555-1212", q, sizeof(q)),
                     CMN_OK);
    assert_string_equal(q, "FIND {\\+14155551212} IN PHONE FIELDS RETURNING "
                           "Contact(Id,Name),Lead(Id,Name),Account(Id,Name)");
    /* reserved characters and injection attempts are dropped */
    assert_int_equal(
        sf_sosl_phone_query("4155} RETURNING User(Id) {1212*", q, sizeof(q)),
        CMN_OK);
    assert_non_null(strstr(q, "FIND {41551212} IN"));
    /* a '+' in the middle is not kept */
    assert_int_equal(sf_sosl_phone_query("12+34", q, sizeof(q)), CMN_OK);
    assert_non_null(strstr(q, "{1234}"));
    assert_int_equal(sf_sosl_phone_query("anonymous", q, sizeof(q)),
                     CMN_INVALID);
    assert_int_equal(sf_sosl_phone_query("7", q, sizeof(q)), CMN_INVALID);
    assert_int_equal(
        sf_sosl_phone_query("123456789012345678901234567890123", q, sizeof(q)),
        CMN_INVALID);
    assert_int_equal(sf_sosl_phone_query("1234", q, 20), CMN_INVALID);
}

static void
test_sf_escape_sosl_soql(void **state)
{
    char out[64];

    (void)state;
    assert_int_equal(sf_sosl_escape("a{b}c*d\\e'f-g+h", out, sizeof(out)),
                     CMN_OK);
    assert_string_equal(out, "a\\{b\\}c\\*d\\\\e\\'f\\-g\\+h");
    assert_int_equal(sf_sosl_escape("x\ny", out, sizeof(out)), CMN_INVALID);
    assert_int_equal(sf_soql_escape("O'Brien\\ \"x\"\n", out, sizeof(out)),
                     CMN_OK);
    assert_string_equal(out, "O\\'Brien\\\\ \\\"x\\\"\\n");
    assert_int_equal(sf_soql_escape("a\001b", out, sizeof(out)), CMN_INVALID);
    assert_int_equal(sf_soql_escape("''''", out, 8), CMN_INVALID);
    assert_int_equal(sf_soql_escape("'''", out, 7), CMN_OK);
}

/* ---- pure parsers ---- */

static void
test_sf_token_response_parse(void **state)
{
    struct sf_token_response r;
    struct cmn_err err = {{0}};
    const char *ok = "{\"access_token\":\"00D!AR.x\",\"instance_url\":"
                     "\"https://acme.my.salesforce.com/\",\"id\":\"x\"}";

    (void)state;
    assert_int_equal(sf_token_response_parse(200, ok, strlen(ok), &r, &err),
                     CMN_OK);
    assert_string_equal((const char *)r.access_token->data, "00D!AR.x");
    assert_string_equal(r.instance_url, "https://acme.my.salesforce.com");
    sf_token_response_cleanup(&r);

    const char *bad_inst = "{\"access_token\":\"t\",\"instance_url\":"
                           "\"http://evil.example\"}";
    assert_int_equal(
        sf_token_response_parse(200, bad_inst, strlen(bad_inst), &r, &err),
        CMN_INVALID);
    const char *ws_tok = "{\"access_token\":\"a b\",\"instance_url\":"
                         "\"https://x\"}";
    assert_int_equal(
        sf_token_response_parse(200, ws_tok, strlen(ws_tok), &r, &err),
        CMN_INVALID);
    const char *grant = "{\"error\":\"invalid_grant\",\"error_description\":"
                        "\"user hasn't approved this consumer\"}";
    assert_int_equal(
        sf_token_response_parse(400, grant, strlen(grant), &r, &err),
        CMN_DENIED);
    assert_non_null(strstr(err.msg, "invalid_grant"));
    assert_int_equal(sf_token_response_parse(503, "", 0, &r, &err), CMN_AGAIN);
    assert_int_equal(sf_token_response_parse(200, "[", 1, &r, &err),
                     CMN_INVALID);
    assert_int_equal(sf_token_response_parse(200, NULL, 5, &r, &err),
                     CMN_INVALID);
    sf_token_response_cleanup(&r);
}

static void
test_sf_upsert_response_classes(void **state)
{
    static const struct {
        long status;
        const char *body;
        enum sf_outcome want;
        bool created;
    } cases[] = {
        {201,
         "{\"id\":\"00T5g00000AbCdEAAZ\",\"success\":true,\"errors\":[],"
         "\"created\":true}",
         SF_OK, true},
        {200, "{\"id\":\"00T5g00000AbCdEAAZ\",\"created\":false}", SF_OK,
         false},
        {204, "", SF_OK, false},
        {201, "not json", SF_OK, true},
        {300, "[\"/a\",\"/b\"]", SF_PERMANENT, false},
        {400, "[{\"message\":\"bad\",\"errorCode\":\"INVALID_FIELD\"}]",
         SF_PERMANENT, false},
        {400, "[{\"message\":\"busy\",\"errorCode\":\"UNABLE_TO_LOCK_ROW\"}]",
         SF_TRANSIENT, false},
        {403,
         "[{\"message\":\"limit\",\"errorCode\":"
         "\"REQUEST_LIMIT_EXCEEDED\"}]",
         SF_TRANSIENT, false},
        {403, "[{\"message\":\"no\",\"errorCode\":\"INSUFFICIENT_ACCESS\"}]",
         SF_PERMANENT, false},
        {404,
         "[{\"message\":\"The requested resource does not exist\","
         "\"errorCode\":\"NOT_FOUND\"}]",
         SF_PERMANENT, false},
        {401, "[{\"errorCode\":\"INVALID_SESSION_ID\"}]", SF_TRANSIENT, false},
        {429, "", SF_TRANSIENT, false},
        {500, "<html>", SF_TRANSIENT, false},
        {503, "", SF_TRANSIENT, false},
        {0, NULL, SF_TRANSIENT, false},
    };

    (void)state;
    for (size_t i = 0; i < CMN_ARRAY_LEN(cases); i++) {
        struct sf_result r;
        int rc = sf_upsert_response_parse(
            cases[i].status, cases[i].body,
            cases[i].body != NULL ? strlen(cases[i].body) : 0, &r);

        if (r.outcome != cases[i].want || r.created != cases[i].created) {
            fail_msg("case %zu (HTTP %ld): outcome %d created %d", i,
                     cases[i].status, r.outcome, r.created);
        }
        assert_int_equal(rc, cases[i].want == SF_OK          ? CMN_OK
                             : cases[i].want == SF_TRANSIENT ? CMN_AGAIN
                                                             : CMN_INVALID);
    }
    {
        struct sf_result r;
        const char *b = "[{\"message\":\"Call Type: bad value\","
                        "\"errorCode\":\"INVALID_OR_NULL_FOR_RESTRICTED_"
                        "PICKLIST\"}]";
        (void)sf_upsert_response_parse(400, b, strlen(b), &r);
        assert_non_null(strstr(r.reason, "INVALID_OR_NULL"));
        assert_non_null(strstr(r.reason, "Call Type: bad value"));
        b = "{\"id\":\"00T5g00000AbCdEAAZ\",\"created\":true}";
        (void)sf_upsert_response_parse(201, b, strlen(b), &r);
        assert_string_equal(r.id, "00T5g00000AbCdEAAZ");
    }
}

/* sObject Collections replies: one outcome per record from a 200, one
 * outcome for all otherwise. */
static void
test_sf_upsert_collection_parse(void **state)
{
    struct sf_batch_item it[3];
    const char *ok3 =
        "[{\"id\":\"00T5g00000AbCdEAAZ\",\"success\":true,\"errors\":[],"
        "\"created\":true},"
        "{\"id\":null,\"success\":false,\"errors\":[{\"statusCode\":"
        "\"UNABLE_TO_LOCK_ROW\",\"message\":\"locked\",\"fields\":[]}]},"
        "{\"id\":null,\"success\":false,\"errors\":[{\"statusCode\":"
        "\"INVALID_CROSS_REFERENCE_KEY\",\"message\":\"WhoId\"}]}]";
    const char *b;

    (void)state;
    memset(it, 0, sizeof(it));
    assert_int_equal(sf_upsert_collection_parse(200, ok3, strlen(ok3), it, 3),
                     CMN_OK);
    assert_int_equal(it[0].r.outcome, SF_OK);
    assert_true(it[0].r.created);
    assert_string_equal(it[0].r.id, "00T5g00000AbCdEAAZ");
    assert_int_equal(it[1].r.outcome, SF_TRANSIENT);
    assert_int_equal(it[2].r.outcome, SF_PERMANENT);
    assert_non_null(strstr(it[2].r.reason, "INVALID_CROSS_REFERENCE_KEY"));
    /* one result short: nobody knows which were written -> all resent */
    assert_int_equal(sf_upsert_collection_parse(200, ok3, strlen(ok3), it, 2),
                     CMN_AGAIN);
    assert_int_equal(it[0].r.outcome, SF_TRANSIENT);
    assert_int_equal(it[1].r.outcome, SF_TRANSIENT);
    b = "{\"success\":true}";
    assert_int_equal(sf_upsert_collection_parse(200, b, strlen(b), it, 1),
                     CMN_AGAIN);
    b = "[{\"message\":\"down\",\"errorCode\":\"SERVER_UNAVAILABLE\"}]";
    assert_int_equal(sf_upsert_collection_parse(503, b, strlen(b), it, 3),
                     CMN_AGAIN);
    assert_int_equal(it[2].r.outcome, SF_TRANSIENT);
    b = "[{\"message\":\"The requested resource does not exist\","
        "\"errorCode\":\"NOT_FOUND\"}]";
    assert_int_equal(sf_upsert_collection_parse(404, b, strlen(b), it, 3),
                     CMN_INVALID);
    assert_int_equal(it[1].r.outcome, SF_PERMANENT);
    /* a 201 is a single-record answer, not a collections one */
    b = "{\"id\":\"00T5g00000AbCdEAAZ\",\"success\":true,\"created\":true}";
    assert_int_equal(sf_upsert_collection_parse(201, b, strlen(b), it, 1),
                     CMN_AGAIN);
    assert_int_equal(sf_upsert_collection_parse(0, NULL, 0, it, 2), CMN_AGAIN);
}

static void
test_sf_sosl_response_parse(void **state)
{
    json_t *recs = NULL;
    struct cmn_err err = {{0}};
    const char *body =
        "{\"searchRecords\":[{\"attributes\":{\"type\":\"Contact\",\"url\":"
        "\"/x\"},\"Id\":\"0035g00000XyZaBAAV\",\"Name\":\"Ada\"},"
        "{\"attributes\":{\"type\":\"Lead\"},\"Id\":\"bad id\"},"
        "{\"attributes\":{\"type\":\"Account\"},\"Id\":\"001D000000IqhSL\"}]}";
    const char *legacy = "[{\"attributes\":{\"type\":\"Lead\"},"
                         "\"Id\":\"00Q5g00000AbCdEAAZ\",\"Name\":\"L\"}]";

    (void)state;
    assert_int_equal(sf_sosl_response_parse(body, strlen(body), &recs, &err),
                     CMN_OK);
    assert_int_equal(json_array_size(recs), 2);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(recs, 0), "type")),
        "Contact");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(recs, 1), "name")),
        "");
    json_decref(recs);
    assert_int_equal(
        sf_sosl_response_parse(legacy, strlen(legacy), &recs, &err), CMN_OK);
    assert_int_equal(json_array_size(recs), 1);
    json_decref(recs);
    assert_int_equal(sf_sosl_response_parse("{}", 2, &recs, &err), CMN_INVALID);
    assert_null(recs);
}

static void
test_sf_soql_user_parse(void **state)
{
    char id[SF_ID_LEN + 1];
    struct cmn_err err = {{0}};
    const char *one = "{\"totalSize\":1,\"done\":true,\"records\":[{"
                      "\"Id\":\"0055g00000AgEnTAAB\"}]}";
    const char *none = "{\"totalSize\":0,\"done\":true,\"records\":[]}";
    const char *two = "{\"records\":[{\"Id\":\"0055g00000AgEnTAAB\"},"
                      "{\"Id\":\"0055g00000AgEnUAAB\"}]}";
    const char *bad = "{\"records\":[{\"Id\":\"005'--\"}]}";

    (void)state;
    assert_int_equal(sf_soql_user_response_parse(one, strlen(one), id, &err),
                     CMN_OK);
    assert_string_equal(id, "0055g00000AgEnTAAB");
    assert_int_equal(sf_soql_user_response_parse(none, strlen(none), id, &err),
                     CMN_NOTFOUND);
    assert_int_equal(sf_soql_user_response_parse(two, strlen(two), id, &err),
                     CMN_INVALID);
    assert_int_equal(sf_soql_user_response_parse(bad, strlen(bad), id, &err),
                     CMN_INVALID);
    assert_int_equal(sf_soql_user_response_parse("[]", 2, id, &err),
                     CMN_INVALID);
}

static void
test_sf_jwt_assertion_verifies(void **state)
{
    struct cmn_err err = {{0}};
    EVP_PKEY *k = sf_auth_load_key(cfg.jwt_key, &err);
    struct cmn_secret *a = NULL;

    (void)state;
    assert_non_null(k);
    assert_int_equal(sf_jwt_assertion(k, fake.client_id, fake.user, fake.aud,
                                      cmn_wall_sec() + 180, &a, &err),
                     CMN_OK);
    assert_true(fake_verify_assertion((const char *)a->data));
    /* header is exactly {"alg":"RS256"} */
    assert_int_equal(
        strncmp((const char *)a->data, "eyJhbGciOiJSUzI1NiJ9.", 21), 0);
    /* a flipped signature byte fails */
    ((char *)a->data)[a->len - 3] ^= 1;
    assert_false(fake_verify_assertion((const char *)a->data));
    cmn_secret_free(a);
    /* an expired assertion is refused by the fake */
    assert_int_equal(sf_jwt_assertion(k, fake.client_id, fake.user, fake.aud,
                                      cmn_wall_sec() - 1, &a, &err),
                     CMN_OK);
    assert_false(fake_verify_assertion((const char *)a->data));
    cmn_secret_free(a);
    EVP_PKEY_free(k);
}

/* ---- against the fake org ---- */

static json_t *
task_fields(const char *dialog, int duration)
{
    return json_pack("{s:s, s:s, s:i, s:s, s:s, s:s}", "Subject", "Call",
                     "CallType", "Inbound", "CallDurationInSeconds", duration,
                     "CallObject", dialog, "Status", "Completed",
                     "Finesse_Call_Id__c", dialog);
}

static void
test_sf_token_minted_once_for_many_upserts(void **state)
{
    struct cmn_err err = {{0}};
    struct sf *sf;

    (void)state;
    fake_reset();
    sf = sf_new(&cfg, &err);
    assert_non_null(sf);
    for (int i = 0; i < 20; i++) {
        char id[32];
        json_t *f;
        struct sf_result r;

        snprintf(id, sizeof(id), "%d", 1000 + i % 5);
        f = task_fields(id, i);
        assert_int_equal(sf_task_upsert(sf, id, f, &r), CMN_OK);
        assert_int_equal(r.outcome, SF_OK);
        assert_int_equal(r.created, i < 5);
        assert_int_equal(r.status, i < 5 ? 201 : 200);
        json_decref(f);
    }
    assert_int_equal(fake.mints, 1);
    assert_int_equal(fake_upserts(), 20); /* no 401 detour */
    assert_int_equal(sf_auth_mints(sf_auth_of(sf)), 1);
    assert_int_equal(fake.bad_assertions, 0);
    assert_int_equal(fake_task("1003").creates, 1);
    assert_int_equal(fake_task("1003").writes, 4);
    /* the external id travels in the path, not the body */
    assert_null(strstr(fake_task("1003").body, "Finesse_Call_Id__c"));
    sf_free(sf);
}

static void
test_sf_401_remints_and_retries(void **state)
{
    struct cmn_err err = {{0}};
    struct sf *sf = sf_new(&cfg, &err);
    json_t *f = task_fields("2001", 5);
    struct sf_result r;

    (void)state;
    fake_reset();
    assert_int_equal(sf_task_upsert(sf, "2001", f, &r), CMN_OK);
    pthread_mutex_lock(&fake.mu);
    fake.fail_401 = 1;
    pthread_mutex_unlock(&fake.mu);
    assert_int_equal(sf_task_upsert(sf, "2001", f, &r), CMN_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(fake.mints, 2);
    assert_int_equal(fake_task("2001").writes, 2);
    assert_int_equal(fake_task("2001").creates, 1);
    /* the token endpoint down: transient, no write */
    pthread_mutex_lock(&fake.mu);
    fake.fail_401 = 1;
    fake.fail_token_503 = 1;
    pthread_mutex_unlock(&fake.mu);
    assert_int_equal(sf_task_upsert(sf, "2001", f, &r), CMN_AGAIN);
    assert_int_equal(r.outcome, SF_TRANSIENT);
    assert_non_null(strstr(r.reason, "token endpoint"));
    json_decref(f);
    sf_free(sf);
}

static void
test_sf_upsert_error_classes_on_the_wire(void **state)
{
    struct cmn_err err = {{0}};
    struct sf *sf = sf_new(&cfg, &err);
    json_t *f = task_fields("3001", 5);
    struct sf_result r;

    (void)state;
    fake_reset();
    pthread_mutex_lock(&fake.mu);
    fake.fail_503 = 1;
    fake.fail_403_limit = 1;
    snprintf(fake.fail_400_ext, sizeof(fake.fail_400_ext), "3002");
    snprintf(fake.fail_300_ext, sizeof(fake.fail_300_ext), "3003");
    pthread_mutex_unlock(&fake.mu);
    assert_int_equal(sf_task_upsert(sf, "3001", f, &r), CMN_AGAIN);
    assert_int_equal(r.status, 503);
    assert_int_equal(sf_task_upsert(sf, "3001", f, &r), CMN_AGAIN);
    assert_int_equal(r.status, 403);
    assert_non_null(strstr(r.reason, "REQUEST_LIMIT_EXCEEDED"));
    assert_int_equal(sf_task_upsert(sf, "3002", f, &r), CMN_INVALID);
    assert_int_equal(r.status, 400);
    assert_int_equal(sf_task_upsert(sf, "3003", f, &r), CMN_INVALID);
    assert_non_null(strstr(r.reason, "matches 2 records"));
    assert_int_equal(sf_task_upsert(sf, "3001", f, &r), CMN_OK);
    assert_int_equal(sf_task_upsert(sf, "", f, &r), CMN_INVALID);
    assert_int_equal(sf_task_upsert(sf, "a\nb", f, &r), CMN_INVALID);
    json_decref(f);
    sf_free(sf);
}

static void
test_sf_upsert_unreachable_is_transient(void **state)
{
    char text[4096];
    struct cmn_config *i = NULL;
    struct sf_config c;
    struct cmn_err err = {{0}};
    struct sf *sf;
    struct sf_result r;
    json_t *f = task_fields("4001", 1);
    FILE *fp = fopen(ini_path, "r");
    size_t n = fread(text, 1, sizeof(text) - 1, fp);
    char *u;

    (void)state;
    fclose(fp);
    text[n] = '\0';
    u = strstr(text, "login_url = http://127.0.0.1:");
    assert_non_null(u);
    memcpy(u + 29, "1    ", 5); /* port 1: refused */
    memmove(u + 30, u + 34, strlen(u + 34) + 1);
    assert_int_equal(load_text(text, &c, &err, &i), CMN_OK);
    sf = sf_new(&c, &err);
    assert_int_equal(sf_task_upsert(sf, "4001", f, &r), CMN_AGAIN);
    assert_int_equal(r.outcome, SF_TRANSIENT);
    assert_int_equal(r.status, 0);
    json_decref(f);
    sf_free(sf);
    sf_config_cleanup(&c);
    cmn_config_free(i);
}

static void
test_sf_search_phone_on_fake(void **state)
{
    struct cmn_err err = {{0}};
    struct sf *sf = sf_new(&cfg, &err);
    json_t *recs = NULL;

    (void)state;
    fake_reset();
    assert_int_equal(sf_search_phone(sf, "+1 415-555-1212", &recs, &err),
                     CMN_OK);
    assert_int_equal(json_array_size(recs), 2);
    assert_string_equal(fake.last_q,
                        "FIND {\\+14155551212} IN PHONE FIELDS RETURNING "
                        "Contact(Id,Name),Lead(Id,Name),Account(Id,Name)");
    json_decref(recs);
    assert_int_equal(sf_search_phone(sf, "unknown", &recs, &err), CMN_INVALID);
    assert_int_equal(fake.searches, 1);
    sf_free(sf);
}

static void
test_sf_user_for_agent_cached(void **state)
{
    struct cmn_err err = {{0}};
    struct sf *sf = sf_new(&cfg, &err);
    char id[SF_ID_LEN + 1];

    (void)state;
    fake_reset();
    assert_int_equal(sf_user_for_agent(sf, "1001", id, &err), CMN_OK);
    assert_string_equal(id, "0055g00000AgEnTAAB");
    assert_string_equal(fake.last_q, "SELECT Id FROM User WHERE "
                                     "Finesse_Agent_Id__c = '1001' LIMIT 2");
    assert_int_equal(sf_user_for_agent(sf, "1001", id, &err), CMN_OK);
    assert_int_equal(fake.queries, 1); /* cached */
    assert_int_equal(sf_user_for_agent(sf, "9999", id, &err), CMN_NOTFOUND);
    assert_int_equal(sf_user_for_agent(sf, "9999", id, &err), CMN_NOTFOUND);
    assert_int_equal(fake.queries, 2); /* misses are cached too */
    assert_int_equal(sf_user_for_agent(sf, "dup", id, &err), CMN_INVALID);
    /* quotes are escaped, never closing the literal */
    assert_int_equal(sf_user_for_agent(sf, "x' OR Id != '", id, &err),
                     CMN_NOTFOUND);
    assert_string_equal(fake.last_q,
                        "SELECT Id FROM User WHERE Finesse_Agent_Id__c = "
                        "'x\\' OR Id != \\'' LIMIT 2");
    assert_int_equal(sf_user_for_agent(sf, "", id, &err), CMN_INVALID);
    sf_free(sf);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sf_config_defaults),
        cmocka_unit_test(test_sf_config_absent_is_not_configured),
        cmocka_unit_test(test_sf_config_errors_name_the_key),
        cmocka_unit_test(test_sf_config_pop_callvariable),
        cmocka_unit_test(test_sf_sosl_phone_query),
        cmocka_unit_test(test_sf_escape_sosl_soql),
        cmocka_unit_test(test_sf_token_response_parse),
        cmocka_unit_test(test_sf_upsert_response_classes),
        cmocka_unit_test(test_sf_upsert_collection_parse),
        cmocka_unit_test(test_sf_sosl_response_parse),
        cmocka_unit_test(test_sf_soql_user_parse),
        cmocka_unit_test(test_sf_jwt_assertion_verifies),
        cmocka_unit_test(test_sf_token_minted_once_for_many_upserts),
        cmocka_unit_test(test_sf_401_remints_and_retries),
        cmocka_unit_test(test_sf_upsert_error_classes_on_the_wire),
        cmocka_unit_test(test_sf_upsert_unreachable_is_transient),
        cmocka_unit_test(test_sf_search_phone_on_fake),
        cmocka_unit_test(test_sf_user_for_agent_cached),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
