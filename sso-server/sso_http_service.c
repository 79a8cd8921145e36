/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_http_service.c - the service API fsc-connector calls with the
 * service key: redeem a handoff code, fetch the current token, log out;
 * and for operators (fscctl session revoke), end all of a user's
 * sessions. */
#include <stdlib.h>
#include <string.h>

#include "cmn_log.h"
#include "cmn_seal.h"
#include "sso_http.h"
#include "sso_ids.h"
#include "sso_out.h"
#include "sso_token.h"

/* Constant-time check of the service key; any failure is the same 401. */
bool
sso_http_service_authorised(struct cmn_http_req *req, const struct sso_gen *g)
{
    const char *key = cmn_http_req_bearer(req);

    if (key != NULL &&
        cmn_ct_streq(key, (const char *)g->cfg->service_key->data)) {
        return true;
    }
    cmn_log_warn("event=service_auth_failed peer=%s", cmn_http_req_peer(req));
    cmn_http_add_header(req, "WWW-Authenticate", "Bearer realm=\"fsc-sso\"");
    cmn_http_reply_error(req, 401, "unauthorized",
                         "a valid service key is required");
    return false;
}

static const char *
user_or_dash(const struct sso_session *s)
{
    return s->user[0] != '\0' ? s->user : "-";
}

/* {"session", "user", "expires_at"}; for an opaque token (IdS before
 * 12.6(2)) "user" is null and "user_hint" carries the login_hint given to
 * /sso/login (or null): the connector must prove who the agent is. */
static json_t *
handoff_json(const char *sid, const struct sso_session *s)
{
    if (s->user[0] != '\0') {
        return json_pack("{s:s, s:s, s:I}", "session", sid, "user", s->user,
                         "expires_at", (json_int_t)s->access_expires_at);
    }
    return json_pack("{s:s, s:n, s:s?, s:I}", "session", sid, "user",
                     "user_hint", s->user_hint[0] != '\0' ? s->user_hint : NULL,
                     "expires_at", (json_int_t)s->access_expires_at);
}

/* The token answer: "user" is null for an opaque token's session. */
static json_t *
token_json(const struct sso_session *s)
{
    return json_pack("{s:s, s:s?, s:I}", "access_token", s->access_token,
                     "user", s->user[0] != '\0' ? s->user : NULL, "expires_at",
                     (json_int_t)s->access_expires_at);
}

int
sso_http_handoff(struct cmn_http_req *req, void *appv)
{
    struct sso_app *app = appv;
    struct sso_gen *g = sso_app_acquire(app);
    struct sso_session s = {0};
    struct cmn_err err = {{0}};
    char sid[SSO_ID_LEN];
    json_t *body = NULL;
    const char *code;
    char fp[13];
    int rc = CMN_OK;

    if (!sso_http_service_authorised(req, g)) {
        goto out;
    }
    body = cmn_http_req_json(req);
    if (body == NULL) {
        goto out; /* 400 already queued */
    }
    code = json_string_value(json_object_get(body, "handoff"));
    if (code == NULL || !sso_id_valid(code)) {
        rc = cmn_http_reply_error(req, 400, "invalid_request",
                                  "\"handoff\" must be a handoff code");
        goto out;
    }
    cmn_log_fingerprint(code, fp);
    rc = sso_store_handoff_take(&g->store, code, sid, &err);
    if (rc == CMN_NOTFOUND || rc == CMN_INVALID) {
        cmn_metric_inc(app->m.handoffs_failed);
        cmn_log_warn("event=handoff_refused code=%s", fp);
        rc = cmn_http_reply_error(req, 400, "invalid_handoff",
                                  "unknown, expired or already used handoff "
                                  "code");
        goto out;
    }
    if (rc != CMN_OK) {
        rc = cmn_http_reply_error(req, 503, "store_unavailable", err.msg);
        goto out;
    }
    rc = sso_store_session_get(&g->store, sid, &s, &err);
    if (rc != CMN_OK || s.ended[0] != '\0') {
        cmn_metric_inc(app->m.handoffs_failed);
        rc = cmn_http_reply_error(
            req, rc == CMN_OK || rc == CMN_NOTFOUND ? 400 : 503,
            "invalid_handoff", "the session behind this code is gone");
        goto out;
    }
    cmn_metric_inc(app->m.handoffs_ok);
    cmn_log_fingerprint(sid, fp);
    cmn_log_info("event=handoff_ok user=%s session=%s", user_or_dash(&s), fp);
    rc = cmn_http_reply_json(req, 200, handoff_json(sid, &s));
out:
    sso_session_cleanup(&s);
    cmn_wipe(sid, sizeof(sid));
    json_decref(body);
    sso_gen_release(g);
    return rc;
}

static int
reply_token(struct sso_app *app, struct sso_gen *g, struct sso_out *o,
            const char *sid, long long t0)
{
    struct sso_session s = {0};
    struct cmn_err err = {{0}};
    int rc;

    switch (sso_token_get(app, g, sid, &s, &err)) {
    case SSO_TOKEN_CURRENT:
        rc = sso_out_json(o, 200, token_json(&s));
        break;
    case SSO_TOKEN_NO_SESSION:
        rc = sso_out_error(o, 404, "unknown_session",
                           "no such session (expired or logged out)");
        break;
    case SSO_TOKEN_SESSION_ENDED:
        rc = sso_out_error(o, 401, "session_ended", s.ended);
        break;
    case SSO_TOKEN_IDS_DOWN:
        rc = sso_out_error(o, 503, "ids_unavailable", err.msg);
        break;
    default:
        rc = sso_out_error(o, 503, "store_unavailable", err.msg);
        break;
    }
    cmn_metric_observe(app->m.token_fetch_seconds,
                       (double)(cmn_now_ms() - t0) / 1000.0);
    sso_session_cleanup(&s);
    return rc;
}

/* The common case, answered on the HTTP thread: one Redis read finds a
 * current token that needs no refresh. Anything else (a refresh due, an
 * ended or unknown session, Redis failing over) goes to a job thread,
 * where waiting on IdS, on another instance's refresh or on Sentinel
 * blocks nobody else. */
static bool
reply_token_fast(struct sso_app *app, struct sso_gen *g,
                 struct cmn_http_req *req, const char *sid, long long t0)
{
    struct sso_session s = {0};
    struct cmn_err err = {{0}};
    long long now = cmn_wall_sec();
    bool done = false;

    if (sso_store_session_get(&g->store, sid, &s, &err) == CMN_OK &&
        s.saml_only) {
        /* signed in through the SAML IdP only ([saml] without [ids]):
         * the session names the user but holds no IdS token */
        if (s.ended[0] != '\0') {
            (void)cmn_http_reply_error(req, 401, "session_ended", s.ended);
        } else {
            (void)cmn_http_reply_error(req, 409, "no_token",
                                       "a SAML-only session has no IdS "
                                       "token");
        }
        done = true;
    } else if (s.access_token != NULL && s.ended[0] == '\0' &&
               s.access_expires_at > now &&
               !sso_token_refresh_due(g->cfg, &s, now)) {
        (void)cmn_http_reply_json(req, 200, token_json(&s));
        cmn_metric_observe(app->m.token_fetch_seconds,
                           (double)(cmn_now_ms() - t0) / 1000.0);
        done = true;
    }
    sso_session_cleanup(&s);
    return done;
}

static int
logout(struct sso_app *app, struct sso_gen *g, struct sso_out *o,
       const char *sid)
{
    struct sso_session s = {0};
    struct cmn_err err = {{0}};
    char fp[13];
    int rc = sso_store_session_delete(&g->store, sid, &s, &err);

    if (rc == CMN_NOTFOUND) {
        return sso_out_error(o, 404, "unknown_session", "no such session");
    }
    if (rc != CMN_OK) {
        return sso_out_error(o, 503, "store_unavailable", err.msg);
    }
    cmn_metric_inc(app->m.logouts);
    cmn_log_fingerprint(sid, fp);
    cmn_log_notice("event=logout user=%s session=%s", user_or_dash(&s), fp);
    sso_ids_revoke(g->cfg, s.refresh_token);
    sso_session_cleanup(&s);
    return sso_out_json(o, 200, json_pack("{s:b}", "ok", 1));
}

/* A token fetch or a logout on a job thread. */
struct session_job {
    struct sso_app *app;
    struct cmn_http_deferred *d;
    char sid[SSO_ID_LEN];
    bool logout;
    long long t0;
};

static void
session_job(void *arg)
{
    struct session_job *j = arg;
    struct sso_gen *g = sso_app_acquire(j->app);
    struct sso_out o = {.req = NULL, .d = j->d};

    cmn_log_set_request_id(cmn_http_deferred_id(j->d));
    if (j->logout) {
        (void)logout(j->app, g, &o, j->sid);
    } else {
        (void)reply_token(j->app, g, &o, j->sid, j->t0);
    }
    cmn_log_set_request_id(NULL);
    sso_gen_release(g);
    cmn_wipe(j->sid, sizeof(j->sid));
    free(j);
}

static int
session_later(struct sso_app *app, struct cmn_http_req *req, const char *sid,
              bool is_logout, long long t0)
{
    struct session_job *j = calloc(1, sizeof(*j));

    if (j == NULL) {
        return cmn_http_reply_error(req, 503, "internal", "out of memory");
    }
    j->d = cmn_http_defer(req);
    if (j->d == NULL) {
        free(j);
        return cmn_http_reply_error(req, 503, "shutting_down",
                                    "the server is stopping");
    }
    j->app = app;
    j->logout = is_logout;
    j->t0 = t0;
    memcpy(j->sid, sid, sizeof(j->sid));
    if (cmn_jobs_submit(app->jobs, session_job, j) != CMN_OK) {
        (void)cmn_http_deferred_reply_error(j->d, 503, "busy",
                                            "too much work queued");
        cmn_wipe(j->sid, sizeof(j->sid));
        free(j);
    }
    return CMN_OK;
}

/* /v1/sessions/{id}/token (GET) and /v1/sessions/{id} (DELETE) */
int
sso_http_sessions(struct cmn_http_req *req, void *appv)
{
    struct sso_app *app = appv;
    struct sso_gen *g = sso_app_acquire(app);
    const char *rest = cmn_http_req_path_rest(req);
    const char *method = cmn_http_req_method(req);
    char sid[SSO_ID_LEN];
    size_t idlen = strcspn(rest, "/");
    const char *tail = rest + idlen;
    int rc = CMN_OK;

    if (!sso_http_service_authorised(req, g)) {
        goto out;
    }
    if (idlen != SSO_ID_LEN - 1) {
        rc = cmn_http_reply_error(req, 404, "unknown_session",
                                  "malformed session id");
        goto out;
    }
    memcpy(sid, rest, idlen);
    sid[idlen] = '\0';
    if (!sso_id_valid(sid)) {
        rc = cmn_http_reply_error(req, 404, "unknown_session",
                                  "malformed session id");
    } else if (strcmp(method, "GET") == 0 && strcmp(tail, "/token") == 0) {
        long long t0 = cmn_now_ms();
        if (!reply_token_fast(app, g, req, sid, t0)) {
            rc = session_later(app, req, sid, false, t0);
        }
    } else if (strcmp(method, "DELETE") == 0 && tail[0] == '\0') {
        rc = session_later(app, req, sid, true, 0); /* revokes at IdS */
    } else {
        rc = cmn_http_reply_error(req, 404, "not_found", "no such resource");
    }
out:
    cmn_wipe(sid, sizeof(sid));
    sso_gen_release(g);
    return rc;
}

/* --- DELETE /v1/sessions?user=USER: end every session of a user ---
 * (fscctl session revoke): each one is deleted and its refresh token
 * revoked at IdS, as a logout does. On a job thread: IdS may be slow. */

struct revoke_job {
    struct sso_app *app;
    struct cmn_http_deferred *d;
    char user[SSO_USER_MAX];
};

static void
revoke_each(const struct sso_session *s, void *arg)
{
    struct sso_app *app = ((struct revoke_job *)arg)->app;
    struct sso_gen *g = sso_app_acquire(app);

    cmn_metric_inc(app->m.logouts);
    sso_ids_revoke(g->cfg, s->refresh_token);
    sso_gen_release(g);
}

static void
revoke_job(void *arg)
{
    struct revoke_job *j = arg;
    struct sso_gen *g = sso_app_acquire(j->app);
    struct cmn_err err = {{0}};
    size_t n = 0;

    cmn_log_set_request_id(cmn_http_deferred_id(j->d));
    if (sso_store_user_sessions_delete(&g->store, j->user, revoke_each, j, &n,
                                       &err) != CMN_OK) {
        cmn_log_err("event=revoke_failed user=%s ended=%zu detail=\"%s\"",
                    j->user, n, err.msg);
        (void)cmn_http_deferred_reply_error(j->d, 503, "store_unavailable",
                                            err.msg);
    } else {
        cmn_log_notice("event=sessions_revoked user=%s count=%zu", j->user, n);
        (void)cmn_http_deferred_reply_json(
            j->d, 200,
            json_pack("{s:s, s:I}", "user", j->user, "revoked", (json_int_t)n));
    }
    cmn_log_set_request_id(NULL);
    sso_gen_release(g);
    free(j);
}

/* A user name as IdS gives it: no control characters. */
static bool
user_text_ok(const char *user)
{
    for (const unsigned char *c = (const unsigned char *)user; *c; c++) {
        if (*c < 0x20 || *c == 0x7f) {
            return false;
        }
    }
    return true;
}

int
sso_http_revoke_user(struct cmn_http_req *req, void *appv)
{
    struct sso_app *app = appv;
    struct sso_gen *g = sso_app_acquire(app);
    const char *user = cmn_http_req_query(req, "user");
    struct revoke_job *j = NULL;
    int rc = CMN_OK;

    if (!sso_http_service_authorised(req, g)) {
        goto out;
    }
    if (user == NULL || user[0] == '\0' || strlen(user) >= SSO_USER_MAX ||
        !user_text_ok(user)) {
        rc = cmn_http_reply_error(req, 400, "invalid_request",
                                  "?user= must name the user (as in the "
                                  "handoff answer's \"user\")");
        goto out;
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL) {
        rc = cmn_http_reply_error(req, 503, "internal", "out of memory");
        goto out;
    }
    j->app = app;
    snprintf(j->user, sizeof(j->user), "%s", user);
    j->d = cmn_http_defer(req);
    if (j->d == NULL) {
        free(j);
        rc = cmn_http_reply_error(req, 503, "shutting_down",
                                  "the server is stopping");
        goto out;
    }
    if (cmn_jobs_submit(app->jobs, revoke_job, j) != CMN_OK) {
        (void)cmn_http_deferred_reply_error(j->d, 503, "busy",
                                            "too much work queued");
        free(j);
    }
out:
    sso_gen_release(g);
    return rc;
}
