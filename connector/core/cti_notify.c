/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_notify.c - what the XMPP workers report: Finesse Update
 * notifications applied to the agents' models (and answered to callers
 * waiting on a requestId), connection state, and the failover signals
 * (XMPP lost, SystemInfo OUT_OF_SERVICE). Runs on the pool's reader
 * thread: nothing here blocks; slow work goes to a job. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_log.h"
#include "cti_engine_int.h"
#include "fin_parse.h"

#define XMPP_BACKOFF_MAX_MS 30000

/* --- requestId waiters --- */

void
engine_waiter_add(struct cti_engine *e, struct waiter *w)
{
    pthread_mutex_lock(&e->lock);
    w->next = e->waiters;
    e->waiters = w;
    pthread_mutex_unlock(&e->lock);
}

bool
engine_waiter_wait(struct cti_engine *e, struct waiter *w, int ms)
{
    struct timespec until;
    bool done;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&e->lock);
    while (!w->done &&
           pthread_cond_timedwait(&e->waiters_cv, &e->lock, &until) == 0) {
    }
    done = w->done;
    for (struct waiter **pp = &e->waiters; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
    pthread_mutex_unlock(&e->lock);
    return done;
}

static void
waiters_complete(struct cti_engine *e, const char *request_id,
                 const char *dialog_id, const char *error)
{
    if (request_id == NULL || request_id[0] == '\0') {
        return;
    }
    pthread_mutex_lock(&e->lock);
    for (struct waiter *w = e->waiters; w != NULL; w = w->next) {
        if (!w->done && strcmp(w->request_id, request_id) == 0) {
            w->done = true;
            snprintf(w->dialog_id, sizeof(w->dialog_id), "%s",
                     dialog_id != NULL ? dialog_id : "");
            snprintf(w->error, sizeof(w->error), "%s",
                     error != NULL ? error : "");
            pthread_cond_broadcast(&e->waiters_cv);
        }
    }
    pthread_mutex_unlock(&e->lock);
}

/* --- spurious logout --- */

struct relogin_job {
    struct cti_engine *e;
    struct cti_session *s;
};

static void
relogin_job(void *arg)
{
    struct relogin_job *j = arg;
    struct fin_rest_resp resp;
    struct cmn_err err = {{0}};
    char path[FIN_URI_MAX], rid[40];
    char *body = fin_xml_user_state("LOGIN", NULL, j->s->extension);

    snprintf(path, sizeof(path), "/finesse/api/User/%s", j->s->id);
    engine_new_request_id(j->e, rid);
    if (body != NULL && engine_rest(j->e, j->s, "PUT", path, body, rid, &resp,
                                    &err) != CMN_OK) {
        cmn_log_err("event=relogin_failed agent=%s detail=\"%s\"", j->s->id,
                    err.msg);
    }
    if (body != NULL) {
        fin_rest_resp_cleanup(&resp);
    }
    free(body);
    session_unref(j->s);
    free(j);
}

void
engine_apply_user(struct cti_engine *e, struct cti_session *s,
                  const struct fin_user *u)
{
    bool spurious;

    pthread_mutex_lock(&s->lock);
    spurious = strcmp(u->state, "LOGOUT") == 0 && !s->logout_requested &&
               cmn_now_ms() < s->failover_until_ms;
    pthread_mutex_unlock(&s->lock);
    if (!spurious) {
        struct fin_user before;
        cti_agent_user(s->agent, &before);
        cti_agent_apply_user(s->agent, u);
        if (strcmp(u->state, "LOGOUT") == 0 &&
            strcmp(before.state, "LOGOUT") != 0) {
            /* signed out for good (by the agent, a supervisor, Finesse):
             * a restart must not sign the agent in again */
            engine_resume_forget(e, s->id);
        }
        return;
    }
    /* The failed node saw the agent's presence go and signed it out
     * (reason 255): the agent never asked. Sign in again on the node in
     * use and keep showing the agent as it was. */
    cmn_log_warn("event=spurious_logout_ignored agent=%s reason=%s", s->id,
                 u->reason_code_id);
    struct relogin_job *j = malloc(sizeof(*j));
    if (j == NULL) {
        return;
    }
    atomic_fetch_add(&s->refs, 1);
    j->e = e;
    j->s = s;
    if (cmn_jobs_submit(e->jobs, relogin_job, j) != CMN_OK) {
        session_unref(s);
        free(j);
    }
}

/* --- updates --- */

/* A dialog reaches this agent's model only if the agent takes part in it
 * (or already holds it): a notification naming someone else's call must
 * not put that caller's number and call data in this agent's tabs, nor
 * open it to this agent's call control. */
static bool
dialog_is_mine(struct cti_session *s, const struct fin_dialog *d,
               enum fin_update_event ev)
{
    char ext[FIN_ADDR_MAX];

    if (ev == FIN_EVENT_DELETE || cti_agent_has_dialog(s->agent, d->id)) {
        return true;
    }
    pthread_mutex_lock(&s->lock);
    memcpy(ext, s->extension, sizeof(ext));
    pthread_mutex_unlock(&s->lock);
    if (fin_dialog_participant(d, ext) != NULL) {
        return true;
    }
    cmn_log_warn("event=notification_rejected agent=%s dialog=%s "
                 "detail=\"not a participant\"",
                 s->id, d->id);
    return false;
}

static void
on_update(struct cti_engine *e, struct cti_session *s,
          const struct fin_xmpp_event *ev)
{
    struct cmn_err err = {{0}};
    struct fin_update *u = fin_update_parse(ev->payload, ev->payload_len, &err);

    if (u == NULL) {
        /* a malformed notification changes nothing */
        cmn_log_warn("event=notification_rejected agent=%s node=%s "
                     "detail=\"%s\"",
                     s->id, ev->node != NULL ? ev->node : "-", err.msg);
        return;
    }
    switch (u->kind) {
    case FIN_UPDATE_USER:
        if (strcmp(u->user.login_id, s->id) == 0) {
            engine_apply_user(e, s, &u->user);
        } else {
            cmn_log_warn("event=notification_rejected agent=%s "
                         "detail=\"User of another agent\"",
                         s->id);
        }
        break;
    case FIN_UPDATE_DIALOGS:
        for (size_t i = 0; i < u->dialogs.n; i++) {
            if (dialog_is_mine(s, &u->dialogs.items[i], u->event)) {
                cti_agent_apply_dialog(s->agent, &u->dialogs.items[i],
                                       u->event);
            }
        }
        waiters_complete(e, u->request_id,
                         u->dialogs.n > 0 ? u->dialogs.items[0].id : NULL,
                         NULL);
        break;
    case FIN_UPDATE_DIALOG:
        if (u->dialogs.n > 0 &&
            dialog_is_mine(s, &u->dialogs.items[0], u->event)) {
            cti_agent_apply_dialog(s->agent, &u->dialogs.items[0], u->event);
        }
        break;
    case FIN_UPDATE_API_ERRORS: {
        const struct fin_api_error *ae =
            u->errors.n > 0 ? &u->errors.items[0] : NULL;
        char detail[3 * FIN_LABEL_MAX + 8];
        snprintf(detail, sizeof(detail), "%s: %s (%s)",
                 ae != NULL ? ae->type : "Error",
                 ae != NULL ? ae->message : "unknown",
                 ae != NULL ? ae->data : "");
        cti_agent_emit_error(s->agent, u->request_id, "finesse_error", detail);
        waiters_complete(e, u->request_id, NULL, detail);
        break;
    }
    case FIN_UPDATE_SYSTEMINFO:
        if (strcmp(u->systeminfo.status, "IN_SERVICE") != 0) {
            /* the node that published it is the one this XMPP session is
             * connected to, not necessarily the node the agent now uses
             * (the pool drops events of replaced connections) */
            int node;
            pthread_mutex_lock(&s->lock);
            node = s->xmpp_node;
            pthread_mutex_unlock(&s->lock);
            engine_node_down(e, node, u->systeminfo.status);
        }
        break;
    default:
        break;
    }
    fin_update_free(u);
}

static long long
backoff_ms(int failures)
{
    long long ms = 500LL << (failures < 6 ? failures : 6);

    return ms < XMPP_BACKOFF_MAX_MS ? ms : XMPP_BACKOFF_MAX_MS;
}

void
engine_on_xmpp(const struct fin_xmpp_event *ev, void *cls)
{
    struct cti_engine *e = cls;
    struct cti_session *s = engine_find_session(e, ev->agent);
    int node = -1;

    if (s == NULL) {
        return; /* a session that just ended */
    }
    switch (ev->kind) {
    case FIN_XMPP_ONLINE:
        pthread_mutex_lock(&s->lock);
        s->xmpp_online = true;
        s->xmpp_connecting = false;
        s->xmpp_failures = 0;
        s->xmpp_error[0] = '\0';
        s->xmpp_fatal = false;
        pthread_cond_broadcast(&s->xmpp_cv);
        pthread_mutex_unlock(&s->lock);
        cmn_log_info("event=xmpp_online agent=%s", s->id);
        /* notifications published before this moment were lost: read
         * the User and Dialogs again */
        engine_resync_later(e, s, false);
        break;
    case FIN_XMPP_OFFLINE:
    case FIN_XMPP_AUTH_FAILED:
        pthread_mutex_lock(&s->lock);
        bool was_online = s->xmpp_online;
        s->xmpp_online = false;
        s->xmpp_connecting = false;
        s->xmpp_failures++;
        snprintf(s->xmpp_error, sizeof(s->xmpp_error), "%s",
                 ev->detail != NULL && ev->detail[0] != '\0'
                     ? ev->detail
                     : (ev->kind == FIN_XMPP_AUTH_FAILED ? "not authorized"
                                                         : "offline"));
        s->xmpp_fatal = ev->fatal;
        pthread_cond_broadcast(&s->xmpp_cv);
        node = s->xmpp_node;
        if (!s->ended && !s->logout_requested) {
            /* SSO: the token may have been refreshed since; the next
             * connect picks up the current one */
            if (ev->kind == FIN_XMPP_AUTH_FAILED && s->sso_session != NULL) {
                s->bearer_expires_at = 0;
            }
            s->xmpp_retry_at_ms = cmn_now_ms() + backoff_ms(s->xmpp_failures);
        }
        pthread_mutex_unlock(&s->lock);
        cmn_log_warn("event=xmpp_offline agent=%s auth_failed=%d detail=\"%s\"",
                     s->id, ev->kind == FIN_XMPP_AUTH_FAILED,
                     ev->detail != NULL ? ev->detail : "");
        if (was_online && ev->kind == FIN_XMPP_OFFLINE) {
            /* the node may be going away: its SystemInfo decides */
            engine_probe_node(e, node);
        }
        break;
    case FIN_XMPP_UPDATE:
        on_update(e, s, ev);
        break;
    case FIN_XMPP_PRESENCE:
        break;
    }
    session_unref(s);
}
