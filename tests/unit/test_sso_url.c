/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_sso_url.c - the return_to allow-list: the check that stands between
 * a handoff code and an open redirect. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sso_url.h"

static char origin_a[] = "https://connector.example.com";
static char origin_b[] = "http://127.0.0.1:8444";
static char path_softphone[] = "/softphone/";
static struct sso_allowed_url allowed[] = {
    {origin_a, path_softphone},
    {origin_b, path_softphone},
};

static bool
ok(const char *url)
{
    return sso_url_allowed(allowed, 2, url, NULL);
}

static void
test_sso_url_allows_listed_prefixes(void **state)
{
    char *origin = NULL;
    (void)state;

    assert_true(ok("https://connector.example.com/softphone/"));
    assert_true(ok("https://CONNECTOR.example.com:443/softphone/x?a=b#f"));
    assert_true(ok("http://127.0.0.1:8444/softphone/?sfdcIFrameOrigin=x"));
    assert_true(sso_url_allowed(
        allowed, 2, "https://connector.example.com/softphone/a", &origin));
    assert_string_equal(origin, "https://connector.example.com");
    free(origin);
}

static void
test_sso_url_refuses_lookalikes(void **state)
{
    (void)state;

    const char *bad[] = {
        "https://connector.example.com.evil.com/softphone/",
        "https://evil.com/softphone/",
        "https://connector.example.com@evil.com/softphone/",
        "https://evil.com\\@connector.example.com/softphone/",
        "http://connector.example.com/softphone/",       /* scheme */
        "https://connector.example.com:8443/softphone/", /* port */
        "https://connector.example.com/softphone",       /* not under prefix */
        "https://connector.example.com/admin/",
        "https://connector.example.com/softphone/../admin/",
        "https://connector.example.com/softphone/%2e%2e/admin/",
        "https://connector.example.com/softphone/\r\nLocation: x",
        "//connector.example.com/softphone/",
        "javascript:alert(1)//connector.example.com/softphone/",
        "https:///softphone/",
        "https://connector.example.com:0/softphone/",
        "https://connector.example.com:99999/softphone/",
        "",
        NULL,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(ok(bad[i]));
    }
}

static void
test_sso_url_add_param(void **state)
{
    char *u;
    (void)state;

    u = sso_url_add_param("https://h/p", "handoff", "a b");
    assert_string_equal(u, "https://h/p?handoff=a%20b");
    free(u);
    u = sso_url_add_param("https://h/p?x=1#frag", "handoff", "c");
    assert_string_equal(u, "https://h/p?x=1&handoff=c#frag");
    free(u);
    u = sso_url_add_param("https://h/p?", "handoff", "c");
    assert_string_equal(u, "https://h/p?handoff=c");
    free(u);
}

static void
test_sso_url_has_param(void **state)
{
    (void)state;

    assert_true(sso_url_has_param("https://h/p?handoff=x", "handoff"));
    assert_true(sso_url_has_param("https://h/p?a=1&handoff", "handoff"));
    assert_true(sso_url_has_param("https://h/p?a=1&handoff=#f", "handoff"));
    assert_false(sso_url_has_param("https://h/p?xhandoff=1", "handoff"));
    assert_false(sso_url_has_param("https://h/p?handoffs=1", "handoff"));
    assert_false(sso_url_has_param("https://h/p#handoff=1", "handoff"));
    assert_false(sso_url_has_param("https://h/handoff=1", "handoff"));
    /* names are decoded as browsers' URLSearchParams decodes them: a
     * percent-encoded handoff is still handoff */
    assert_true(sso_url_has_param("https://h/p?hand%6fff=x", "handoff"));
    assert_true(sso_url_has_param("https://h/p?hand%6Fff=x", "handoff"));
    assert_true(
        sso_url_has_param("https://h/p?%68%61%6e%64%6f%66%66=x", "handoff"));
    assert_true(sso_url_has_param("https://h/p?a=%zz&hand%6fff", "handoff"));
    /* other parsers split on ';' and ignore case: refused too */
    assert_true(sso_url_has_param("https://h/p?x=1;handoff=2", "handoff"));
    assert_true(sso_url_has_param("https://h/p?HandOff=2", "handoff"));
    assert_false(sso_url_has_param("https://h/p?hand+off=2", "handoff"));
    assert_false(sso_url_has_param("https://h/p?hand%2bff=2", "handoff"));
    assert_false(sso_url_has_param("https://h/p?hand%6=2", "handoff"));
    assert_false(sso_url_has_param("https://h/p?x=hand%6fff", "handoff"));
    assert_false(sso_url_has_param("https://h/p?a=1#hand%6fff=1", "handoff"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sso_url_allows_listed_prefixes),
        cmocka_unit_test(test_sso_url_refuses_lookalikes),
        cmocka_unit_test(test_sso_url_add_param),
        cmocka_unit_test(test_sso_url_has_param),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
