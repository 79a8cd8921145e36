/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_calls.h - what the connector remembers about each call beyond
 * Finesse's dialog: when it rang, was answered and ended, the record the
 * agent had open (context), the screen pop sent to the tabs, the wrap-up
 * reason; and, when the call ends (and again after wrap-up), the
 * Salesforce Task built from all of it, handed to the durable outbox. */
#ifndef CTI_CALLS_H
#define CTI_CALLS_H

#include <jansson.h>

#include "cti_agent.h"

struct cti_engine;

/* The hook every agent gets (cti_agent_set_dialog_hook); cls is the
 * engine. */
void cti_calls_on_dialog(struct cti_agent *a, enum cti_dialog_change change,
                         const struct fin_dialog *d, void *cls);

/* POST /api/v1/calls/{id}/context: the record open in Salesforce. ids are
 * 15/18-character Salesforce ids or NULL. CMN_NOTFOUND for a call this
 * agent never had; CMN_INVALID for a malformed id. */
int cti_calls_context(struct cti_engine *e, struct cti_agent *a,
                      const char *dialog_id, const char *who_id,
                      const char *what_id) CMN_NODISCARD;
/* The wrap-up reason Finesse accepted: the Task is written again with it. */
void cti_calls_wrapup(struct cti_engine *e, struct cti_agent *a,
                      const char *dialog_id, const char *reason);

/* The Task fields for a finished call (pure: tests, fuzzing of inputs). */
struct cti_call;
json_t *cti_call_task_fields(const struct cti_call *c);

/* Drops records of calls that ended long ago (tick). */
void cti_calls_expire(struct cti_engine *e);
void cti_calls_free_all(struct cti_engine *e);

#endif
