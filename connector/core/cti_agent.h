/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_agent.h - one agent's view of Finesse as the connector holds it:
 * the User, the live dialogs (with their call variables cached, so a node
 * failover that returns fewer never loses them), a numbered event log and
 * the browser tabs (SSE streams) watching it. Thread-safe: every function
 * takes the agent's lock. */
#ifndef CTI_AGENT_H
#define CTI_AGENT_H

#include <jansson.h>
#include <stdatomic.h>

#include "cmn_httpd.h"
#include "fin_model.h"

#define CTI_EVENT_RING 64 /* events kept for Last-Event-ID resume */

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

/* A tab attaches: replays events after last_id when they are still in the
 * log, else sends a snapshot (agent + every live dialog). The stream is
 * released by the agent when the tab goes or the agent ends. */
int cti_agent_attach(struct cti_agent *a, struct cmn_http_req *req,
                     unsigned long long last_id) CMN_NODISCARD;
/* ": ping" to every tab; also drops tabs that went away. Returns how many
 * tabs are attached. */
size_t cti_agent_heartbeat(struct cti_agent *a);
/* Ends every tab's stream (logout, shutdown). */
void cti_agent_detach_all(struct cti_agent *a);

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
