/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_throttle.c - sign-in attempt counting; see cti_throttle.h. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_hash.h"
#include "cti_throttle.h"

#define SLOTS   4096 /* keys tracked at once */
#define PROBE   8    /* slots tried per key (open addressing) */
#define KEY_MAX 160

struct slot {
    char key[KEY_MAX]; /* "" = free */
    unsigned attempts; /* counted in this window (in flight included) */
    unsigned inflight; /* counted, outcome not known yet */
    long long window_start_ms;
    long long locked_until_ms;
};

struct cti_throttle {
    pthread_mutex_t mu;
    unsigned max_failures;
    long window_ms;
    long lockout_ms;
    struct cmn_hash_key hash_key;
    size_t nslots;
    struct slot slots[];
};

struct cti_throttle *
cti_throttle_new_sized(unsigned max_failures, long window_ms, long lockout_ms,
                       size_t slots)
{
    struct cti_throttle *t;

    if (slots == 0) {
        return NULL;
    }
    t = calloc(1, sizeof(*t) + slots * sizeof(struct slot));
    if (t == NULL) {
        return NULL;
    }
    if (cmn_hash_key_init(&t->hash_key) != CMN_OK) {
        free(t);
        return NULL;
    }
    pthread_mutex_init(&t->mu, NULL);
    t->max_failures = max_failures;
    t->window_ms = window_ms;
    t->lockout_ms = lockout_ms;
    t->nslots = slots;
    return t;
}

struct cti_throttle *
cti_throttle_new(unsigned max_failures, long window_ms, long lockout_ms)
{
    return cti_throttle_new_sized(max_failures, window_ms, lockout_ms, SLOTS);
}

void
cti_throttle_free(struct cti_throttle *t)
{
    if (t != NULL) {
        pthread_mutex_destroy(&t->mu);
        free(t);
    }
}

static bool
window_over(const struct cti_throttle *t, const struct slot *s, long long now)
{
    return now - s->window_start_ms >= t->window_ms;
}

/* How welcome a slot is for a new key, lower is better: free, stale
 * (window over, not locked, nothing in flight), counting (the same but
 * within its window); -1 for a slot that must never be taken: locked or
 * with attempts in flight. mu held. */
static int
rank(const struct cti_throttle *t, const struct slot *s, long long now)
{
    if (s->key[0] == '\0') {
        return 0;
    }
    if (now < s->locked_until_ms || s->inflight > 0) {
        return -1;
    }
    return window_over(t, s, now) ? 1 : 2;
}

static struct slot *
probe(struct cti_throttle *t, const char *key, unsigned i)
{
    uint64_t h = cmn_siphash(&t->hash_key, key, strlen(key));

    return &t->slots[(h + i) % t->nslots];
}

/* The key's slot; with create, the most welcome slot of its probe run
 * (oldest window among equals) is taken for it. NULL when absent and not
 * created, or when every slot of the run must be kept. mu held. */
static struct slot *
find(struct cti_throttle *t, const char *key, long long now, bool create)
{
    unsigned n = t->nslots < PROBE ? (unsigned)t->nslots : PROBE;
    struct slot *victim = NULL;

    for (unsigned i = 0; i < n; i++) {
        struct slot *s = probe(t, key, i);
        if (strcmp(s->key, key) == 0) {
            return s;
        }
    }
    if (!create) {
        return NULL;
    }
    for (unsigned i = 0; i < n; i++) {
        struct slot *s = probe(t, key, i);
        int r = rank(t, s, now);
        if (r < 0) {
            continue;
        }
        if (victim == NULL || r < rank(t, victim, now) ||
            (r == rank(t, victim, now) &&
             s->window_start_ms < victim->window_start_ms)) {
            victim = s;
        }
    }
    if (victim != NULL) {
        memset(victim, 0, sizeof(*victim));
        snprintf(victim->key, sizeof(victim->key), "%s", key);
        victim->window_start_ms = now;
    }
    return victim;
}

enum cti_throttle_verdict
cti_throttle_attempt(struct cti_throttle *t, const char *key, long long now_ms,
                     long long *retry_after_ms)
{
    enum cti_throttle_verdict v = CTI_THROTTLE_GO;
    struct slot *s;

    *retry_after_ms = 0;
    if (t == NULL || t->max_failures == 0) {
        return CTI_THROTTLE_GO;
    }
    pthread_mutex_lock(&t->mu);
    s = find(t, key, now_ms, true);
    if (s == NULL) {
        /* every slot of the run holds a lock or an attempt in flight */
        *retry_after_ms = t->window_ms;
        v = CTI_THROTTLE_FULL;
    } else if (now_ms < s->locked_until_ms &&
               s->attempts - s->inflight >= t->max_failures) {
        *retry_after_ms = s->locked_until_ms - now_ms;
        v = CTI_THROTTLE_LOCKED;
    } else if (now_ms < s->locked_until_ms) {
        /* provisional: the attempts that reached the limit are still in
         * flight and may all succeed (a shift starting behind one NAT);
         * asking again in a second costs nothing, 300 s would */
        *retry_after_ms = 1000;
        v = CTI_THROTTLE_PENDING;
    } else {
        if (s->inflight == 0 &&
            (window_over(t, s, now_ms) || s->attempts >= t->max_failures)) {
            /* a new window: the old one is over, or its lockout is */
            s->window_start_ms = now_ms;
            s->attempts = 0;
        }
        if (s->attempts >= t->max_failures) {
            /* the last allowed attempts are still in flight: their
             * outcome decides; try again in a moment */
            *retry_after_ms = 1000;
            v = CTI_THROTTLE_PENDING;
        } else {
            s->attempts++;
            s->inflight++;
            if (s->attempts >= t->max_failures) {
                /* provisional: a success clears it, a refund lifts it */
                s->locked_until_ms = now_ms + t->lockout_ms;
            }
        }
    }
    pthread_mutex_unlock(&t->mu);
    return v;
}

/* The slot of an attempt that got GO (its key cannot have been evicted
 * while in flight; a success may have cleared it). mu held. */
static struct slot *
in_flight(struct cti_throttle *t, const char *key)
{
    struct slot *s = find(t, key, 0, false);

    return s != NULL && s->inflight > 0 ? s : NULL;
}

void
cti_throttle_attempt_failed(struct cti_throttle *t, const char *key)
{
    if (t == NULL || t->max_failures == 0) {
        return;
    }
    pthread_mutex_lock(&t->mu);
    struct slot *s = in_flight(t, key);
    if (s != NULL) {
        s->inflight--;
    }
    pthread_mutex_unlock(&t->mu);
}

void
cti_throttle_attempt_refund(struct cti_throttle *t, const char *key)
{
    if (t == NULL || t->max_failures == 0) {
        return;
    }
    pthread_mutex_lock(&t->mu);
    struct slot *s = in_flight(t, key);
    if (s != NULL) {
        s->inflight--;
        if (s->attempts > 0) {
            s->attempts--;
        }
        if (s->attempts < t->max_failures) {
            s->locked_until_ms = 0;
        }
    }
    pthread_mutex_unlock(&t->mu);
}

void
cti_throttle_clear(struct cti_throttle *t, const char *key)
{
    if (t == NULL) {
        return;
    }
    pthread_mutex_lock(&t->mu);
    struct slot *s = find(t, key, 0, false);
    if (s != NULL) {
        memset(s, 0, sizeof(*s));
    }
    pthread_mutex_unlock(&t->mu);
}
