/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_throttle.c - failed sign-in counting; see cti_throttle.h. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cti_throttle.h"

#define SLOTS   4096 /* keys tracked at once */
#define PROBE   8    /* slots tried per key (open addressing) */
#define KEY_MAX 160

struct slot {
    char key[KEY_MAX]; /* "" = free */
    unsigned failures;
    long long window_start_ms;
    long long locked_until_ms;
};

struct cti_throttle {
    pthread_mutex_t mu;
    unsigned max_failures;
    long window_ms;
    long lockout_ms;
    struct slot slots[SLOTS];
};

struct cti_throttle *
cti_throttle_new(unsigned max_failures, long window_ms, long lockout_ms)
{
    struct cti_throttle *t = calloc(1, sizeof(*t));

    if (t == NULL) {
        return NULL;
    }
    pthread_mutex_init(&t->mu, NULL);
    t->max_failures = max_failures;
    t->window_ms = window_ms;
    t->lockout_ms = lockout_ms;
    return t;
}

void
cti_throttle_free(struct cti_throttle *t)
{
    if (t != NULL) {
        pthread_mutex_destroy(&t->mu);
        free(t);
    }
}

static unsigned
hash(const char *s)
{
    unsigned h = 2166136261u; /* FNV-1a */

    for (; *s != '\0'; s++) {
        h = (h ^ (unsigned char)*s) * 16777619u;
    }
    return h;
}

/* How welcome a slot is for a new key: free, then stale (window over and
 * not locked), then live; among equals the oldest window. mu held. */
static int
rank(const struct cti_throttle *t, const struct slot *s, long long now)
{
    if (s->key[0] == '\0') {
        return 0;
    }
    return now >= s->locked_until_ms && now - s->window_start_ms >= t->window_ms
               ? 1
               : 2;
}

/* The key's slot; with create, the most welcome slot of its probe run is
 * taken for it. NULL when absent and not created. mu held. */
static struct slot *
find(struct cti_throttle *t, const char *key, long long now, bool create)
{
    unsigned h = hash(key);
    struct slot *victim = NULL;

    for (unsigned i = 0; i < PROBE; i++) {
        struct slot *s = &t->slots[(h + i) % SLOTS];
        if (strcmp(s->key, key) == 0) {
            return s;
        }
    }
    if (!create) {
        return NULL;
    }
    for (unsigned i = 0; i < PROBE; i++) {
        struct slot *s = &t->slots[(h + i) % SLOTS];
        if (victim == NULL || rank(t, s, now) < rank(t, victim, now) ||
            (rank(t, s, now) == rank(t, victim, now) &&
             s->window_start_ms < victim->window_start_ms)) {
            victim = s;
        }
    }
    memset(victim, 0, sizeof(*victim));
    snprintf(victim->key, sizeof(victim->key), "%s", key);
    victim->window_start_ms = now;
    return victim;
}

bool
cti_throttle_locked(struct cti_throttle *t, const char *key, long long now_ms,
                    long long *retry_after_ms)
{
    bool locked = false;

    *retry_after_ms = 0;
    if (t == NULL || t->max_failures == 0) {
        return false;
    }
    pthread_mutex_lock(&t->mu);
    struct slot *s = find(t, key, now_ms, false);
    if (s != NULL && now_ms < s->locked_until_ms) {
        locked = true;
        *retry_after_ms = s->locked_until_ms - now_ms;
    }
    pthread_mutex_unlock(&t->mu);
    return locked;
}

void
cti_throttle_failed(struct cti_throttle *t, const char *key, long long now_ms)
{
    if (t == NULL || t->max_failures == 0) {
        return;
    }
    pthread_mutex_lock(&t->mu);
    struct slot *s = find(t, key, now_ms, true);
    if (now_ms - s->window_start_ms >= t->window_ms &&
        now_ms >= s->locked_until_ms) {
        s->window_start_ms = now_ms; /* a new window */
        s->failures = 0;
    }
    if (++s->failures >= t->max_failures) {
        s->locked_until_ms = now_ms + t->lockout_ms;
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
