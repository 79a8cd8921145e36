/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_seal.c - cmn_seal: AES-GCM round trip and every way a record can be
 * altered, key files, random ids, SHA-256, base64url, constant-time
 * comparison. */
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

#include "cmn_seal.h"
#include "cmn_secret.h"

static const unsigned char key1[32] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
    0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
    0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};
static const char aad[] = "fsc:sess:abc";
static const char pt[] = "{\"user\":\"alice\",\"token\":\"t0k3n\"}";
/* Non-NULL marker: a failed open must reset *out to NULL. */
static unsigned char sentinel[1];

static char tmpdir[64];

static int
setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_seal.XXXXXX");
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

static struct cmn_seal *
new_seal(const unsigned char *key)
{
    struct cmn_err err = {{0}};
    struct cmn_seal *s = cmn_seal_new(key, 32, &err);

    assert_non_null(s);
    return s;
}

static void
seal_pt(struct cmn_seal *s, unsigned char **rec, size_t *len)
{
    assert_int_equal(
        cmn_seal_seal(s, aad, strlen(aad), pt, strlen(pt), rec, len), CMN_OK);
    assert_int_equal(*len, strlen(pt) + CMN_SEAL_OVERHEAD);
}

static void
free_pt(unsigned char *p, size_t len)
{
    cmn_wipe(p, len);
    free(p);
}

static void
test_seal_round_trip(void **state)
{
    struct cmn_seal *s = new_seal(key1);
    unsigned char *rec = NULL;
    unsigned char *rec2 = NULL;
    unsigned char *out = NULL;
    size_t len = 0;
    size_t len2 = 0;
    size_t out_len = 0;

    (void)state;
    seal_pt(s, &rec, &len);
    assert_int_equal(rec[0], 0x01);
    assert_int_equal(
        cmn_seal_open(s, aad, strlen(aad), rec, len, &out, &out_len), CMN_OK);
    assert_int_equal(out_len, strlen(pt));
    assert_string_equal((char *)out, pt);
    free_pt(out, out_len);

    /* A fresh nonce per record: the same input never seals the same. */
    seal_pt(s, &rec2, &len2);
    assert_int_equal(len, len2);
    assert_memory_not_equal(rec, rec2, len);
    free(rec);
    free(rec2);

    /* Empty plaintext and empty aad are fine. */
    assert_int_equal(cmn_seal_seal(s, NULL, 0, NULL, 0, &rec, &len), CMN_OK);
    assert_int_equal(len, CMN_SEAL_OVERHEAD);
    assert_int_equal(cmn_seal_open(s, NULL, 0, rec, len, &out, &out_len),
                     CMN_OK);
    assert_int_equal(out_len, 0);
    assert_int_equal(out[0], '\0');
    free(out);
    free(rec);
    cmn_seal_free(s);
}

static void
test_seal_tamper_every_region(void **state)
{
    struct cmn_seal *s = new_seal(key1);
    unsigned char *rec = NULL;
    unsigned char *out = NULL;
    size_t len = 0;
    size_t out_len = 0;
    /* version byte, nonce, first/last ciphertext byte, tag */
    size_t ct_end;
    size_t where[6];

    (void)state;
    seal_pt(s, &rec, &len);
    ct_end = len - 16;
    where[0] = 0;
    where[1] = 1;
    where[2] = 12;
    where[3] = 13;
    where[4] = ct_end - 1;
    where[5] = len - 1;
    for (size_t i = 0; i < CMN_ARRAY_LEN(where); i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            rec[where[i]] ^= (unsigned char)(1u << bit);
            out = sentinel;
            assert_int_equal(
                cmn_seal_open(s, aad, strlen(aad), rec, len, &out, &out_len),
                CMN_INVALID);
            assert_null(out);
            rec[where[i]] ^= (unsigned char)(1u << bit);
        }
    }
    /* Every byte of the tag. */
    for (size_t i = ct_end; i < len; i++) {
        rec[i] ^= 0x80;
        assert_int_equal(
            cmn_seal_open(s, aad, strlen(aad), rec, len, &out, &out_len),
            CMN_INVALID);
        rec[i] ^= 0x80;
    }
    /* Untouched it still opens. */
    assert_int_equal(
        cmn_seal_open(s, aad, strlen(aad), rec, len, &out, &out_len), CMN_OK);
    free_pt(out, out_len);
    free(rec);
    cmn_seal_free(s);
}

static void
test_seal_wrong_aad_key_truncated(void **state)
{
    static const unsigned char key2[32] = {1};
    struct cmn_seal *s = new_seal(key1);
    struct cmn_seal *s2 = new_seal(key2);
    unsigned char *rec = NULL;
    unsigned char *out = NULL;
    unsigned char *longer;
    size_t len = 0;
    size_t out_len = 0;

    (void)state;
    seal_pt(s, &rec, &len);
    /* A record copied under another Redis key does not open. */
    assert_int_equal(
        cmn_seal_open(s, "fsc:sess:abd", 12, rec, len, &out, &out_len),
        CMN_INVALID);
    assert_int_equal(cmn_seal_open(s, NULL, 0, rec, len, &out, &out_len),
                     CMN_INVALID);
    assert_int_equal(
        cmn_seal_open(s2, aad, strlen(aad), rec, len, &out, &out_len),
        CMN_INVALID);
    for (size_t cut = 0; cut < len; cut++) {
        assert_int_equal(
            cmn_seal_open(s, aad, strlen(aad), rec, cut, &out, &out_len),
            CMN_INVALID);
        assert_null(out);
    }
    longer = malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, rec, len);
    longer[len] = 0;
    assert_int_equal(
        cmn_seal_open(s, aad, strlen(aad), longer, len + 1, &out, &out_len),
        CMN_INVALID);
    assert_int_equal(
        cmn_seal_open(s, aad, strlen(aad), NULL, 0, &out, &out_len),
        CMN_INVALID);
    free(longer);
    free(rec);
    cmn_seal_free(s);
    cmn_seal_free(s2);
}

static void
test_seal_bad_key_len(void **state)
{
    struct cmn_err err = {{0}};

    (void)state;
    assert_null(cmn_seal_new(key1, 31, &err));
    assert_non_null(strstr(err.msg, "32 bytes"));
    assert_null(cmn_seal_new(key1, 33, &err));
    cmn_seal_free(NULL);
}

static const char *
key_file(const char *name, const void *data, size_t len, mode_t mode)
{
    static char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

/* s must open what a seal made with key1 sealed. */
static void
assert_same_key(struct cmn_seal *s)
{
    struct cmn_seal *ref = new_seal(key1);
    unsigned char *rec = NULL;
    unsigned char *out = NULL;
    size_t len = 0;
    size_t out_len = 0;

    seal_pt(ref, &rec, &len);
    assert_int_equal(
        cmn_seal_open(s, aad, strlen(aad), rec, len, &out, &out_len), CMN_OK);
    free_pt(out, out_len);
    free(rec);
    cmn_seal_free(ref);
}

static void
test_seal_load(void **state)
{
    static const char hex[] =
        "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F";
    struct cmn_err err = {{0}};
    struct cmn_seal *s;
    char buf[80];

    (void)state;
    s = cmn_seal_load(key_file("raw", key1, 32, 0600), &err);
    assert_non_null(s);
    assert_same_key(s);
    cmn_seal_free(s);

    s = cmn_seal_load(key_file("hex", hex, 64, 0600), &err);
    assert_non_null(s);
    assert_same_key(s);
    cmn_seal_free(s);

    snprintf(buf, sizeof(buf), "%s\n", hex);
    s = cmn_seal_load(key_file("hexnl", buf, 65, 0600), &err);
    assert_non_null(s);
    assert_same_key(s);
    cmn_seal_free(s);

    snprintf(buf, sizeof(buf), "%s\r\n", hex);
    s = cmn_seal_load(key_file("hexcrlf", buf, 66, 0600), &err);
    assert_non_null(s);
    cmn_seal_free(s);

    /* The permission rule of cmn_secret applies. */
    assert_null(cmn_seal_load(key_file("open", key1, 32, 0644), &err));
    assert_non_null(strstr(err.msg, "permissions 0644 are too open"));

    assert_null(cmn_seal_load(key_file("short", key1, 31, 0600), &err));
    assert_non_null(strstr(err.msg, "expected 32 raw bytes or 64 hex"));
    memcpy(buf, hex, 64);
    buf[10] = 'g';
    assert_null(cmn_seal_load(key_file("badhex", buf, 64, 0600), &err));
    assert_non_null(strstr(err.msg, "expected 32 raw bytes or 64 hex"));
    snprintf(buf, sizeof(buf), "%s\n\n", hex);
    assert_null(cmn_seal_load(key_file("hex2nl", buf, 66, 0600), &err));
}

static void
test_seal_random_ids(void **state)
{
    char ids[64][33];
    char small[32];
    unsigned char zero[64] = {0};
    unsigned char buf[64] = {0};

    (void)state;
    for (size_t i = 0; i < CMN_ARRAY_LEN(ids); i++) {
        assert_int_equal(cmn_random_id(ids[i], sizeof(ids[i]), 24), CMN_OK);
        assert_int_equal(strlen(ids[i]), 32);
        for (const char *p = ids[i]; *p; p++) {
            assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "abcdefghijklmnopqrstuvwxyz0123456789-_",
                                   *p));
        }
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(ids[i], ids[j]);
        }
    }
    /* 16 bytes -> 22 characters. */
    assert_int_equal(cmn_random_id(small, 23, 16), CMN_OK);
    assert_int_equal(strlen(small), 22);
    assert_int_equal(cmn_random_id(small, 22, 16), CMN_INVALID);
    assert_int_equal(cmn_random_id(small, sizeof(small), 0), CMN_INVALID);

    assert_int_equal(cmn_random_bytes(buf, sizeof(buf)), CMN_OK);
    assert_memory_not_equal(buf, zero, sizeof(buf));
    assert_int_equal(cmn_random_bytes(buf, 0), CMN_OK);
}

static void
test_seal_sha256(void **state)
{
    char hex[65];
    unsigned char raw[32];

    (void)state;
    cmn_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223"
                             "b00361a396177a9cb410ff61f20015ad");
    cmn_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb924"
                             "27ae41e4649b934ca495991b7852b855");
    cmn_sha256("abc", 3, raw);
    assert_int_equal(raw[0], 0xba);
    assert_int_equal(raw[31], 0xad);
}

static void
test_seal_base64url_vectors(void **state)
{
    /* RFC 4648 section 10, in the url alphabet without padding. */
    static const struct {
        const char *in;
        const char *out;
    } v[] = {
        {"", ""},
        {"f", "Zg"},
        {"fo", "Zm8"},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg"},
        {"fooba", "Zm9vYmE"},
        {"foobar", "Zm9vYmFy"},
    };
    static const unsigned char bin[] = {0xfb, 0xff, 0xfe};
    char out[32];
    unsigned char *dec = NULL;
    size_t dec_len = 0;

    (void)state;
    for (size_t i = 0; i < CMN_ARRAY_LEN(v); i++) {
        size_t n =
            cmn_base64url_encode(v[i].in, strlen(v[i].in), out, sizeof(out));
        assert_int_equal(n, strlen(v[i].out));
        assert_string_equal(out, v[i].out);
        assert_int_equal(
            cmn_base64url_decode(v[i].out, strlen(v[i].out), &dec, &dec_len),
            CMN_OK);
        assert_int_equal(dec_len, strlen(v[i].in));
        assert_memory_equal(dec, v[i].in, dec_len);
        free(dec);
    }
    /* The url alphabet: '-' and '_' where standard base64 has '+' '/'. */
    assert_int_equal(cmn_base64url_encode(bin, 3, out, sizeof(out)), 4);
    assert_string_equal(out, "-__-");
    /* Too small a buffer: nothing written. */
    assert_int_equal(cmn_base64url_encode("foo", 3, out, 4), 0);
    assert_int_equal(cmn_base64url_encode("foo", 3, out, 5), 4);

    /* Padding is accepted when it completes a group. */
    assert_int_equal(cmn_base64url_decode("Zg==", 4, &dec, &dec_len), CMN_OK);
    assert_int_equal(dec_len, 1);
    assert_int_equal(dec[0], 'f');
    free(dec);
    assert_int_equal(cmn_base64url_decode("Zm8=", 4, &dec, &dec_len), CMN_OK);
    free(dec);

    static const char *const bad[] = {
        "Z",     /* one char left over */
        "Zm9vY", /* 5 chars */
        "Zm+v",  /* standard alphabet */
        "Zm/v",  "Zm9 v", "Zm9\n", "Zg=",
        "Zg===", "Z===",  "Zm9v=", "Zh", /* non-zero leftover bits */
        "Zm9=",                          /* non-zero leftover bits */
        "=",
    };
    for (size_t i = 0; i < CMN_ARRAY_LEN(bad); i++) {
        dec = sentinel;
        assert_int_equal(
            cmn_base64url_decode(bad[i], strlen(bad[i]), &dec, &dec_len),
            CMN_INVALID);
        assert_null(dec);
    }
    /* An embedded NUL is an invalid character too. */
    assert_int_equal(cmn_base64url_decode("Zm\0v", 4, &dec, &dec_len),
                     CMN_INVALID);
}

static void
test_seal_base64url_round_trip(void **state)
{
    unsigned char data[200];
    char enc[300];
    unsigned char *dec = NULL;
    size_t dec_len = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (unsigned char)(i * 37 + 11);
    }
    for (size_t len = 0; len <= sizeof(data); len++) {
        size_t n = cmn_base64url_encode(data, len, enc, 4 * len / 3 + 2);
        assert_int_equal(n, (4 * len + 2) / 3);
        assert_int_equal(cmn_base64url_decode(enc, n, &dec, &dec_len), CMN_OK);
        assert_int_equal(dec_len, len);
        assert_memory_equal(dec, data, len);
        free(dec);
    }
}

static void
test_seal_hmac_sha256_rfc4231(void **state)
{
    /* RFC 4231 test case 2 */
    static const unsigned char want[32] = {
        0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24,
        0x26, 0x08, 0x95, 0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27,
        0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
    static const char data[] = "what do ya want for nothing?";
    unsigned char mac[32];
    (void)state;

    assert_int_equal(cmn_hmac_sha256("Jefe", 4, data, sizeof(data) - 1, mac),
                     CMN_OK);
    assert_memory_equal(mac, want, sizeof(want));
}

static void
test_seal_ct_equal(void **state)
{
    (void)state;
    assert_true(cmn_ct_equal("abc", "abc", 3));
    assert_false(cmn_ct_equal("abc", "abd", 3));
    assert_true(cmn_ct_equal("a", "b", 0));
    assert_true(cmn_ct_streq("token", "token"));
    assert_false(cmn_ct_streq("token", "tokem"));
    assert_false(cmn_ct_streq("token", "token2"));
    assert_false(cmn_ct_streq("", "x"));
    assert_true(cmn_ct_streq("", ""));
    assert_false(cmn_ct_streq(NULL, "x"));
    assert_false(cmn_ct_streq(NULL, NULL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seal_round_trip),
        cmocka_unit_test(test_seal_tamper_every_region),
        cmocka_unit_test(test_seal_wrong_aad_key_truncated),
        cmocka_unit_test(test_seal_bad_key_len),
        cmocka_unit_test(test_seal_load),
        cmocka_unit_test(test_seal_random_ids),
        cmocka_unit_test(test_seal_sha256),
        cmocka_unit_test(test_seal_hmac_sha256_rfc4231),
        cmocka_unit_test(test_seal_base64url_vectors),
        cmocka_unit_test(test_seal_base64url_round_trip),
        cmocka_unit_test(test_seal_ct_equal),
    };

    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
