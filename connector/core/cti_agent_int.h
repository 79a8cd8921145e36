/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_agent_int.h - what cti_agent.c (model, event log, tabs) and
 * cti_agent_pop.c (focus reports, screen pops offered to one tab) share.
 * Everything here is under the agent's lock unless noted. */
#ifndef CTI_AGENT_INT_H
#define CTI_AGENT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "cti_agent.h"
#include "cti_tab_rank.h"

struct tab {
    struct cmn_http_stream *stream;
    atomic_bool closed;         /* set by on_close (no agent lock there) */
    atomic_int refs;            /* the agent's list + the stream's on_close */
    char id[CTI_STREAM_ID_MAX]; /* random, told to the tab on attach */
    struct cti_tab_focus focus;
    struct tab *next;
};

struct event {
    unsigned long long id;
    char *frame; /* "id: N\nevent: T\ndata: {...}\n\n" */
    size_t len;
};

#define POP_OFFERS_MAX 16 /* tabs tried for one pop before giving up */

/* A screen pop the server decided on, offered to one tab at a time until
 * one claims it (POST /api/v1/calls/{id}/popped) and says it popped it
 * ("done"); kept until the dialog ends so a late claim is told it is
 * taken. */
struct pending_pop {
    char dialog_id[FIN_ID_MAX];
    char *frame; /* "event: pop\ndata: {...}\n\n" (not numbered: one tab's) */
    size_t len;
    char offered[POP_OFFERS_MAX][CTI_STREAM_ID_MAX];
    size_t noffered;
    char current[CTI_STREAM_ID_MAX]; /* the offer outstanding; "" none */
    long long offered_at_ms;
    char claimed_by[CTI_STREAM_ID_MAX]; /* "" until claimed */
    long long claimed_at_ms;
    bool done; /* the claimant popped it (or kept its claim CTI_POP_DONE_MS) */
    struct pending_pop *next;
};

struct cti_agent {
    pthread_mutex_t lock;
    atomic_int refs;
    char id[FIN_ID_MAX];
    struct fin_user user;
    struct fin_dialog *dialogs[FIN_MAX_DIALOGS];
    size_t ndialogs;
    struct event ring[CTI_EVENT_RING];
    unsigned long long next_id; /* id of the next event, from 1 */
    struct tab *tabs;
    unsigned long long tab_seq; /* attach order of tabs */
    struct pending_pop *pops;
    cti_dialog_hook hook;
    void *hook_cls;
};

/* cti_agent.c */
ssize_t agent_find_dialog(const struct cti_agent *a, const char *id);
/* A live tab (not closed) by stream id, or NULL. */
struct tab *agent_find_tab(const struct cti_agent *a, const char *stream);

/* cti_agent_pop.c */
/* A tab attached: pops nobody holds an offer for go to it. */
void agent_pops_on_attach(struct cti_agent *a, long long now_ms);
/* The dialog ended: its pop (offered or claimed) is forgotten; NULL:
 * every pop (the agent is freed). */
void agent_pops_forget(struct cti_agent *a, const char *dialog_id);

#endif
