/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_sso_client.c - fsc-sso's service API as the connector uses it:
 * redeem the softphone's handoff code, fetch the agent's current IdS
 * access token (fsc-sso refreshes it, once, across its instances), and
 * end the SSO session at logout. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_httpc.h"
#include "cmn_log.h"
#include "cti_engine_int.h"

static int
sso_call(struct cti_engine *e, const char *method, const char *path,
         const char *body, json_t **out, long *status, struct cmn_err *err)
{
    char url[1024], auth[4200];
    const char *headers[4];
    struct cmn_httpc_resp resp = {0};
    json_error_t jerr;
    int rc;

    snprintf(url, sizeof(url), "%s%s", e->cfg->sso_url, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
             (const char *)e->cfg->sso_service_key->data);
    headers[0] = auth;
    headers[1] = "Accept: application/json";
    headers[2] = body != NULL ? "Content-Type: application/json" : NULL;
    headers[3] = NULL;
    struct cmn_httpc_req req = {
        .method = method,
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = body != NULL ? strlen(body) : 0,
        .ca_file = e->cfg->ca_file,
        .timeout_ms = 5000,
        .max_response = 64 * 1024,
    };
    rc = cmn_httpc_do(&req, &resp, err);
    cmn_wipe(auth, sizeof(auth));
    *status = resp.status;
    *out = NULL;
    if (rc == CMN_OK && resp.body_len > 0) {
        *out = json_loadb(resp.body, resp.body_len, 0, &jerr);
    }
    if (resp.body != NULL) {
        cmn_wipe(resp.body, resp.body_len);
    }
    cmn_httpc_resp_cleanup(&resp);
    if (rc != CMN_OK) {
        return rc;
    }
    if (*status != 200) {
        const char *error = json_string_value(json_object_get(*out, "error"));
        cmn_err_set(err, "fsc-sso %ld %s", *status, error ? error : "");
        return *status == 401 || *status == 400 || *status == 404 ? CMN_DENIED
                                                                  : CMN_AGAIN;
    }
    return *out != NULL ? CMN_OK : CMN_INVALID;
}

/* A user name as fsc-sso gives it: absent or null is "", a string must
 * fit. */
static bool
copy_name(json_t *v, char out[FIN_NAME_MAX])
{
    const char *s = json_string_value(v);

    out[0] = '\0';
    if (v == NULL || json_is_null(v)) {
        return true;
    }
    if (s == NULL || strlen(s) >= FIN_NAME_MAX) {
        return false;
    }
    snprintf(out, FIN_NAME_MAX, "%s", s);
    return true;
}

int
sso_client_handoff(struct cti_engine *e, const char *handoff, char session[128],
                   char user[FIN_NAME_MAX], char user_hint[FIN_NAME_MAX],
                   struct cmn_err *err)
{
    json_t *body = json_pack("{s:s}", "handoff", handoff), *out = NULL;
    char *text = json_dumps(body, JSON_COMPACT);
    long status = 0;
    int rc;

    json_decref(body);
    if (text == NULL) {
        return CMN_NOMEM;
    }
    rc = sso_call(e, "POST", "/v1/handoff", text, &out, &status, err);
    free(text);
    if (rc == CMN_OK) {
        const char *s = json_string_value(json_object_get(out, "session"));
        /* "user" is required, but may be null: an IdS before 12.6(2)
         * token nobody can read (user_hint is then the login_hint) */
        if (s == NULL || strlen(s) >= 128 ||
            json_object_get(out, "user") == NULL ||
            !copy_name(json_object_get(out, "user"), user) ||
            !copy_name(json_object_get(out, "user_hint"), user_hint)) {
            cmn_err_set(err, "fsc-sso: malformed handoff answer");
            rc = CMN_INVALID;
        } else {
            snprintf(session, 128, "%s", s);
        }
    }
    json_decref(out);
    return rc;
}

int
sso_client_token(struct cti_engine *e, struct cti_session *s,
                 struct cmn_err *err)
{
    char path[256];
    json_t *out = NULL;
    long status = 0;
    int rc;

    snprintf(path, sizeof(path), "/v1/sessions/%s/token",
             (const char *)s->sso_session->data);
    rc = sso_call(e, "GET", path, NULL, &out, &status, err);
    if (rc == CMN_OK) {
        const char *t = json_string_value(json_object_get(out, "access_token"));
        json_t *exp = json_object_get(out, "expires_at");
        if (t == NULL || !json_is_integer(exp)) {
            cmn_err_set(err, "fsc-sso: malformed token answer");
            rc = CMN_INVALID;
        } else {
            if (s->bearer != NULL) {
                cmn_wipe(s->bearer, strlen(s->bearer));
                free(s->bearer);
            }
            s->bearer = strdup(t);
            s->bearer_expires_at = json_integer_value(exp);
        }
    } else if (status == 401 || status == 404) {
        /* session_ended / unknown_session: the agent must sign in again */
        cmn_log_warn("event=sso_session_ended agent=%s detail=\"%s\"", s->id,
                     err->msg);
        cti_agent_emit_error(s->agent, NULL, "session_ended",
                             "single sign-on session ended: sign in again");
    }
    if (out != NULL) {
        json_t *t = json_object_get(out, "access_token");
        if (json_is_string(t)) {
            /* jansson's copy of the token: wipe before freeing */
            cmn_wipe((char *)json_string_value(t), json_string_length(t));
        }
    }
    json_decref(out);
    return rc;
}

void
sso_client_logout(struct cti_engine *e, struct cti_session *s)
{
    char path[256];
    json_t *out = NULL;
    long status = 0;
    struct cmn_err err = {{0}};

    if (s->sso_session == NULL) {
        return;
    }
    snprintf(path, sizeof(path), "/v1/sessions/%s",
             (const char *)s->sso_session->data);
    (void)sso_call(e, "DELETE", path, NULL, &out, &status, &err);
    json_decref(out);
}
