/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sf_config.h - the [salesforce] and [redis] sections of the fsc-connector
 * INI file (DESIGN.md §4), read and validated once, then read-only. */
#ifndef SF_CONFIG_H
#define SF_CONFIG_H

#include "cmn.h"
#include "cmn_config.h"
#include "cmn_redis.h"
#include "cmn_secret.h"

/* Where the screen pop takes its search term from. */
enum sf_pop {
    SF_POP_ANI = 0,      /* the caller's number, searched by Open CTI */
    SF_POP_CALLVARIABLE, /* a call variable holds a record id */
    SF_POP_SOSL,         /* server-side SOSL on the caller's number */
};

enum sf_pop_on {
    SF_POP_ON_RING = 0,
    SF_POP_ON_ANSWER,
};

#define SF_API_NAME_MAX 80 /* Salesforce API names are at most 80 chars */

struct sf_config {
    bool sf_enabled; /* false: no [salesforce] section, nothing else set */

    /* [salesforce]; strings borrow from the cmn_config passed to load */
    const char *login_url; /* no trailing '/' (own copy) */
    const char *client_id;
    const char *jwt_audience;   /* "aud" claim; default login_url (set it
                                   to https://login.salesforce.com when
                                   login_url is a My Domain URL) */
    struct cmn_secret *jwt_key; /* PEM RSA private key */
    const char *integration_user;
    char **org_origins; /* NULL-terminated, one block */
    size_t norg_origins;
    const char *task_external_id_field; /* default Finesse_Call_Id__c */
    const char *agent_user_field;       /* default Finesse_Agent_Id__c */
    const char *ca_file;                /* may be NULL */
    const char *api_version;            /* "60.0" */
    long timeout_ms;                    /* per REST call, default 10000 */
    long outbox_max_attempts;           /* default 20 */
    long outbox_writers;                /* consumers in this process,
                                           default 8: one upsert in flight
                                           each, so Salesforce latency does
                                           not cap the rate at 1/latency */
    long outbox_upsert_batch;           /* Tasks per Salesforce request
                                           (sObject Collections upsert),
                                           default 50, 1..200; 1: one
                                           PATCH per Task (API < 46) */
    long outbox_reclaim_ms;             /* default 30000 */
    long outbox_backoff_max_ms;         /* default 60000 */
    unsigned char outbox_key[32];       /* authenticates outbox entries
                                           (HMAC-SHA256, sf_outbox.h) */
    const char *spool_dir; /* call logs Redis did not take wait here on
                              local disk (NULL: they are retried ~7 s,
                              then lost) */
    enum sf_pop pop;
    const char *pop_callvariable; /* SF_POP_CALLVARIABLE: its name */
    enum sf_pop_on pop_on;

    /* [redis] */
    struct cmn_redis_opts redis;
    void *redis_storage;

    char *login_url_copy; /* storage behind login_url */
};

/* Reads [salesforce] and [redis] of ini into *out (zeroed first). Absent
 * [salesforce]: CMN_OK with out->sf_enabled false. Any bad value:
 * CMN_INVALID with err = "file:line: [section] key: why". Strings in *out
 * borrow from ini, which must outlive it. Release with sf_config_cleanup
 * (also after a failure). */
int sf_config_load(const struct cmn_config *ini, struct sf_config *out,
                   struct cmn_err *err) CMN_NODISCARD;

/* Frees what sf_config_load allocated (wipes the key); safe twice. */
void sf_config_cleanup(struct sf_config *c);

/* True for https URLs, and for http on a loopback host (tests, sims). */
bool sf_url_allowed(const char *url);

/* True for something shaped like a Salesforce API name ("Phone",
 * "Finesse_Call_Id__c", "ns__Field__c"): a letter, then letters, digits
 * and underscores, not ending in '_', at most SF_API_NAME_MAX chars. Such
 * a name is safe to put in a URL path or a SOQL statement unescaped. */
bool sf_api_name_ok(const char *s);

#endif
