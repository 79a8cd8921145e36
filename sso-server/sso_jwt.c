/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_jwt.c - compact JWS reading, IdS public-key parsing and the RS256
 * check with OpenSSL EVP (see sso_jwt.h for why not liboauth2). */
#include <openssl/bio.h>
#include <openssl/decoder.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmn_seal.h"
#include "sso_jwt.h"

#define SSO_JWT_SKEW_S   60
#define SSO_JWT_KEY_MAX  (64 * 1024)
#define SSO_JWT_MIN_BITS 2048

static json_t *
decode_object(const char *part, size_t len)
{
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    json_error_t jerr;
    json_t *obj;

    if (len == 0 || cmn_base64url_decode(part, len, &raw, &raw_len) != CMN_OK) {
        return NULL;
    }
    obj = json_loadb((const char *)raw, raw_len, JSON_REJECT_DUPLICATES, &jerr);
    free(raw);
    if (obj != NULL && !json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
    }
    return obj;
}

int
sso_jwt_parse(const char *token, struct sso_jwt *out)
{
    const char *dot1, *dot2;
    const char *cty;

    out->header = NULL;
    out->claims = NULL;
    if (token == NULL) {
        return CMN_INVALID;
    }
    dot1 = strchr(token, '.');
    dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
    if (dot1 == NULL || dot2 == NULL || strchr(dot2 + 1, '.') != NULL) {
        return CMN_INVALID; /* not a compact JWS (an encrypted JWE has 5) */
    }
    out->header = decode_object(token, (size_t)(dot1 - token));
    if (out->header == NULL) {
        return CMN_INVALID;
    }
    /* RFC 7519 §5.2 says cty "JWT" announces a nested JWT; Cisco IdS sets
     * it on a plain claims payload. Any other content type is not ours. */
    cty = json_string_value(json_object_get(out->header, "cty"));
    if (json_object_get(out->header, "cty") != NULL &&
        (cty == NULL || strcasecmp(cty, "JWT") != 0)) {
        sso_jwt_cleanup(out);
        return CMN_INVALID;
    }
    out->claims = decode_object(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (out->claims == NULL) {
        sso_jwt_cleanup(out);
        return CMN_INVALID;
    }
    return CMN_OK;
}

void
sso_jwt_cleanup(struct sso_jwt *jwt)
{
    json_decref(jwt->header);
    json_decref(jwt->claims);
    jwt->header = NULL;
    jwt->claims = NULL;
}

int
sso_jwt_claims(const char *token, json_t **claims)
{
    struct sso_jwt j;
    int rc = sso_jwt_parse(token, &j);

    *claims = NULL;
    if (rc == CMN_OK) {
        *claims = j.claims;
        j.claims = NULL;
    }
    sso_jwt_cleanup(&j);
    return rc;
}

/* --- IdS public key --- */

static EVP_PKEY *
decode_pubkey(const unsigned char *data, size_t len, const char *input_type)
{
    EVP_PKEY *key = NULL;
    OSSL_DECODER_CTX *dctx = OSSL_DECODER_CTX_new_for_pkey(
        &key, input_type, NULL, "RSA", EVP_PKEY_PUBLIC_KEY, NULL, NULL);

    if (dctx == NULL) {
        return NULL;
    }
    if (OSSL_DECODER_from_data(dctx, &data, &len) != 1) {
        EVP_PKEY_free(key);
        key = NULL;
    }
    OSSL_DECODER_CTX_free(dctx);
    return key;
}

static EVP_PKEY *
key_from_certificate(const char *text, size_t len)
{
    BIO *bio = BIO_new_mem_buf(text, (int)len);
    X509 *cert = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    EVP_PKEY *key = cert != NULL ? X509_get_pubkey(cert) : NULL;

    X509_free(cert);
    BIO_free(bio);
    return key;
}

/* Base64 (standard alphabet, whitespace allowed) of a DER
 * SubjectPublicKeyInfo. */
static EVP_PKEY *
key_from_bare_base64(const char *text, size_t len)
{
    unsigned char *clean = malloc(len + 1), *der = malloc(len + 1);
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    EVP_PKEY *key = NULL;
    size_t n = 0;
    int outl = 0, finl = 0;

    if (clean == NULL || der == NULL || ctx == NULL) {
        goto out;
    }
    for (size_t i = 0; i < len; i++) {
        if (strchr(" \t\r\n", text[i]) == NULL) {
            clean[n++] = (unsigned char)text[i];
        }
    }
    EVP_DecodeInit(ctx);
    if (n == 0 || n > (size_t)SSO_JWT_KEY_MAX ||
        EVP_DecodeUpdate(ctx, der, &outl, clean, (int)n) < 0 ||
        EVP_DecodeFinal(ctx, der + outl, &finl) != 1) {
        goto out;
    }
    key = decode_pubkey(der, (size_t)(outl + finl), "DER");
out:
    EVP_ENCODE_CTX_free(ctx);
    free(clean);
    free(der);
    return key;
}

EVP_PKEY *
sso_jwt_key_parse(const char *text, size_t len, struct cmn_err *err)
{
    static const char cert_armour[] = "-----BEGIN CERTIFICATE-----";
    EVP_PKEY *key = NULL;

    if (text == NULL || len == 0 || len > SSO_JWT_KEY_MAX) {
        cmn_err_set(err, "empty or oversized key");
        return NULL;
    }
    if (memmem(text, len, cert_armour, sizeof(cert_armour) - 1) != NULL) {
        key = key_from_certificate(text, len);
    } else if (memmem(text, len, "-----BEGIN", 10) != NULL) {
        key = decode_pubkey((const unsigned char *)text, len, "PEM");
    } else {
        key = key_from_bare_base64(text, len);
    }
    if (key == NULL || !EVP_PKEY_is_a(key, "RSA")) {
        cmn_err_set(err, "not an RSA public key (PEM, certificate or base64 "
                         "DER)");
        EVP_PKEY_free(key);
        return NULL;
    }
    if (EVP_PKEY_get_bits(key) < SSO_JWT_MIN_BITS) {
        cmn_err_set(err, "RSA key of %d bits refused (2048 or more)",
                    EVP_PKEY_get_bits(key));
        EVP_PKEY_free(key);
        return NULL;
    }
    return key;
}

EVP_PKEY *
sso_jwt_key_load(const char *path, struct cmn_err *err)
{
    char buf[SSO_JWT_KEY_MAX + 1];
    FILE *f = fopen(path, "r");
    size_t n;
    EVP_PKEY *key;
    struct cmn_err why = {{0}};

    if (f == NULL) {
        cmn_err_set(err, "%s: not a readable RSA public key (PEM)", path);
        return NULL;
    }
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    key = n <= SSO_JWT_KEY_MAX ? sso_jwt_key_parse(buf, n, &why) : NULL;
    if (key == NULL) {
        cmn_err_set(err, "%s: not a readable RSA public key (PEM): %s", path,
                    why.msg[0] != '\0' ? why.msg : "too large");
    }
    return key;
}

void
sso_jwt_key_fingerprint(EVP_PKEY *key, char out[17])
{
    unsigned char *der = NULL;
    char hex[65];
    int n = key != NULL ? i2d_PUBKEY(key, &der) : -1;

    if (n <= 0) {
        snprintf(out, 17, "-");
        return;
    }
    cmn_sha256_hex(der, (size_t)n, hex);
    OPENSSL_free(der);
    memcpy(out, hex, 16);
    out[16] = '\0';
}

/* --- checking a token --- */

/* RS256 over "header.payload" (RFC 7515 §5.2). */
static bool
signature_ok(EVP_PKEY *key, const char *jwt)
{
    const char *sig_dot = strrchr(jwt, '.');
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    EVP_MD_CTX *md;
    bool ok = false;

    if (sig_dot == NULL ||
        cmn_base64url_decode(sig_dot + 1, strlen(sig_dot + 1), &sig,
                             &sig_len) != CMN_OK) {
        return false;
    }
    md = EVP_MD_CTX_new();
    if (md != NULL &&
        EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
        EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)jwt,
                         (size_t)(sig_dot - jwt)) == 1) {
        ok = true;
    }
    EVP_MD_CTX_free(md);
    free(sig);
    return ok;
}

static bool
audience_matches(const json_t *aud, const char *want)
{
    if (json_is_string(aud)) {
        return strcmp(json_string_value(aud), want) == 0;
    }
    if (json_is_array(aud)) {
        size_t i;
        json_t *item;
        json_array_foreach(aud, i, item)
        {
            if (json_is_string(item) &&
                strcmp(json_string_value(item), want) == 0) {
                return true;
            }
        }
    }
    return false;
}

enum sso_jwt_verdict
sso_jwt_check(EVP_PKEY *key, const char *token,
              const struct sso_jwt_expect *want, json_t **claims,
              struct cmn_err *err)
{
    struct sso_jwt j;
    enum sso_jwt_verdict v = SSO_JWT_REFUSED;
    const char *alg;
    json_t *exp;

    if (claims != NULL) {
        *claims = NULL;
    }
    if (sso_jwt_parse(token, &j) != CMN_OK) {
        cmn_err_set(err, "not a JWT");
        goto out;
    }
    /* alg is pinned: whatever the header says ("none", HS256 with the
     * public key as secret, RS384, PS256...), only RS256 is accepted */
    alg = json_string_value(json_object_get(j.header, "alg"));
    if (alg == NULL || strcmp(alg, "RS256") != 0) {
        cmn_err_set(err, "alg refused (RS256 only)");
        goto out;
    }
    if (json_object_get(j.header, "crit") != NULL) {
        cmn_err_set(err, "crit header refused (no extension is understood)");
        goto out;
    }
    if (key == NULL || !signature_ok(key, token)) {
        cmn_err_set(err, "bad signature (not signed by IdS's key)");
        v = SSO_JWT_BAD_SIGNATURE;
        goto out;
    }
    exp = json_object_get(j.claims, "exp");
    if (!json_is_number(exp)) {
        cmn_err_set(err, "no exp claim");
        goto out;
    }
    if (json_number_value(exp) + SSO_JWT_SKEW_S < (double)cmn_wall_sec()) {
        cmn_err_set(err, "expired");
        goto out;
    }
    if (want != NULL && want->issuer != NULL) {
        const char *iss = json_string_value(json_object_get(j.claims, "iss"));
        if (iss == NULL || strcmp(iss, want->issuer) != 0) {
            cmn_err_set(err, "issuer mismatch");
            goto out;
        }
    }
    if (want != NULL && want->audience != NULL &&
        !audience_matches(json_object_get(j.claims, "aud"), want->audience)) {
        cmn_err_set(err, "audience mismatch");
        goto out;
    }
    v = SSO_JWT_VALID;
    if (claims != NULL) {
        *claims = j.claims;
        j.claims = NULL;
    }
out:
    sso_jwt_cleanup(&j);
    return v;
}
