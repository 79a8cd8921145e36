/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_ids.c - the IdS client: token endpoint (code exchange, refresh),
 * revocation, and the token-signing key. Request bodies hold secrets
 * (codes, verifiers, refresh tokens): they are wiped and never logged. */
#include <stdlib.h>
#include <string.h>

#include "cmn_httpc.h"
#include "cmn_log.h"
#include "sso_ids.h"
#include "sso_jwt.h"

#define KEY_BODY_MAX (64 * 1024) /* a PEM key or certificate */

static void
post_form(const struct sso_config *cfg, const char *url, char *form,
          struct sso_token_response *out, const char *what)
{
    static const char *const headers[] = {
        "Content-Type: application/x-www-form-urlencoded",
        "Accept: application/json",
        NULL,
    };
    struct cmn_httpc_req req = {
        .method = "POST",
        .url = url,
        .headers = headers,
        .body = form,
        .body_len = strlen(form),
        .basic_user = cfg->client_id,
        .basic_pass = (const char *)cfg->client_secret->data,
        .ca_file = cfg->ca_file,
        .timeout_ms = cfg->ids_timeout_ms,
        .connect_timeout_ms =
            cfg->ids_timeout_ms < 2000 ? cfg->ids_timeout_ms : 2000,
        .max_response = 256 * 1024,
    };
    struct cmn_httpc_resp resp = {0};
    struct cmn_err err = {{0}};
    int rc = cmn_httpc_do(&req, &resp, &err);

    if (rc != CMN_OK) {
        memset(out, 0, sizeof(*out));
        out->outcome = SSO_TOKEN_UNAVAILABLE;
        snprintf(out->error, sizeof(out->error), "%s",
                 rc == CMN_TIMEOUT ? "timeout" : "unreachable");
        snprintf(out->error_description, sizeof(out->error_description), "%s",
                 err.msg);
        cmn_log_warn("event=ids_call_failed call=%s rc=%s detail=\"%s\"", what,
                     cmn_rc_str(rc), err.msg);
    } else if (strcmp(what, "revoke") == 0) {
        /* RFC 7009: 200 with an empty body; there is nothing to parse */
        memset(out, 0, sizeof(*out));
        out->outcome = resp.status == 200 ? SSO_TOKEN_OK : SSO_TOKEN_REJECTED;
        cmn_log_info("event=ids_revoke status=%ld ms=%lld", resp.status,
                     resp.elapsed_ms);
    } else {
        sso_token_response_parse(resp.status, resp.body, resp.body_len, out);
        if (out->outcome != SSO_TOKEN_OK) {
            cmn_log_warn("event=ids_call_failed call=%s status=%ld "
                         "outcome=%s error=%s ms=%lld",
                         what, resp.status, sso_token_outcome_str(out->outcome),
                         out->error, resp.elapsed_ms);
        } else {
            cmn_log_debug("event=ids_call_ok call=%s ms=%lld", what,
                          resp.elapsed_ms);
        }
    }
    if (resp.body != NULL) {
        cmn_wipe(resp.body, resp.body_len);
    }
    cmn_httpc_resp_cleanup(&resp);
}

static void
fail_nomem(struct sso_token_response *out)
{
    memset(out, 0, sizeof(*out));
    out->outcome = SSO_TOKEN_UNAVAILABLE;
    snprintf(out->error, sizeof(out->error), "nomem");
}

static void
wipe_free(char *s)
{
    if (s != NULL) {
        cmn_wipe(s, strlen(s));
        free(s);
    }
}

void
sso_ids_exchange_code(const struct sso_config *cfg, const char *code,
                      const char *code_verifier, struct sso_token_response *out)
{
    char *form = NULL;

    if (cmn_form_add(&form, "grant_type", "authorization_code") != CMN_OK ||
        cmn_form_add(&form, "code", code) != CMN_OK ||
        cmn_form_add(&form, "redirect_uri", cfg->redirect_uri) != CMN_OK ||
        cmn_form_add(&form, "code_verifier", code_verifier) != CMN_OK ||
        cmn_form_add(&form, "client_id", cfg->client_id) != CMN_OK) {
        wipe_free(form);
        fail_nomem(out);
        return;
    }
    post_form(cfg, cfg->token_url, form, out, "authorization_code");
    wipe_free(form);
}

void
sso_ids_refresh(const struct sso_config *cfg, const char *refresh_token,
                struct sso_token_response *out)
{
    char *form = NULL;

    if (cmn_form_add(&form, "grant_type", "refresh_token") != CMN_OK ||
        cmn_form_add(&form, "refresh_token", refresh_token) != CMN_OK ||
        (cfg->scope != NULL &&
         cmn_form_add(&form, "scope", cfg->scope) != CMN_OK)) {
        wipe_free(form);
        fail_nomem(out);
        return;
    }
    post_form(cfg, cfg->token_url, form, out, "refresh_token");
    wipe_free(form);
}

void
sso_ids_revoke(const struct sso_config *cfg, const char *refresh_token)
{
    char *form = NULL;
    struct sso_token_response out;

    if (cfg->revoke_url == NULL || refresh_token == NULL) {
        return;
    }
    if (cmn_form_add(&form, "token", refresh_token) != CMN_OK ||
        cmn_form_add(&form, "token_type_hint", "refresh_token") != CMN_OK) {
        wipe_free(form);
        return;
    }
    post_form(cfg, cfg->revoke_url, form, &out, "revoke");
    sso_token_response_cleanup(&out);
    wipe_free(form);
}

EVP_PKEY *
sso_ids_fetch_key(const struct sso_config *cfg, char *why, size_t why_size)
{
    static const char *const headers[] = {
        "Accept: application/x-pem-file, application/x-x509-ca-cert, "
        "text/plain, */*",
        NULL,
    };
    struct cmn_httpc_req req = {
        .method = "GET",
        .url = cfg->public_key_url,
        .headers = headers,
        .basic_user = cfg->client_id,
        .basic_pass = (const char *)cfg->client_secret->data,
        .ca_file = cfg->ca_file,
        .timeout_ms = cfg->ids_timeout_ms,
        .connect_timeout_ms =
            cfg->ids_timeout_ms < 2000 ? cfg->ids_timeout_ms : 2000,
        .max_response = KEY_BODY_MAX,
    };
    struct cmn_httpc_resp resp = {0};
    struct cmn_err err = {{0}};
    EVP_PKEY *key = NULL;
    int rc = cmn_httpc_do(&req, &resp, &err);

    if (rc != CMN_OK) {
        snprintf(why, why_size, "%s: %s",
                 rc == CMN_TIMEOUT ? "timeout" : "unreachable", err.msg);
    } else if (resp.status == 200) {
        key = sso_jwt_key_parse(resp.body, resp.body_len, &err);
        if (key == NULL) {
            snprintf(why, why_size, "HTTP 200 but %s", err.msg);
        }
    } else if (resp.status == 401 || resp.status == 403) {
        snprintf(why, why_size,
                 "HTTP %ld: IdS refused the client credentials for its key",
                 resp.status);
    } else if (resp.status == 404) {
        snprintf(why, why_size,
                 "HTTP 404: no token key endpoint (IdS before 12.6(2) "
                 "encrypts its tokens)");
    } else {
        snprintf(why, why_size, "HTTP %ld", resp.status);
    }
    cmn_log_debug("event=ids_key_fetch status=%ld ok=%d ms=%lld", resp.status,
                  key != NULL, resp.elapsed_ms);
    cmn_httpc_resp_cleanup(&resp);
    return key;
}
