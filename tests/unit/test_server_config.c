/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_server_config.c - the [server] log level and TLS pair both daemons
 * read through cmn_server_config: a certificate is public (0644 is how
 * admins keep them), its key is a secret (0600). */
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

#include "cmn_server_config.h"

static struct cmn_config *
parse(const char *text, struct cmn_err *err)
{
    return cmn_config_parse("t.ini", text, strlen(text), err);
}

static void
test_server_config_log_level(void **state)
{
    struct cmn_err err = {{0}};
    enum cmn_log_level level = CMN_LOG_ERR;
    struct cmn_config *c;
    (void)state;

    c = parse("[server]\nlisten = x\n", &err);
    assert_int_equal(cmn_config_log_level(c, "server", &level, &err), CMN_OK);
    assert_int_equal(level, CMN_LOG_INFO); /* default */
    cmn_config_free(c);
    c = parse("[server]\nlog_level = debug\n", &err);
    assert_int_equal(cmn_config_log_level(c, "server", &level, &err), CMN_OK);
    assert_int_equal(level, CMN_LOG_DEBUG);
    cmn_config_free(c);
    c = parse("[server]\nlog_level = loud\n", &err);
    assert_int_equal(cmn_config_log_level(c, "server", &level, &err),
                     CMN_INVALID);
    assert_non_null(strstr(err.msg, "t.ini:2: [server] log_level:"));
    cmn_config_free(c);
}

static void
test_server_config_tls_pair(void **state)
{
    struct cmn_err err = {{0}};
    struct cmn_secret *cert = NULL, *key = NULL;
    struct cmn_config *c;
    char path[] = "/tmp/test_server_config.XXXXXX";
    int fd = mkstemp(path);
    (void)state;

    assert_true(fd >= 0);
    assert_int_equal(write(fd, "PEM\n", 4), 4);
    close(fd);
    c = parse("[server]\nlisten = x\n", &err);
    assert_int_equal(cmn_config_tls(c, "server", &cert, &key, &err), CMN_OK);
    assert_null(cert);
    assert_null(key);
    cmn_config_free(c);
    char text[256];
    snprintf(text, sizeof(text), "[server]\ntls_cert_file = %s\n", path);
    c = parse(text, &err);
    assert_int_equal(cmn_config_tls(c, "server", &cert, &key, &err),
                     CMN_INVALID);
    assert_non_null(strstr(err.msg, "go together"));
    cmn_secret_free(cert);
    cmn_secret_free(key);
    cmn_config_free(c);
    cert = key = NULL;
    snprintf(text, sizeof(text),
             "[server]\ntls_cert_file = %s\ntls_key_file = %s\n", path, path);
    c = parse(text, &err);
    assert_int_equal(cmn_config_tls(c, "server", &cert, &key, &err), CMN_OK);
    assert_non_null(cert);
    assert_non_null(key);
    cmn_secret_free(cert);
    cmn_secret_free(key);
    cmn_config_free(c);
    unlink(path);
}

/* A file with this text and mode; path is a mkstemp template. */
static void
write_file(char *path, const char *text, mode_t mode)
{
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(chmod(path, mode), 0);
}

static void
test_server_config_tls_cert_public_key_secret(void **state)
{
    struct cmn_err err = {{0}};
    struct cmn_secret *cert = NULL, *key = NULL;
    struct cmn_config *c;
    char crt[] = "/tmp/test_server_config_crt.XXXXXX";
    char key_open[] = "/tmp/test_server_config_key.XXXXXX";
    char key_ok[] = "/tmp/test_server_config_key.XXXXXX";
    char text[512];
    (void)state;

    write_file(crt, "-----BEGIN CERTIFICATE-----\n", 0644);
    write_file(key_ok, "-----BEGIN PRIVATE KEY-----\n", 0600);
    write_file(key_open, "-----BEGIN PRIVATE KEY-----\n", 0644);

    /* a world-readable certificate with an owner-only key: fine */
    snprintf(text, sizeof(text),
             "[server]\ntls_cert_file = %s\ntls_key_file = %s\n", crt, key_ok);
    c = parse(text, &err);
    assert_int_equal(cmn_config_tls(c, "server", &cert, &key, &err), CMN_OK);
    assert_non_null(cert);
    assert_non_null(key);
    assert_string_equal((const char *)cert->data,
                        "-----BEGIN CERTIFICATE-----\n");
    cmn_secret_free(cert);
    cmn_secret_free(key);
    cmn_config_free(c);
    cert = key = NULL;

    /* a world-readable key: refused, naming the key's line and why */
    snprintf(text, sizeof(text),
             "[server]\ntls_cert_file = %s\ntls_key_file = %s\n", crt,
             key_open);
    c = parse(text, &err);
    assert_int_equal(cmn_config_tls(c, "server", &cert, &key, &err),
                     CMN_INVALID);
    assert_non_null(strstr(err.msg, "t.ini:3: [server] tls_key_file:"));
    assert_non_null(strstr(err.msg, "too open"));
    cmn_secret_free(cert);
    cmn_secret_free(key);
    cmn_config_free(c);
    cert = key = NULL;

    /* a certificate anyone may write to is no certificate to trust */
    assert_int_equal(chmod(crt, 0666), 0);
    snprintf(text, sizeof(text),
             "[server]\ntls_cert_file = %s\ntls_key_file = %s\n", crt, key_ok);
    c = parse(text, &err);
    assert_int_equal(cmn_config_tls(c, "server", &cert, &key, &err),
                     CMN_INVALID);
    assert_non_null(strstr(err.msg, "t.ini:2: [server] tls_cert_file:"));
    assert_non_null(strstr(err.msg, "writable"));
    cmn_secret_free(cert);
    cmn_secret_free(key);
    cmn_config_free(c);
    unlink(crt);
    unlink(key_ok);
    unlink(key_open);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_config_log_level),
        cmocka_unit_test(test_server_config_tls_pair),
        cmocka_unit_test(test_server_config_tls_cert_public_key_secret),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
