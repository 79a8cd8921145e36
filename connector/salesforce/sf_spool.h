/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sf_spool.h - call logs that could not reach Redis, kept on local disk.
 *
 * The outbox accepts a call log once Redis has it. When Redis cannot be
 * reached at a call's end (both Redis nodes down, a network split), the
 * call log goes here instead: one JSON line {"dialog", "fields"} appended
 * to <dir>/spool.log and fdatasync'd before the append returns, so it
 * survives a crash of the connector or of the machine. A drain later moves
 * the lines, in order, into the outbox.
 *
 * Drain: spool.log is renamed to spool.draining (under the append lock, so
 * no line is lost between the two files), then each line is put; on the
 * first failure the remaining lines are written to a new file that
 * atomically replaces spool.draining, and the next drain starts there. A
 * crash in the middle re-puts lines already put: the Task upsert is
 * idempotent, so that costs an extra write, never a second Task. */
#ifndef SF_SPOOL_H
#define SF_SPOOL_H

#include <jansson.h>

#include "cmn.h"

struct sf_spool;

/* dir is created (0700) if missing; NULL with err when it cannot be used. */
struct sf_spool *sf_spool_open(const char *dir, struct cmn_err *err);
void sf_spool_close(struct sf_spool *sp);

/* Append one call log durably (write + fdatasync). CMN_OK or CMN_IO. */
int sf_spool_append(struct sf_spool *sp, const char *dialog,
                    const json_t *fields, struct cmn_err *err) CMN_NODISCARD;

/* Where a drained line goes: CMN_OK when accepted (fields borrowed). */
typedef int (*sf_spool_put_fn)(void *ud, const char *dialog, json_t *fields);

/* Move the spooled lines, oldest first, to put; stops at the first
 * refusal (that line and the rest stay). Malformed lines are logged and
 * dropped. Returns the number of lines put, or -1 on a file error. One
 * drain at a time (callers serialise). */
long sf_spool_drain(struct sf_spool *sp, sf_spool_put_fn put, void *ud);

/* True when something waits to be drained (a cheap stat of the files). */
bool sf_spool_pending(struct sf_spool *sp);

#endif
