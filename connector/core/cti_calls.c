/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_calls.c - call records, screen pops and Task logging.
 *
 * The hook runs under the agent's lock (cti_agent.h): it only updates the
 * record under calls_lock and queues jobs; the jobs decide the pop (once
 * per call: the record, and a mark in Redis shared by the hosts) and
 * offer it to one tab, and hand the Task to the outbox. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmn_log.h"
#include "cti_calls.h"
#include "cti_engine_int.h"
#include "fin_parse.h"

#define KEEP_ENDED_S (30 * 60) /* wrap-up and context may come later */
#define SF_ID_MAX    19

struct cti_call {
    char dialog_id[FIN_ID_MAX];
    char agent[FIN_ID_MAX];
    char extension[FIN_ADDR_MAX];
    char direction[16];          /* Inbound | Outbound | Internal */
    char customer[FIN_ADDR_MAX]; /* the other party's number */
    char dnis[FIN_ADDR_MAX];
    char queue[FIN_NAME_MAX];
    char call_type[FIN_STATE_MAX];
    json_t *vars;          /* call variables and ECC, as seen */
    long long started_at;  /* unix s */
    long long answered_at; /* 0: never connected */
    long long ended_at;    /* 0: live */
    char who_id[SF_ID_MAX], what_id[SF_ID_MAX];
    char pop_record[SF_ID_MAX]; /* a SOBJECT pop's record */
    char wrapup[FIN_LABEL_MAX];
    bool popped;
    struct cti_call *next;
};

/* --- records (calls_lock held) --- */

static unsigned
call_bucket(const char *dialog_id)
{
    unsigned h = 2166136261u;

    for (const char *p = dialog_id; *p; p++) {
        h = (h ^ (unsigned char)*p) * 16777619u;
    }
    return h % CALL_BUCKETS;
}

static struct cti_call *
find_call(struct cti_engine *e, const char *agent, const char *dialog_id)
{
    for (struct cti_call *c = e->calls[call_bucket(dialog_id)]; c != NULL;
         c = c->next) {
        if (strcmp(c->dialog_id, dialog_id) == 0 &&
            strcmp(c->agent, agent) == 0) {
            return c;
        }
    }
    return NULL;
}

static void
call_free(struct cti_call *c)
{
    json_decref(c->vars);
    free(c);
}

/* Finesse's callType says where the call came from (reference/finesse.md
 * §1.4); a dialog the agent placed is outbound whatever it says. */
static void
classify(struct cti_call *c, const struct fin_dialog *d)
{
    static const char *const out[] = {"OUT", "OUTBOUND", "OUTBOUND_PREVIEW"};
    bool outbound = strcmp(d->from_address, c->extension) == 0;

    for (size_t i = 0; i < CMN_ARRAY_LEN(out); i++) {
        outbound = outbound || strcmp(d->call_type, out[i]) == 0;
    }
    if (strcmp(d->call_type, "AGENT_INSIDE") == 0) {
        snprintf(c->direction, sizeof(c->direction), "Internal");
    } else {
        snprintf(c->direction, sizeof(c->direction), "%s",
                 outbound ? "Outbound" : "Inbound");
    }
    snprintf(c->customer, sizeof(c->customer), "%s",
             outbound ? d->to_address : d->from_address);
}

static void
absorb(struct cti_call *c, const struct fin_dialog *d)
{
    if (d->dnis[0] != '\0') {
        snprintf(c->dnis, sizeof(c->dnis), "%s", d->dnis);
    }
    if (d->queue_name[0] != '\0') {
        snprintf(c->queue, sizeof(c->queue), "%s", d->queue_name);
    }
    if (d->call_type[0] != '\0') {
        snprintf(c->call_type, sizeof(c->call_type), "%s", d->call_type);
    }
    for (size_t i = 0; i < d->nvars; i++) {
        json_object_set_new(c->vars, d->vars[i].name,
                            json_string(d->vars[i].value));
    }
}

/* --- jobs --- */

struct call_job {
    struct cti_engine *e;
    struct cti_agent *agent; /* referenced */
    char dialog_id[FIN_ID_MAX];
};

static struct call_job *
call_job_new(struct cti_engine *e, struct cti_agent *a, const char *id)
{
    struct call_job *j = calloc(1, sizeof(*j));

    if (j != NULL) {
        j->e = e;
        j->agent = a;
        cti_agent_ref(a);
        snprintf(j->dialog_id, sizeof(j->dialog_id), "%s", id);
    }
    return j;
}

static void
call_job_free(struct call_job *j)
{
    cti_agent_unref(j->agent);
    free(j);
}

static bool
sf_id_like(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n != 15 && n != 18) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

/* The record id a call carries, under the configured call variable (ECC
 * user.sf_recordId when none is configured). */
static const char *
carried_record(struct cti_engine *e, const struct cti_call *c)
{
    const char *var = e->sfcfg.sf_enabled && e->sfcfg.pop == SF_POP_CALLVARIABLE
                          ? e->sfcfg.pop_callvariable
                          : "user.sf_recordId";
    const char *rec = json_string_value(json_object_get(c->vars, var));

    return sf_id_like(rec) ? rec : NULL;
}

static json_t *
pop_sobject(struct cti_call *c, const char *rec)
{
    snprintf(c->pop_record, sizeof(c->pop_record), "%s", rec);
    return json_pack("{s:s, s:s, s:{s:s}}", "dialog_id", c->dialog_id, "type",
                     "SOBJECT", "params", "recordId", rec);
}

/* [salesforce] pop = sosl: the connector searches by the caller's number
 * itself (as the integration user): one match → that record, several →
 * the search page, none → a new Contact with the number filled in. */
static json_t *
pop_sosl(struct cti_engine *e, const char *dialog_id, const char *number)
{
    struct cmn_err err = {{0}};
    json_t *records = NULL, *pop;
    size_t n;

    if (sf_search_phone(e->sf, number, &records, &err) != CMN_OK) {
        cmn_log_warn("event=pop_search_failed dialog=%s detail=\"%s\"",
                     dialog_id, err.msg);
        return json_pack("{s:s, s:s, s:s, s:s}", "dialog_id", dialog_id, "type",
                         "SEARCH_AND_POP", "searchParams", number, "callType",
                         "INBOUND");
    }
    n = json_array_size(records);
    if (n == 1) {
        pop = json_pack("{s:s, s:s, s:{s:O}}", "dialog_id", dialog_id, "type",
                        "SOBJECT", "params", "recordId",
                        json_object_get(json_array_get(records, 0), "id"));
    } else if (n > 1) {
        pop = json_pack("{s:s, s:s, s:{s:s}}", "dialog_id", dialog_id, "type",
                        "SEARCH", "params", "searchString", number);
    } else {
        pop = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}}", "dialog_id", dialog_id,
                        "type", "NEW_RECORD_MODAL", "params", "entityName",
                        "Contact", "defaultFieldValues", "Phone", number);
    }
    json_decref(records);
    return pop;
}

/* What the tab should pop (the record carried by the call first), else by
 * the caller's number: by default a searchAndScreenPop that the org's
 * softphone layout resolves (single match → record, several → search
 * page, none → the layout's choice). Sets *search to the number when the
 * decision needs a SOSL search (done outside calls_lock). */
static json_t *
pop_decision(struct cti_engine *e, struct cti_call *c, char *search,
             size_t search_size)
{
    const char *rec = carried_record(e, c);

    search[0] = '\0';
    if (rec != NULL) {
        return pop_sobject(c, rec);
    }
    if (c->customer[0] == '\0') {
        return NULL;
    }
    if (e->sfcfg.sf_enabled && e->sfcfg.pop == SF_POP_SOSL) {
        snprintf(search, search_size, "%s", c->customer);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:s, s:s}", "dialog_id", c->dialog_id, "type",
                     "SEARCH_AND_POP", "searchParams", c->customer, "callType",
                     strcmp(c->direction, "Outbound") == 0 ? "OUTBOUND"
                                                           : "INBOUND");
}

static void
pop_job(void *arg)
{
    struct call_job *j = arg;
    const char *agent = cti_agent_id(j->agent);
    json_t *pop = NULL;
    char search[FIN_ADDR_MAX] = "";
    bool decide = false;

    pthread_mutex_lock(&j->e->calls_lock);
    struct cti_call *c = find_call(j->e, agent, j->dialog_id);
    if (c != NULL && !c->popped) {
        c->popped = true;
        decide = true;
    }
    pthread_mutex_unlock(&j->e->calls_lock);
    /* once per dialog per agent across hosts: a session that moved here
     * (or this host after a restart) meets calls popped before */
    if (decide && !cti_popmark_first(j->e->popmark, agent, j->dialog_id)) {
        cmn_log_info(
            "event=pop_skipped agent=%s dialog=%s reason=popped_before", agent,
            j->dialog_id);
        cmn_metric_inc(j->e->m_pops_skipped);
        decide = false;
    }
    if (decide) {
        pthread_mutex_lock(&j->e->calls_lock);
        c = find_call(j->e, agent, j->dialog_id);
        if (c != NULL) {
            pop = pop_decision(j->e, c, search, sizeof(search));
        }
        pthread_mutex_unlock(&j->e->calls_lock);
    }
    if (pop == NULL && search[0] != '\0') {
        pop = pop_sosl(j->e, j->dialog_id, search);
        json_t *rec =
            json_object_get(json_object_get(pop, "params"), "recordId");
        if (json_is_string(rec)) {
            pthread_mutex_lock(&j->e->calls_lock);
            c = find_call(j->e, agent, j->dialog_id);
            if (c != NULL) {
                snprintf(c->pop_record, sizeof(c->pop_record), "%s",
                         json_string_value(rec));
            }
            pthread_mutex_unlock(&j->e->calls_lock);
        }
    }
    if (pop != NULL) {
        /* to one tab (the focused one, else the most recently visible,
         * else the newest), which claims it before it pops */
        cmn_metric_inc(j->e->m_pops);
        cti_agent_offer_pop(j->agent, j->dialog_id, pop, cmn_now_ms());
    }
    call_job_free(j);
}

static void
date_of(long long t, char out[11])
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

json_t *
cti_call_task_fields(const struct cti_call *c)
{
    char subject[160], day[11];
    long long duration = c->answered_at > 0 && c->ended_at >= c->answered_at
                             ? c->ended_at - c->answered_at
                             : 0;
    size_t dlen = 0;
    char *desc = NULL;
    FILE *f = open_memstream(&desc, &dlen);
    const char *name;
    json_t *value;

    if (f == NULL) {
        return NULL;
    }
    fprintf(f, "ANI: %s\nDNIS: %s\nQueue: %s\nCall type: %s\n", c->customer,
            c->dnis, c->queue, c->call_type);
    json_object_foreach(c->vars, name, value)
    {
        fprintf(f, "%s: %s\n", name, json_string_value(value));
    }
    fclose(f);
    snprintf(subject, sizeof(subject), "%s call %s %s", c->direction,
             strcmp(c->direction, "Outbound") == 0 ? "to" : "from",
             c->customer[0] ? c->customer : "unknown");
    date_of(c->started_at, day);
    const char *who = c->who_id[0] ? c->who_id : NULL;
    const char *what = c->what_id[0] ? c->what_id : NULL;
    /* a record popped from call data is the caller's, unless the agent
     * pointed at another one */
    if (who == NULL && what == NULL && c->pop_record[0] != '\0') {
        if (strncmp(c->pop_record, "003", 3) == 0 ||
            strncmp(c->pop_record, "00Q", 3) == 0) {
            who = c->pop_record; /* Contact, Lead */
        } else {
            what = c->pop_record;
        }
    }
    json_t *t = json_pack(
        "{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?}", "Subject",
        subject, "CallType", c->direction, "CallDurationInSeconds",
        (json_int_t)duration, "CallObject", c->dialog_id, "Status", "Completed",
        "TaskSubtype", "Call", "ActivityDate", day, "Description",
        desc != NULL ? desc : "", "CallDisposition",
        c->wrapup[0] ? c->wrapup : NULL, "WhoId", who, "WhatId", what);
    free(desc);
    return t;
}

static void
task_job(void *arg)
{
    struct call_job *j = arg;
    json_t *fields = NULL;
    bool popped = false;

    pthread_mutex_lock(&j->e->calls_lock);
    struct cti_call *c = find_call(j->e, cti_agent_id(j->agent), j->dialog_id);
    if (c != NULL && c->ended_at != 0) {
        fields = cti_call_task_fields(c);
        popped = c->popped;
    }
    pthread_mutex_unlock(&j->e->calls_lock);
    if (popped) {
        /* over: nothing pops it again (again after wrap-up: harmless) */
        cti_popmark_done(j->e->popmark, cti_agent_id(j->agent), j->dialog_id);
    }
    if (fields != NULL) {
        engine_log_task(j->e, cti_agent_id(j->agent), j->dialog_id, fields);
    }
    call_job_free(j);
}

static void
submit(struct cti_engine *e, struct cti_agent *a, const char *id, cmn_job_fn fn)
{
    struct call_job *j = call_job_new(e, a, id);

    if (j != NULL && cmn_jobs_submit(e->jobs, fn, j) != CMN_OK) {
        cmn_log_err("event=call_job_dropped agent=%s dialog=%s",
                    cti_agent_id(a), id);
        call_job_free(j);
    }
}

/* --- the hook --- */

void
cti_calls_on_dialog(struct cti_agent *a, enum cti_dialog_change change,
                    const struct fin_dialog *d, void *cls)
{
    struct cti_engine *e = cls;
    const char *agent = cti_agent_id(a);
    bool pop = false, log = false;
    long long now = cmn_wall_sec();

    pthread_mutex_lock(&e->calls_lock);
    struct cti_call *c = find_call(e, agent, d->id);
    if (c == NULL && change != CTI_DIALOG_ENDED) {
        c = calloc(1, sizeof(*c));
        if (c != NULL) {
            c->vars = json_object();
            snprintf(c->dialog_id, sizeof(c->dialog_id), "%s", d->id);
            snprintf(c->agent, sizeof(c->agent), "%s", agent);
            /* the extension: the participant that is an agent device and
             * ours; the model's user is not reachable under this lock, so
             * take the participant list's agent device */
            for (size_t i = 0; i < d->nparts; i++) {
                if (strcmp(d->parts[i].media_address_type, "AGENT_DEVICE") ==
                    0) {
                    snprintf(c->extension, sizeof(c->extension), "%s",
                             d->parts[i].media_address);
                    break;
                }
            }
            c->started_at = now;
            classify(c, d);
            unsigned b = call_bucket(d->id);
            c->next = e->calls[b];
            e->calls[b] = c;
        }
    }
    if (c != NULL) {
        absorb(c, d);
        const struct fin_participant *me = NULL;
        for (size_t i = 0; i < d->nparts && me == NULL; i++) {
            if (strcmp(d->parts[i].media_address, c->extension) == 0) {
                me = &d->parts[i];
            }
        }
        if (c->answered_at == 0 &&
            (strcmp(d->state, "ACTIVE") == 0 &&
             (me == NULL || strcmp(me->state, "ACTIVE") == 0))) {
            c->answered_at = now;
        }
        /* pop on ring for inbound calls (the agent sees who calls before
         * answering), or on answer where configured (a new-record modal
         * popped on ring can cover the Answer button); a call answered
         * without ringing here pops then */
        bool on_answer =
            e->sfcfg.sf_enabled && e->sfcfg.pop_on == SF_POP_ON_ANSWER;
        if (!c->popped && strcmp(c->direction, "Inbound") == 0 &&
            ((!on_answer && strcmp(d->state, "ALERTING") == 0) ||
             c->answered_at != 0)) {
            pop = true;
        }
        if (change == CTI_DIALOG_ENDED && c->ended_at == 0) {
            c->ended_at = now;
            log = true;
        }
    }
    pthread_mutex_unlock(&e->calls_lock);
    if (pop) {
        submit(e, a, d->id, pop_job);
    }
    if (log) {
        submit(e, a, d->id, task_job);
    }
}

int
cti_calls_context(struct cti_engine *e, struct cti_agent *a,
                  const char *dialog_id, const char *who_id,
                  const char *what_id)
{
    bool ended = false;

    if ((who_id != NULL && !sf_id_like(who_id)) ||
        (what_id != NULL && !sf_id_like(what_id)) ||
        (who_id == NULL && what_id == NULL)) {
        return CMN_INVALID;
    }
    pthread_mutex_lock(&e->calls_lock);
    struct cti_call *c = find_call(e, cti_agent_id(a), dialog_id);
    if (c != NULL) {
        if (who_id != NULL) {
            snprintf(c->who_id, sizeof(c->who_id), "%s", who_id);
        }
        if (what_id != NULL) {
            snprintf(c->what_id, sizeof(c->what_id), "%s", what_id);
        }
        ended = c->ended_at != 0;
    }
    pthread_mutex_unlock(&e->calls_lock);
    if (c == NULL) {
        return CMN_NOTFOUND;
    }
    if (ended) {
        /* the Task was already written: write it again with the record */
        submit(e, a, dialog_id, task_job);
    }
    return CMN_OK;
}

void
cti_calls_wrapup(struct cti_engine *e, struct cti_agent *a,
                 const char *dialog_id, const char *reason)
{
    bool ended = false;

    pthread_mutex_lock(&e->calls_lock);
    struct cti_call *c = find_call(e, cti_agent_id(a), dialog_id);
    if (c != NULL) {
        snprintf(c->wrapup, sizeof(c->wrapup), "%s", reason);
        ended = c->ended_at != 0;
    }
    pthread_mutex_unlock(&e->calls_lock);
    if (ended) {
        submit(e, a, dialog_id, task_job);
    }
}

void
cti_calls_expire(struct cti_engine *e)
{
    long long now = cmn_wall_sec();

    pthread_mutex_lock(&e->calls_lock);
    for (size_t b = 0; b < CALL_BUCKETS; b++) {
        for (struct cti_call **pp = &e->calls[b]; *pp != NULL;) {
            struct cti_call *c = *pp;
            if (c->ended_at != 0 && now - c->ended_at > KEEP_ENDED_S) {
                *pp = c->next;
                call_free(c);
            } else {
                pp = &c->next;
            }
        }
    }
    pthread_mutex_unlock(&e->calls_lock);
}

void
cti_calls_free_all(struct cti_engine *e)
{
    pthread_mutex_lock(&e->calls_lock);
    for (size_t b = 0; b < CALL_BUCKETS; b++) {
        while (e->calls[b] != NULL) {
            struct cti_call *c = e->calls[b];
            e->calls[b] = c->next;
            call_free(c);
        }
    }
    pthread_mutex_unlock(&e->calls_lock);
}
