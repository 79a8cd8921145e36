/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_secret.c - cmn_secret: file permission rule, symlinks, size limits,
 * trimming. */
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

#include "cmn_secret.h"

static char tmpdir[64];
static char path[256];

static int
setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_secret.XXXXXX");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int
teardown_dir(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes tmpdir/name with data and mode; the path is left in path. */
static const char *
write_file(const char *name, const void *data, size_t len, mode_t mode)
{
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static void
test_secret_new_and_free(void **state)
{
    struct cmn_secret *s = cmn_secret_new("ab\0c", 4);

    (void)state;
    assert_non_null(s);
    assert_int_equal(s->len, 4);
    assert_memory_equal(s->data, "ab\0c", 4);
    assert_int_equal(s->data[4], '\0');
    cmn_secret_free(s);
    cmn_secret_free(NULL);
    s = cmn_secret_new(NULL, 0);
    assert_non_null(s);
    assert_int_equal(s->len, 0);
    cmn_secret_free(s);
}

static void
test_secret_mode_0600_ok(void **state)
{
    struct cmn_err err = {{0}};
    struct cmn_secret *s;

    (void)state;
    write_file("ok", "pa55\n", 5, 0600);
    s = cmn_secret_read_file(path, 64, false, &err);
    assert_non_null(s);
    assert_int_equal(s->len, 5);
    assert_string_equal((char *)s->data, "pa55\n");
    cmn_secret_free(s);
    write_file("ro", "pa55", 4, 0400);
    s = cmn_secret_read_file(path, 64, false, &err);
    assert_non_null(s);
    cmn_secret_free(s);
}

static void
test_secret_mode_0644_refused(void **state)
{
    struct cmn_err err = {{0}};
    char want[512];

    (void)state;
    write_file("open", "pa55\n", 5, 0644);
    assert_null(cmn_secret_read_file(path, 64, true, &err));
    snprintf(want, sizeof(want), "%s: permissions 0644 are too open; chmod 600",
             path);
    assert_string_equal(err.msg, want);
    write_file("group", "pa55\n", 5, 0640);
    assert_null(cmn_secret_read_file(path, 64, true, &err));
    assert_non_null(strstr(err.msg, "permissions 0640 are too open"));
    write_file("gw", "pa55\n", 5, 0620);
    assert_null(cmn_secret_read_file(path, 64, true, &err));
    write_file("ow", "pa55\n", 5, 0602);
    assert_null(cmn_secret_read_file(path, 64, true, &err));
}

static void
test_secret_trim(void **state)
{
    struct cmn_err err = {{0}};
    struct cmn_secret *s;

    (void)state;
    write_file("nl", "pa55\n", 5, 0600);
    s = cmn_secret_read_file(path, 64, true, &err);
    assert_non_null(s);
    assert_int_equal(s->len, 4);
    assert_string_equal((char *)s->data, "pa55");
    cmn_secret_free(s);

    write_file("crlf", "pa55\r\n", 6, 0600);
    s = cmn_secret_read_file(path, 64, true, &err);
    assert_non_null(s);
    assert_string_equal((char *)s->data, "pa55");
    cmn_secret_free(s);

    /* Only one line end goes; inner and leading bytes are kept. */
    write_file("two", " pa55\n\n", 7, 0600);
    s = cmn_secret_read_file(path, 64, true, &err);
    assert_non_null(s);
    assert_string_equal((char *)s->data, " pa55\n");
    cmn_secret_free(s);

    /* A file holding only a newline is empty once trimmed. */
    write_file("justnl", "\n", 1, 0600);
    assert_null(cmn_secret_read_file(path, 64, true, &err));
    assert_non_null(strstr(err.msg, "empty file"));
}

static void
test_secret_size_limits(void **state)
{
    struct cmn_err err = {{0}};
    char big[100];
    struct cmn_secret *s;

    (void)state;
    memset(big, 'k', sizeof(big));
    write_file("big", big, sizeof(big), 0600);
    assert_null(cmn_secret_read_file(path, 99, false, &err));
    assert_non_null(strstr(err.msg, "larger than 99 bytes"));
    s = cmn_secret_read_file(path, 100, false, &err);
    assert_non_null(s);
    assert_int_equal(s->len, 100);
    cmn_secret_free(s);

    write_file("empty", "", 0, 0600);
    assert_null(cmn_secret_read_file(path, 64, false, &err));
    assert_non_null(strstr(err.msg, "empty file"));
}

static void
test_secret_symlink_refused(void **state)
{
    struct cmn_err err = {{0}};
    char link[300];

    (void)state;
    write_file("target", "pa55", 4, 0600);
    snprintf(link, sizeof(link), "%s/link", tmpdir);
    assert_int_equal(symlink(path, link), 0);
    assert_null(cmn_secret_read_file(link, 64, false, &err));
    assert_non_null(strstr(err.msg, "symbolic link"));
}

static void
test_secret_not_regular(void **state)
{
    struct cmn_err err = {{0}};
    char fifo[300];

    (void)state;
    assert_null(cmn_secret_read_file(tmpdir, 64, false, &err));
    snprintf(fifo, sizeof(fifo), "%s/fifo", tmpdir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    /* Must not block waiting for a writer. */
    assert_null(cmn_secret_read_file(fifo, 64, false, &err));
    assert_non_null(strstr(err.msg, "not a regular file"));
    assert_null(cmn_secret_read_file("/nonexistent/x", 64, false, &err));
    assert_string_equal(err.msg, "/nonexistent/x: No such file or directory");
}

static void
test_secret_wipe(void **state)
{
    unsigned char buf[8];

    (void)state;
    memset(buf, 0xaa, sizeof(buf));
    cmn_wipe(buf, sizeof(buf));
    for (size_t i = 0; i < sizeof(buf); i++) {
        assert_int_equal(buf[i], 0);
    }
    cmn_wipe(NULL, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_new_and_free),
        cmocka_unit_test(test_secret_mode_0600_ok),
        cmocka_unit_test(test_secret_mode_0644_refused),
        cmocka_unit_test(test_secret_trim),
        cmocka_unit_test(test_secret_size_limits),
        cmocka_unit_test(test_secret_symlink_refused),
        cmocka_unit_test(test_secret_not_regular),
        cmocka_unit_test(test_secret_wipe),
    };

    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
