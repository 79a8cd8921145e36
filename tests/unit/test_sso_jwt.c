/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_sso_jwt.c - IdS access tokens: reading them (or finding them
 * opaque), IdS's public key in every form it may come in, and the check
 * (RS256 signature, pinned alg, exp, then iss and aud when configured)
 * against tokens signed here with fresh RSA keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

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

static const struct sso_jwt_expect expect_ids = {"ids.test", "fsc"};

/* CMN_OK when jwt passes sso_jwt_check with the key in pubkey (and the
 * claims come back); CMN_DENIED otherwise, with a reason and no claims. */
static int
verify_as(const char *pubkey, const char *jwt,
          const struct sso_jwt_expect *want, enum sso_jwt_verdict *verdict)
{
    struct cmn_err err = {{0}};
    EVP_PKEY *k = sso_jwt_key_load(pubkey, &err);
    if (k == NULL) {
        fail_msg("key: %s", err.msg);
    }
    json_t *claims = NULL;
    enum sso_jwt_verdict v = sso_jwt_check(k, jwt, want, &claims, &err);
    if (verdict != NULL) {
        *verdict = v;
    }
    if (v == SSO_JWT_VALID) {
        assert_string_equal(json_string_value(json_object_get(claims, "upn")),
                            "agent1@example.com");
    } else {
        assert_null(claims);
        assert_true(err.msg[0] != '\0');
    }
    json_decref(claims);
    EVP_PKEY_free(k);
    return v == SSO_JWT_VALID ? CMN_OK : CMN_DENIED;
}

static int
verify(const char *pubkey, const char *jwt)
{
    return verify_as(pubkey, jwt, &expect_ids, NULL);
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
    enum sso_jwt_verdict v;
    /* another signer: a bad signature (what makes fsc-sso look for a
     * rotated key), not a refusal on the claims */
    assert_int_equal(verify_as(pub_path, jwt, &expect_ids, &v), CMN_DENIED);
    assert_int_equal(v, SSO_JWT_BAD_SIGNATURE);
    /* ...and good with the signer's own key */
    assert_int_equal(verify(other_path, jwt), CMN_OK);
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
    assert_int_equal(verify_as(pub_path, jwt, &expect_ids, &v), CMN_DENIED);
    assert_int_equal(v, SSO_JWT_REFUSED); /* expired */
    free(jwt);
    free(c);

    /* no exp at all */
    jwt = sign(key, hdr,
               "{\"iss\":\"ids.test\",\"aud\":\"fsc\",\"upn\":\"agent1@"
               "example.com\"}");
    assert_int_equal(verify(pub_path, jwt), CMN_DENIED);
    free(jwt);
}

/* iss and aud are checked only when configured: Cisco's tokens carry no
 * aud, and [ids] jwt_issuer / jwt_audience are optional. */
static void
test_sso_jwt_iss_and_aud_only_when_configured(void **state)
{
    (void)state;
    const struct sso_jwt_expect none = {NULL, NULL};
    const struct sso_jwt_expect iss_only = {"ids.test", NULL};
    char *c = claims_json("ids.other", "someone", cmn_wall_sec() + 600);
    char *jwt = sign(key, "{\"alg\":\"RS256\"}", c);

    assert_int_equal(verify_as(pub_path, jwt, &none, NULL), CMN_OK);
    assert_int_equal(verify_as(pub_path, jwt, NULL, NULL), CMN_OK);
    assert_int_equal(verify_as(pub_path, jwt, &iss_only, NULL), CMN_DENIED);
    free(jwt);
    free(c);
}

/* Cisco IdS's header is {"cty":"JWT","alg":"RS256"} over a plain claims
 * payload: accepted. Another content type is not a token of ours. */
static void
test_sso_jwt_cisco_header_cty_jwt(void **state)
{
    (void)state;
    char *c = claims_json("ids.test", "fsc", cmn_wall_sec() + 600);
    char *jwt = sign(key, "{\"cty\":\"JWT\",\"alg\":\"RS256\"}", c);
    json_t *claims = NULL;

    assert_int_equal(verify(pub_path, jwt), CMN_OK);
    assert_int_equal(sso_jwt_claims(jwt, &claims), CMN_OK);
    json_decref(claims);
    free(jwt);
    jwt = sign(key, "{\"cty\":\"text/plain\",\"alg\":\"RS256\"}", c);
    assert_int_equal(sso_jwt_claims(jwt, &claims), CMN_INVALID);
    assert_null(claims);
    assert_int_equal(verify(pub_path, jwt), CMN_DENIED);
    free(jwt);
    free(c);
}

/* The algorithm is pinned to RS256 (liboauth2 1.4.5.4 cannot do this):
 * a header claiming RS384 or PS256 is refused even though the bytes are
 * an RS256 signature by the right key, and so is an unknown crit. */
static void
test_sso_jwt_alg_pinned_and_crit_refused(void **state)
{
    (void)state;
    static const char *const headers[] = {
        "{\"alg\":\"RS384\"}",
        "{\"alg\":\"PS256\"}",
        "{\"alg\":\"HS256\"}",
        "{\"alg\":\"RS256\",\"crit\":[\"exp\"]}",
        "{\"alg\":\"RS256\",\"alg\":\"RS256\"}", /* duplicate member */
    };
    char *c = claims_json("ids.test", "fsc", cmn_wall_sec() + 600);

    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        char *jwt = sign(key, headers[i], c);
        enum sso_jwt_verdict v;
        assert_int_equal(verify_as(pub_path, jwt, &expect_ids, &v), CMN_DENIED);
        assert_int_equal(v, SSO_JWT_REFUSED);
        free(jwt);
    }
    free(c);
}

static char *
read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 8192);
    size_t n = fread(buf, 1, 8191, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* What IdS may serve for its key: a PEM public key, a certificate (its
 * /x509 endpoint), PKCS#1, or bare base64 DER. Short RSA keys, other key
 * types and garbage are refused. */
static void
test_sso_jwt_key_formats(void **state)
{
    (void)state;
    struct cmn_err err = {{0}};
    char *pem = read_file(pub_path);
    EVP_PKEY *k = sso_jwt_key_parse(pem, strlen(pem), &err);
    assert_non_null(k);
    assert_int_equal(EVP_PKEY_eq(k, key), 1);
    EVP_PKEY_free(k);

    /* bare base64 of the DER: the PEM without its armour lines */
    char *body = strchr(pem, '\n') + 1;
    *strstr(body, "-----END") = '\0';
    k = sso_jwt_key_parse(body, strlen(body), &err);
    assert_non_null(k);
    assert_int_equal(EVP_PKEY_eq(k, key), 1);
    EVP_PKEY_free(k);
    free(pem);

    /* PKCS#1 "RSA PUBLIC KEY" */
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    OSSL_ENCODER_CTX *ectx = OSSL_ENCODER_CTX_new_for_pkey(
        key, EVP_PKEY_PUBLIC_KEY, "PEM", "type-specific", NULL);
    assert_int_equal(OSSL_ENCODER_to_bio(ectx, bio), 1);
    OSSL_ENCODER_CTX_free(ectx);
    long n = BIO_get_mem_data(bio, &data);
    assert_non_null(memmem(data, (size_t)n, "BEGIN RSA PUBLIC KEY", 20));
    k = sso_jwt_key_parse(data, (size_t)n, &err);
    assert_non_null(k);
    assert_int_equal(EVP_PKEY_eq(k, key), 1);
    EVP_PKEY_free(k);
    BIO_free(bio);

    /* a self-signed certificate for the key */
    X509 *cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                               (const unsigned char *)"ids.test", -1, -1, 0);
    X509_set_issuer_name(cert, X509_get_subject_name(cert));
    assert_true(X509_sign(cert, key, EVP_sha256()) > 0);
    bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(bio, cert), 1);
    n = BIO_get_mem_data(bio, &data);
    k = sso_jwt_key_parse(data, (size_t)n, &err);
    assert_non_null(k);
    assert_int_equal(EVP_PKEY_eq(k, key), 1);
    EVP_PKEY_free(k);
    BIO_free(bio);
    X509_free(cert);

    /* refused: a 1024-bit RSA key, an EC key, garbage, nothing */
    EVP_PKEY *small = EVP_RSA_gen(1024);
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    EVP_PKEY *refused[] = {small, ec};
    for (size_t i = 0; i < 2; i++) {
        bio = BIO_new(BIO_s_mem());
        assert_int_equal(PEM_write_bio_PUBKEY(bio, refused[i]), 1);
        n = BIO_get_mem_data(bio, &data);
        err.msg[0] = '\0';
        assert_null(sso_jwt_key_parse(data, (size_t)n, &err));
        assert_true(err.msg[0] != '\0');
        BIO_free(bio);
        EVP_PKEY_free(refused[i]);
    }
    assert_null(
        sso_jwt_key_parse("-----BEGIN PUBLIC KEY-----\nAAAA\n", 31, &err));
    assert_null(sso_jwt_key_parse("{\"keys\":[]}", 11, &err));
    assert_null(sso_jwt_key_parse("", 0, &err));
    assert_null(sso_jwt_key_load("/nonexistent/key.pem", &err));
    assert_non_null(strstr(err.msg, "/nonexistent/key.pem"));

    char fp[17], fp2[17];
    sso_jwt_key_fingerprint(key, fp);
    sso_jwt_key_fingerprint(other_key, fp2);
    assert_int_equal(strlen(fp), 16);
    assert_string_not_equal(fp, fp2);
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
test_sso_jwt_claims_readable_or_opaque(void **state)
{
    (void)state;
    json_t *claims = NULL;
    char *c = claims_json("ids.test", "fsc", 1);
    char *jwt = sign(key, "{\"alg\":\"RS256\"}", c);
    struct sso_jwt j;

    assert_int_equal(sso_jwt_claims(jwt, &claims), CMN_OK);
    assert_string_equal(json_string_value(json_object_get(claims, "upn")),
                        "agent1@example.com");
    json_decref(claims);
    assert_int_equal(sso_jwt_parse(jwt, &j), CMN_OK);
    assert_string_equal(json_string_value(json_object_get(j.header, "alg")),
                        "RS256");
    sso_jwt_cleanup(&j);
    /* an encrypted (5-part JWE), garbled or non-object token has no
     * readable claims: opaque */
    assert_int_equal(sso_jwt_claims("a.b.c.d.e", &claims), CMN_INVALID);
    assert_int_equal(sso_jwt_claims("x.!!!.y", &claims), CMN_INVALID);
    assert_int_equal(sso_jwt_claims("opaque-token", &claims), CMN_INVALID);
    assert_int_equal(sso_jwt_claims(NULL, &claims), CMN_INVALID);
    char *arr = sign(key, "{\"alg\":\"RS256\"}", "[1,2]");
    assert_int_equal(sso_jwt_claims(arr, &claims), CMN_INVALID);
    assert_null(claims);
    free(arr);
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
        cmocka_unit_test(test_sso_jwt_iss_and_aud_only_when_configured),
        cmocka_unit_test(test_sso_jwt_cisco_header_cty_jwt),
        cmocka_unit_test(test_sso_jwt_alg_pinned_and_crit_refused),
        cmocka_unit_test(test_sso_jwt_key_formats),
        cmocka_unit_test(test_sso_jwt_claims_readable_or_opaque),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
