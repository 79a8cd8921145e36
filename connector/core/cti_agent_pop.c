/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_agent_pop.c - tabs' focus reports and the screen pops offered to
 * one tab at a time, claimed, then done (see cti_agent.h). The server
 * decides, not the browser: a Salesforce softphone is a cross-site frame,
 * and browsers that block third-party storage (Safari, private windows,
 * many enterprise policies) refuse the Web Locks and localStorage that
 * tabs would need to agree among themselves. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_log.h"
#include "cti_agent_int.h"

static struct pending_pop *
find_pop(const struct cti_agent *a, const char *dialog_id)
{
    for (struct pending_pop *p = a->pops; p != NULL; p = p->next) {
        if (strcmp(p->dialog_id, dialog_id) == 0) {
            return p;
        }
    }
    return NULL;
}

static bool
was_offered(const struct pending_pop *p, const char *stream)
{
    for (size_t i = 0; i < p->noffered; i++) {
        if (strcmp(p->offered[i], stream) == 0) {
            return true;
        }
    }
    return false;
}

/* The best tab not yet offered p, or NULL. */
static struct tab *
best_tab(const struct cti_agent *a, const struct pending_pop *p)
{
    struct tab *best = NULL;

    for (struct tab *t = a->tabs; t != NULL; t = t->next) {
        if (atomic_load(&t->closed) || !t->focus.can_pop ||
            was_offered(p, t->id)) {
            continue;
        }
        if (best == NULL || cti_tab_rank_cmp(&t->focus, &best->focus) < 0) {
            best = t;
        }
    }
    return best;
}

/* Offer p to the next tab in rank; false when no tab is left (p then waits
 * for a tab to attach). A tab whose stream refuses the write is marked
 * gone (the next broadcast drops it) and the one after it is tried. */
static bool
offer_next(struct cti_agent *a, struct pending_pop *p, long long now_ms)
{
    bool tried = false;

    p->current[0] = '\0';
    while (p->noffered < POP_OFFERS_MAX) {
        struct tab *t = best_tab(a, p);
        if (t == NULL) {
            return false;
        }
        tried = true;
        snprintf(p->offered[p->noffered++], CTI_STREAM_ID_MAX, "%s", t->id);
        if (cmn_http_stream_write(t->stream, p->frame, p->len) != CMN_OK) {
            atomic_store(&t->closed, true);
            continue;
        }
        snprintf(p->current, sizeof(p->current), "%s", t->id);
        p->offered_at_ms = now_ms;
        cmn_log_debug("event=pop_offered agent=%s dialog=%s tab=%llu "
                      "offer=%zu",
                      a->id, p->dialog_id, t->focus.seq, p->noffered);
        return true;
    }
    if (tried) {
        cmn_log_warn("event=pop_unclaimed agent=%s dialog=%s tabs_tried=%zu",
                     a->id, p->dialog_id, p->noffered);
    }
    return false;
}

/* The outstanding offer went nowhere: no offer, or its tab is gone. */
static bool
offer_lost(const struct cti_agent *a, const struct pending_pop *p)
{
    return p->current[0] == '\0' || agent_find_tab(a, p->current) == NULL;
}

static void
pop_free(struct pending_pop *p)
{
    free(p->frame);
    free(p);
}

int
cti_agent_tab_focus(struct cti_agent *a, const char *stream, bool focused,
                    bool visible, bool can_pop, long long now_ms)
{
    int rc = CMN_NOTFOUND;

    pthread_mutex_lock(&a->lock);
    struct tab *t = agent_find_tab(a, stream);
    if (t != NULL) {
        cti_tab_focus_report(&t->focus, focused, visible, can_pop, now_ms);
        cmn_log_debug("event=tab_focus agent=%s tab=%llu focused=%d visible=%d "
                      "can_pop=%d",
                      a->id, t->focus.seq, t->focus.focused, t->focus.visible,
                      t->focus.can_pop);
        rc = CMN_OK;
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

void
cti_agent_offer_pop(struct cti_agent *a, const char *dialog_id, json_t *pop,
                    long long now_ms)
{
    char *text = json_dumps(pop, JSON_COMPACT);
    struct pending_pop *p = NULL;
    size_t size;

    json_decref(pop);
    pthread_mutex_lock(&a->lock);
    /* the call may have ended while the pop was decided (a SOSL search) */
    if (text == NULL || agent_find_dialog(a, dialog_id) < 0 ||
        find_pop(a, dialog_id) != NULL || (p = calloc(1, sizeof(*p))) == NULL) {
        pthread_mutex_unlock(&a->lock);
        free(text);
        return;
    }
    snprintf(p->dialog_id, sizeof(p->dialog_id), "%s", dialog_id);
    size = strlen(text) + 32;
    p->frame = malloc(size);
    if (p->frame == NULL) {
        pthread_mutex_unlock(&a->lock);
        free(text);
        free(p);
        return;
    }
    p->len = (size_t)snprintf(p->frame, size, "event: pop\ndata: %s\n\n", text);
    free(text);
    p->next = a->pops;
    a->pops = p;
    if (!offer_next(a, p, now_ms)) {
        cmn_log_info("event=pop_waiting agent=%s dialog=%s reason=no_tab",
                     a->id, dialog_id);
    }
    pthread_mutex_unlock(&a->lock);
}

/* The tab's sequence number for the log ("tab=N", as pop_offered says),
 * 0 for a stream that has gone: stream ids stay out of the log. */
static unsigned long long
tab_seq(const struct cti_agent *a, const char *stream)
{
    const struct tab *t = agent_find_tab(a, stream);

    return t != NULL ? t->focus.seq : 0;
}

enum cti_pop_claim
cti_agent_pop_claim(struct cti_agent *a, const char *dialog_id,
                    const char *stream, bool done, long long now_ms)
{
    enum cti_pop_claim rc;
    unsigned long long seq = 0;
    bool fresh = false;

    pthread_mutex_lock(&a->lock);
    struct pending_pop *p = find_pop(a, dialog_id);
    if (p == NULL) {
        rc = CTI_POP_NONE;
    } else if (p->claimed_by[0] != '\0') {
        /* the same tab asking again (a retried request) keeps it; its done
         * counts even when its stream has just closed: it did pop */
        rc = strcmp(p->claimed_by, stream) == 0 ? CTI_POP_CLAIMED
                                                : CTI_POP_TAKEN;
        if (rc == CTI_POP_CLAIMED && done && !p->done) {
            p->done = true;
            fresh = true;
        }
    } else if (!was_offered(p, stream)) {
        rc = CTI_POP_NOT_OFFERED;
    } else if (agent_find_tab(a, stream) == NULL) {
        /* a claim from a stream that has closed (a tab closing with its
         * claim in flight, or one that reconnected under a new id): it
         * would hold the pop for nobody; the tick offers it on */
        rc = CTI_POP_STREAM_CLOSED;
    } else {
        /* a late claim by a tab whose offer timed out still wins while
         * nobody else has claimed: the pop happens once either way */
        snprintf(p->claimed_by, sizeof(p->claimed_by), "%s", stream);
        p->claimed_at_ms = now_ms;
        p->done = done;
        p->current[0] = '\0';
        rc = CTI_POP_CLAIMED;
        fresh = true;
    }
    if (fresh) {
        seq = tab_seq(a, stream);
    }
    pthread_mutex_unlock(&a->lock);
    if (fresh) {
        cmn_log_info("event=%s agent=%s dialog=%s tab=%llu",
                     done ? "pop_done" : "pop_claimed", a->id, dialog_id, seq);
    } else if (rc == CTI_POP_STREAM_CLOSED) {
        cmn_log_info("event=pop_claim_refused agent=%s dialog=%s "
                     "reason=stream_closed",
                     a->id, dialog_id);
    }
    return rc;
}

/* A claim not yet done whose tab is gone: true (the pop is free again).
 * The claimant's stream is written to (an SSE comment, ignored by the
 * page): a suspended stream notices a client that left only on a write
 * (cmn_httpd.h), and the heartbeat comes every 15 s, later than a ring. */
static bool
claim_lost(struct cti_agent *a, const struct pending_pop *p)
{
    static const char probe[] = ": pop\n\n";
    struct tab *t = agent_find_tab(a, p->claimed_by);

    if (t == NULL) {
        return true;
    }
    if (cmn_http_stream_write(t->stream, probe, sizeof(probe) - 1) != CMN_OK) {
        atomic_store(&t->closed, true);
        return true;
    }
    return false; /* or not yet known: the next tick looks again */
}

size_t
cti_agent_pops_tick(struct cti_agent *a, long long now_ms)
{
    size_t moved = 0;

    pthread_mutex_lock(&a->lock);
    for (struct pending_pop *p = a->pops; p != NULL; p = p->next) {
        if (p->claimed_by[0] != '\0') {
            if (p->done) {
                continue;
            }
            if (now_ms - p->claimed_at_ms >= CTI_POP_DONE_MS) {
                p->done = true; /* a client that never says done */
                continue;
            }
            if (!claim_lost(a, p)) {
                continue;
            }
            /* the tab closed between its claim and its pop: the agent saw
             * nothing, so every tab left may have it again */
            cmn_log_info("event=pop_reoffer agent=%s dialog=%s "
                         "reason=claimant_gone",
                         a->id, p->dialog_id);
            p->claimed_by[0] = '\0';
            p->noffered = 0;
            if (offer_next(a, p, now_ms)) {
                moved++;
            } else {
                cmn_log_info("event=pop_waiting agent=%s dialog=%s "
                             "reason=no_tab",
                             a->id, p->dialog_id);
            }
            continue;
        }
        bool timed_out = p->current[0] != '\0' &&
                         now_ms - p->offered_at_ms >= CTI_POP_CONFIRM_MS;
        if (!timed_out && !offer_lost(a, p)) {
            continue;
        }
        if (p->current[0] != '\0') {
            cmn_log_info("event=pop_reoffer agent=%s dialog=%s reason=%s",
                         a->id, p->dialog_id,
                         timed_out ? "not_claimed" : "tab_gone");
        }
        bool had = p->current[0] != '\0';
        if (offer_next(a, p, now_ms) && had) {
            moved++;
        }
    }
    pthread_mutex_unlock(&a->lock);
    return moved;
}

void
agent_pops_on_attach(struct cti_agent *a, long long now_ms)
{
    for (struct pending_pop *p = a->pops; p != NULL; p = p->next) {
        if (p->claimed_by[0] == '\0' && offer_lost(a, p)) {
            offer_next(a, p, now_ms);
        }
    }
}

void
agent_pops_forget(struct cti_agent *a, const char *dialog_id)
{
    for (struct pending_pop **pp = &a->pops; *pp != NULL;) {
        struct pending_pop *p = *pp;
        if (dialog_id == NULL || strcmp(p->dialog_id, dialog_id) == 0) {
            *pp = p->next;
            pop_free(p);
        } else {
            pp = &p->next;
        }
    }
}
