/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_http_saml_logout.c - SP-initiated Single Logout: a signed-in user's
 * browser signs out at the IdP too.
 *
 *   POST /v1/saml-logout   (service key; fsc-connector or an admin
 *        console, which hold the session id server-side)
 *        {"session": ID, "return_to": URL}  (return_to optional: default
 *        [saml] default_return_to; the id in the body, not in the URL)
 *        ends the session as DELETE /v1/sessions/{id} does (refresh token
 *        revoked at IdS) and, when the session came through the SAML IdP,
 *        mints a one-time logout code (256 bits, 60 s, single use on A or
 *        B) -> {"ok", "user", "saml_logout_url", "expires_at"}
 *   GET  /sso/saml/logout?code=CODE      (the browser, sent there by the
 *        caller) -> 302 to the IdP's SLO URL with our signed LogoutRequest
 *        for the ended session's NameID and SessionIndex; the IdP's
 *        LogoutResponse comes back to /sso/saml/slo (sso_http_slo.c).
 *
 * The browser proves nothing by itself: the code stands for a session the
 * service-key holder already ended, and the URL carries no session id.
 * Someone who got hold of the link within its minute could only sign that
 * user out at the IdP, once. */
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

#define LOGOUT_CODE_TTL_S 60 /* as sso_store_slo.c keeps it */

/* --- the service API: end the session, mint the browser's code --- */

struct logout_job {
    struct sso_app *app;
    struct cmn_http_deferred *d;
    char sid[SSO_ID_LEN];
    char return_to[2100];
};

/* A code for the session's SAML subject (*url then set), or no code when
 * the session did not come through the SAML IdP or SLO is off. */
static int
mint_code(struct sso_gen *g, const struct sso_session *s, const char *return_to,
          char **url, struct cmn_err *err)
{
    struct sso_saml_logout lo = {0};
    char code[SSO_ID_LEN], base[1100];
    int rc;

    *url = NULL;
    if (s->saml_name_id[0] == '\0' || !sso_saml_slo_enabled(g->cfg->saml)) {
        return CMN_OK;
    }
    snprintf(lo.name_id, sizeof(lo.name_id), "%s", s->saml_name_id);
    snprintf(lo.name_id_format, sizeof(lo.name_id_format), "%s",
             s->saml_name_id_format);
    snprintf(lo.name_qualifier, sizeof(lo.name_qualifier), "%s",
             s->saml_name_qualifier);
    snprintf(lo.sp_name_qualifier, sizeof(lo.sp_name_qualifier), "%s",
             s->saml_sp_name_qualifier);
    snprintf(lo.session_index, sizeof(lo.session_index), "%s",
             s->saml_session_index);
    snprintf(lo.return_to, sizeof(lo.return_to), "%s", return_to);
    if (cmn_random_id(code, sizeof(code), SSO_ID_BYTES) != CMN_OK) {
        cmn_err_set(err, "no randomness");
        return CMN_ERR;
    }
    rc = sso_store_saml_logout_code_put(&g->store, code, &lo, err);
    if (rc == CMN_OK) {
        snprintf(base, sizeof(base), "%s/sso/saml/logout", g->cfg->public_url);
        *url = sso_url_add_param(base, "code", code);
        rc = *url != NULL ? CMN_OK : CMN_NOMEM;
    }
    cmn_wipe(code, sizeof(code));
    cmn_wipe(&lo, sizeof(lo));
    return rc;
}

static void
logout_job(void *arg)
{
    struct logout_job *j = arg;
    struct sso_gen *g = sso_app_acquire(j->app);
    struct sso_out o = {.req = NULL, .d = j->d};
    struct sso_session s = {0}, gone = {0};
    struct cmn_err err = {{0}};
    char *url = NULL, fp[13];
    int rc;

    cmn_log_set_request_id(cmn_http_deferred_id(j->d));
    rc = sso_store_session_get(&g->store, j->sid, &s, &err);
    if (rc == CMN_NOTFOUND || rc == CMN_INVALID) {
        (void)sso_out_error(&o, 404, "unknown_session",
                            "no such session (expired or logged out)");
        goto out;
    }
    /* the code first: if it cannot be stored, nothing has changed yet */
    if (rc != CMN_OK || mint_code(g, &s, j->return_to, &url, &err) != CMN_OK) {
        (void)sso_out_error(&o, 503, "store_unavailable", err.msg);
        goto out;
    }
    rc = sso_store_session_delete(&g->store, j->sid, &gone, &err);
    if (rc != CMN_OK && rc != CMN_NOTFOUND) {
        (void)sso_out_error(&o, 503, "store_unavailable", err.msg);
        goto out;
    }
    if (rc == CMN_OK) { /* else someone ended it meanwhile */
        cmn_metric_inc(j->app->m.logouts);
        sso_ids_revoke(g->cfg, gone.refresh_token);
    }
    cmn_log_fingerprint(j->sid, fp);
    cmn_log_notice("event=logout user=%s session=%s saml_logout=%s",
                   s.user[0] != '\0' ? s.user : "-", fp,
                   url != NULL                 ? "code"
                   : s.saml_name_id[0] != '\0' ? "unavailable"
                                               : "not_saml");
    (void)sso_out_json(
        &o, 200,
        json_pack("{s:b, s:s?, s:s?, s:o}", "ok", 1, "user",
                  s.user[0] != '\0' ? s.user : NULL, "saml_logout_url", url,
                  "expires_at",
                  url != NULL ? json_integer(cmn_wall_sec() + LOGOUT_CODE_TTL_S)
                              : json_null()));
out:
    cmn_log_set_request_id(NULL);
    if (url != NULL) {
        cmn_wipe(url, strlen(url));
        free(url);
    }
    sso_session_cleanup(&s);
    sso_session_cleanup(&gone);
    cmn_wipe(j->sid, sizeof(j->sid));
    sso_gen_release(g);
    free(j);
}

/* The body {"session": ID, "return_to": URL}: the session id well formed
 * (else 404 unknown_session, as DELETE /v1/sessions/{id} answers),
 * return_to (default [saml] default_return_to) allowed like a sign-in's
 * and without our own parameter. false: the 4xx is queued. */
static bool
logout_input(struct cmn_http_req *req, struct sso_gen *g, struct logout_job *j)
{
    const struct sso_saml_config *s = g->cfg->saml;
    json_t *body = cmn_http_req_json(req), *rtv;
    const char *sid, *rt;
    bool ok = false;

    if (body == NULL) {
        return false; /* 400 already queued */
    }
    sid = json_string_value(json_object_get(body, "session"));
    rtv = json_object_get(body, "return_to");
    rt = rtv != NULL ? json_string_value(rtv)
                     : (s != NULL ? s->default_return_to : NULL);
    if (sid == NULL) {
        (void)cmn_http_reply_error(req, 400, "invalid_request",
                                   "\"session\" must be a session id");
    } else if (!sso_id_valid(sid)) {
        (void)cmn_http_reply_error(req, 404, "unknown_session",
                                   "malformed session id");
    } else if (rtv != NULL && rt == NULL) {
        (void)cmn_http_reply_error(req, 400, "invalid_request",
                                   "\"return_to\" must be a string");
    } else if (rt == NULL) {
        (void)cmn_http_reply_error(req, 400, "invalid_request",
                                   "\"return_to\" is required ([saml] has "
                                   "no default_return_to)");
    } else if (strlen(rt) >= sizeof(j->return_to) ||
               !sso_url_allowed(g->cfg->allowed, g->cfg->nallowed, rt, NULL) ||
               sso_url_has_param(rt, "saml_logout")) {
        (void)cmn_http_reply_error(req, 400, "invalid_request",
                                   "\"return_to\" is not an allowed URL "
                                   "([login] allowed_return_to)");
    } else {
        snprintf(j->sid, sizeof(j->sid), "%s", sid);
        snprintf(j->return_to, sizeof(j->return_to), "%s", rt);
        ok = true;
    }
    json_decref(body);
    return ok;
}

int
sso_http_saml_logout_code(struct cmn_http_req *req, void *appv)
{
    struct sso_app *app = appv;
    struct sso_gen *g = sso_app_acquire(app);
    struct logout_job *j = NULL;
    int rc = CMN_OK;

    if (!sso_http_service_authorised(req, g)) {
        goto out;
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL) {
        rc = cmn_http_reply_error(req, 503, "internal", "out of memory");
        goto out;
    }
    if (!logout_input(req, g, j)) {
        goto out; /* bad input changes nothing */
    }
    j->app = app;
    j->d = cmn_http_defer(req);
    if (j->d == NULL) {
        rc = cmn_http_reply_error(req, 503, "shutting_down",
                                  "the server is stopping");
        goto out;
    }
    if (cmn_jobs_submit(app->jobs, logout_job, j) != CMN_OK) {
        (void)cmn_http_deferred_reply_error(j->d, 503, "busy",
                                            "too much work queued");
        goto out;
    }
    j = NULL; /* the job's now */
out:
    if (j != NULL) {
        cmn_wipe(j->sid, sizeof(j->sid));
        free(j);
    }
    sso_gen_release(g);
    return rc;
}

/* --- the browser: on to the IdP with our LogoutRequest --- */

int
sso_http_saml_logout(struct cmn_http_req *req, void *appv)
{
    struct sso_app *app = appv;
    struct sso_gen *g = sso_app_acquire(app);
    const struct sso_saml_config *s = g->cfg->saml;
    const char *code = cmn_http_req_query(req, "code");
    struct sso_out o = {.req = req, .d = NULL};
    struct sso_saml_logout lo = {0};
    struct sso_saml_logout_request rq = {0};
    struct saml_logout_subject who;
    struct cmn_err err = {{0}};
    char id[34], why[200], *url = NULL;
    int rc;

    if (!sso_saml_slo_enabled(s)) {
        rc = cmn_http_reply_error(req, 404, "not_found",
                                  "Single Logout needs [saml] sp_key_file "
                                  "and an IdP SingleLogoutService");
        goto out;
    }
    if (code == NULL || !sso_id_valid(code)) {
        rc = sso_saml_logout_refuse(app, &o, SAML_R_LOGOUT_CODE,
                                    "no logout code, or not one of ours");
        goto out;
    }
    rc = sso_store_saml_logout_code_take(&g->store, code, &lo, &err);
    if (rc == CMN_NOTFOUND || rc == CMN_INVALID) {
        rc = sso_saml_logout_refuse(app, &o, SAML_R_LOGOUT_CODE,
                                    "logout code unknown, expired or "
                                    "already used");
        goto out;
    }
    if (rc != CMN_OK) {
        snprintf(why, sizeof(why), "logout code store: %.150s", err.msg);
        rc = sso_saml_logout_refuse(app, &o, SAML_R_STORE, why);
        goto out;
    }
    if (saml_new_id(id) != CMN_OK ||
        cmn_random_id(rq.relay_state, sizeof(rq.relay_state), SSO_ID_BYTES) !=
            CMN_OK) {
        rc = sso_http_page(req, 500, "Sign-out failed", "No randomness.");
        goto out;
    }
    snprintf(rq.return_to, sizeof(rq.return_to), "%s", lo.return_to);
    rq.created = cmn_wall_sec();
    rc = sso_store_saml_logout_request_put(&g->store, id, &rq, &err);
    if (rc != CMN_OK) {
        snprintf(why, sizeof(why), "logout request store: %.150s", err.msg);
        rc = sso_saml_logout_refuse(app, &o, SAML_R_STORE, why);
        goto out;
    }
    who = (struct saml_logout_subject){
        .name_id = lo.name_id,
        .format = lo.name_id_format,
        .name_qualifier = lo.name_qualifier,
        .sp_name_qualifier = lo.sp_name_qualifier,
        .session_index = lo.session_index,
    };
    /* RelayState is opaque: a random id whose meaning stays in Redis */
    url = saml_logout_request_url(&s->idp, s->sp_entity_id, id, &who,
                                  rq.relay_state, rq.created, &s->key);
    if (url == NULL) {
        rc = sso_http_page(req, 500, "Sign-out failed", "Out of memory.");
        goto out;
    }
    cmn_metric_inc(app->m.saml_logouts[SSO_SLO_SP_STARTED]);
    cmn_log_notice("event=saml_logout_started initiator=sp request=%s", id);
    rc = cmn_http_reply_redirect(req, url);
out:
    free(url);
    cmn_wipe(&lo, sizeof(lo));
    cmn_wipe(&rq, sizeof(rq));
    sso_gen_release(g);
    return rc;
}
