/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_claims.h - which user an IdS access token names. A pure function of
 * the token's claims (no I/O), unit-tested and fuzzed.
 *
 * Cisco IdS (Finesse developer guide, "REST API with SSO - client
 * integration") puts the user inside `sub`, a JSON-encoded string:
 *   "sub": "{\"scope\":[...],\"rt\":\"...\",\"user_id\":\"sjefferson\",
 *            \"realm\":\"finesse.com\",\"upn\":\"sjefferson@...\"}"
 * Other issuers (and ids-sim's default shape) put it at the top level. */
#ifndef SSO_CLAIMS_H
#define SSO_CLAIMS_H

#include <jansson.h>

#include "cmn.h"

#define SSO_CLAIMS_DEFAULT_USER "user_id"

/* The user named by the claims, looked up in this order:
 *   1. the claim `user_claim` at the top level;
 *   2. when `sub` is a JSON object string: `user_claim` inside it, then
 *      `user_id`, then `upn`;
 *   3. a plain (non-JSON) `sub`.
 * A usable name is a string of 1..255 printable ASCII characters without
 * space, '"' or '\\'; anything else is skipped, never coerced (a numeric
 * user_id is not a name). A value that is itself a JSON object is never
 * taken as a name.
 *
 * Returns CMN_OK with the name copied to out (NUL-terminated);
 * CMN_INVALID when `sub` is (or looks like) a JSON object but names no
 * usable user: that is a sign-in failure, and why says so; CMN_NOTFOUND
 * when nothing names a user (why says so too). out_size must be at least 2.
 * Thread-safe, no allocation kept. */
int sso_claims_user(const json_t *claims, const char *user_claim, char *out,
                    size_t out_size, struct cmn_err *why) CMN_NODISCARD;

/* True for a string that can be a user name (the rule above). */
bool sso_claims_usable_name(const char *s);

#endif
