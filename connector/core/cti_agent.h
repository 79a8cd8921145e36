/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_agent.h - one agent's view of Finesse as the connector holds it:
 * the User, the live dialogs (with their call variables cached, so a node
 * failover that returns fewer never loses them), a numbered event log,
 * the browser tabs (SSE streams) watching it, and the screen pops on
 * their way to one of those tabs. Thread-safe: every function takes the
 * agent's lock. */
#ifndef CTI_AGENT_H
#define CTI_AGENT_H

#include <jansson.h>
#include <stdatomic.h>

#include "cmn_httpd.h"
#include "fin_model.h"

#define CTI_EVENT_RING 64 /* events kept for Last-Event-ID resume */
#define CTI_STREAM_ID_MAX                                              \
    32 /* a tab's stream id: 22 base64url characters (16 random bytes) \
          and the NUL */
#define CTI_POP_CONFIRM_MS                                             \
    2000 /* a tab offered a pop that has not claimed it this long: the \
            next tab is offered it */
#define CTI_POP_DONE_MS                                                  \
    15000 /* a claim its tab has not confirmed ("done") this long counts \
             as popped (about a ring): clients that never say done keep  \
             their pop when their tab goes later */

struct cti_agent;

struct cti_agent *cti_agent_new(const char *id);
void cti_agent_ref(struct cti_agent *a);
void cti_agent_unref(struct cti_agent *a);
const char *cti_agent_id(const struct cti_agent *a);

/* A User from a REST GET or a notification. Emits an "agent" event when
 * something a tab shows changed. */
void cti_agent_apply_user(struct cti_agent *a, const struct fin_user *u);
/* Copy of the current User (under the lock). */
void cti_agent_user(struct cti_agent *a, struct fin_user *out);

/* A dialog notification: POST/PUT add or update it, DELETE (or a dialog
 * whose state is DROPPED) removes it and emits it once more with
 * "state": "DROPPED". Call variables absent from the update are kept. */
void cti_agent_apply_dialog(struct cti_agent *a, const struct fin_dialog *d,
                            enum fin_update_event ev);
/* After a re-GET (failover, reconnect): the list is the truth. Dialogs
 * no longer listed are dropped; variables missing from the new copy are
 * taken from the cached one. */
void cti_agent_replace_dialogs(struct cti_agent *a,
                               const struct fin_dialogs *list);
/* Copy of one live dialog; false when unknown. */
bool cti_agent_dialog(struct cti_agent *a, const char *id,
                      struct fin_dialog *out);
size_t cti_agent_dialog_count(struct cti_agent *a);
bool cti_agent_has_dialog(struct cti_agent *a, const char *id);

/* "error" event: an asynchronous CTI error or a failed request. */
void cti_agent_emit_error(struct cti_agent *a, const char *request_id,
                          const char *error, const char *detail);
/* Any other event (e.g. "pop"); data is stolen. */
void cti_agent_emit(struct cti_agent *a, const char *type, json_t *data);

/* A tab attaches: first a `stream` event naming its stream id (random;
 * the tab's name in focus reports and pop claims), then the events after
 * last_id when the log still holds them, else a snapshot (agent + every
 * live dialog). A pop no tab holds an offer for is offered to it. The
 * stream is released by the agent when the tab goes or the agent ends. */
int cti_agent_attach(struct cti_agent *a, struct cmn_http_req *req,
                     unsigned long long last_id) CMN_NODISCARD;
/* ": ping" to every tab; also drops tabs that went away. Returns how many
 * tabs are attached. */
size_t cti_agent_heartbeat(struct cti_agent *a);
/* Ends every tab's stream (logout, shutdown). */
void cti_agent_detach_all(struct cti_agent *a);

/* --- screen pops: one tab pops each call (cti_agent_pop.c) ---
 * The server picks the tab (cti_tab_rank.h: focused, else most recently
 * visible, else newest) and sends it the `pop` event alone; the tab claims
 * the pop (cti_agent_pop_claim), only then calls Salesforce, and then says
 * it is done (the same call with done). A tab that has not claimed within
 * CTI_POP_CONFIRM_MS (closed, frozen, busy) loses the offer to the next
 * tab; a tab attaching later (a refresh mid-ring) gets a pop that nobody
 * holds. At most one claim holds at a time. A claimant whose stream closes
 * before it said done (the tab closed between its claim and its pop: the
 * agent saw nothing) hands the pop on to the next tab; a done pop, or a
 * claim kept CTI_POP_DONE_MS without one (clients that never say done),
 * is never offered again. */

enum cti_pop_claim {
    CTI_POP_CLAIMED,       /* this tab's: pop now (again for the same tab) */
    CTI_POP_TAKEN,         /* another tab holds or popped it */
    CTI_POP_NOT_OFFERED,   /* never offered to this stream */
    CTI_POP_STREAM_CLOSED, /* offered to a stream that has closed since */
    CTI_POP_NONE,          /* no pop for this dialog (none decided, or over) */
};

/* A tab's report: CMN_OK, or CMN_NOTFOUND for a stream this agent does
 * not have (gone, or another agent's). */
int cti_agent_tab_focus(struct cti_agent *a, const char *stream, bool focused,
                        bool visible, bool can_pop,
                        long long now_ms) CMN_NODISCARD;
/* The pop decided for a live dialog (pop is stolen; it carries
 * "dialog_id"): offered now to the best tab, or kept for the first tab
 * that attaches. A dialog that is no longer live, or one that already has
 * a pop, is ignored. */
void cti_agent_offer_pop(struct cti_agent *a, const char *dialog_id,
                         json_t *pop, long long now_ms);
/* POST /api/v1/calls/{id}/popped from stream: a claim (done false), or
 * the claimant saying it popped (done true; from a tab that had not
 * claimed yet, a claim and its done at once). A done claim is final. */
enum cti_pop_claim cti_agent_pop_claim(struct cti_agent *a,
                                       const char *dialog_id,
                                       const char *stream, bool done,
                                       long long now_ms) CMN_NODISCARD;
/* Once a second: offers that timed out or whose tab went move on, and so
 * do claims whose tab closed before it said done (the claimant's stream is
 * written to, a closed one shows up so). Returns how many pops were
 * offered to another tab. */
size_t cti_agent_pops_tick(struct cti_agent *a, long long now_ms);

/* Someone who wants to know when a dialog appears, changes or ends (call
 * logging, screen pop). Called with the agent's lock held: the hook copies
 * what it needs and hands slow work to a job; it must not call back into
 * this agent. */
enum cti_dialog_change {
    CTI_DIALOG_NEW,
    CTI_DIALOG_UPDATED,
    CTI_DIALOG_ENDED,
};
typedef void (*cti_dialog_hook)(struct cti_agent *a,
                                enum cti_dialog_change change,
                                const struct fin_dialog *d, void *cls);
void cti_agent_set_dialog_hook(struct cti_agent *a, cti_dialog_hook hook,
                               void *cls);

/* JSON renderings (DESIGN.md §4). */
json_t *cti_agent_json(struct cti_agent *a);
json_t *cti_dialog_json(const struct fin_dialog *d);

#endif
