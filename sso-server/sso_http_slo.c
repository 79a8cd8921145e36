/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_http_slo.c - GET /sso/saml/slo, fsc-sso's SingleLogoutService
 * (HTTP-Redirect, the Single Logout Profile of saml-profiles-2.0-os §4.4):
 *
 *  - the IdP's LogoutRequest (IdP-initiated, or the IdP propagating a
 *    logout started elsewhere): checked (saml_redirect_decode), recorded
 *    once in the replay cache shared by A and B, then every session of
 *    that NameID (and SessionIndex, when given) ends on either instance,
 *    refresh tokens revoked at IdS as DELETE /v1/sessions/{id} does; the
 *    browser goes back to the IdP with our signed LogoutResponse: Success,
 *    or Responder (+ PartialLogout when some sessions were ended) when the
 *    store fails. Never Success for what was not done.
 *  - the IdP's LogoutResponse to a LogoutRequest of ours (SP-initiated,
 *    sso_http_saml_logout.c): InResponseTo consumed once, RelayState ours,
 *    then the browser goes to the return_to given when the logout began.
 *
 * A message that fails a check gets a generic page; the reason goes to the
 * log (event=saml_logout_refused reason=...) and to /metrics
 * (fsc_sso_saml_logout_refused_total{reason}). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_log.h"
#include "cmn_seal.h"
#include "sso_http.h"
#include "sso_ids.h"
#include "sso_out.h"
#include "sso_saml.h"
#include "sso_saml_config.h"
#include "sso_url.h"

static const char *const outcome_labels[SSO_SLO_OUTCOMES] = {
    [SSO_SLO_IDP_SUCCESS] = "initiator=\"idp\",status=\"success\"",
    [SSO_SLO_IDP_PARTIAL] = "initiator=\"idp\",status=\"partial\"",
    [SSO_SLO_IDP_RESPONDER] = "initiator=\"idp\",status=\"responder\"",
    [SSO_SLO_SP_STARTED] = "initiator=\"sp\",status=\"started\"",
    [SSO_SLO_SP_SUCCESS] = "initiator=\"sp\",status=\"success\"",
    [SSO_SLO_SP_NOT_SUCCESS] = "initiator=\"sp\",status=\"not_success\"",
};

void
sso_slo_metrics_init(struct sso_metrics *m)
{
    char name[160];

    for (int i = 0; i < SSO_SLO_OUTCOMES; i++) {
        snprintf(name, sizeof(name), "fsc_sso_saml_logouts_total{%s}",
                 outcome_labels[i]);
        m->saml_logouts[i] = cmn_metric_counter(
            name, "SAML Single Logouts by who started them and how they "
                  "ended");
    }
    /* every reason, so a dashboard sees zeros, not gaps */
    for (int r = SAML_OK + 1; r < SAML_R_COUNT; r++) {
        snprintf(name, sizeof(name),
                 "fsc_sso_saml_logout_refused_total{reason=\"%s\"}",
                 saml_reason_str((enum saml_reason)r));
        m->saml_logout_refused[r] = cmn_metric_counter(
            name, "SAML logout messages refused, by the reason in the log");
    }
}

void
sso_saml_logout_refused(struct sso_app *app, enum saml_reason r,
                        const char *detail)
{
    cmn_log_warn("event=saml_logout_refused reason=%s detail=\"%s\"",
                 saml_reason_str(r), detail != NULL ? detail : "");
    if (r > SAML_OK && r < SAML_R_COUNT &&
        app->m.saml_logout_refused[r] != NULL) {
        cmn_metric_inc(app->m.saml_logout_refused[r]);
    }
}

int
sso_saml_logout_refuse(struct sso_app *app, struct sso_out *o,
                       enum saml_reason r, const char *detail)
{
    sso_saml_logout_refused(app, r, detail);
    if (r == SAML_R_STORE) {
        return sso_out_page(o, 503, "Sign-out unavailable",
                            "The session store cannot be reached; try again "
                            "in a moment.");
    }
    /* generic on purpose: the reason is for the admin, not the sender */
    return sso_out_page(o, 403, "Sign-out refused",
                        "This sign-out message could not be accepted.");
}

/* --- the IdP's LogoutRequest --- */

struct idp_logout {
    struct sso_app *app;
    struct cmn_http_deferred *d;
    struct saml_redirect_msg m;
};

/* Each ended session, as DELETE /v1/sessions/{id} ends one. */
static void
ended_one(const struct sso_session *s, void *arg)
{
    struct sso_app *app = arg;
    struct sso_gen *g = sso_app_acquire(app);

    cmn_metric_inc(app->m.logouts);
    cmn_log_notice("event=logout user=%s reason=saml_logout_request",
                   s->user[0] != '\0' ? s->user : "-");
    sso_ids_revoke(g->cfg, s->refresh_token);
    sso_gen_release(g);
}

/* Our LogoutResponse, back to the IdP's SLO URL with its RelayState. */
static int
answer_idp(struct sso_gen *g, struct sso_out *o,
           const struct saml_redirect_msg *m, const char *status,
           const char *sub_status)
{
    const struct sso_saml_config *s = g->cfg->saml;
    char id[34], *url = NULL;
    int rc;

    if (saml_new_id(id) == CMN_OK) {
        url = saml_logout_response_url(&s->idp, s->sp_entity_id, id, m->id,
                                       status, sub_status, m->relay_state,
                                       cmn_wall_sec(), &s->key);
    }
    if (url == NULL) {
        return sso_out_page(o, 500, "Sign-out failed", "Out of memory.");
    }
    rc = sso_out_redirect(o, url);
    free(url);
    return rc;
}

static void
idp_logout_job(void *arg)
{
    struct idp_logout *j = arg;
    struct sso_app *app = j->app;
    struct sso_gen *g = sso_app_acquire(app);
    const struct sso_saml_config *s = g->cfg->saml;
    struct sso_out o = {.req = NULL, .d = j->d};
    struct cmn_err err = {{0}};
    const struct saml_redirect_msg *m = &j->m;
    size_t n = 0;
    int rc;

    cmn_log_set_request_id(cmn_http_deferred_id(j->d));
    /* the replay cache first, as at the ACS: of two deliveries of one
     * request (to A and to B) exactly one gets past SET NX. A request
     * older than this is refused by its IssueInstant anyway. */
    rc = sso_store_saml_seen(&g->store, m->issuer, m->id,
                             m->issue_instant + SAML_REDIRECT_MAX_AGE_S +
                                 2 * s->clock_skew_s + 1,
                             &err);
    if (rc == CMN_AGAIN) {
        (void)sso_saml_logout_refuse(app, &o, SAML_R_REPLAY,
                                     "this LogoutRequest was already received");
        goto out;
    }
    if (rc == CMN_OK) {
        /* first: sign-ins of this subject still on their way (assertion
         * posted later, IdS leg running) must not outlive the logout. The
         * marker lasts as long as a sign-in may take from the ACS to the
         * callback (state_ttl_s), counted from the request's own window */
        long long window = m->issue_instant + SAML_REDIRECT_MAX_AGE_S;
        if (m->not_on_or_after > window) {
            window = m->not_on_or_after;
        }
        if (window < cmn_wall_sec()) {
            window = cmn_wall_sec();
        }
        rc = sso_store_saml_logout_mark(
            &g->store, m->name_id, m->session_indexes, m->nsession_indexes,
            m->issue_instant,
            window + g->cfg->state_ttl_s + 2 * s->clock_skew_s, &err);
    }
    if (rc == CMN_OK) {
        rc = sso_store_saml_sessions_delete(
            &g->store, m->name_id, m->session_indexes, m->nsession_indexes,
            ended_one, app, &n, &err);
    }
    if (rc != CMN_OK) {
        /* fail closed: the IdP is told what happened, never Success */
        enum sso_slo_outcome out =
            n > 0 ? SSO_SLO_IDP_PARTIAL : SSO_SLO_IDP_RESPONDER;
        cmn_metric_inc(app->m.saml_logouts[out]);
        sso_saml_logout_refused(app, SAML_R_STORE, err.msg);
        cmn_log_err("event=saml_logout initiator=idp status=%s ended=%zu",
                    n > 0 ? "partial" : "responder", n);
        (void)answer_idp(g, &o, m, SAML_STATUS_RESPONDER,
                         n > 0 ? SAML_STATUS_PARTIAL_LOGOUT : NULL);
        goto out;
    }
    cmn_metric_inc(app->m.saml_logouts[SSO_SLO_IDP_SUCCESS]);
    cmn_log_notice("event=saml_logout initiator=idp status=success ended=%zu "
                   "session_indexes=%zu",
                   n, m->nsession_indexes);
    (void)answer_idp(g, &o, m, NULL, NULL);
out:
    cmn_log_set_request_id(NULL);
    saml_redirect_msg_cleanup(&j->m);
    sso_gen_release(g);
    free(j);
}

/* Revoking at IdS may take seconds: on a job thread. */
static int
idp_logout_later(struct sso_app *app, struct cmn_http_req *req,
                 struct saml_redirect_msg *m)
{
    struct idp_logout *j = calloc(1, sizeof(*j));

    if (j == NULL) {
        return sso_http_page(req, 503, "Sign-out failed", "Out of memory.");
    }
    j->d = cmn_http_defer(req);
    if (j->d == NULL) {
        free(j);
        return sso_http_page(req, 503, "Sign-out failed",
                             "The server is stopping.");
    }
    j->app = app;
    j->m = *m; /* the job owns the message now */
    memset(m, 0, sizeof(*m));
    if (cmn_jobs_submit(app->jobs, idp_logout_job, j) != CMN_OK) {
        struct sso_out o = {.req = NULL, .d = j->d};
        (void)sso_out_page(&o, 503, "Sign-out failed", "Too much work queued.");
        saml_redirect_msg_cleanup(&j->m);
        free(j);
    }
    return CMN_OK;
}

/* --- the IdP's LogoutResponse to ours --- */

static int
sp_logout_done(struct sso_app *app, struct sso_gen *g, struct cmn_http_req *req,
               const struct saml_redirect_msg *m)
{
    struct sso_out o = {.req = req, .d = NULL};
    struct sso_saml_logout_request rq;
    struct cmn_err err = {{0}};
    char why[200];
    char *url;
    int rc;

    if (m->in_response_to == NULL || strlen(m->in_response_to) > 64) {
        return sso_saml_logout_refuse(
            app, &o, SAML_R_UNKNOWN_REQUEST,
            "the LogoutResponse answers none of our requests");
    }
    rc = sso_store_saml_logout_request_take(&g->store, m->in_response_to, &rq,
                                            &err);
    if (rc == CMN_NOTFOUND || rc == CMN_INVALID) {
        snprintf(why, sizeof(why),
                 "InResponseTo %.40s: unknown, expired or already used",
                 m->in_response_to);
        return sso_saml_logout_refuse(app, &o, SAML_R_UNKNOWN_REQUEST, why);
    }
    if (rc != CMN_OK) {
        snprintf(why, sizeof(why), "logout request store: %.150s", err.msg);
        return sso_saml_logout_refuse(app, &o, SAML_R_STORE, why);
    }
    if (m->relay_state == NULL ||
        !cmn_ct_streq(m->relay_state, rq.relay_state)) {
        snprintf(why, sizeof(why),
                 "RelayState is not the one sent with request %.40s",
                 m->in_response_to);
        return sso_saml_logout_refuse(app, &o, SAML_R_RELAY_STATE, why);
    }
    cmn_metric_inc(app->m.saml_logouts[m->success ? SSO_SLO_SP_SUCCESS
                                                  : SSO_SLO_SP_NOT_SUCCESS]);
    if (m->success) {
        cmn_log_notice("event=saml_logout initiator=sp status=success");
    } else {
        /* our session ended when the logout began; the IdP's did not */
        cmn_log_warn("event=saml_logout initiator=sp status=not_success "
                     "idp_status=\"%.100s\" idp_sub_status=\"%.100s\"",
                     m->status, m->sub_status ? m->sub_status : "");
    }
    url = sso_url_add_param(rq.return_to, "saml_logout",
                            m->success ? "success" : "failed");
    rc = url != NULL ? sso_out_redirect(&o, url)
                     : sso_out_page(&o, 500, "Sign-out failed", "nomem");
    free(url);
    return rc;
}

int
sso_http_saml_slo(struct cmn_http_req *req, void *appv)
{
    struct sso_app *app = appv;
    struct sso_gen *g = sso_app_acquire(app);
    const struct sso_saml_config *s = g->cfg->saml;
    struct sso_out o = {.req = req, .d = NULL};
    struct saml_redirect_msg m = {0};
    struct cmn_err detail = {{0}};
    enum saml_reason r;
    int rc;

    if (!sso_saml_slo_enabled(s)) {
        rc = cmn_http_reply_error(req, 404, "not_found",
                                  "Single Logout needs [saml] sp_key_file "
                                  "and an IdP SingleLogoutService");
        goto out;
    }
    r = saml_redirect_decode(cmn_http_req_raw_query(req), &s->idp, s->slo_url,
                             s->allow_sha1, cmn_wall_sec(), s->clock_skew_s, &m,
                             &detail);
    if (r != SAML_OK) {
        rc = sso_saml_logout_refuse(app, &o, r, detail.msg);
    } else if (m.is_request) {
        rc = idp_logout_later(app, req, &m);
    } else {
        rc = sp_logout_done(app, g, req, &m);
    }
out:
    saml_redirect_msg_cleanup(&m);
    sso_gen_release(g);
    return rc;
}
