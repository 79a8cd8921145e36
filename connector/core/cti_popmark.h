/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_popmark.h - "this call has been popped for this agent", shared by
 * every connector host through Redis, so that a session picked up by
 * another host (or by this one after a restart) never pops a call again
 * that was popped before the move. Within one process the call record
 * says so already; this covers what outlives the process. One hash per
 * agent, <prefix>agent:<id>:popped, a field per live call (HSETNX): the
 * field goes when the call ends, the hash when the agent signs out, and
 * the hash expires CTI_POPMARK_TTL_S after the agent's last pop. */
#ifndef CTI_POPMARK_H
#define CTI_POPMARK_H

#include <stdbool.h>

#include "cmn_redis.h"
#include "cti_config.h"

#define CTI_POPMARK_TTL_S                                               \
    (8 * 3600) /* a call (and its pop) is over well within a shift; the \
                  mark only has to outlive the call */

struct cti_popmark;

/* NULL (and no error) when [redis] is not configured: one host, the
 * in-memory call record is enough. */
struct cti_popmark *cti_popmark_new(const struct cti_config *cfg,
                                    struct cmn_err *err);
void cti_popmark_free(struct cti_popmark *m);

/* true: the first to mark (agent, dialog): pop it. false: marked before
 * (popped already). Without Redis (m NULL) true; when Redis cannot answer,
 * true as well (logged): a pop is what the agent is waiting for, and a
 * second one needs a host move during this very outage. */
bool cti_popmark_first(struct cti_popmark *m, const char *agent,
                       const char *dialog_id);
/* The call ended: its mark is no longer needed (best effort). */
void cti_popmark_done(struct cti_popmark *m, const char *agent,
                      const char *dialog_id);
/* The agent's session is over (signed out): every mark goes. */
void cti_popmark_forget(struct cti_popmark *m, const char *agent);

#endif
