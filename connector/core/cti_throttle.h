/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_throttle.h - sign-in throttling: after too many failed password
 * sign-ins for one agent ID, or from one client address, further attempts
 * are refused for a while without asking Finesse. This stops password
 * guessing through the connector and keeps an attacker from locking the
 * agent's account in Finesse/CUCM (which locks after a few failures).
 *
 * Counting is per connector host, in memory: a fixed window of `window_ms`
 * per key; `max_failures` failures in it lock the key until the window
 * ends plus `lockout_ms`. A successful sign-in clears the agent's count.
 * Keys are hashed into a fixed table; when it is full the entry whose
 * window is oldest is reused (a flood of fresh keys cannot grow memory). */
#ifndef CTI_THROTTLE_H
#define CTI_THROTTLE_H

#include <stdbool.h>

struct cti_throttle;

/* max_failures 0: never locks (cti_throttle_locked is always false). */
struct cti_throttle *cti_throttle_new(unsigned max_failures, long window_ms,
                                      long lockout_ms);
void cti_throttle_free(struct cti_throttle *t);

/* True when key is locked now; *retry_after_ms then says for how long. */
bool cti_throttle_locked(struct cti_throttle *t, const char *key,
                         long long now_ms, long long *retry_after_ms);
void cti_throttle_failed(struct cti_throttle *t, const char *key,
                         long long now_ms);
void cti_throttle_clear(struct cti_throttle *t, const char *key);

#endif
