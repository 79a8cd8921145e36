/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_keys.h - IdS's token-signing key and the check every access token
 * goes through ([ids] verify = auto | required | off).
 *
 * From IdS 12.6(2) tokens are RS256-signed and IdS serves the public key
 * at GET /ids/v1/keys/token/public (client credentials; Finesse developer
 * guide, "Client-side token validation"). Before 12.6(2) IdS encrypts its
 * tokens: nothing in them can be read here. The key is fetched at start
 * and again when a token's signature is unknown (IdS rotated its key; at
 * most once a minute), the previous key is kept through a rotation, and
 * the keys are cached in Redis, sealed, for the other instance. With
 * [ids] jwt_public_key_file the file's key is the only one. */
#ifndef SSO_KEYS_H
#define SSO_KEYS_H

#include <jansson.h>

#include "sso_config.h"
#include "sso_store.h"

struct sso_keys;

/* What a token turned out to be. */
enum sso_keys_result {
    SSO_KEYS_VERIFIED,   /* signature, exp, iss/aud checked: *claims */
    SSO_KEYS_UNVERIFIED, /* a JWT read unchecked (verify = off, or auto and
                            IdS serves no key): *claims */
    SSO_KEYS_OPAQUE,     /* unreadable (encrypted): no claims, no user */
    SSO_KEYS_REFUSED,    /* must not be used; err says why */
};

/* The key set for one configuration generation. Loads
 * jwt_public_key_file when set (NULL with err when it is not an RSA
 * key); fetches nothing yet. store must outlive the key set. */
struct sso_keys *sso_keys_new(const struct sso_config *cfg,
                              struct sso_store *store, struct cmn_err *err);
void sso_keys_free(struct sso_keys *k);

/* At start (and reload): fetch the key from IdS (falling back to the copy
 * cached in Redis) and log once which verification mode is in effect and
 * why. Blocks up to [ids] timeout_ms. */
void sso_keys_start(struct sso_keys *k);

/* Check an access token IdS just handed over. May fetch IdS's key (on an
 * unknown signature, rate-limited): call from a job thread. *claims (when
 * claims != NULL) is set for VERIFIED and UNVERIFIED (json_decref). */
enum sso_keys_result sso_keys_check(struct sso_keys *k, const char *token,
                                    json_t **claims, struct cmn_err *err);

/* False when verify = required and no key is held; why says what is
 * missing. Never blocks. */
bool sso_keys_ready(struct sso_keys *k, char *why, size_t why_size);
/* True (once per retry period) when the caller should run
 * sso_keys_retry on a job thread: the instance is waiting for a key. */
bool sso_keys_retry_due(struct sso_keys *k);
/* Fetch again after a failed start (verify = required); blocks. */
void sso_keys_retry(struct sso_keys *k);

const char *sso_verify_mode_str(enum sso_verify_mode m);

#endif
