/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_config.c - cmn_config: parsing, typed getters, secrets from files,
 * unknown keys, and the exact error messages operators will read. */
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

#include "cmn_config.h"

static char tmpdir[64];

static struct cmn_config *
parse(const char *text, struct cmn_err *err)
{
    return cmn_config_parse("t.ini", text, strlen(text), err);
}

static void
write_file(const char *path, const char *data, mode_t mode)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(data, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static int
setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_config.XXXXXX");
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

static void
test_config_sample_parses(void **state)
{
    const char *src = getenv("FSC_SOURCE_DIR");
    struct cmn_err err = {{0}};
    struct cmn_config *cfg;
    char path[1024];
    const char *v = NULL;

    (void)state;
    snprintf(path, sizeof(path), "%s/deploy/fsc-sso.ini.sample",
             src != NULL ? src : ".");
    cfg = cmn_config_load(path, &err);
    assert_non_null(cfg);
    /* Inline " ;" comments are cut and the value is trimmed. */
    assert_string_equal(cmn_config_get(cfg, "server", "listen"),
                        "127.0.0.1:8443");
    assert_string_equal(cmn_config_get(cfg, "redis", "url"),
                        "redis://127.0.0.1:6379/0");
    assert_string_equal(cmn_config_get(cfg, "session", "seal_key_file"),
                        "/etc/fsc/seal.key");
    assert_string_equal(cmn_config_get(cfg, "redis", "prefix"), "fsc:");
    assert_null(cmn_config_get(cfg, "redis", "master"));
    assert_true(cmn_config_has_section(cfg, "login"));
    assert_false(cmn_config_has_section(cfg, "nope"));
    assert_int_equal(
        cmn_config_str(cfg, "ids", "client_id", true, NULL, &v, &err), CMN_OK);
    assert_string_equal(v, "fsc-connector");
    assert_string_equal(cmn_config_name(cfg), path);
    cmn_config_free(cfg);
}

static void
test_config_inline_comment(void **state)
{
    struct cmn_err err = {{0}};
    struct cmn_config *cfg;

    (void)state;
    cfg = parse("[a]\n"
                "x = 1 ; one\n"
                "y = a;b\n" /* no blank before ';': kept */
                "z = v\t; tab\n"
                "# hash comment\n"
                "  ; indented comment\n"
                "w = v # not a comment\n",
                &err);
    assert_non_null(cfg);
    assert_string_equal(cmn_config_get(cfg, "a", "x"), "1");
    assert_string_equal(cmn_config_get(cfg, "a", "y"), "a;b");
    assert_string_equal(cmn_config_get(cfg, "a", "z"), "v");
    assert_string_equal(cmn_config_get(cfg, "a", "w"), "v # not a comment");
    cmn_config_free(cfg);
}

static void
test_config_indented_is_not_continuation(void **state)
{
    struct cmn_err err = {{0}};
    struct cmn_config *cfg;

    (void)state;
    /* libinih would fold "  b = 2" into a's value (multi-line values);
     * we hand it unindented lines so it is an ordinary key. */
    cfg = parse("[s]\na = 1\n  b = 2\n\tc = 3\r\n", &err);
    assert_non_null(cfg);
    assert_string_equal(cmn_config_get(cfg, "s", "a"), "1");
    assert_string_equal(cmn_config_get(cfg, "s", "b"), "2");
    assert_string_equal(cmn_config_get(cfg, "s", "c"), "3");
    cmn_config_free(cfg);
}

static void
test_config_duplicate_key(void **state)
{
    struct cmn_err err = {{0}};

    (void)state;
    assert_null(parse("[s]\na = 1\n\nb = 2\na = 3\n", &err));
    assert_string_equal(err.msg,
                        "t.ini:5: [s] a: duplicate key (first set on line 2)");
    /* Same key in another section is fine, and so is a reopened section
     * with new keys. */
    struct cmn_config *cfg = parse("[s]\na=1\n[t]\na=2\n[s]\nb=3\n", &err);
    assert_non_null(cfg);
    assert_string_equal(cmn_config_get(cfg, "t", "a"), "2");
    assert_string_equal(cmn_config_get(cfg, "s", "b"), "3");
    cmn_config_free(cfg);
    assert_null(parse("[s]\na=1\n[t]\n[s]\na=2\n", &err));
    assert_string_equal(err.msg,
                        "t.ini:5: [s] a: duplicate key (first set on line 2)");
}

static void
test_config_syntax_error(void **state)
{
    struct cmn_err err = {{0}};

    (void)state;
    assert_null(parse("[s]\na = 1\njunk line\nb = 2\n", &err));
    assert_string_equal(err.msg, "t.ini:3: syntax error");
    assert_null(parse("[s]\na = 1\n[broken\n", &err));
    assert_string_equal(err.msg, "t.ini:3: syntax error");
    /* The first of several errors is the one reported. */
    assert_null(parse("[s]\nbad\na = 1\na = 2\n", &err));
    assert_string_equal(err.msg, "t.ini:2: syntax error");
    assert_null(parse("[s]\na = 1\na = 2\nbad\n", &err));
    assert_string_equal(err.msg,
                        "t.ini:3: [s] a: duplicate key (first set on line 2)");
    assert_null(parse("[s]\na = 1\n[t] junk\nb = 2\n", &err));
    assert_string_equal(err.msg, "t.ini:3: syntax error");
    assert_null(parse("a = 1\n", &err));
    assert_string_equal(err.msg, "t.ini:1: key outside of any [section]");
    assert_null(parse("[s]\nmy key = 1\n", &err));
    assert_string_equal(err.msg, "t.ini:2: [s] invalid key name (use "
                                 "letters, digits, _ - .)");
    assert_null(parse("[s]\n= 1\n", &err));
    assert_null(parse("[s s]\na = 1\n", &err));
    assert_string_equal(err.msg, "t.ini:2: invalid section name (use "
                                 "letters, digits, _ - .)");
}

static void
test_config_long_line_and_nul(void **state)
{
    struct cmn_err err = {{0}};
    char text[600];
    struct cmn_config *cfg;

    (void)state;
    /* A long line must be refused, not split in two by libinih. */
    snprintf(text, sizeof(text), "[s]\nk = %0300d\n", 0);
    assert_null(parse(text, &err));
    assert_non_null(strstr(err.msg, "t.ini:2: line too long"));

    /* A long comment does not count. */
    snprintf(text, sizeof(text), "[s]\nk = v ; %0300d\n; %0250d", 0, 0);
    cfg = parse(text, &err);
    assert_non_null(cfg);
    assert_string_equal(cmn_config_get(cfg, "s", "k"), "v");
    cmn_config_free(cfg);

    assert_null(cmn_config_parse("t.ini", "[s]\na = 1\0b\n", 12, &err));
    assert_string_equal(err.msg, "t.ini:2: NUL byte in line");
}

static void
test_config_too_big(void **state)
{
    struct cmn_err err = {{0}};
    size_t n = 1024 * 1024 + 1;
    char *big = malloc(n);
    char path[128];
    FILE *f;

    (void)state;
    assert_non_null(big);
    memset(big, '\n', n);
    assert_null(cmn_config_parse("t.ini", big, n, &err));
    assert_string_equal(err.msg, "t.ini: larger than 1 MiB");
    snprintf(path, sizeof(path), "%s/big.ini", tmpdir);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(big, 1, n, f), n);
    fclose(f);
    assert_null(cmn_config_load(path, &err));
    assert_non_null(strstr(err.msg, "larger than 1 MiB"));
    free(big);

    assert_null(cmn_config_load("/nonexistent/x.ini", &err));
    assert_string_equal(err.msg,
                        "/nonexistent/x.ini: No such file or directory");
}

static void
test_config_empty_ok(void **state)
{
    struct cmn_err err = {{0}};
    struct cmn_config *cfg = parse("", &err);

    (void)state;
    assert_non_null(cfg);
    assert_null(cmn_config_get(cfg, "s", "a"));
    cmn_config_free(cfg);
}

static void
test_config_str(void **state)
{
    struct cmn_err err = {{0}};
    struct cmn_config *cfg = parse("[s]\na = hello\nempty =\n", &err);
    const char *v = NULL;

    (void)state;
    assert_non_null(cfg);
    assert_int_equal(cmn_config_str(cfg, "s", "a", true, NULL, &v, &err),
                     CMN_OK);
    assert_string_equal(v, "hello");
    assert_int_equal(cmn_config_str(cfg, "s", "b", false, "dflt", &v, &err),
                     CMN_OK);
    assert_string_equal(v, "dflt");
    assert_int_equal(cmn_config_str(cfg, "s", "b", true, NULL, &v, &err),
                     CMN_INVALID);
    assert_string_equal(err.msg, "t.ini: [s] b: required");
    assert_int_equal(cmn_config_str(cfg, "s", "empty", false, "d", &v, &err),
                     CMN_OK);
    assert_string_equal(v, "");
    assert_int_equal(cmn_config_str(cfg, "s", "empty", true, NULL, &v, &err),
                     CMN_INVALID);
    assert_string_equal(err.msg, "t.ini:3: [s] empty: must not be empty");
    cmn_config_free(cfg);
}

static void
test_config_long(void **state)
{
    struct cmn_err err = {{0}};
    struct cmn_config *cfg =
        parse("[n]\nok = 42\nneg = -7\nzero = 010\nhex = 0x10\nsp = 5 ms\n"
              "plus = +5\nbig = 99999999999999999999999\nempty =\n"
              "dash = -\n",
              &err);
    long v = 0;

    (void)state;
    assert_non_null(cfg);
    assert_int_equal(cmn_config_long(cfg, "n", "ok", 0, 0, 100, &v, &err),
                     CMN_OK);
    assert_int_equal(v, 42);
    assert_int_equal(cmn_config_long(cfg, "n", "neg", 0, -10, 10, &v, &err),
                     CMN_OK);
    assert_int_equal(v, -7);
    /* Decimal only: a leading zero is not octal. */
    assert_int_equal(cmn_config_long(cfg, "n", "zero", 0, 0, 100, &v, &err),
                     CMN_OK);
    assert_int_equal(v, 10);
    assert_int_equal(cmn_config_long(cfg, "n", "absent", 5, 0, 10, &v, &err),
                     CMN_OK);
    assert_int_equal(v, 5);
    assert_int_equal(cmn_config_long(cfg, "n", "ok", 0, 0, 10, &v, &err),
                     CMN_INVALID);
    assert_string_equal(err.msg, "t.ini:2: [n] ok: must be between 0 and 10");
    assert_int_equal(cmn_config_long(cfg, "n", "hex", 0, 0, 100, &v, &err),
                     CMN_INVALID);
    assert_string_equal(err.msg,
                        "t.ini:5: [n] hex: expected a decimal integer");
    const char *bad[] = {"sp", "plus", "empty", "dash"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(
            cmn_config_long(cfg, "n", bad[i], 0, -100, 100, &v, &err),
            CMN_INVALID);
        assert_non_null(strstr(err.msg, "expected a decimal integer"));
    }
    assert_int_equal(cmn_config_long(cfg, "n", "big", 0, 0, 100, &v, &err),
                     CMN_INVALID);
    assert_non_null(strstr(err.msg, "must be between"));
    cmn_config_free(cfg);
}

static void
test_config_bool(void **state)
{
    struct cmn_err err = {{0}};
    struct cmn_config *cfg =
        parse("[b]\nt1 = true\nt2 = yes\nt3 = on\nt4 = 1\nt5 = TRUE\n"
              "f1 = false\nf2 = no\nf3 = off\nf4 = 0\nbad = maybe\n",
              &err);
    bool v;

    (void)state;
    assert_non_null(cfg);
    for (int i = 1; i <= 5; i++) {
        char k[16];
        snprintf(k, sizeof(k), "t%d", i);
        v = false;
        assert_int_equal(cmn_config_bool(cfg, "b", k, false, &v, &err), CMN_OK);
        assert_true(v);
    }
    for (int i = 1; i <= 4; i++) {
        char k[16];
        snprintf(k, sizeof(k), "f%d", i);
        v = true;
        assert_int_equal(cmn_config_bool(cfg, "b", k, true, &v, &err), CMN_OK);
        assert_false(v);
    }
    assert_int_equal(cmn_config_bool(cfg, "b", "absent", true, &v, &err),
                     CMN_OK);
    assert_true(v);
    assert_int_equal(cmn_config_bool(cfg, "b", "bad", true, &v, &err),
                     CMN_INVALID);
    assert_string_equal(err.msg, "t.ini:11: [b] bad: expected true/false, "
                                 "yes/no, on/off or 1/0");
    cmn_config_free(cfg);
}

static void
test_config_list(void **state)
{
    struct cmn_err err = {{0}};
    struct cmn_config *cfg =
        parse("[l]\none = a\nthree = a , b,c\nhole = a,,b\ntrail = a,\n"
              "empty =\n",
              &err);
    char **vec = NULL;
    size_t n = 99;

    (void)state;
    assert_non_null(cfg);
    assert_int_equal(cmn_config_list(cfg, "l", "three", true, &vec, &n, &err),
                     CMN_OK);
    assert_int_equal(n, 3);
    assert_string_equal(vec[0], "a");
    assert_string_equal(vec[1], "b");
    assert_string_equal(vec[2], "c");
    assert_null(vec[3]);
    free(vec);
    assert_int_equal(cmn_config_list(cfg, "l", "one", true, &vec, &n, &err),
                     CMN_OK);
    assert_int_equal(n, 1);
    assert_string_equal(vec[0], "a");
    free(vec);
    assert_int_equal(cmn_config_list(cfg, "l", "hole", true, &vec, &n, &err),
                     CMN_INVALID);
    assert_string_equal(err.msg, "t.ini:4: [l] hole: empty item in list");
    assert_null(vec);
    assert_int_equal(cmn_config_list(cfg, "l", "trail", true, &vec, &n, &err),
                     CMN_INVALID);
    assert_int_equal(cmn_config_list(cfg, "l", "absent", true, &vec, &n, &err),
                     CMN_INVALID);
    assert_string_equal(err.msg, "t.ini: [l] absent: required");
    assert_int_equal(cmn_config_list(cfg, "l", "empty", true, &vec, &n, &err),
                     CMN_INVALID);
    /* Absent and optional: an empty array, never NULL. */
    assert_int_equal(cmn_config_list(cfg, "l", "absent", false, &vec, &n, &err),
                     CMN_OK);
    assert_int_equal(n, 0);
    assert_non_null(vec);
    assert_null(vec[0]);
    free(vec);
    cmn_config_free(cfg);
}

static void
test_config_secret_relative_path(void **state)
{
    struct cmn_err err = {{0}};
    struct cmn_secret *s = NULL;
    struct cmn_config *cfg;
    char path[256];

    (void)state;
    snprintf(path, sizeof(path), "%s/pw", tmpdir);
    write_file(path, "s3cret\n", 0600);
    snprintf(path, sizeof(path), "%s/open", tmpdir);
    write_file(path, "s3cret\n", 0644);
    snprintf(path, sizeof(path), "%s/app.ini", tmpdir);
    write_file(path,
               "[r]\npassword_file = pw\nopen_file = open\n"
               "abs_file = /nonexistent/pw\n",
               0644);
    cfg = cmn_config_load(path, &err);
    assert_non_null(cfg);
    /* Relative to the config file's directory, not the cwd. */
    assert_int_equal(
        cmn_config_secret(cfg, "r", "password", true, 64, true, &s, &err),
        CMN_OK);
    assert_non_null(s);
    assert_string_equal((char *)s->data, "s3cret");
    assert_int_equal(s->len, 6);
    cmn_secret_free(s);

    assert_int_equal(
        cmn_config_secret(cfg, "r", "open", true, 64, true, &s, &err),
        CMN_INVALID);
    assert_null(s);
    char want[512];
    snprintf(want, sizeof(want),
             "%s:3: [r] open_file: %s/open: permissions 0644 are too open; "
             "chmod 600",
             path, tmpdir);
    assert_string_equal(err.msg, want);

    assert_int_equal(
        cmn_config_secret(cfg, "r", "abs", true, 64, true, &s, &err),
        CMN_INVALID);
    assert_non_null(strstr(err.msg, "/nonexistent/pw: No such file"));

    assert_int_equal(
        cmn_config_secret(cfg, "r", "absent", false, 64, true, &s, &err),
        CMN_OK);
    assert_null(s);
    assert_int_equal(
        cmn_config_secret(cfg, "r", "absent", true, 64, true, &s, &err),
        CMN_INVALID);
    snprintf(want, sizeof(want), "%s: [r] absent_file: required", path);
    assert_string_equal(err.msg, want);
    cmn_config_free(cfg);
}

static void
test_config_secret_inline_refused(void **state)
{
    struct cmn_err err = {{0}};
    struct cmn_secret *s = NULL;
    struct cmn_config *cfg = parse("[ids]\nclient_secret = hunter2\n", &err);

    (void)state;
    assert_non_null(cfg);
    assert_int_equal(cmn_config_secret(cfg, "ids", "client_secret", false, 64,
                                       true, &s, &err),
                     CMN_INVALID);
    assert_null(s);
    assert_string_equal(err.msg,
                        "t.ini:2: [ids] client_secret: use client_secret_file "
                        "= path (secrets are never inline)");
    /* The message must not echo the secret. */
    assert_null(strstr(err.msg, "hunter2"));
    cmn_config_free(cfg);
}

static void
test_config_check_known(void **state)
{
    static const char *const known[] = {
        "server.listen",
        "server.public_url",
        "redis.*",
        "ids.client_secret_file",
        NULL,
    };
    struct cmn_err err = {{0}};
    struct cmn_config *cfg;

    (void)state;
    cfg = parse("[server]\nlisten = x\n[redis]\nanything = 1\n", &err);
    assert_non_null(cfg);
    assert_int_equal(cmn_config_check_known(cfg, known, &err), CMN_OK);
    cmn_config_free(cfg);

    cfg = parse("[server]\nlisten = x\npublic_ulr = y\n", &err);
    assert_non_null(cfg);
    assert_int_equal(cmn_config_check_known(cfg, known, &err), CMN_INVALID);
    assert_string_equal(err.msg, "t.ini:3: [server] public_ulr: unknown key");
    cmn_config_free(cfg);

    cfg = parse("[server]\nlisten = x\n[sever]\nlisten = y\n", &err);
    assert_non_null(cfg);
    assert_int_equal(cmn_config_check_known(cfg, known, &err), CMN_INVALID);
    assert_string_equal(err.msg, "t.ini:4: [sever]: unknown section");
    cmn_config_free(cfg);

    cfg = parse("[ids]\nclient_secret = z\n", &err);
    assert_non_null(cfg);
    assert_int_equal(cmn_config_check_known(cfg, known, &err), CMN_INVALID);
    assert_string_equal(err.msg,
                        "t.ini:2: [ids] client_secret: use client_secret_file "
                        "= path (secrets are never inline)");
    cmn_config_free(cfg);
}

static void
test_config_errf(void **state)
{
    struct cmn_err err = {{0}};
    struct cmn_config *cfg = parse("[redis]\n\nurl = http://x\n", &err);

    (void)state;
    assert_non_null(cfg);
    cmn_config_errf(cfg, "redis", "url", &err, "expected %s",
                    "redis://host:port/db");
    assert_string_equal(err.msg,
                        "t.ini:3: [redis] url: expected redis://host:port/db");
    cmn_config_errf(cfg, "redis", "master", &err, "needed with sentinels");
    assert_string_equal(err.msg,
                        "t.ini: [redis] master: needed with sentinels");
    cmn_config_free(cfg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_sample_parses),
        cmocka_unit_test(test_config_inline_comment),
        cmocka_unit_test(test_config_indented_is_not_continuation),
        cmocka_unit_test(test_config_duplicate_key),
        cmocka_unit_test(test_config_syntax_error),
        cmocka_unit_test(test_config_long_line_and_nul),
        cmocka_unit_test(test_config_too_big),
        cmocka_unit_test(test_config_empty_ok),
        cmocka_unit_test(test_config_str),
        cmocka_unit_test(test_config_long),
        cmocka_unit_test(test_config_bool),
        cmocka_unit_test(test_config_list),
        cmocka_unit_test(test_config_secret_relative_path),
        cmocka_unit_test(test_config_secret_inline_refused),
        cmocka_unit_test(test_config_check_known),
        cmocka_unit_test(test_config_errf),
    };

    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
