/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_log.c - cmn_log: line shape, escaping of network values, levels,
 * truncation, request ids and fingerprints. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cmn_log.h"

static FILE *log_fp;

static int
setup(void **state)
{
    (void)state;
    log_fp = tmpfile();
    if (log_fp == NULL) {
        return -1;
    }
    cmn_log_init("fsc-test", CMN_LOG_INFO);
    cmn_log_set_stream(log_fp);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    cmn_log_set_stream(NULL);
    cmn_log_set_request_id(NULL);
    fclose(log_fp);
    return 0;
}

/* Everything logged since setup, as one malloc'd string. */
static char *
captured(void)
{
    long n;
    char *buf;

    fflush(log_fp);
    n = ftell(log_fp);
    assert_true(n >= 0);
    buf = calloc(1, (size_t)n + 1);
    assert_non_null(buf);
    rewind(log_fp);
    assert_int_equal(fread(buf, 1, (size_t)n, log_fp), (size_t)n);
    return buf;
}

static size_t
count_char(const char *s, char c)
{
    size_t n = 0;

    for (; *s; s++) {
        n += *s == c;
    }
    return n;
}

static void
test_log_line_shape(void **state)
{
    char *out;

    (void)state;
    cmn_log_info("event=login user=%s", "alice");
    out = captured();
    assert_int_equal(strncmp(out, "ts=", 3), 0);
    /* ts=YYYY-MM-DDTHH:MM:SS.mmmZ */
    assert_true(strlen(out) > 27);
    assert_int_equal(out[13], 'T');
    assert_int_equal(out[22], '.');
    assert_int_equal(out[26], 'Z');
    assert_non_null(strstr(out, " level=info proc=fsc-test "
                                "fn=test_log_line_shape event=login "
                                "user=alice\n"));
    assert_int_equal(count_char(out, '\n'), 1);
    free(out);
}

static void
test_log_escapes_newline(void **state)
{
    char *out;

    (void)state;
    /* A network value trying to forge a second line. */
    cmn_log_warn("user=%s", "bob\nts=x level=err forged=1\r\x01\x7f\t");
    out = captured();
    assert_int_equal(count_char(out, '\n'), 1);
    assert_non_null(strstr(out, "user=bob\\nts=x level=err forged=1"
                                "\\r\\x01\\x7f\\t\n"));
    assert_non_null(strstr(out, "level=warn"));
    free(out);
}

static void
test_log_levels(void **state)
{
    enum cmn_log_level lv;
    char *out;

    (void)state;
    cmn_log_set_level(CMN_LOG_WARN);
    assert_true(cmn_log_enabled(CMN_LOG_ERR));
    assert_true(cmn_log_enabled(CMN_LOG_WARN));
    assert_false(cmn_log_enabled(CMN_LOG_INFO));
    cmn_log_info("hidden=1");
    cmn_log_debug("hidden=2");
    cmn_log_err("shown=1");
    out = captured();
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, "level=err"));
    free(out);
    cmn_log_set_level(CMN_LOG_INFO);

    assert_int_equal(cmn_log_parse_level("debug", &lv), CMN_OK);
    assert_int_equal(lv, CMN_LOG_DEBUG);
    assert_int_equal(cmn_log_parse_level("notice", &lv), CMN_OK);
    assert_int_equal(lv, CMN_LOG_NOTICE);
    assert_int_equal(cmn_log_parse_level("err", &lv), CMN_OK);
    assert_int_equal(lv, CMN_LOG_ERR);
    assert_int_equal(cmn_log_parse_level("verbose", &lv), CMN_INVALID);
    assert_int_equal(cmn_log_parse_level("", &lv), CMN_INVALID);
}

static void
test_log_request_id(void **state)
{
    char *out;

    (void)state;
    cmn_log_set_request_id("r-123");
    cmn_log_info("a=1");
    cmn_log_set_request_id(NULL);
    cmn_log_info("b=2");
    out = captured();
    assert_non_null(strstr(out, " a=1 req=r-123\n"));
    assert_non_null(strstr(out, " b=2\n"));
    free(out);
}

static void *
thread_logs(void *arg)
{
    (void)arg;
    /* Another thread's request id must not show on this thread's lines. */
    cmn_log_info("from=thread");
    return NULL;
}

static void
test_log_request_id_thread_local(void **state)
{
    pthread_t t;
    char *out;

    (void)state;
    cmn_log_set_request_id("main-req");
    assert_int_equal(pthread_create(&t, NULL, thread_logs, NULL), 0);
    pthread_join(t, NULL);
    cmn_log_set_request_id(NULL);
    out = captured();
    assert_non_null(strstr(out, "from=thread\n"));
    assert_null(strstr(out, "main-req"));
    free(out);
}

static void
test_log_truncates_long_line(void **state)
{
    char *big = malloc(10000);
    char *out;
    size_t len;

    (void)state;
    assert_non_null(big);
    memset(big, 'x', 9999);
    big[9999] = '\0';
    cmn_log_set_request_id("rid");
    cmn_log_info("v=%s", big);
    cmn_log_set_request_id(NULL);
    out = captured();
    len = strlen(out);
    assert_true(len <= 4096);
    assert_int_equal(count_char(out, '\n'), 1);
    /* Cut text ends in "...", and req= still closes the line. */
    assert_non_null(strstr(out, "xxx... req=rid\n"));
    free(out);
    free(big);
}

static void
test_log_fingerprint(void **state)
{
    char fp[13];

    (void)state;
    /* SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223... */
    cmn_log_fingerprint("abc", fp);
    assert_string_equal(fp, "ba7816bf8f01");
    /* SHA-256("") = e3b0c44298fc1c14... */
    cmn_log_fingerprint("", fp);
    assert_string_equal(fp, "e3b0c44298fc");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_log_line_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_escapes_newline, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_log_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_request_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_request_id_thread_local, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_log_truncates_long_line, setup,
                                        teardown),
        cmocka_unit_test(test_log_fingerprint),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
