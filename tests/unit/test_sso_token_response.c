/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_sso_token_response.c - classification of IdS token endpoint answers:
 * success, final refusals, transient failures and garbage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sso_token_response.h"

static enum sso_token_outcome
parse(long status, const char *body, struct sso_token_response *r)
{
    sso_token_response_parse(status, body, body ? strlen(body) : 0, r);
    return r->outcome;
}

static void
test_sso_token_response_success_with_rotation(void **state)
{
    struct sso_token_response r;
    (void)state;

    assert_int_equal(
        sso_token_response_parse(
            200,
            "{\"access_token\":\"a.b.c\",\"token_type\":\"Bearer\","
            "\"expires_in\":3600,\"refresh_token\":\"r1\","
            "\"refresh_token_expires_in\":\"36000\",\"scope\":\"x\"}",
            strlen("{\"access_token\":\"a.b.c\",\"token_type\":\"Bearer\","
                   "\"expires_in\":3600,\"refresh_token\":\"r1\","
                   "\"refresh_token_expires_in\":\"36000\",\"scope\":\"x\"}"),
            &r),
        CMN_OK);
    assert_int_equal(r.outcome, SSO_TOKEN_OK);
    assert_string_equal(r.access_token, "a.b.c");
    assert_string_equal(r.refresh_token, "r1");
    assert_int_equal(r.expires_in, 3600);
    assert_int_equal(r.refresh_expires_in, 36000);
    sso_token_response_cleanup(&r);
}

static void
test_sso_token_response_missing_expiry_defaults(void **state)
{
    struct sso_token_response r;
    (void)state;

    assert_int_equal(
        parse(200, "{\"access_token\":\"t\",\"token_type\":\"bearer\"}", &r),
        SSO_TOKEN_OK);
    assert_int_equal(r.expires_in, 300);
    assert_null(r.refresh_token);
    sso_token_response_cleanup(&r);
}

static void
test_sso_token_response_invalid_grant_is_final(void **state)
{
    struct sso_token_response r;
    (void)state;

    assert_int_equal(
        parse(400,
              "{\"error\":\"invalid_grant\",\"error_description\":\"reused\\n"
              "token\"}",
              &r),
        SSO_TOKEN_INVALID_GRANT);
    assert_string_equal(r.error, "invalid_grant");
    /* control characters never reach a log line */
    assert_null(strchr(r.error_description, '\n'));
    assert_null(r.access_token);
    sso_token_response_cleanup(&r);
}

static void
test_sso_token_response_transient_failures(void **state)
{
    struct sso_token_response r;
    (void)state;

    assert_int_equal(parse(503, "{\"error\":\"temporarily_unavailable\"}", &r),
                     SSO_TOKEN_UNAVAILABLE);
    assert_int_equal(parse(502, "<html>bad gateway</html>", &r),
                     SSO_TOKEN_UNAVAILABLE);
    assert_int_equal(parse(429, NULL, &r), SSO_TOKEN_UNAVAILABLE);
    assert_int_equal(parse(400, "{\"error\":\"server_error\"}", &r),
                     SSO_TOKEN_UNAVAILABLE);
}

static void
test_sso_token_response_other_refusals(void **state)
{
    struct sso_token_response r;
    (void)state;

    assert_int_equal(parse(401, "{\"error\":\"invalid_client\"}", &r),
                     SSO_TOKEN_REJECTED);
    assert_string_equal(r.error, "invalid_client");
    assert_int_equal(parse(404, "not json", &r), SSO_TOKEN_MALFORMED);
}

static void
test_sso_token_response_malformed_success(void **state)
{
    struct sso_token_response r;
    (void)state;

    /* truncated JSON, wrong types, control characters, wrong token type,
     * duplicate keys, non-object, negative lifetime */
    const char *bad[] = {
        "{\"access_token\":\"abc\",\"token_type\":\"Bea",
        "{\"access_token\":42,\"token_type\":\"Bearer\"}",
        "{\"access_token\":\"a b\",\"token_type\":\"Bearer\"}",
        "{\"access_token\":\"a\\r\\nX-Evil: 1\",\"token_type\":\"Bearer\"}",
        "{\"access_token\":\"a\",\"token_type\":\"mac\"}",
        "{\"access_token\":\"a\",\"access_token\":\"b\",\"token_type\":\"B\"}",
        "[\"access_token\"]",
        "{\"access_token\":\"a\",\"token_type\":\"Bearer\",\"expires_in\":-5}",
        "{\"token_type\":\"Bearer\",\"expires_in\":5}",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(200, bad[i], &r), SSO_TOKEN_MALFORMED);
        assert_null(r.access_token);
        assert_null(r.refresh_token);
    }
}

static void
test_sso_token_response_oversized_token(void **state)
{
    struct sso_token_response r;
    size_t n = SSO_TOKEN_MAX + 100;
    char *body = malloc(n + 64);
    (void)state;

    assert_non_null(body);
    strcpy(body, "{\"token_type\":\"Bearer\",\"access_token\":\"");
    size_t off = strlen(body);
    memset(body + off, 'a', n);
    strcpy(body + off + n, "\"}");
    assert_int_equal(parse(200, body, &r), SSO_TOKEN_MALFORMED);
    free(body);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sso_token_response_success_with_rotation),
        cmocka_unit_test(test_sso_token_response_missing_expiry_defaults),
        cmocka_unit_test(test_sso_token_response_invalid_grant_is_final),
        cmocka_unit_test(test_sso_token_response_transient_failures),
        cmocka_unit_test(test_sso_token_response_other_refusals),
        cmocka_unit_test(test_sso_token_response_malformed_success),
        cmocka_unit_test(test_sso_token_response_oversized_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
