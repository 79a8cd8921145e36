/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_sf_spool.c - the local call-log spool: appends survive, a drain
 * moves lines in order and stops at the first refusal keeping the rest,
 * appends made during an outage queue behind what waits, a drain cut
 * short by a crash (spool.draining left behind) is finished first,
 * malformed lines are dropped, the directory is private. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cmn_log.h"
#include "salesforce/sf_spool.h"

static char dir[64];

/* what the "outbox" accepted, in order */
struct sink {
    char got[64][32];
    int n;
    int refuse_after; /* accept this many, then refuse (-1: never) */
};

static int
sink_put(void *ud, const char *dialog, json_t *fields)
{
    struct sink *k = ud;

    assert_true(json_is_object(fields));
    if (k->refuse_after >= 0 && k->n >= k->refuse_after) {
        return CMN_IO;
    }
    snprintf(k->got[k->n++], sizeof(k->got[0]), "%s", dialog);
    return CMN_OK;
}

static void
append(struct sf_spool *sp, const char *dialog)
{
    struct cmn_err err = {{0}};
    json_t *f =
        json_pack("{s:s, s:s}", "Subject", "Call", "CallObject", dialog);

    assert_int_equal(sf_spool_append(sp, dialog, f, &err), CMN_OK);
    json_decref(f);
}

static int
setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/fsc-spool-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int
teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void
test_sf_spool_order_refusal_and_resume(void **state)
{
    struct cmn_err err = {{0}};
    char sub[128];
    struct stat st;
    struct sf_spool *sp;
    struct sink k = {.refuse_after = 2};

    (void)state;
    snprintf(sub, sizeof(sub), "%s/spool", dir);
    sp = sf_spool_open(sub, &err);
    assert_non_null(sp);
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_false(sf_spool_pending(sp));
    append(sp, "d1");
    append(sp, "d2");
    append(sp, "d3");
    append(sp, "d4");
    assert_true(sf_spool_pending(sp));
    /* the outbox takes two, then refuses: d3 and d4 stay */
    assert_int_equal(sf_spool_drain(sp, sink_put, &k), 2);
    assert_true(sf_spool_pending(sp));
    /* more call ends while it waits */
    append(sp, "d5");
    k.refuse_after = -1;
    assert_int_equal(sf_spool_drain(sp, sink_put, &k), 2); /* d3, d4 */
    assert_int_equal(sf_spool_drain(sp, sink_put, &k), 1); /* d5 */
    assert_false(sf_spool_pending(sp));
    assert_int_equal(k.n, 5);
    for (int i = 0; i < 5; i++) {
        char want[8];
        snprintf(want, sizeof(want), "d%d", i + 1);
        assert_string_equal(k.got[i], want);
    }
    assert_int_equal(sf_spool_drain(sp, sink_put, &k), 0);
    sf_spool_close(sp);
}

/* A drain cut short (the process died) leaves spool.draining: the next
 * process finishes it before the newer spool.log; a malformed line is
 * dropped without stopping the rest. */
static void
test_sf_spool_crash_left_draining(void **state)
{
    struct cmn_err err = {{0}};
    char path[160];
    FILE *f;
    struct sf_spool *sp;
    struct sink k = {.refuse_after = -1};

    (void)state;
    sp = sf_spool_open(dir, &err);
    assert_non_null(sp);
    append(sp, "new1");
    snprintf(path, sizeof(path), "%s/spool.draining", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"dialog\":\"old1\",\"fields\":{\"Subject\":\"Call\"}}\n", f);
    fputs("{not json\n", f);
    fputs("{\"dialog\":\"old2\",\"fields\":{\"Subject\":\"Call\"}}\n", f);
    fclose(f);
    sf_spool_close(sp);

    sp = sf_spool_open(dir, &err); /* the next process */
    assert_non_null(sp);
    assert_true(sf_spool_pending(sp));
    assert_int_equal(sf_spool_drain(sp, sink_put, &k), 2);
    assert_int_equal(sf_spool_drain(sp, sink_put, &k), 1);
    assert_int_equal(k.n, 3);
    assert_string_equal(k.got[0], "old1");
    assert_string_equal(k.got[1], "old2");
    assert_string_equal(k.got[2], "new1");
    assert_false(sf_spool_pending(sp));
    sf_spool_close(sp);
}

static void
test_sf_spool_unusable_dir(void **state)
{
    struct cmn_err err = {{0}};

    (void)state;
    assert_null(sf_spool_open("/proc/fsc-no-such-dir/spool", &err));
    assert_true(err.msg[0] != '\0');
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sf_spool_order_refusal_and_resume,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_sf_spool_crash_left_draining,
                                        setup, teardown),
        cmocka_unit_test(test_sf_spool_unusable_dir),
    };

    cmn_log_init("test_sf_spool", CMN_LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
