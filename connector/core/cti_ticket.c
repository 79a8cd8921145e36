/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_ticket.c - single-use event-stream tickets; see cti_ticket.h. A
 * ticket is found by its SHA-256 (random input: nobody can aim at a slot)
 * and compared in constant time; only the hash is kept. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_seal.h"
#include "cmn_secret.h"
#include "cti_ticket.h"

#define PROBE 16

struct ticket {
    unsigned char hash[32]; /* SHA-256 of the ticket */
    char token[CTI_TOKEN_LEN];
    long long issued_ms;
    long long expires_ms; /* 0: free */
};

struct cti_tickets {
    pthread_mutex_t mu;
    long ttl_ms;
    struct ticket slots[CTI_TICKETS_MAX];
};

struct cti_tickets *
cti_tickets_new(long ttl_ms)
{
    struct cti_tickets *t = calloc(1, sizeof(*t));

    if (t != NULL) {
        pthread_mutex_init(&t->mu, NULL);
        t->ttl_ms = ttl_ms;
    }
    return t;
}

void
cti_tickets_free(struct cti_tickets *t)
{
    if (t != NULL) {
        cmn_wipe(t->slots, sizeof(t->slots));
        pthread_mutex_destroy(&t->mu);
        free(t);
    }
}

static size_t
index_of(const unsigned char hash[32])
{
    size_t i = 0;

    for (int k = 0; k < 8; k++) {
        i = (i << 8) | hash[k];
    }
    return i % CTI_TICKETS_MAX;
}

static bool
live(const struct ticket *s, long long now)
{
    return s->expires_ms != 0 && now < s->expires_ms;
}

static void
drop(struct ticket *s)
{
    cmn_wipe(s, sizeof(*s));
}

/* The token's oldest live ticket once it holds CTI_TICKETS_PER_TOKEN,
 * else NULL. mu held. */
static struct ticket *
token_over_cap(struct cti_tickets *t, const char *token, long long now)
{
    struct ticket *oldest = NULL;
    unsigned n = 0;

    for (size_t i = 0; i < CTI_TICKETS_MAX; i++) {
        struct ticket *s = &t->slots[i];
        if (live(s, now) && strcmp(s->token, token) == 0) {
            n++;
            if (oldest == NULL || s->issued_ms < oldest->issued_ms) {
                oldest = s;
            }
        }
    }
    return n >= CTI_TICKETS_PER_TOKEN ? oldest : NULL;
}

int
cti_tickets_issue(struct cti_tickets *t, const char *token, long long now_ms,
                  char ticket[CTI_TICKET_LEN])
{
    unsigned char hash[32];
    struct ticket *slot = NULL, *old;
    size_t at;

    if (cmn_random_id(ticket, CTI_TICKET_LEN, 32) != CMN_OK) {
        return CMN_ERR;
    }
    cmn_sha256(ticket, strlen(ticket), hash);
    at = index_of(hash);
    pthread_mutex_lock(&t->mu);
    old = token_over_cap(t, token, now_ms);
    if (old != NULL) {
        drop(old); /* its oldest: a tab that never used it */
    }
    for (size_t i = 0; i < PROBE && slot == NULL; i++) {
        struct ticket *s = &t->slots[(at + i) % CTI_TICKETS_MAX];
        if (!live(s, now_ms)) {
            slot = s;
        }
    }
    if (slot != NULL) {
        memcpy(slot->hash, hash, sizeof(hash));
        snprintf(slot->token, sizeof(slot->token), "%s", token);
        slot->issued_ms = now_ms;
        slot->expires_ms = now_ms + t->ttl_ms;
    }
    pthread_mutex_unlock(&t->mu);
    if (slot == NULL) {
        cmn_wipe(ticket, CTI_TICKET_LEN);
        return CMN_AGAIN;
    }
    return CMN_OK;
}

int
cti_tickets_redeem(struct cti_tickets *t, const char *ticket, long long now_ms,
                   char token[CTI_TOKEN_LEN])
{
    unsigned char hash[32];
    int rc = CMN_NOTFOUND;
    size_t at;

    if (ticket == NULL || strlen(ticket) != CTI_TICKET_LEN - 1) {
        return CMN_NOTFOUND;
    }
    cmn_sha256(ticket, strlen(ticket), hash);
    at = index_of(hash);
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < PROBE; i++) {
        struct ticket *s = &t->slots[(at + i) % CTI_TICKETS_MAX];
        if (s->expires_ms != 0 && cmn_ct_equal(s->hash, hash, sizeof(hash))) {
            if (live(s, now_ms)) {
                memcpy(token, s->token, CTI_TOKEN_LEN);
                rc = CMN_OK;
            }
            drop(s); /* spent, or expired: gone either way */
            break;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}
