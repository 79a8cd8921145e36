/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sf_auth.h - Salesforce OAuth 2.0 JWT bearer flow (reference/salesforce.md
 * §2.5): an RS256 assertion signed with the connected app's key, exchanged
 * at <login_url>/services/oauth2/token for an access token and the org's
 * instance_url. The token is cached until a call reports 401; there is no
 * refresh token, the next call simply mints a new one. Neither the token
 * nor the assertion is ever logged. */
#ifndef SF_AUTH_H
#define SF_AUTH_H

#include <openssl/evp.h>

#include "cmn.h"
#include "cmn_secret.h"
#include "sf_config.h"

#define SF_TOKEN_MAX 4096 /* Salesforce tokens are ~112 chars */
#define SF_URL_MAX   512

/* What the token endpoint answered. */
struct sf_token_response {
    struct cmn_secret *access_token;
    char instance_url[SF_URL_MAX]; /* no trailing '/' */
};

/* Pure parser of a token-endpoint reply (status, body of len bytes, not
 * necessarily NUL-terminated). CMN_OK with out filled; otherwise out holds
 * nothing to free and err says why (the OAuth "error" and
 * "error_description", never the body verbatim):
 *   CMN_DENIED  400/401 (invalid_grant: app not pre-authorised, bad key,
 *               wrong user or audience): a configuration problem;
 *   CMN_AGAIN   429, 5xx: try later;
 *   CMN_INVALID anything else, or a 200 without a usable access_token and
 *               an https instance_url.
 * Release with sf_token_response_cleanup (safe after any result). */
int sf_token_response_parse(long status, const char *body, size_t len,
                            struct sf_token_response *out,
                            struct cmn_err *err) CMN_NODISCARD;
void sf_token_response_cleanup(struct sf_token_response *r);

/* Loads a PEM RSA private key (2048 bits or more). NULL with err on
 * failure. Free with EVP_PKEY_free. */
EVP_PKEY *sf_auth_load_key(const struct cmn_secret *pem, struct cmn_err *err);

/* The signed assertion header.claims.signature (base64url, RS256) with
 * {"iss":iss,"sub":sub,"aud":aud,"exp":exp}. *out is a secret: free with
 * cmn_secret_free. */
int sf_jwt_assertion(EVP_PKEY *key, const char *iss, const char *sub,
                     const char *aud, long long exp, struct cmn_secret **out,
                     struct cmn_err *err) CMN_NODISCARD;

struct sf_auth;

/* cfg (and the ini behind it) must outlive the result. Parses the key now
 * so a bad key fails at start-up. NULL with err on failure. */
struct sf_auth *sf_auth_new(const struct sf_config *cfg, struct cmn_err *err);
void sf_auth_free(struct sf_auth *a);

/* The current token and instance URL, minting one first when none is
 * cached. *token is a copy the caller frees with cmn_secret_free;
 * instance_url gets SF_URL_MAX bytes at most. Concurrent callers wait for
 * one mint. After a failed mint, calls within the next second fail the
 * same way without asking again (a wrong key must not hammer the login
 * server). Returns the sf_token_response_parse codes, or CMN_IO /
 * CMN_TIMEOUT when the login server could not be reached. Any thread. */
int sf_auth_token(struct sf_auth *a, struct cmn_secret **token,
                  char instance_url[SF_URL_MAX],
                  struct cmn_err *err) CMN_NODISCARD;

/* Forget the cached token after a 401. stale is the token that was
 * refused: when another thread already replaced it, nothing happens, so
 * a burst of 401s costs one mint. NULL forgets unconditionally. */
void sf_auth_invalidate(struct sf_auth *a, const struct cmn_secret *stale);

/* Tokens minted so far (tests, metrics). */
unsigned long sf_auth_mints(const struct sf_auth *a);

#endif
