/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sf_outbox.h - the durable call-log outbox (DESIGN.md §5): a Redis stream
 * <prefix>outbox read through the consumer group "fsc", each entry written
 * to Salesforce with the idempotent Task upsert keyed by the Finesse
 * dialog id (up to upsert_batch records per sObject Collections request,
 * each record succeeding or failing on its own), then acknowledged and
 * deleted. A crash, a retry or a
 * Salesforce outage never loses or duplicates a Task:
 *  - put returns only once Redis accepted the entry (XADD, WAIT when
 *    [redis] wait_replicas is set); the stream has no MAXLEN and no TTL,
 *    entries leave it only when written or dead-lettered;
 *  - an entry taken by a consumer that died before XACK is reclaimed by
 *    another (XAUTOCLAIM) once idle for reclaim_ms; a live consumer keeps
 *    the entries it is holding for a retry fresh (XCLAIM JUSTID, owner
 *    checked in a script), so only dead consumers lose theirs;
 *  - a write repeated after a crash or a reclaim is an upsert of the same
 *    external id: the Task is updated, never duplicated.
 * Failed attempts are counted in the hash <prefix>outbox:attempts (field =
 * entry id; TTL attempts_ttl_s, refreshed on every failure), so the count
 * survives a crash and a reclaim; XPENDING's delivery count is not used
 * because reclaims and re-reads inflate it without any write being tried.
 * Entries that fail permanently (300, 400, ...) or max_attempts times go
 * to the list <prefix>outbox:dead (TTL dead_ttl_s, refreshed on every
 * push) as JSON {"dialog_id", "fields", "reason", "attempts", "ts",
 * "entry_id", "mac"?}; sf_outbox_replay puts them back into the stream.
 *
 * Entries are authenticated: each carries "mac", an HMAC-SHA256 under
 * [salesforce] outbox_key_file (shared by every connector host) of the
 * stream's key, the dialog id and the fields as stored. Someone who can
 * write to Redis but lacks the key cannot queue a Task for the integration
 * user to write (or overwrite one by its external id): an entry whose MAC
 * is missing or wrong is never written; it is dead-lettered with reason
 * "unauthenticated: ..." (fsc_connector_sf_outbox_unauthenticated_total)
 * for an admin to look at. Entries queued by a version without MACs are
 * dead-lettered the same way. A dead letter keeps the MAC of an entry that
 * verified; replay requeues only those, unless forced (an admin who
 * checked the record). A MAC binds what is written, not when: an attacker
 * replaying a genuine entry only rewrites the same Task with the same
 * fields. */
#ifndef SF_OUTBOX_H
#define SF_OUTBOX_H

#include <jansson.h>

#include "cmn.h"
#include "cmn_redis.h"
#include "sf_config.h"
#include "sf_rest.h"

#define SF_OUTBOX_GROUP   "fsc"
#define SF_OUTBOX_ALL     (-1L) /* sf_outbox_replay: every dead entry */
#define SF_DIALOG_ID_MAX  128
#define SF_FIELDS_MAX     (128 * 1024)
#define SF_OUTBOX_MAC_LEN 44 /* base64url HMAC-SHA256 + NUL */

struct sf_outbox_opts {
    const char *consumer; /* name in the group; NULL: "<hostname>:<pid>" */
    long max_attempts;    /* failed attempts before dead-letter, def. 10 */
    long reclaim_ms;      /* idle time after which another consumer's
                             entry is taken over, default 30000 */
    long backoff_base_ms; /* first retry delay, default 1000; doubles */
    long backoff_max_ms;  /* default 300000 */
    long block_ms;        /* XREADGROUP BLOCK, default 1000; must stay
                             below [redis] command_timeout_ms */
    long batch;           /* XREADGROUP / XAUTOCLAIM COUNT, default 32
                             (raised to upsert_batch) */
    long upsert_batch;    /* Tasks per Salesforce request (sObject
                             Collections upsert), default 1 (one PATCH per
                             Task); [salesforce] outbox_upsert_batch */
    long max_held;        /* entries held in memory for a retry before
                             reading stops, default 256 */
    long attempts_ttl_s;  /* default 7 days */
    long dead_ttl_s;      /* default 30 days */
    const unsigned char *mac_key; /* 32 bytes, required (copied) */
};

/* Counters of one outbox (the process-wide ones are in /metrics:
 * fsc_connector_sf_outbox_{pending,written_total,retries_total,
 * dead_total,reclaimed_total}). */
struct sf_outbox_stats {
    unsigned long written;   /* Tasks upserted and acknowledged */
    unsigned long retries;   /* transient failures */
    unsigned long dead;      /* entries moved to the dead-letter list */
    unsigned long reclaimed; /* entries taken over from another consumer */
};

/* Options from [salesforce] outbox_* and [redis] command_timeout_ms
 * (block_ms is kept below it). Unset fields get their defaults. */
void sf_outbox_opts_from_config(const struct sf_config *cfg,
                                struct sf_outbox_opts *o);

struct sf_outbox;

/* redis (prefix from it) and sf are borrowed and must outlive the
 * outbox; sf may be NULL for a put-only outbox (no consumer). opts must
 * give mac_key; its other fields may be 0 (defaults). Does not touch
 * Redis. NULL with err on failure. */
struct sf_outbox *sf_outbox_new(struct cmn_redis *redis, struct sf *sf,
                                const struct sf_outbox_opts *opts,
                                struct cmn_err *err);

/* Starts the consumer thread (creates the group if missing, ignoring
 * BUSYGROUP). CMN_INVALID without sf, CMN_ERR when the thread cannot
 * start. Redis being down is not an error: the thread retries. */
int sf_outbox_start(struct sf_outbox *ob, struct cmn_err *err) CMN_NODISCARD;

/* Stops and joins the consumer thread (within block_ms plus one
 * Salesforce call). Entries it held stay pending in Redis and are
 * reclaimed by another consumer after reclaim_ms. Safe when not started. */
void sf_outbox_stop(struct sf_outbox *ob);

/* Asks the consumer thread to stop without waiting for it: a process with
 * several writers tells them all first, then stops (joins) each, so they
 * leave their blocked reads together. */
void sf_outbox_stop_begin(struct sf_outbox *ob);
/* Stops, then frees. NULL is fine. */
void sf_outbox_free(struct sf_outbox *ob);

/* Queue a call log: XADD <prefix>outbox * dialog <dialog_id> fields
 * <JSON of task_fields> ts <ms>, durable. task_fields (borrowed) is the
 * full field set known so far; a later put for the same dialog (after
 * wrap-up) updates the same Task. CMN_OK only when Redis accepted the
 * entry; CMN_INVALID for a bad dialog id (empty, over SF_DIALOG_ID_MAX,
 * control characters) or fields (not an object, over SF_FIELDS_MAX
 * serialised); CMN_IO / CMN_TIMEOUT / CMN_ERR when Redis did not take it
 * (the caller still holds the data and decides). Blocking; any thread. */
int sf_outbox_put(struct sf_outbox *ob, const char *dialog_id,
                  json_t *task_fields, struct cmn_err *err) CMN_NODISCARD;

/* The dead-letter list, newest first (index 0), at most 1000 entries:
 * *out is a new JSON array of the stored objects (caller json_decref). */
int sf_outbox_dead_list(struct sf_outbox *ob, json_t **out,
                        struct cmn_err *err) CMN_NODISCARD;

/* Move dead entry `index` (as in sf_outbox_dead_list) or, with
 * SF_OUTBOX_ALL, every dead entry (oldest first) back into the stream,
 * attempts reset, with a MAC of this outbox's key. The move is atomic (a
 * script checks the entry is still there), so two admins replaying at
 * once never double an entry. Without force only authenticated dead
 * letters move: CMN_DENIED for one that is not (SF_OUTBOX_ALL leaves them
 * and counts them in *unauthenticated). *replayed and *unauthenticated
 * may be NULL. CMN_NOTFOUND when index names no entry. */
int sf_outbox_replay(struct sf_outbox *ob, long index, bool force,
                     size_t *replayed, size_t *unauthenticated,
                     struct cmn_err *err) CMN_NODISCARD;

/* Entries not yet written (XLEN of the stream). */
int sf_outbox_pending(struct sf_outbox *ob, long long *n,
                      struct cmn_err *err) CMN_NODISCARD;

/* This outbox's counters (any thread). */
void sf_outbox_stats(const struct sf_outbox *ob, struct sf_outbox_stats *s);

#endif
