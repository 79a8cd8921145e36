/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_cti_throttle.c - failed sign-in counting: lock after N failures in
 * the window, retry-after, clear on success, a new window after the old
 * one, 0 = off, and a flood of keys beyond the table's size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "core/cti_throttle.h"

static void
test_cti_throttle_locks_and_expires(void **state)
{
    struct cti_throttle *t = cti_throttle_new(3, 10000, 5000);
    long long wait = 0;

    (void)state;
    assert_false(cti_throttle_locked(t, "1001", 1000, &wait));
    cti_throttle_failed(t, "1001", 1000);
    cti_throttle_failed(t, "1001", 2000);
    assert_false(cti_throttle_locked(t, "1001", 2000, &wait));
    cti_throttle_failed(t, "1001", 3000);
    assert_true(cti_throttle_locked(t, "1001", 3000, &wait));
    assert_int_equal(wait, 5000);
    assert_true(cti_throttle_locked(t, "1001", 7999, &wait));
    assert_int_equal(wait, 1);
    assert_false(cti_throttle_locked(t, "1001", 8000, &wait));
    assert_false(cti_throttle_locked(t, "1002", 3000, &wait)); /* others */
    /* a success clears the count */
    cti_throttle_failed(t, "1002", 100);
    cti_throttle_failed(t, "1002", 200);
    cti_throttle_clear(t, "1002");
    cti_throttle_failed(t, "1002", 300);
    assert_false(cti_throttle_locked(t, "1002", 300, &wait));
    /* failures in an old window do not add up with new ones */
    cti_throttle_failed(t, "1003", 0);
    cti_throttle_failed(t, "1003", 1);
    cti_throttle_failed(t, "1003", 20000);
    assert_false(cti_throttle_locked(t, "1003", 20000, &wait));
    cti_throttle_free(t);
}

static void
test_cti_throttle_off_and_flood(void **state)
{
    struct cti_throttle *off = cti_throttle_new(0, 1000, 1000);
    struct cti_throttle *t = cti_throttle_new(2, 60000, 60000);
    long long wait = 0;
    char key[32];

    (void)state;
    for (int i = 0; i < 10; i++) {
        cti_throttle_failed(off, "1001", i);
    }
    assert_false(cti_throttle_locked(off, "1001", 10, &wait));
    /* far more keys than slots: no crash, no growth, and a key just
     * locked is still locked (the stalest slots are reused first) */
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "10.0.%d.%d", i / 256, i % 256);
        cti_throttle_failed(t, key, 1000 + i);
    }
    cti_throttle_failed(t, "victim", 30000);
    cti_throttle_failed(t, "victim", 30001);
    assert_true(cti_throttle_locked(t, "victim", 30002, &wait));
    cti_throttle_free(off);
    cti_throttle_free(t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cti_throttle_locks_and_expires),
        cmocka_unit_test(test_cti_throttle_off_and_flood),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
