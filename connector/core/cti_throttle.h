/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_throttle.h - sign-in throttling: after too many failed password
 * sign-ins for one agent ID, or from one client address, further attempts
 * are refused for a while without asking Finesse. This stops password
 * guessing through the connector and keeps an attacker from locking the
 * agent's account in Finesse/CUCM (which locks after a few failures).
 *
 * Counting is per connector host, in memory: a fixed window of `window_ms`
 * per key; `max_failures` attempts in it lock the key for `lockout_ms`.
 * An attempt is counted when it starts, before Finesse is asked, so a
 * burst of concurrent guesses gets no further than sequential ones: at
 * most max_failures of them are ever in flight or failed per window. An
 * attempt that turns out not to be a wrong password (Finesse unreachable)
 * is given back; a successful sign-in clears the key.
 *
 * Keys are placed in a fixed table by a hash keyed with a secret drawn at
 * start, so nobody can compute offline which keys share a slot with
 * someone else's. A locked key, or one with attempts in flight, is never
 * evicted: when a key finds no room (a flood of fresh keys filled its part
 * of the table) its attempt is refused (fail closed), and the table never
 * grows. */
#ifndef CTI_THROTTLE_H
#define CTI_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>

struct cti_throttle;

enum cti_throttle_verdict {
    CTI_THROTTLE_GO,      /* counted: ask Finesse */
    CTI_THROTTLE_LOCKED,  /* too many failures: refuse until the lockout
                             is over */
    CTI_THROTTLE_PENDING, /* the last attempts the window allows are in
                             flight, none known to have failed yet: refuse
                             for a second, their outcome decides (a burst
                             of good sign-ins from one address sees this,
                             never a lockout) */
    CTI_THROTTLE_FULL,    /* no room to count the key: refuse (fail closed) */
};

/* max_failures 0: never locks (every attempt is GO). NULL when out of
 * memory or without randomness for the hash key. */
struct cti_throttle *cti_throttle_new(unsigned max_failures, long window_ms,
                                      long lockout_ms);
/* The same with a table of `slots` entries (tests). */
struct cti_throttle *cti_throttle_new_sized(unsigned max_failures,
                                            long window_ms, long lockout_ms,
                                            size_t slots);
void cti_throttle_free(struct cti_throttle *t);

/* Count one attempt for key now, before it is tried. Every verdict but GO
 * sets *retry_after_ms (how long to wait before trying again). Any
 * thread. */
enum cti_throttle_verdict cti_throttle_attempt(struct cti_throttle *t,
                                               const char *key,
                                               long long now_ms,
                                               long long *retry_after_ms);
/* The attempt counted for key was a wrong password: it stays counted. */
void cti_throttle_attempt_failed(struct cti_throttle *t, const char *key);
/* The attempt proved nothing (Finesse unreachable, 5xx): given back. */
void cti_throttle_attempt_refund(struct cti_throttle *t, const char *key);
/* A sign-in succeeded: the key's count is gone. */
void cti_throttle_clear(struct cti_throttle *t, const char *key);

#endif
