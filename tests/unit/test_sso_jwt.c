/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_sso_jwt.c - IdS access-token checks: claims, user selection, and
 * full verification (RS256 signature, then iss, aud, exp and a pinned
 * alg) against tokens signed here with a fresh RSA key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "cmn_seal.h"
#include "sso_jwt.h"

static EVP_PKEY *key, *other_key;
static char pub_path[64], other_path[64];

static EVP_PKEY *
make_key(void)
{
    return EVP_RSA_gen(2048);
}

static void
write_pub(EVP_PKEY *k, char *path)
{
    snprintf(path, 64, "/tmp/test_sso_jwt.XXXXXX");
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    PEM_write_PUBKEY(f, k);
    fclose(f);
}

static int
setup(void **state)
{
    (void)state;
    key = make_key();
    other_key = make_key();
    write_pub(key, pub_path);
    write_pub(other_key, other_path);
    return key != NULL && other_key != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    unlink(pub_path);
    unlink(other_path);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other_key);
    return 0;
}

static char *
b64(const void *data, size_t len)
{
    char *out = malloc(4 * len / 3 + 4);
    cmn_base64url_encode(data, len, out, 4 * len / 3 + 4);
    return out;
}

/* header.payload.signature with RS256 by k (or a garbage signature) */
static char *
sign(EVP_PKEY *k, const char *header, const char *payload)
{
    char *h = b64(header, strlen(header));
    char *p = b64(payload, strlen(payload));
    size_t n = strlen(h) + strlen(p) + 2;
    char *input = malloc(n);
    unsigned char sig[512];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    snprintf(input, n, "%s.%s", h, p);
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k), 1);
    assert_int_equal(
        EVP_DigestSign(md, sig, &siglen, (unsigned char *)input, strlen(input)),
        1);
    EVP_MD_CTX_free(md);
    char *s = b64(sig, siglen);
    size_t total = strlen(input) + strlen(s) + 2;
    char *jwt = malloc(total);
    snprintf(jwt, total, "%s.%s", input, s);
    free(h);
    free(p);
    free(input);
    free(s);
    return jwt;
}

static char *
claims_json(const char *iss, const char *aud, long long exp)
{
    char *buf = malloc(512);
    snprintf(buf, 512,
             "{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"s1\",\"upn\":"
             "\"agent1@example.com\",\"exp\":%lld,\"iat\":%lld}",
             iss, aud, exp, cmn_wall_sec());
    return buf;
}

static int
verify(const char *pubkey, const char *jwt)
{
    struct cmn_err err = {{0}};
    struct sso_jwt_verifier *v =
        sso_jwt_verifier_new(pubkey, "ids.test", "fsc", &err);
    if (v == NULL) {
        fail_msg("verifier: %s", err.msg);
    }
    json_t *claims = NULL;
    int rc = sso_jwt_verify(v, jwt, &claims, &err);
    if (rc == CMN_OK) {
        assert_string_equal(json_string_value(json_object_get(claims, "upn")),
                            "agent1@example.com");
    } else {
        assert_null(claims);
        assert_true(err.msg[0] != '\0');
    }
    json_decref(claims);
    sso_jwt_verifier_free(v);
    return rc;
}

static void
test_sso_jwt_valid_token_verifies(void **state)
{
    (void)state;
    char *c = claims_json("ids.test", "fsc", cmn_wall_sec() + 600);
    char *jwt = sign(key, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", c);
    assert_int_equal(verify(pub_path, jwt), CMN_OK);
    free(jwt);
    free(c);
}

static void
test_sso_jwt_refuses_wrong_key_iss_aud_exp(void **state)
{
    (void)state;
    const char *hdr = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    char *c = claims_json("ids.test", "fsc", cmn_wall_sec() + 600);
    char *jwt = sign(other_key, hdr, c);
    assert_int_equal(verify(pub_path, jwt), CMN_DENIED); /* other signer */
    free(jwt);
    free(c);

    c = claims_json("ids.evil", "fsc", cmn_wall_sec() + 600);
    jwt = sign(key, hdr, c);
    assert_int_equal(verify(pub_path, jwt), CMN_DENIED); /* issuer */
    free(jwt);
    free(c);

    c = claims_json("ids.test", "someone-else", cmn_wall_sec() + 600);
    jwt = sign(key, hdr, c);
    assert_int_equal(verify(pub_path, jwt), CMN_DENIED); /* audience */
    free(jwt);
    free(c);

    c = claims_json("ids.test", "fsc", cmn_wall_sec() - 3600);
    jwt = sign(key, hdr, c);
    assert_int_equal(verify(pub_path, jwt), CMN_DENIED); /* expired */
    free(jwt);
    free(c);
}

static void
test_sso_jwt_refuses_alg_none_and_tampering(void **state)
{
    (void)state;
    char *c = claims_json("ids.test", "fsc", cmn_wall_sec() + 600);
    char *h = b64("{\"alg\":\"none\"}", strlen("{\"alg\":\"none\"}"));
    char *p = b64(c, strlen(c));
    char unsigned_jwt[1024];
    snprintf(unsigned_jwt, sizeof(unsigned_jwt), "%s.%s.", h, p);
    assert_int_equal(verify(pub_path, unsigned_jwt), CMN_DENIED);
    free(h);
    free(p);

    /* a valid token whose payload is swapped for another user's */
    char *jwt = sign(key, "{\"alg\":\"RS256\"}", c);
    char *other = claims_json("ids.test", "fsc", cmn_wall_sec() + 9999);
    char *forged = sign(key, "{\"alg\":\"RS256\"}", other);
    char *dot1 = strchr(jwt, '.'), *dot2 = strrchr(jwt, '.');
    char *fdot1 = strchr(forged, '.'), *fdot2 = strrchr(forged, '.');
    char mixed[2048];
    snprintf(mixed, sizeof(mixed), "%.*s%.*s%s", (int)(dot1 - jwt), jwt,
             (int)(fdot2 - fdot1), fdot1, dot2);
    assert_int_equal(verify(pub_path, mixed), CMN_DENIED);
    assert_int_equal(verify(pub_path, "not-a-jwt"), CMN_DENIED);
    free(jwt);
    free(forged);
    free(other);
    free(c);
}

static void
test_sso_jwt_claims_and_user(void **state)
{
    (void)state;
    json_t *claims = NULL;
    char user[64];
    char *c = claims_json("ids.test", "fsc", 1);
    char *jwt = sign(key, "{\"alg\":\"RS256\"}", c);

    assert_int_equal(sso_jwt_claims(jwt, &claims), CMN_OK);
    assert_int_equal(sso_jwt_user(claims, "upn", user, sizeof(user)), CMN_OK);
    assert_string_equal(user, "agent1@example.com");
    /* a missing claim falls back to sub */
    assert_int_equal(sso_jwt_user(claims, "user_id", user, sizeof(user)),
                     CMN_OK);
    assert_string_equal(user, "s1");
    json_decref(claims);
    /* an encrypted (5-part JWE) or garbled token has no readable claims */
    assert_int_equal(sso_jwt_claims("a.b.c.d.e", &claims), CMN_INVALID);
    assert_int_equal(sso_jwt_claims("x.!!!.y", &claims), CMN_INVALID);
    assert_int_equal(sso_jwt_claims(NULL, &claims), CMN_INVALID);
    /* a user name with a space or control character is refused */
    json_t *bad = json_pack("{s:s}", "upn", "evil user");
    assert_int_equal(sso_jwt_user(bad, "upn", user, sizeof(user)),
                     CMN_NOTFOUND);
    json_decref(bad);
    free(jwt);
    free(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sso_jwt_valid_token_verifies),
        cmocka_unit_test(test_sso_jwt_refuses_wrong_key_iss_aud_exp),
        cmocka_unit_test(test_sso_jwt_refuses_alg_none_and_tampering),
        cmocka_unit_test(test_sso_jwt_claims_and_user),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
