/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_jwt.h - IdS access tokens as compact JWS: reading the header and
 * claims (pure, no I/O), parsing IdS's public key, and checking a token
 * against one key: RS256 signature, then exp and, when configured, iss
 * and aud.
 *
 * Why OpenSSL EVP and not liboauth2's verifier: liboauth2 1.4.5.4 (with
 * cjose 0.6.2.1 on OpenSSL 3.0, bookworm) does verify RS256 correctly (its
 * "padding check failed" is what a wrong key or a changed signature
 * gives), but it never compares iss or aud to expected values, cannot
 * restrict the algorithm (an RS384 or PS256 token passes an RS256
 * configuration), keeps a process-wide verify-result cache keyed by the
 * token alone (a token accepted under one key is then accepted under
 * another), and with that cache off logs the whole token at error level.
 * Here the algorithm is pinned, every claim check is ours, nothing is
 * cached by token and no token is ever logged. */
#ifndef SSO_JWT_H
#define SSO_JWT_H

#include <jansson.h>
#include <openssl/evp.h>

#include "cmn.h"

/* A compact JWS split and decoded, signature not checked. */
struct sso_jwt {
    json_t *header; /* JSON object */
    json_t *claims; /* JSON object */
};

/* CMN_OK when token is a compact JWS (three base64url parts) whose header
 * and payload are JSON objects; the header's cty may be absent or "JWT"
 * (Cisco IdS sends {"cty":"JWT","alg":"RS256"} with a plain claims
 * payload). CMN_INVALID otherwise: to us such a token is opaque (IdS
 * before 12.6(2) encrypts its tokens: five parts). Free with
 * sso_jwt_cleanup (also after a failure). */
int sso_jwt_parse(const char *token, struct sso_jwt *out) CMN_NODISCARD;
void sso_jwt_cleanup(struct sso_jwt *jwt);

/* The claims alone (json_decref), as sso_jwt_parse. */
int sso_jwt_claims(const char *token, json_t **claims) CMN_NODISCARD;

/* An RSA public key (2048 bits or more) from what IdS serves: a PEM
 * "PUBLIC KEY" or "RSA PUBLIC KEY", a PEM "CERTIFICATE" (its /x509
 * endpoint), or the base64 DER of a SubjectPublicKeyInfo without armour.
 * NULL with err otherwise. EVP_PKEY_free. */
EVP_PKEY *sso_jwt_key_parse(const char *text, size_t len, struct cmn_err *err);
/* The same from a file (the public key is not a secret: no mode rule). */
EVP_PKEY *sso_jwt_key_load(const char *path, struct cmn_err *err);
/* 16 hex characters of the SHA-256 of the key's DER, for logs. */
void sso_jwt_key_fingerprint(EVP_PKEY *key, char out[17]);

/* What a token must carry besides a good signature; NULL = not checked. */
struct sso_jwt_expect {
    const char *issuer;
    const char *audience; /* aud may be a string or an array */
};

enum sso_jwt_verdict {
    SSO_JWT_VALID,         /* *claims set (when claims != NULL) */
    SSO_JWT_BAD_SIGNATURE, /* not signed by this key: maybe a rotation */
    SSO_JWT_REFUSED,       /* wrong alg, crit, expired, iss or aud */
};

/* Header alg must be RS256 (whatever else it says, only RS256 with key is
 * tried), no crit, signature by key, exp present and not past (60 s skew),
 * then iss and aud as want says. err tells which check failed. Thread-safe
 * (the key is only read). */
enum sso_jwt_verdict sso_jwt_check(EVP_PKEY *key, const char *token,
                                   const struct sso_jwt_expect *want,
                                   json_t **claims, struct cmn_err *err);

#endif
