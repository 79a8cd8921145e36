/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_resume_ops.c - the engine's side of resumable sessions (see
 * cti_resume.h for the store): saving a session at sign-in, picking this
 * host's agents up again after a restart, and resuming the agent behind
 * a token issued by another process when a tab presents it.
 *
 * A resume is a sign-in without the agent: the stored credentials, the
 * agent's lease, GET User, then the usual start (XMPP first, LOGIN only if
 * Finesse signed the agent out meanwhile, dialogs). It runs on a job
 * thread, never on an HTTP thread: after a host dies every tab of its
 * agents comes at once. A tab that presents such a token meanwhile is
 * told to retry shortly (503 session_resuming); the page's stream retry
 * does exactly that. */
#include <stdlib.h>
#include <string.h>

#include "cmn_log.h"
#include "cmn_seal.h"
#include "cti_calls.h"
#include "cti_engine_int.h"

/* an agent being resumed (engine lock) */
struct resuming {
    char id[FIN_ID_MAX];
    struct resuming *next;
};

void
engine_resume_save(struct cti_engine *e, struct cti_session *s)
{
    struct cti_resume_record rec;

    if (e->resume == NULL) {
        return;
    }
    memset(&rec, 0, sizeof(rec));
    pthread_mutex_lock(&s->lock);
    snprintf(rec.agent, sizeof(rec.agent), "%s", s->id);
    snprintf(rec.extension, sizeof(rec.extension), "%s", s->extension);
    snprintf(rec.login_name, sizeof(rec.login_name), "%s", s->login_name);
    if (s->password != NULL) {
        rec.password = cmn_secret_new(s->password->data, s->password->len);
    }
    if (s->sso_session != NULL) {
        rec.sso_session =
            cmn_secret_new(s->sso_session->data, s->sso_session->len);
    }
    pthread_mutex_unlock(&s->lock);
    if (cti_resume_save(e->resume, &rec) != CMN_OK) {
        cmn_log_warn("event=resume_not_saved agent=%s detail=\"the session "
                     "ends with this process\"",
                     rec.agent);
    }
    cti_resume_record_cleanup(&rec);
}

void
engine_resume_forget(struct cti_engine *e, const char *agent)
{
    cti_resume_forget(e->resume, agent);
    cti_popmark_forget(e->popmark, agent);
}

/* Claims the right to resume agent (false: a resume is running). */
static bool
resuming_claim(struct cti_engine *e, const char *agent)
{
    struct resuming *r;

    pthread_mutex_lock(&e->lock);
    for (r = e->resuming; r != NULL; r = r->next) {
        if (strcmp(r->id, agent) == 0) {
            pthread_mutex_unlock(&e->lock);
            return false;
        }
    }
    r = calloc(1, sizeof(*r));
    if (r != NULL) {
        snprintf(r->id, sizeof(r->id), "%s", agent);
        r->next = e->resuming;
        e->resuming = r;
    }
    pthread_mutex_unlock(&e->lock);
    return r != NULL;
}

static void
resuming_done(struct cti_engine *e, const char *agent)
{
    pthread_mutex_lock(&e->lock);
    for (struct resuming **pp = &e->resuming; *pp != NULL; pp = &(*pp)->next) {
        if (strcmp((*pp)->id, agent) == 0) {
            struct resuming *r = *pp;
            *pp = r->next;
            free(r);
            break;
        }
    }
    pthread_mutex_unlock(&e->lock);
}

/* Drive agent again from its stored record. interactive: a tab asked (a
 * LOGOUT found at Finesse is signed in again, the agent is at the
 * softphone); otherwise (a restart) such an agent is left signed out and
 * forgotten. */
static void
resume_agent(struct cti_engine *e, const char *agent, bool interactive)
{
    struct cti_resume_record rec;
    struct cti_result r = {0};
    struct cti_session *s;
    struct fin_user u;
    char path[FIN_URI_MAX], owner[512];
    int rc;

    s = engine_find_session(e, agent);
    if (s != NULL) {
        session_unref(s); /* resumed already */
        return;
    }
    rc = cti_resume_load(e->resume, agent, &rec);
    if (rc != CMN_OK) {
        if (rc == CMN_NOTFOUND || rc == CMN_INVALID) {
            /* nothing usable: a tampered record or one sealed under
             * another key is dropped, never retried */
            cti_resume_forget(e->resume, agent);
        }
        return;
    }
    rc = cti_lease_take(e->lease, agent, owner, sizeof(owner));
    if (rc != CMN_OK) {
        cmn_log_notice("event=resume_deferred agent=%s reason=%s", agent,
                       rc == CMN_DENIED ? "another host holds the agent"
                                        : "Redis unavailable");
        cti_resume_record_cleanup(&rec);
        return;
    }
    s = engine_session_new(e, agent);
    if (s == NULL) {
        cti_lease_release(e->lease, agent);
        cti_resume_record_cleanup(&rec);
        return;
    }
    s->password = rec.password;
    s->sso_session = rec.sso_session;
    rec.password = rec.sso_session = NULL;
    snprintf(s->extension, sizeof(s->extension), "%s", rec.extension);
    snprintf(s->login_name, sizeof(s->login_name), "%s", rec.login_name);
    engine_ensure_xmpp_domain(e, s);
    snprintf(path, sizeof(path), "/finesse/api/User/%s", agent);
    if (!engine_fetch_user(e, s, path, &u, &r)) {
        cmn_log_warn("event=resume_failed agent=%s status=%u detail=\"%s\"",
                     agent, r.status, r.detail);
        if (r.status == 401) {
            /* the password changed, or the SSO session ended: the stored
             * credentials will never work again */
            cti_resume_forget(e->resume, agent);
        }
        cti_lease_release(e->lease, agent);
        session_unref(s);
        return;
    }
    if (!interactive && strcmp(u.state, "LOGOUT") == 0) {
        /* Finesse signed the agent out while no host drove it, and no tab
         * is asking: the agent has gone */
        cmn_log_notice("event=resume_skipped agent=%s reason=\"signed out "
                       "at Finesse\"",
                       agent);
        cti_resume_forget(e->resume, agent);
        cti_lease_release(e->lease, agent);
        session_unref(s);
        return;
    }
    if (!engine_add_session_if_absent(e, s)) {
        /* the agent signed in again meanwhile: that session stands */
        session_unref(s);
        return;
    }
    if (!engine_start_session(e, s, &u, &r)) {
        cmn_log_warn("event=resume_failed agent=%s status=%u detail=\"%s\"",
                     agent, r.status, r.detail);
        fin_xmpp_pool_disconnect(e->xmpp, s->id);
        pthread_mutex_lock(&e->lock);
        engine_remove_session_locked(e, s);
        pthread_mutex_unlock(&e->lock);
        session_unref(s); /* the registry's */
        cti_lease_release(e->lease, agent);
        session_unref(s);
        return;
    }
    cti_resume_touch(e->resume, agent); /* ours now: this host's set */
    cmn_metric_inc(e->m_resumed);
    cmn_log_notice("event=session_resumed agent=%s extension=%s sso=%d "
                   "state=%s interactive=%d",
                   agent, s->extension, s->sso_session != NULL, u.state,
                   interactive ? 1 : 0);
    engine_warm_owner(e, s->id);
    session_unref(s);
}

struct resume_job {
    struct cti_engine *e;
    char agent[FIN_ID_MAX];
    bool interactive;
};

static void
resume_job(void *arg)
{
    struct resume_job *j = arg;

    resume_agent(j->e, j->agent, j->interactive);
    resuming_done(j->e, j->agent);
    free(j);
}

/* A resume of agent on a job thread, unless one is running. */
static void
resume_later(struct cti_engine *e, const char *agent, bool interactive)
{
    struct resume_job *j;

    if (!resuming_claim(e, agent)) {
        return;
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL) {
        resuming_done(e, agent);
        return;
    }
    j->e = e;
    j->interactive = interactive;
    snprintf(j->agent, sizeof(j->agent), "%s", agent);
    if (cmn_jobs_submit(e->jobs, resume_job, j) != CMN_OK) {
        resuming_done(e, agent);
        free(j);
    }
}

struct cti_agent *
cti_engine_agent_resume(struct cti_engine *e, const char *token, bool *busy,
                        char *owner, size_t owner_size)
{
    char hash[65], agent[FIN_ID_MAX];
    struct cti_session *s;
    struct cti_agent *a;

    *busy = false;
    owner[0] = '\0';
    if (e->resume == NULL || token == NULL ||
        strlen(token) != CTI_TOKEN_LEN - 1) {
        return NULL;
    }
    cmn_sha256_hex(token, strlen(token), hash);
    switch (cti_resume_agent_of(e->resume, hash, agent, sizeof(agent))) {
    case CMN_OK:
        break;
    case CMN_NOTFOUND:
        return NULL;
    default:
        *busy = true; /* Redis away: the token may well be good */
        return NULL;
    }
    s = engine_find_session(e, agent);
    if (s == NULL) {
        /* a live host drives the agent (the load balancer sent the tab to
         * the wrong host): say which, as a sign-in would be told */
        if (cti_lease_owner(e->lease, agent, owner, owner_size) == CMN_OK) {
            return NULL;
        }
        owner[0] = '\0';
        resume_later(e, agent, true);
        *busy = true;
        return NULL;
    }
    /* the agent runs here (resumed, or signed in again): the tab's token
     * from the other process is as good as one we issued */
    engine_token_adopt(e, s, hash);
    a = s->agent;
    cti_agent_ref(a);
    session_unref(s);
    return a;
}

void
cti_engine_resume_all(struct cti_engine *e)
{
    char **agents = NULL;
    size_t n = 0;

    if (e->resume == NULL ||
        cti_resume_host_agents(e->resume, &agents, &n) != CMN_OK) {
        return;
    }
    if (n > 0) {
        cmn_log_notice("event=resume_host_agents count=%zu", n);
    }
    for (size_t i = 0; i < n; i++) {
        resume_later(e, agents[i], false);
    }
    cti_resume_list_free(agents, n);
}
