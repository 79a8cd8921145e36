/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sf_rest.h - the Salesforce REST calls the connector makes as its
 * integration user (reference/salesforce.md §2): the idempotent Task
 * upsert on the external-ID field keyed by the Finesse dialog id, the SOSL
 * phone lookup and the agent -> User lookup. Each reply goes through a
 * pure parser (fuzzed by tests/fuzz/fuzz_sf_responses.c); a 401 re-mints
 * the token and retries once. */
#ifndef SF_REST_H
#define SF_REST_H

#include <jansson.h>

#include "cmn.h"
#include "sf_auth.h"
#include "sf_config.h"

#define SF_ID_LEN     18 /* case-safe record id; 15-char ids are accepted */
#define SF_EXT_ID_MAX 255
#define SF_SEARCH_MAX 200 /* records kept from one SOSL reply */

enum sf_outcome {
    SF_OK = 0,
    SF_TRANSIENT, /* retry later: 5xx, 429, REQUEST_LIMIT_EXCEEDED,
                     UNABLE_TO_LOCK_ROW, timeout, no connection, no token */
    SF_PERMANENT, /* retrying cannot help: 300, 400, 404, other 403 */
};

struct sf_result {
    enum sf_outcome outcome;
    long status;             /* HTTP status, 0 when none */
    bool created;            /* 201 / "created": true */
    char id[SF_ID_LEN + 1];  /* the Task id when the reply has it */
    char reason[CMN_ERRLEN]; /* why, when not SF_OK: errorCode and
                                message, or the transport error */
};

/* Pure: classify an upsert reply (status, body of len bytes, may be
 * unterminated or NULL) into *r. Returns CMN_OK for SF_OK, CMN_AGAIN for
 * SF_TRANSIENT, CMN_INVALID for SF_PERMANENT. */
int sf_upsert_response_parse(long status, const char *body, size_t len,
                             struct sf_result *r);

/* One record of a batched Task upsert (sf_task_upsert_batch). */
#define SF_BATCH_MAX 200 /* sObject Collections limit */
struct sf_batch_item {
    const char *external_id; /* in: the dialog id */
    json_t *fields;          /* in, borrowed */
    struct sf_result r;      /* out: this record's outcome */
};

/* Pure: classify an sObject Collections upsert reply (status, body of len
 * bytes) into items[0..n) (the records sent, in order). A 200 whose array
 * has one UpsertResult per record fills each item: success -> SF_OK;
 * errors[0].statusCode UNABLE_TO_LOCK_ROW, REQUEST_LIMIT_EXCEEDED,
 * SERVER_UNAVAILABLE or ALL_OR_NONE_OPERATION_ROLLED_BACK -> SF_TRANSIENT;
 * any other -> SF_PERMANENT; returns CMN_OK. Any other reply (not 200,
 * malformed, wrong length) gives every item the same outcome, classified
 * as sf_upsert_response_parse would a single upsert (a 200 that cannot be
 * read is SF_TRANSIENT: upserts are idempotent, so resending is safe), and
 * returns CMN_AGAIN or CMN_INVALID. */
int sf_upsert_collection_parse(long status, const char *body, size_t len,
                               struct sf_batch_item *items, size_t n);

/* Pure: the first entry of a REST error array
 * [{"message":..,"errorCode":..}] (or a lone object) into code/msg
 * (truncated, empty when absent). */
void sf_error_parse(const char *body, size_t len, char code[64], char msg[160]);

/* Pure: the SOSL phone query for a caller number. Only digits and a
 * leading '+' are kept ('+' is escaped, being SOSL-reserved); fewer than
 * 2 or more than 32 digits: CMN_INVALID. out gets the whole statement
 * FIND {...} IN PHONE FIELDS RETURNING Contact(Id,Name),Lead(Id,Name),
 * Account(Id,Name). */
int sf_sosl_phone_query(const char *number, char *out,
                        size_t size) CMN_NODISCARD;

/* Pure: escape a SOSL search term (backslash before each of
 * ? & | ! { } [ ] ( ) ^ ~ * : \ " ' + -). CMN_INVALID when it does not
 * fit or holds control characters. */
int sf_sosl_escape(const char *in, char *out, size_t size) CMN_NODISCARD;

/* Pure: escape a value for a single-quoted SOQL string literal (\' \" \\
 * \n \r \t \b \f). CMN_INVALID when it does not fit or holds other
 * control characters. */
int sf_soql_escape(const char *in, char *out, size_t size) CMN_NODISCARD;

/* Pure: a SOSL reply ({"searchRecords": [...]} or, before v36, a bare
 * array) as a new array of {"type", "id", "name"} (at most SF_SEARCH_MAX;
 * records without a valid Id are skipped). *records is the caller's
 * (json_decref). CMN_INVALID on malformed input. */
int sf_sosl_response_parse(const char *body, size_t len, json_t **records,
                           struct cmn_err *err) CMN_NODISCARD;

/* Pure: a SOQL reply for "SELECT Id FROM User ... LIMIT 2": exactly one
 * record -> CMN_OK with out = its Id; none -> CMN_NOTFOUND; several ->
 * CMN_INVALID (ambiguous mapping); malformed -> CMN_INVALID. */
int sf_soql_user_response_parse(const char *body, size_t len,
                                char out[SF_ID_LEN + 1],
                                struct cmn_err *err) CMN_NODISCARD;

/* True for a 15- or 18-character alphanumeric record id. */
bool sf_id_ok(const char *s);

struct sf;

/* A client for one org. cfg must be enabled and outlive the result.
 * NULL with err when the key cannot be used. Thread-safe. */
struct sf *sf_new(const struct sf_config *cfg, struct cmn_err *err);
void sf_free(struct sf *sf);
/* The token cache behind sf (tests, metrics). */
struct sf_auth *sf_auth_of(struct sf *sf);
const struct sf_config *sf_config_of(const struct sf *sf);

/* PATCH /services/data/v<ver>/sobjects/Task/<external id field>/<id>
 * with fields (borrowed; the external-ID field and "Id" are left out of
 * the body, the path carries them). Blocking (cfg timeout_ms, twice when
 * a 401 forces a re-mint). Fills *r; returns CMN_OK, CMN_AGAIN
 * (SF_TRANSIENT) or CMN_INVALID (SF_PERMANENT, including a bad
 * external_id or a body over 128 KiB). Any thread. */
int sf_task_upsert(struct sf *sf, const char *external_id, json_t *fields,
                   struct sf_result *r);

/* PATCH /services/data/v<ver>/composite/sobjects/Task/<external id field>
 * with up to SF_BATCH_MAX records (allOrNone false: each record stands
 * alone), fields as for sf_task_upsert. Items with a bad external id or
 * fields over 128 KiB get SF_PERMANENT locally and are not sent. Returns
 * CMN_OK when Salesforce answered per record (read each items[i].r), else
 * the whole request failed and every item sent carries that outcome
 * (CMN_AGAIN: transient; CMN_INVALID: permanent for the request, e.g. 404
 * from an org below API 46: the caller should fall back to
 * sf_task_upsert per record). Blocking; any thread. */
int sf_task_upsert_batch(struct sf *sf, struct sf_batch_item *items, size_t n);

/* cmn_now_ms() of the last 2xx answer from the org (0: none yet): the
 * outbox writers of a process share it, so one writer's success after an
 * outage ends the others' backoff. */
long long sf_last_ok_ms(struct sf *sf);

/* SOSL phone lookup (sf_sosl_phone_query) as the integration user:
 * *records as sf_sosl_response_parse. CMN_INVALID for a number without
 * enough digits, CMN_AGAIN / CMN_IO / CMN_TIMEOUT / CMN_DENIED when
 * Salesforce could not answer. Any thread. */
int sf_search_phone(struct sf *sf, const char *number, json_t **records,
                    struct cmn_err *err) CMN_NODISCARD;

/* The User whose agent_user_field equals agent_id (SOQL, LIMIT 2), cached
 * 10 minutes (a miss, 1 minute). CMN_OK with out filled, CMN_NOTFOUND,
 * CMN_INVALID (ambiguous or bad agent id), or a transport error. Any
 * thread. */
int sf_user_for_agent(struct sf *sf, const char *agent_id,
                      char out[SF_ID_LEN + 1],
                      struct cmn_err *err) CMN_NODISCARD;

#endif
