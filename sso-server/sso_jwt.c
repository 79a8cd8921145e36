/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_jwt.c - IdS access-token claims, and optional full verification
 * (RS256 signature with OpenSSL EVP; iss, aud and exp checked here). */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_seal.h"
#include "sso_jwt.h"

#define SSO_JWT_SKEW_S 60

int
sso_jwt_claims(const char *jwt, json_t **claims)
{
    const char *dot1, *dot2;
    unsigned char *payload = NULL;
    size_t len = 0;
    json_error_t jerr;

    *claims = NULL;
    if (jwt == NULL) {
        return CMN_INVALID;
    }
    dot1 = strchr(jwt, '.');
    dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
    if (dot1 == NULL || dot2 == NULL || strchr(dot2 + 1, '.') != NULL) {
        return CMN_INVALID; /* not a compact JWS (an encrypted JWE has 5) */
    }
    if (cmn_base64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &payload,
                             &len) != CMN_OK) {
        return CMN_INVALID;
    }
    *claims =
        json_loadb((const char *)payload, len, JSON_REJECT_DUPLICATES, &jerr);
    free(payload);
    if (*claims == NULL || !json_is_object(*claims)) {
        json_decref(*claims);
        *claims = NULL;
        return CMN_INVALID;
    }
    return CMN_OK;
}

static bool
usable_name(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > 255) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

int
sso_jwt_user(const json_t *claims, const char *claim, char *out,
             size_t out_size)
{
    const char *names[] = {claim, "sub"};

    for (size_t i = 0; i < CMN_ARRAY_LEN(names); i++) {
        const char *v =
            names[i] != NULL
                ? json_string_value(json_object_get(claims, names[i]))
                : NULL;
        if (usable_name(v) && strlen(v) < out_size) {
            memcpy(out, v, strlen(v) + 1);
            return CMN_OK;
        }
    }
    return CMN_NOTFOUND;
}

struct sso_jwt_verifier {
    EVP_PKEY *key; /* read-only after load: EVP verification with a
                      per-call context is thread-safe */
    char *issuer;
    char *audience;
};

struct sso_jwt_verifier *
sso_jwt_verifier_new(const char *pubkey_file, const char *issuer,
                     const char *audience, struct cmn_err *err)
{
    struct sso_jwt_verifier *v = calloc(1, sizeof(*v));
    FILE *f;

    if (v == NULL) {
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    /* the public key is not a secret: no permission rule */
    f = fopen(pubkey_file, "r");
    if (f != NULL) {
        v->key = PEM_read_PUBKEY(f, NULL, NULL, NULL);
        fclose(f);
    }
    v->issuer = strdup(issuer);
    v->audience = strdup(audience);
    if (v->key == NULL || EVP_PKEY_base_id(v->key) != EVP_PKEY_RSA ||
        v->issuer == NULL || v->audience == NULL) {
        cmn_err_set(err, "%s: not a readable RSA public key (PEM)",
                    pubkey_file);
        sso_jwt_verifier_free(v);
        return NULL;
    }
    return v;
}

void
sso_jwt_verifier_free(struct sso_jwt_verifier *v)
{
    if (v == NULL) {
        return;
    }
    EVP_PKEY_free(v->key);
    free(v->issuer);
    free(v->audience);
    free(v);
}

/* RS256 over "header.payload" (RFC 7515 §5.2). */
static bool
signature_ok(const struct sso_jwt_verifier *v, const char *jwt)
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
        EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, v->key) == 1 &&
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

int
sso_jwt_verify(struct sso_jwt_verifier *v, const char *jwt, json_t **claims,
               struct cmn_err *err)
{
    json_t *payload = NULL;
    json_t *hdr = NULL;
    int rc = CMN_DENIED;

    if (claims != NULL) {
        *claims = NULL;
    }
    /* alg is pinned: whatever the header says ("none", HS256 with the
     * public key as secret...), only RS256 with our key is tried */
    const char *dot = jwt != NULL ? strchr(jwt, '.') : NULL;
    unsigned char *h = NULL;
    size_t hlen = 0;
    if (dot == NULL ||
        cmn_base64url_decode(jwt, (size_t)(dot - jwt), &h, &hlen) != CMN_OK) {
        cmn_err_set(err, "not a JWT");
        return CMN_DENIED;
    }
    json_error_t jerr;
    hdr = json_loadb((const char *)h, hlen, 0, &jerr);
    free(h);
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    if (alg == NULL || strcmp(alg, "RS256") != 0) {
        cmn_err_set(err, "alg refused (RS256 only)");
        goto out;
    }

    if (!signature_ok(v, jwt) || sso_jwt_claims(jwt, &payload) != CMN_OK) {
        cmn_err_set(err, "bad signature");
        goto out;
    }
    const char *iss = json_string_value(json_object_get(payload, "iss"));
    if (iss == NULL || strcmp(iss, v->issuer) != 0) {
        cmn_err_set(err, "issuer mismatch");
        goto out;
    }
    if (!audience_matches(json_object_get(payload, "aud"), v->audience)) {
        cmn_err_set(err, "audience mismatch");
        goto out;
    }
    json_t *exp = json_object_get(payload, "exp");
    if (!json_is_integer(exp) ||
        json_integer_value(exp) + SSO_JWT_SKEW_S < cmn_wall_sec()) {
        cmn_err_set(err, "expired");
        goto out;
    }
    if (claims != NULL) {
        *claims = payload;
        payload = NULL;
    }
    rc = CMN_OK;
out:
    json_decref(hdr);
    json_decref(payload);
    return rc;
}
