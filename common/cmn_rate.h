/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_rate.h - a rate limit per key (a client address): a token bucket of
 * `burst` tokens refilled at `per_minute`, in a fixed table placed by a
 * keyed hash (cmn_hash.h), so that nobody can aim keys at someone else's
 * slot. Only an idle key (its bucket full again) is ever evicted: a flood
 * of fresh keys cannot reset a limited one, and when a key finds no room
 * it is refused (fail closed). Memory is fixed at creation. Thread-safe. */
#ifndef CMN_RATE_H
#define CMN_RATE_H

#include "cmn.h"

struct cmn_rate;

/* per_minute 0: no limit (every take succeeds). NULL when out of memory
 * or without randomness. */
struct cmn_rate *cmn_rate_new(long per_minute, long burst, size_t slots);
void cmn_rate_free(struct cmn_rate *r);

/* New limits (a configuration reload); the counts so far stay. */
void cmn_rate_set(struct cmn_rate *r, long per_minute, long burst);

/* One token for key at now_ms: CMN_OK; CMN_AGAIN when the key is out of
 * tokens or finds no room in the table, *retry_after_ms then says when a
 * token will be there (at least 1). */
int cmn_rate_take(struct cmn_rate *r, const char *key, long long now_ms,
                  long long *retry_after_ms) CMN_NODISCARD;

#endif
