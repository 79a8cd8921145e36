/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_rate.c - token buckets per key in a fixed table; see cmn_rate.h. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_hash.h"
#include "cmn_rate.h"

#define PROBE   8
#define KEY_MAX 64

struct bucket {
    char key[KEY_MAX]; /* "" = free */
    double tokens;
    long long last_ms; /* tokens as of then */
};

struct cmn_rate {
    pthread_mutex_t mu;
    double per_ms;
    double burst;
    struct cmn_hash_key hash_key;
    size_t n;
    struct bucket b[];
};

struct cmn_rate *
cmn_rate_new(long per_minute, long burst, size_t slots)
{
    struct cmn_rate *r;

    if (slots == 0) {
        return NULL;
    }
    r = calloc(1, sizeof(*r) + slots * sizeof(struct bucket));
    if (r == NULL) {
        return NULL;
    }
    if (cmn_hash_key_init(&r->hash_key) != CMN_OK) {
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    r->n = slots;
    cmn_rate_set(r, per_minute, burst);
    return r;
}

void
cmn_rate_free(struct cmn_rate *r)
{
    if (r != NULL) {
        pthread_mutex_destroy(&r->mu);
        free(r);
    }
}

void
cmn_rate_set(struct cmn_rate *r, long per_minute, long burst)
{
    pthread_mutex_lock(&r->mu);
    r->per_ms = per_minute > 0 ? (double)per_minute / 60000.0 : 0.0;
    r->burst = burst > 0 ? (double)burst : 1.0;
    pthread_mutex_unlock(&r->mu);
}

/* Tokens of b at now, refilled (capped at burst). mu held. */
static double
refilled(const struct cmn_rate *r, const struct bucket *b, long long now)
{
    double t = b->tokens + (double)(now - b->last_ms) * r->per_ms;

    return t > r->burst ? r->burst : t;
}

static struct bucket *
slot(struct cmn_rate *r, uint64_t h, unsigned i)
{
    return &r->b[(h + i) % r->n];
}

int
cmn_rate_take(struct cmn_rate *r, const char *key, long long now_ms,
              long long *retry_after_ms)
{
    struct bucket *b = NULL, *idle = NULL;
    unsigned probe = r->n < PROBE ? (unsigned)r->n : PROBE;
    uint64_t h;
    int rc = CMN_OK;

    *retry_after_ms = 0;
    pthread_mutex_lock(&r->mu);
    if (r->per_ms <= 0.0) {
        pthread_mutex_unlock(&r->mu);
        return CMN_OK;
    }
    h = cmn_siphash(&r->hash_key, key, strlen(key));
    for (unsigned i = 0; i < probe && b == NULL; i++) {
        struct bucket *s = slot(r, h, i);
        if (strncmp(s->key, key, KEY_MAX - 1) == 0 && s->key[0] != '\0') {
            b = s;
        } else if (idle == NULL &&
                   (s->key[0] == '\0' || refilled(r, s, now_ms) >= r->burst)) {
            idle = s; /* free, or a key that has been quiet long enough */
        }
    }
    if (b == NULL && idle != NULL) {
        b = idle;
        snprintf(b->key, sizeof(b->key), "%s", key);
        b->tokens = r->burst;
        b->last_ms = now_ms;
    }
    if (b == NULL) {
        /* every slot of the run holds a key still being limited */
        *retry_after_ms = (long long)(1.0 / r->per_ms) + 1;
        rc = CMN_AGAIN;
    } else {
        b->tokens = refilled(r, b, now_ms);
        b->last_ms = now_ms;
        if (b->tokens >= 1.0) {
            b->tokens -= 1.0;
        } else {
            *retry_after_ms = (long long)((1.0 - b->tokens) / r->per_ms) + 1;
            rc = CMN_AGAIN;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}
