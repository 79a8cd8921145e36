/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_http_service.c - the service API fsc-connector calls with the
 * service key: redeem a handoff code, fetch the current token, log out. */
#include <stdlib.h>
#include <string.h>

#include "cmn_log.h"
#include "cmn_seal.h"
#include "sso_http.h"
#include "sso_ids.h"
#include "sso_token.h"

/* Constant-time check of the service key; any failure is the same 401. */
static bool
authorised(struct cmn_http_req *req, const struct sso_gen *g)
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

    if (!authorised(req, g)) {
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
    cmn_log_info("event=handoff_ok user=%s session=%s", s.user, fp);
    rc = cmn_http_reply_json(req, 200,
                             json_pack("{s:s, s:s, s:I}", "session", sid,
                                       "user", s.user, "expires_at",
                                       (json_int_t)s.access_expires_at));
out:
    sso_session_cleanup(&s);
    cmn_wipe(sid, sizeof(sid));
    json_decref(body);
    sso_gen_release(g);
    return rc;
}

static int
reply_token(struct sso_app *app, struct sso_gen *g, struct cmn_http_req *req,
            const char *sid)
{
    struct sso_session s = {0};
    struct cmn_err err = {{0}};
    long long t0 = cmn_now_ms();
    int rc;

    switch (sso_token_get(app, g, sid, &s, &err)) {
    case SSO_TOKEN_CURRENT:
        rc = cmn_http_reply_json(
            req, 200,
            json_pack("{s:s, s:s, s:I}", "access_token", s.access_token, "user",
                      s.user, "expires_at", (json_int_t)s.access_expires_at));
        break;
    case SSO_TOKEN_NO_SESSION:
        rc = cmn_http_reply_error(req, 404, "unknown_session",
                                  "no such session (expired or logged out)");
        break;
    case SSO_TOKEN_SESSION_ENDED:
        rc = cmn_http_reply_error(req, 401, "session_ended", s.ended);
        break;
    case SSO_TOKEN_IDS_DOWN:
        rc = cmn_http_reply_error(req, 503, "ids_unavailable", err.msg);
        break;
    default:
        rc = cmn_http_reply_error(req, 503, "store_unavailable", err.msg);
        break;
    }
    cmn_metric_observe(app->m.token_fetch_seconds,
                       (double)(cmn_now_ms() - t0) / 1000.0);
    sso_session_cleanup(&s);
    return rc;
}

static int
logout(struct sso_app *app, struct sso_gen *g, struct cmn_http_req *req,
       const char *sid)
{
    struct sso_session s = {0};
    struct cmn_err err = {{0}};
    char fp[13];
    int rc = sso_store_session_delete(&g->store, sid, &s, &err);

    if (rc == CMN_NOTFOUND) {
        return cmn_http_reply_error(req, 404, "unknown_session",
                                    "no such session");
    }
    if (rc != CMN_OK) {
        return cmn_http_reply_error(req, 503, "store_unavailable", err.msg);
    }
    cmn_metric_inc(app->m.logouts);
    cmn_log_fingerprint(sid, fp);
    cmn_log_notice("event=logout user=%s session=%s", s.user, fp);
    sso_ids_revoke(g->cfg, s.refresh_token);
    sso_session_cleanup(&s);
    return cmn_http_reply_json(req, 200, json_pack("{s:b}", "ok", 1));
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

    if (!authorised(req, g)) {
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
        rc = reply_token(app, g, req, sid);
    } else if (strcmp(method, "DELETE") == 0 && tail[0] == '\0') {
        rc = logout(app, g, req, sid);
    } else {
        rc = cmn_http_reply_error(req, 404, "not_found", "no such resource");
    }
out:
    cmn_wipe(sid, sizeof(sid));
    sso_gen_release(g);
    return rc;
}
