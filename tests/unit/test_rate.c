/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_rate.c - per-key token buckets (fsc-sso's sign-in starts per client
 * address): the burst, then one per 60/per_minute s; keys independent; 0 =
 * off; a full table refuses new keys instead of evicting a limited one,
 * and reuses the slots of idle keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "cmn_rate.h"

static int
takes(struct cmn_rate *r, const char *key, long long now, int n)
{
    long long wait;
    int ok = 0;

    for (int i = 0; i < n; i++) {
        ok += cmn_rate_take(r, key, now, &wait) == CMN_OK;
    }
    return ok;
}

static void
test_rate_burst_then_refill(void **state)
{
    struct cmn_rate *r = cmn_rate_new(30, 30, 1024);
    long long wait = 0;
    (void)state;

    assert_int_equal(takes(r, "192.0.2.1", 1000, 100), 30);
    assert_int_equal(cmn_rate_take(r, "192.0.2.1", 1000, &wait), CMN_AGAIN);
    assert_true(wait >= 1999 && wait <= 2001); /* one per 2 s */
    assert_int_equal(takes(r, "192.0.2.1", 3000, 5), 1);
    /* a minute later: 30 more, not more than the burst */
    assert_int_equal(takes(r, "192.0.2.1", 1000000, 100), 30);
    /* another address is not affected */
    assert_int_equal(takes(r, "192.0.2.2", 1000, 100), 30);
    cmn_rate_set(r, 0, 0); /* off */
    assert_int_equal(takes(r, "192.0.2.1", 1000000, 100), 100);
    cmn_rate_free(r);
}

static void
test_rate_full_table_fails_closed(void **state)
{
    /* 8 slots: every key probes all of them */
    struct cmn_rate *r = cmn_rate_new(6, 2, 8);
    long long wait = 0;
    char key[32];
    (void)state;

    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof(key), "10.0.0.%d", i);
        assert_int_equal(takes(r, key, 1000, 5), 2); /* each limited */
    }
    /* no room: a fresh key is refused, the limited ones stay limited */
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "10.1.0.%d", i);
        assert_int_equal(cmn_rate_take(r, key, 1000, &wait), CMN_AGAIN);
        assert_true(wait > 0);
    }
    assert_int_equal(takes(r, "10.0.0.3", 1000, 1), 0);
    /* once a key's bucket is full again its slot can go to another */
    assert_int_equal(takes(r, "10.2.0.1", 1000 + 20000, 1), 1);
    cmn_rate_free(r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_burst_then_refill),
        cmocka_unit_test(test_rate_full_table_fails_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
