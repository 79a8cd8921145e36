/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_cti_throttle.c - sign-in attempt counting: lock after N attempts in
 * the window, retry-after, clear on success, refund when Finesse could not
 * say, a new window after the old one, 0 = off; attempts counted before
 * they are tried (concurrent guesses get no further than N); a flood of
 * keys beyond the table's size; keys made to collide with the target under
 * the old unkeyed FNV-1a hash; a locked key never evicted, and a full
 * table failing closed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "core/cti_throttle.h"

/* an attempt that Finesse refused */
static enum cti_throttle_verdict
wrong_password(struct cti_throttle *t, const char *key, long long now)
{
    long long wait = 0;
    enum cti_throttle_verdict v = cti_throttle_attempt(t, key, now, &wait);

    if (v == CTI_THROTTLE_GO) {
        cti_throttle_attempt_failed(t, key);
    }
    return v;
}

static bool
locked(struct cti_throttle *t, const char *key, long long now, long long *wait)
{
    enum cti_throttle_verdict v = cti_throttle_attempt(t, key, now, wait);

    if (v == CTI_THROTTLE_GO) {
        cti_throttle_attempt_refund(t, key); /* only peeking */
    }
    return v != CTI_THROTTLE_GO;
}

static void
test_cti_throttle_locks_and_expires(void **state)
{
    struct cti_throttle *t = cti_throttle_new(3, 10000, 5000);
    long long wait = 0;

    (void)state;
    assert_false(locked(t, "1001", 1000, &wait));
    wrong_password(t, "1001", 1000);
    wrong_password(t, "1001", 2000);
    assert_false(locked(t, "1001", 2000, &wait));
    wrong_password(t, "1001", 3000);
    assert_true(locked(t, "1001", 3000, &wait));
    assert_int_equal(wait, 5000);
    assert_true(locked(t, "1001", 7999, &wait));
    assert_int_equal(wait, 1);
    assert_false(locked(t, "1001", 8000, &wait));
    assert_false(locked(t, "1002", 3000, &wait)); /* others */
    /* a success clears the count */
    wrong_password(t, "1002", 100);
    wrong_password(t, "1002", 200);
    cti_throttle_clear(t, "1002");
    wrong_password(t, "1002", 300);
    assert_false(locked(t, "1002", 300, &wait));
    /* attempts in an old window do not add up with new ones */
    wrong_password(t, "1003", 0);
    wrong_password(t, "1003", 1);
    wrong_password(t, "1003", 20000);
    assert_false(locked(t, "1003", 20000, &wait));
    /* Finesse unreachable: the attempts are given back */
    for (int i = 0; i < 10; i++) {
        assert_int_equal(cti_throttle_attempt(t, "1004", 100, &wait),
                         CTI_THROTTLE_GO);
        cti_throttle_attempt_refund(t, "1004");
    }
    assert_false(locked(t, "1004", 100, &wait));
    cti_throttle_free(t);
}

static void
test_cti_throttle_counted_before_tried(void **state)
{
    struct cti_throttle *t = cti_throttle_new(5, 60000, 60000);
    long long wait = 0;
    int go = 0;

    (void)state;
    /* 40 guesses at once: none answered yet when the next one starts */
    for (int i = 0; i < 40; i++) {
        if (cti_throttle_attempt(t, "1001", 1000, &wait) == CTI_THROTTLE_GO) {
            go++;
        }
    }
    assert_int_equal(go, 5);
    /* none has failed yet: ask again in a second, not after the lockout */
    assert_int_equal(cti_throttle_attempt(t, "1001", 1000, &wait),
                     CTI_THROTTLE_PENDING);
    assert_int_equal(wait, 1000);
    for (int i = 0; i < go; i++) {
        cti_throttle_attempt_failed(t, "1001");
    }
    assert_true(locked(t, "1001", 2000, &wait));
    assert_int_equal(wait, 59000);
    /* one of five in flight turns out to be Finesse being down: the
     * others still hold the key at its limit until they are answered */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(cti_throttle_attempt(t, "1002", 1000, &wait),
                         CTI_THROTTLE_GO);
    }
    assert_int_equal(cti_throttle_attempt(t, "1002", 1000, &wait),
                     CTI_THROTTLE_PENDING);
    cti_throttle_attempt_refund(t, "1002");
    assert_int_equal(cti_throttle_attempt(t, "1002", 1000, &wait),
                     CTI_THROTTLE_GO);
    cti_throttle_free(t);
}

/* A shift starting behind one NAT: more good sign-ins at once from one
 * address than its limit. The ones over the limit are asked to come back
 * in a second; as the others succeed, they get through; nobody is ever
 * told to wait for the lockout. */
static void
test_cti_throttle_burst_of_good_sign_ins(void **state)
{
    struct cti_throttle *t = cti_throttle_new(30, 300000, 300000);
    long long wait = 0;
    int go = 0;

    (void)state;
    for (int i = 0; i < 32; i++) {
        enum cti_throttle_verdict v =
            cti_throttle_attempt(t, "10.1.2.3", 1000, &wait);

        if (v == CTI_THROTTLE_GO) {
            go++;
        } else {
            assert_int_equal(v, CTI_THROTTLE_PENDING);
            assert_int_equal(wait, 1000);
        }
    }
    assert_int_equal(go, 30);
    /* 29 sign-ins succeed (the address's count is given back) */
    for (int i = 0; i < 29; i++) {
        cti_throttle_attempt_refund(t, "10.1.2.3");
    }
    assert_int_equal(cti_throttle_attempt(t, "10.1.2.3", 1200, &wait),
                     CTI_THROTTLE_GO);
    cti_throttle_attempt_refund(t, "10.1.2.3");
    /* the last one in flight was a wrong password: 1 failure, no lock */
    cti_throttle_attempt_failed(t, "10.1.2.3");
    assert_false(locked(t, "10.1.2.3", 1300, &wait));
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
        wrong_password(off, "1001", i);
    }
    assert_false(locked(off, "1001", 10, &wait));
    /* far more keys than slots: no crash, no growth, and a key just
     * locked is still locked */
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "10.0.%d.%d", i / 256, i % 256);
        wrong_password(t, key, 1000 + i);
    }
    wrong_password(t, "victim", 30000);
    wrong_password(t, "victim", 30001);
    assert_true(locked(t, "victim", 30002, &wait));
    cti_throttle_free(off);
    cti_throttle_free(t);
}

/* FNV-1a, the table's old hash, as anyone can compute it offline */
static unsigned
fnv1a(const char *s)
{
    unsigned h = 2166136261u;

    for (; *s != '\0'; s++) {
        h = (h ^ (unsigned char)*s) * 16777619u;
    }
    return h;
}

static void
test_cti_throttle_colliding_keys_keep_lock(void **state)
{
    struct cti_throttle *t = cti_throttle_new(3, 60000, 300000);
    long long wait = 0;
    char key[32];
    int found = 0;
    (void)state;

    for (int i = 0; i < 3; i++) {
        wrong_password(t, "1001", 1000 + i);
    }
    assert_true(locked(t, "1001", 2000, &wait));
    /* made-up agent IDs in the target's bucket of a 4096-slot table */
    for (int i = 0; found < 64 && i < 50000000; i++) {
        snprintf(key, sizeof(key), "x%d", i);
        if (fnv1a(key) % 4096 == fnv1a("1001") % 4096) {
            wrong_password(t, key, 2000 + found);
            found++;
        }
    }
    assert_int_equal(found, 64);
    assert_true(locked(t, "1001", 3000, &wait));
    cti_throttle_free(t);
}

static void
test_cti_throttle_full_table_fails_closed(void **state)
{
    /* a table of 8 slots: every key probes all of them */
    struct cti_throttle *t = cti_throttle_new_sized(2, 60000, 60000, 8);
    long long wait = 0;
    char key[32];
    (void)state;

    wrong_password(t, "1001", 1000);
    wrong_password(t, "1001", 1001);
    assert_true(locked(t, "1001", 1002, &wait));
    /* seven more locked keys fill the table */
    for (int i = 0; i < 7; i++) {
        snprintf(key, sizeof(key), "lock%d", i);
        wrong_password(t, key, 1100);
        wrong_password(t, key, 1100);
    }
    /* a flood of fresh keys: no room, refused, the locks all stand */
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "fresh%d", i);
        assert_int_equal(cti_throttle_attempt(t, key, 2000 + i, &wait),
                         CTI_THROTTLE_FULL);
        assert_true(wait > 0);
    }
    assert_true(locked(t, "1001", 5000, &wait));
    for (int i = 0; i < 7; i++) {
        snprintf(key, sizeof(key), "lock%d", i);
        assert_true(locked(t, key, 5000, &wait));
    }
    /* when the locks end, the slots are free again */
    assert_int_equal(cti_throttle_attempt(t, "late", 200000, &wait),
                     CTI_THROTTLE_GO);
    cti_throttle_free(t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cti_throttle_locks_and_expires),
        cmocka_unit_test(test_cti_throttle_counted_before_tried),
        cmocka_unit_test(test_cti_throttle_burst_of_good_sign_ins),
        cmocka_unit_test(test_cti_throttle_off_and_flood),
        cmocka_unit_test(test_cti_throttle_colliding_keys_keep_lock),
        cmocka_unit_test(test_cti_throttle_full_table_fails_closed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
