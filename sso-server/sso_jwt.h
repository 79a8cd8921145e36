/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_jwt.h - reading IdS access tokens (JWT): the claims, and where
 * configured a full check: RS256 signature with the IdS public key, then
 * iss, aud and exp against expected values.
 *
 * Why not liboauth2: its "pubkey" verifier (1.4.5.4 with cjose on
 * OpenSSL 3, bookworm) rejects valid RS256 signatures ("padding check
 * failed", seen with tokens PyJWT verifies), and it never binds iss or aud
 * to expected values anyway. RS256 with OpenSSL EVP is a few lines. */
#ifndef SSO_JWT_H
#define SSO_JWT_H

#include <jansson.h>

#include "cmn.h"

/* Claims of a compact JWS without checking its signature: used only to
 * learn the user name and expiry from a token that IdS just handed us over
 * TLS. *claims is a JSON object (json_decref). CMN_INVALID if it is not a
 * JWT with a JSON object payload. */
int sso_jwt_claims(const char *jwt, json_t **claims) CMN_NODISCARD;

/* The user named by claim (e.g. "upn"), falling back to "sub", copied to
 * out. CMN_NOTFOUND when neither is a usable string (1..255 printable
 * characters). */
int sso_jwt_user(const json_t *claims, const char *claim, char *out,
                 size_t out_size) CMN_NODISCARD;

struct sso_jwt_verifier;

/* Public key (PEM file) plus the issuer and audience to insist on. */
struct sso_jwt_verifier *sso_jwt_verifier_new(const char *pubkey_file,
                                              const char *issuer,
                                              const char *audience,
                                              struct cmn_err *err);
void sso_jwt_verifier_free(struct sso_jwt_verifier *v);

/* Signature, alg RS256, iss, aud (string or array), exp > now - 60 s skew.
 * CMN_OK, or CMN_DENIED with err saying which check failed. *claims (if
 * not NULL) gets the verified claims. Thread-safe. */
int sso_jwt_verify(struct sso_jwt_verifier *v, const char *jwt, json_t **claims,
                   struct cmn_err *err) CMN_NODISCARD;

#endif
