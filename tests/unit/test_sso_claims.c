/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_sso_claims.c - which user an IdS token names, over every shape:
 * top-level claims, Cisco's JSON-string `sub` (with user_id, upn, a
 * non-string user_id, nested quotes, 300 characters), a plain `sub`, and
 * the cases that must fail rather than name a user. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sso_claims.h"

/* Cisco's example token payload (Finesse developer guide, "REST API with
 * SSO - client integration"), completed with exp and iat. */
static const char cisco_claims[] =
    "{\"iss\":\"ids.autobot.cvp\","
    "\"sub\":\"{\\\"scope\\\":[\\\"ccc_onprem_apps\\\"],\\\"rt\\\":"
    "\\\"e14d5b6f\\\",\\\"user_id\\\":\\\"sjefferson\\\",\\\"realm\\\":"
    "\\\"finesse.com\\\",\\\"upn\\\":\\\"sjefferson@finesse.com\\\"}\","
    "\"exp\":4102444800,\"iat\":1700000000}";

static json_t *
parse(const char *text)
{
    json_error_t jerr;
    /* NULs allowed here so that the reader's own check is exercised */
    json_t *j = json_loads(text, JSON_ALLOW_NUL, &jerr);

    if (j == NULL) {
        fail_msg("test JSON: %s: %s", jerr.text, text);
    }
    return j;
}

/* The user for claims (JSON text) and user_claim; rc returned, name in
 * out, reason in why. */
static int
user_of(const char *text, const char *claim, char *out, size_t out_size,
        struct cmn_err *why)
{
    json_t *claims = parse(text);
    int rc;

    why->msg[0] = '\0';
    rc = sso_claims_user(claims, claim, out, out_size, why);
    json_decref(claims);
    return rc;
}

static void
test_sso_claims_cisco_sub_json_names_user_id(void **state)
{
    (void)state;
    char user[256];
    struct cmn_err why;

    assert_int_equal(user_of(cisco_claims, "user_id", user, sizeof(user), &why),
                     CMN_OK);
    assert_string_equal(user, "sjefferson");
    /* upn stays selectable ([ids] user_claim = upn) */
    assert_int_equal(user_of(cisco_claims, "upn", user, sizeof(user), &why),
                     CMN_OK);
    assert_string_equal(user, "sjefferson@finesse.com");
    /* the default (NULL or "") is user_id, Cisco's guidance */
    assert_int_equal(user_of(cisco_claims, NULL, user, sizeof(user), &why),
                     CMN_OK);
    assert_string_equal(user, "sjefferson");
    assert_int_equal(user_of(cisco_claims, "", user, sizeof(user), &why),
                     CMN_OK);
    assert_string_equal(user, "sjefferson");
    /* a claim that is in neither place falls back to user_id, then upn,
     * inside sub: never to the JSON string itself */
    assert_int_equal(user_of(cisco_claims, "email", user, sizeof(user), &why),
                     CMN_OK);
    assert_string_equal(user, "sjefferson");
    /* user_claim = sub: the JSON is not a name, its user_id is */
    assert_int_equal(user_of(cisco_claims, "sub", user, sizeof(user), &why),
                     CMN_OK);
    assert_string_equal(user, "sjefferson");
}

static void
test_sso_claims_sub_json_falls_back_to_upn(void **state)
{
    (void)state;
    char user[256];
    struct cmn_err why;

    assert_int_equal(
        user_of("{\"sub\":\"{\\\"upn\\\":\\\"bob@example.com\\\"}\"}",
                "user_id", user, sizeof(user), &why),
        CMN_OK);
    assert_string_equal(user, "bob@example.com");
    /* leading white space before the object is still JSON */
    assert_int_equal(
        user_of("{\"sub\":\" \\n{\\\"user_id\\\":\\\"carol\\\"}\"}", "user_id",
                user, sizeof(user), &why),
        CMN_OK);
    assert_string_equal(user, "carol");
}

static void
test_sso_claims_top_level_claims(void **state)
{
    (void)state;
    char user[256];
    struct cmn_err why;
    const char *top = "{\"sub\":\"s-1\",\"user_id\":\"agent1\","
                      "\"upn\":\"agent1@example.com\"}";

    assert_int_equal(user_of(top, "user_id", user, sizeof(user), &why), CMN_OK);
    assert_string_equal(user, "agent1");
    assert_int_equal(user_of(top, "upn", user, sizeof(user), &why), CMN_OK);
    assert_string_equal(user, "agent1@example.com");
    /* the top-level claim wins over the same name inside a JSON sub */
    assert_int_equal(
        user_of("{\"user_id\":\"outer\",\"sub\":\"{\\\"user_id\\\":"
                "\\\"inner\\\"}\"}",
                "user_id", user, sizeof(user), &why),
        CMN_OK);
    assert_string_equal(user, "outer");
    /* nothing named: a plain sub is the user */
    assert_int_equal(user_of("{\"sub\":\"plain-user\"}", "user_id", user,
                             sizeof(user), &why),
                     CMN_OK);
    assert_string_equal(user, "plain-user");
}

/* A sub that is JSON but names no usable user is a failure that says so,
 * never a user name (the bug: the whole JSON became the user). */
static void
test_sso_claims_sub_json_without_user_fails(void **state)
{
    (void)state;
    char user[256];
    struct cmn_err why;

    assert_int_equal(
        user_of("{\"sub\":\"{\\\"scope\\\":[\\\"x\\\"],\\\"realm\\\":"
                "\\\"r\\\"}\"}",
                "user_id", user, sizeof(user), &why),
        CMN_INVALID);
    assert_string_equal(user, "");
    assert_non_null(strstr(why.msg, "sub is a JSON object"));
    assert_non_null(strstr(why.msg, "user_id absent"));

    /* a non-string user_id is skipped, not coerced; upn is used... */
    assert_int_equal(user_of("{\"sub\":\"{\\\"user_id\\\":1001,\\\"upn\\\":"
                             "\\\"u@example.com\\\"}\"}",
                             "user_id", user, sizeof(user), &why),
                     CMN_OK);
    assert_string_equal(user, "u@example.com");
    /* ...and without upn the sign-in fails, naming the reason */
    static const char *const not_strings[] = {
        "1001", "true", "null", "[\\\"a\\\"]", "{\\\"n\\\":\\\"a\\\"}", "1.5",
    };
    for (size_t i = 0; i < sizeof(not_strings) / sizeof(not_strings[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), "{\"sub\":\"{\\\"user_id\\\":%s}\"}",
                 not_strings[i]);
        assert_int_equal(user_of(text, "user_id", user, sizeof(user), &why),
                         CMN_INVALID);
        assert_non_null(strstr(why.msg, "user_id not a string"));
    }
    /* a string that is no usable name: empty, space, JSON */
    assert_int_equal(user_of("{\"sub\":\"{\\\"user_id\\\":\\\"a b\\\"}\"}",
                             "user_id", user, sizeof(user), &why),
                     CMN_INVALID);
    assert_non_null(strstr(why.msg, "user_id not a usable name"));
    assert_int_equal(user_of("{\"sub\":\"{\\\"user_id\\\":\\\"\\\"}\"}",
                             "user_id", user, sizeof(user), &why),
                     CMN_INVALID);
    /* looks like JSON but is not an object / does not parse */
    assert_int_equal(
        user_of("{\"sub\":\"{not json\"}", "user_id", user, sizeof(user), &why),
        CMN_INVALID);
    assert_non_null(strstr(why.msg, "not a JSON object"));
    /* duplicate members inside sub: refused, not "last one wins" */
    assert_int_equal(
        user_of("{\"sub\":\"{\\\"user_id\\\":\\\"a\\\",\\\"user_id\\\":"
                "\\\"b\\\"}\"}",
                "user_id", user, sizeof(user), &why),
        CMN_INVALID);
    assert_string_equal(user, "");
}

/* Quotes nested inside sub's JSON: other members may hold escaped quotes
 * and backslashes; the name must not contain them. */
static void
test_sso_claims_nested_quotes(void **state)
{
    (void)state;
    char user[256];
    struct cmn_err why;

    /* sub = {"rt":"a\"b\\c","note":"say \"hi\"","user_id":"dana"} */
    assert_int_equal(
        user_of("{\"sub\":\"{\\\"rt\\\":\\\"a\\\\\\\"b\\\\\\\\c\\\","
                "\\\"note\\\":\\\"say \\\\\\\"hi\\\\\\\"\\\","
                "\\\"user_id\\\":\\\"dana\\\"}\"}",
                "user_id", user, sizeof(user), &why),
        CMN_OK);
    assert_string_equal(user, "dana");
    /* a user_id with a quote in it is no name: upn instead */
    assert_int_equal(
        user_of("{\"sub\":\"{\\\"user_id\\\":\\\"o\\\\\\\"brien\\\","
                "\\\"upn\\\":\\\"obrien@example.com\\\"}\"}",
                "user_id", user, sizeof(user), &why),
        CMN_OK);
    assert_string_equal(user, "obrien@example.com");
    /* a top-level name with a quote or backslash is skipped too */
    assert_int_equal(user_of("{\"upn\":\"a\\\"b\",\"sub\":\"plain\"}", "upn",
                             user, sizeof(user), &why),
                     CMN_OK);
    assert_string_equal(user, "plain");
    assert_false(sso_claims_usable_name("back\\slash"));
    assert_false(sso_claims_usable_name("quo\"te"));
    assert_true(sso_claims_usable_name("agent1@example.com"));
}

/* sub of 300 characters: as JSON it still names its user; as a plain
 * name it is too long (255 at most) and names nobody. */
static void
test_sso_claims_long_sub(void **state)
{
    (void)state;
    char user[256], text[1024], pad[216];
    struct cmn_err why;

    memset(pad, 'x', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    snprintf(text, sizeof(text),
             "{\"sub\":\"{\\\"rt\\\":\\\"%s\\\",\\\"realm\\\":\\\"finesse."
             "com\\\",\\\"user_id\\\":\\\"sjefferson\\\",\\\"upn\\\":"
             "\\\"sjefferson@finesse.com\\\"}\"}",
             pad);
    json_t *claims = parse(text);
    size_t sub_len = strlen(json_string_value(json_object_get(claims, "sub")));
    json_decref(claims);
    assert_int_equal(sub_len, 300);
    assert_int_equal(user_of(text, "user_id", user, sizeof(user), &why),
                     CMN_OK);
    assert_string_equal(user, "sjefferson");

    char plain[301];
    memset(plain, 'p', 300);
    plain[300] = '\0';
    snprintf(text, sizeof(text), "{\"sub\":\"%s\"}", plain);
    assert_int_equal(user_of(text, "user_id", user, sizeof(user), &why),
                     CMN_NOTFOUND);
    assert_string_equal(user, "");
    assert_true(why.msg[0] != '\0');
    /* 255 is the longest name; and it must fit the caller's buffer */
    plain[255] = '\0';
    snprintf(text, sizeof(text), "{\"sub\":\"%s\"}", plain);
    assert_int_equal(user_of(text, "user_id", user, sizeof(user), &why),
                     CMN_OK);
    assert_int_equal(strlen(user), 255);
    char small[16];
    assert_int_equal(user_of(text, "user_id", small, sizeof(small), &why),
                     CMN_NOTFOUND);
}

static void
test_sso_claims_nothing_names_a_user(void **state)
{
    (void)state;
    char user[256];
    struct cmn_err why;

    assert_int_equal(
        user_of("{\"iss\":\"ids\"}", "user_id", user, sizeof(user), &why),
        CMN_NOTFOUND);
    assert_non_null(strstr(why.msg, "names no user"));
    assert_int_equal(user_of("{\"sub\":42,\"user_id\":7}", "user_id", user,
                             sizeof(user), &why),
                     CMN_NOTFOUND);
    /* a user name with a control character or a NUL is refused */
    assert_int_equal(
        user_of("{\"sub\":\"a\\tb\"}", "user_id", user, sizeof(user), &why),
        CMN_NOTFOUND);
    assert_int_equal(user_of("{\"sub\":\"ab\\u0000cd\"}", "user_id", user,
                             sizeof(user), &why),
                     CMN_NOTFOUND);
    json_t *arr = parse("[1]");
    assert_int_equal(sso_claims_user(arr, "user_id", user, sizeof(user), &why),
                     CMN_NOTFOUND);
    json_decref(arr);
    assert_int_equal(sso_claims_user(NULL, "user_id", user, sizeof(user), &why),
                     CMN_NOTFOUND);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sso_claims_cisco_sub_json_names_user_id),
        cmocka_unit_test(test_sso_claims_sub_json_falls_back_to_upn),
        cmocka_unit_test(test_sso_claims_top_level_claims),
        cmocka_unit_test(test_sso_claims_sub_json_without_user_fails),
        cmocka_unit_test(test_sso_claims_nested_quotes),
        cmocka_unit_test(test_sso_claims_long_sub),
        cmocka_unit_test(test_sso_claims_nothing_names_a_user),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
