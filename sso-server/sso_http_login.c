/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_http_login.c - the browser half of sign-in: /sso/login sends the
 * agent to IdS with state, nonce and PKCE; /sso/callback exchanges the
 * code, stores the session and hands a one-time code to the softphone.
 * Either instance can serve either step: all state is in Redis.
 *
 * Anyone can start a sign-in, and each start is a record in Redis for
 * [session] state_ttl_s: what a start may store is capped (return_to,
 * login_hint) and the starts of one client address are limited ([login]
 * starts_per_minute, per instance), so that no one address can fill Redis
 * and stop sign-ins, token refreshes and the connector's outbox. The
 * state is bound to the browser that started it (sso_bind.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_httpc.h"
#include "cmn_log.h"
#include "cmn_seal.h"
#include "sso_bind.h"
#include "sso_claims.h"
#include "sso_http.h"
#include "sso_ids.h"
#include "sso_keys.h"
#include "sso_out.h"
#include "sso_saml.h"
#include "sso_saml_config.h"
#include "sso_url.h"

static bool
printable(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f) {
            return false;
        }
    }
    return true;
}

static char *
authorize_url(const struct sso_config *cfg, const char *state,
              const struct sso_login_state *ls)
{
    unsigned char digest[32];
    char challenge[64];
    char *q = NULL, *url = NULL;
    bool ok;

    cmn_sha256(ls->verifier, strlen(ls->verifier), digest);
    cmn_base64url_encode(digest, sizeof(digest), challenge, sizeof(challenge));
    ok = cmn_form_add(&q, "response_type", "code") == CMN_OK &&
         cmn_form_add(&q, "client_id", cfg->client_id) == CMN_OK &&
         cmn_form_add(&q, "redirect_uri", cfg->redirect_uri) == CMN_OK &&
         cmn_form_add(&q, "state", state) == CMN_OK &&
         cmn_form_add(&q, "nonce", ls->nonce) == CMN_OK &&
         cmn_form_add(&q, "code_challenge", challenge) == CMN_OK &&
         cmn_form_add(&q, "code_challenge_method", "S256") == CMN_OK &&
         (cfg->scope == NULL ||
          cmn_form_add(&q, "scope", cfg->scope) == CMN_OK) &&
         (ls->login_hint[0] == '\0' ||
          cmn_form_add(&q, "login_hint", ls->login_hint) == CMN_OK);
    if (ok) {
        size_t n = strlen(cfg->authorize_url) + strlen(q) + 2;
        url = malloc(n);
        if (url != NULL) {
            snprintf(url, n, "%s%c%s", cfg->authorize_url,
                     strchr(cfg->authorize_url, '?') ? '&' : '?', q);
        }
    }
    free(q);
    return url;
}

/* One start per token of the client's bucket ([login] starts_per_minute):
 * CMN_AGAIN to go on, else the 429 queued. */
static int
start_allowed(struct cmn_http_req *req, struct sso_app *app, struct sso_gen *g)
{
    char client[CMN_ADDR_MAX], key[CMN_ADDR_MAX], retry[24];
    long long wait_ms = 0;

    cmn_http_req_client(req, &g->cfg->trusted_proxies, client);
    cmn_net_count_key(client, key);
    if (cmn_rate_take(app->starts, key, cmn_now_ms(), &wait_ms) == CMN_OK) {
        return CMN_AGAIN;
    }
    cmn_metric_inc(app->m.starts_limited);
    cmn_log_warn("event=login_limited client=%s retry_after_s=%lld", key,
                 (wait_ms + 999) / 1000);
    snprintf(retry, sizeof(retry), "%lld", (wait_ms + 999) / 1000);
    (void)cmn_http_add_header(req, "Retry-After", retry);
    return sso_http_page(req, 429, "Too many sign-ins",
                         "Too many sign-ins were started from your network "
                         "just now. Wait a moment and try again.");
}

int
sso_http_login_check(struct cmn_http_req *req, struct sso_app *app,
                     struct sso_gen *g, const char **return_to,
                     const char **hint, bool *popup)
{
    const char *mode = cmn_http_req_query(req, "mode");

    *return_to = cmn_http_req_query(req, "return_to");
    *hint = cmn_http_req_query(req, "login_hint");
    *popup = mode != NULL && strcmp(mode, "popup") == 0;
    if (*return_to == NULL || strlen(*return_to) > SSO_RETURN_TO_MAX ||
        !sso_url_allowed(g->cfg->allowed, g->cfg->nallowed, *return_to, NULL)) {
        cmn_log_warn("event=login_refused reason=return_to_not_allowed");
        return sso_http_page(req, 400, "Sign-in refused",
                             "The page that started this sign-in is not one "
                             "this server may return to (return_to).");
    }
    if (sso_url_has_param(*return_to, "handoff")) {
        /* a softphone reading the first handoff= would take the planted
         * one (also percent-encoded: the page decodes the query) */
        cmn_log_warn("event=login_refused reason=return_to_has_handoff");
        return sso_http_page(req, 400, "Sign-in refused",
                             "return_to must not carry a handoff parameter.");
    }
    if (*hint != NULL && !printable(*hint, SSO_HINT_MAX)) {
        return sso_http_page(req, 400, "Sign-in refused",
                             "login_hint is not a valid user name.");
    }
    if (mode != NULL && strcmp(mode, "popup") != 0 &&
        strcmp(mode, "redirect") != 0) {
        return sso_http_page(req, 400, "Sign-in refused",
                             "mode must be popup or redirect.");
    }
    /* valid: it will be stored, and counts against the client */
    return start_allowed(req, app, g);
}

int
sso_http_login_ids(struct cmn_http_req *req, struct sso_gen *g,
                   struct sso_login_state *ls)
{
    char state[SSO_ID_LEN];
    struct cmn_err err = {{0}};
    char bind[SSO_ID_LEN];
    char *url = NULL;
    int rc;

    if (cmn_random_id(state, sizeof(state), SSO_ID_BYTES) != CMN_OK ||
        cmn_random_id(ls->nonce, sizeof(ls->nonce), SSO_ID_BYTES) != CMN_OK ||
        cmn_random_id(ls->verifier, sizeof(ls->verifier), SSO_ID_BYTES) !=
            CMN_OK ||
        sso_bind_value(req, bind) != CMN_OK) {
        return sso_http_page(req, 500, "Sign-in failed", "No randomness.");
    }
    /* the callback must come from this browser: the cookie's hash goes
     * with the state */
    sso_bind_hash(bind, ls->bind_hash);
    (void)sso_bind_set_cookie(req, SSO_BIND_COOKIE, bind, g->cfg->state_ttl_s,
                              false);
    cmn_wipe(bind, sizeof(bind));
    ls->created = cmn_wall_sec();
    if (sso_store_state_put(&g->store, state, ls, &err) != CMN_OK) {
        cmn_log_err("event=login_failed reason=store detail=\"%s\"", err.msg);
        return sso_http_page(req, 503, "Sign-in unavailable",
                             "The session store cannot be reached; try again "
                             "in a moment.");
    }
    url = authorize_url(g->cfg, state, ls);
    if (url == NULL) {
        return sso_http_page(req, 500, "Sign-in failed", "Out of memory.");
    }
    /* the hint is user input: logged as present or not, never verbatim */
    cmn_log_info("event=login_started popup=%d hint=%d saml=%d", ls->popup,
                 ls->login_hint[0] != '\0', ls->saml_user[0] != '\0');
    rc = cmn_http_reply_redirect(req, url);
    free(url);
    return rc;
}

int
sso_http_login(struct cmn_http_req *req, void *appv)
{
    struct sso_app *app = appv;
    struct sso_gen *g = sso_app_acquire(app);
    struct sso_login_state ls = {0};
    const char *return_to, *hint;
    bool popup;
    int rc = sso_http_login_check(req, app, g, &return_to, &hint, &popup);

    if (rc != CMN_AGAIN) {
        goto out;
    }
    if (g->cfg->saml != NULL &&
        (g->cfg->saml->gate_agents || !g->cfg->ids_enabled)) {
        /* [saml] gate_agents: the IdP vouches for the person first; the
         * ACS then continues to IdS with that user as login_hint */
        rc = sso_saml_begin(app, g, req, return_to, hint, popup);
        goto out;
    }
    snprintf(ls.return_to, sizeof(ls.return_to), "%s", return_to);
    snprintf(ls.login_hint, sizeof(ls.login_hint), "%s", hint ? hint : "");
    ls.popup = popup;
    rc = sso_http_login_ids(req, g, &ls);
out:
    cmn_wipe(&ls, sizeof(ls));
    sso_gen_release(g);
    return rc;
}

/* The popup's page: posts the code to the opener, restricted to the
 * allow-listed origin, and closes. The code is base64url and the origin
 * passed sso_url_split, so neither can break out of the script string. */
static int
reply_popup(struct sso_out *o, const char *origin, const char *code)
{
    char nonce[SSO_ID_LEN], csp[160], page[1536];
    int n;

    if (cmn_random_id(nonce, sizeof(nonce), 16) != CMN_OK) {
        return sso_out_page(o, 500, "Sign-in failed", "No randomness.");
    }
    snprintf(csp, sizeof(csp),
             "default-src 'none'; script-src 'nonce-%s'; "
             "frame-ancestors 'none'",
             nonce);
    n = snprintf(page, sizeof(page),
                 "<!doctype html><html lang=\"en\"><head><meta "
                 "charset=\"utf-8\"><title>Signed in</title></head><body>"
                 "<p>Signed in. You can close this window.</p>"
                 "<script nonce=\"%s\">"
                 "if (window.opener) { window.opener.postMessage("
                 "{\"handoff\": \"%s\"}, \"%s\"); }"
                 "window.close();</script></body></html>",
                 nonce, code, origin);
    (void)sso_out_header(o, "Content-Security-Policy", csp);
    return sso_out_text(o, 200, "text/html; charset=utf-8", page, (size_t)n);
}

int
sso_login_deliver(struct sso_app *app, struct sso_gen *g, struct sso_out *o,
                  const struct sso_login_state *ls, struct sso_session *s)
{
    char sid[SSO_ID_LEN], code[SSO_ID_LEN], fp[13];
    struct cmn_err err = {{0}};
    char *origin = NULL, *url = NULL;
    int rc;

    rc = sso_store_session_create(&g->store, s, sid, &err);
    if (rc == CMN_DENIED) {
        /* the IdP's LogoutRequest came while this sign-in was on its way
         * (sso_store.h, SAML Single Logout) */
        sso_saml_refused(app, SAML_R_LOGGED_OUT, err.msg);
        cmn_metric_inc(app->m.logins_failed);
        rc = sso_out_page(o, 403, "Signed out",
                          "Your organisation signed you out while you were "
                          "signing in. Start again from the softphone.");
        goto out;
    }
    if (rc != CMN_OK ||
        cmn_random_id(code, sizeof(code), SSO_ID_BYTES) != CMN_OK ||
        sso_store_handoff_put(&g->store, code, sid, &err) != CMN_OK) {
        cmn_log_err("event=login_failed reason=store user=%s detail=\"%s\"",
                    s->user, err.msg);
        rc = sso_out_page(o, 503, "Sign-in unavailable",
                          "The session store cannot be reached; sign in "
                          "again in a moment.");
        goto out;
    }
    cmn_log_fingerprint(sid, fp);
    cmn_log_notice("event=login_ok user=%s session=%s popup=%d expires_in=%lld "
                   "opaque=%d saml=%d",
                   s->user[0] != '\0' ? s->user : "-", fp, ls->popup,
                   s->access_expires_at - cmn_wall_sec(), s->user[0] == '\0',
                   ls->saml_user[0] != '\0');
    cmn_metric_inc(app->m.logins_ok);
    if (!sso_url_allowed(g->cfg->allowed, g->cfg->nallowed, ls->return_to,
                         &origin)) {
        /* checked before; only out of memory gets here */
        rc = sso_out_page(o, 500, "Sign-in failed", "nomem");
        goto out;
    }
    if (ls->popup) {
        rc = reply_popup(o, origin, code);
        goto out;
    }
    url = sso_url_add_param(ls->return_to, "handoff", code);
    rc = url != NULL ? sso_out_redirect(o, url)
                     : sso_out_page(o, 500, "Sign-in failed", "nomem");
out:
    free(origin);
    free(url);
    cmn_wipe(code, sizeof(code));
    cmn_wipe(sid, sizeof(sid));
    return rc;
}

/* [saml] gate: the person IdS signed in must be the one the IdP vouched
 * for (a shared PC with someone else's IdS session must not sign the next
 * agent in as the previous one). An opaque token names nobody: refused,
 * since the check cannot be made. */
static bool
saml_user_matches(struct sso_app *app, struct sso_out *o,
                  const struct sso_login_state *ls, const char *token_user)
{
    if (ls->saml_user[0] == '\0') {
        return true;
    }
    if (token_user[0] == '\0') {
        sso_saml_refused(app, SAML_R_IDS_USER_UNKNOWN,
                         "the IdS token is opaque: cannot compare it with "
                         "the IdP's user");
    } else if (strcmp(token_user, ls->saml_user) != 0) {
        sso_saml_refused(app, SAML_R_IDS_USER_MISMATCH,
                         "IdS signed in another user than the IdP");
        cmn_log_warn("event=saml_user_mismatch saml_user=%s ids_user=%s",
                     ls->saml_user, token_user);
    } else {
        return true;
    }
    cmn_metric_inc(app->m.logins_failed);
    (void)sso_out_page(o, 403, "Sign-in refused",
                       "The identity service signed in a different person "
                       "than your organisation's sign-in. Sign out of the "
                       "identity service and start again.");
    return false;
}

/* Sessions and handoff codes, after a successful code exchange. */
static int
finish_login(struct sso_app *app, struct sso_gen *g, struct sso_out *o,
             const struct sso_login_state *ls, struct sso_token_response *tr)
{
    struct sso_session s = {0};
    struct cmn_err err = {{0}};
    json_t *claims = NULL;
    long long now = cmn_wall_sec();
    int rc;

    switch (sso_keys_check(g->keys, tr->access_token, &claims, &err)) {
    case SSO_KEYS_REFUSED:
        cmn_log_err("event=login_failed reason=token_verification "
                    "detail=\"%s\"",
                    err.msg);
        rc = sso_out_page(o, 502, "Sign-in failed",
                          "The identity service returned a token that "
                          "failed verification.");
        goto fail;
    case SSO_KEYS_OPAQUE:
        /* IdS before 12.6(2): the token names nobody we can read. The
         * connector proves the agent with Finesse (GET User/<id> with
         * this token); the login_hint, if any, is its suggestion. */
        snprintf(s.user_hint, sizeof(s.user_hint), "%s", ls->login_hint);
        break;
    default:
        if (sso_claims_user(claims, g->cfg->user_claim, s.user, sizeof(s.user),
                            &err) != CMN_OK) {
            cmn_log_err("event=login_failed reason=no_user claim=%s "
                        "detail=\"%s\"",
                        g->cfg->user_claim, err.msg);
            rc = sso_out_page(o, 502, "Sign-in failed",
                              "The identity service's token does not name "
                              "the user.");
            goto fail;
        }
        break;
    }
    if (!saml_user_matches(app, o, ls, s.user)) {
        rc = CMN_OK;
        goto out;
    }
    s.access_token = tr->access_token;
    s.refresh_token = tr->refresh_token;
    s.access_issued_at = now;
    s.access_expires_at = now + tr->expires_in;
    s.refresh_expires_at =
        tr->refresh_expires_in > 0 ? now + tr->refresh_expires_in : 0;
    s.created_at = now;
    sso_saml_subject_copy(&s, ls);
    rc = sso_login_deliver(app, g, o, ls, &s);
    goto out;
fail:
    cmn_metric_inc(app->m.logins_failed);
out:
    json_decref(claims);
    return rc;
}

/* The code exchange and what follows, answered through o. */
static void
exchange(struct sso_app *app, struct sso_gen *g, struct sso_out *o,
         const struct sso_login_state *ls, const char *code)
{
    struct sso_token_response tr = {0};

    sso_ids_exchange_code(g->cfg, code, ls->verifier, &tr);
    switch (tr.outcome) {
    case SSO_TOKEN_OK:
        (void)finish_login(app, g, o, ls, &tr);
        sso_token_response_cleanup(&tr);
        return;
    case SSO_TOKEN_INVALID_GRANT:
        cmn_log_warn("event=login_failed reason=invalid_grant");
        (void)sso_out_page(o, 400, "Sign-in failed",
                           "The identity service did not accept the sign-in "
                           "code (already used or expired). Start again.");
        break;
    case SSO_TOKEN_UNAVAILABLE:
        cmn_log_err("event=login_failed reason=ids_unavailable error=%s",
                    tr.error);
        (void)sso_out_page(o, strcmp(tr.error, "timeout") == 0 ? 504 : 502,
                           "Sign-in unavailable",
                           "The identity service did not answer properly. "
                           "Try again in a moment.");
        break;
    default:
        cmn_log_err("event=login_failed reason=ids_%s error=%s",
                    sso_token_outcome_str(tr.outcome), tr.error);
        (void)sso_out_page(o, 502, "Sign-in failed",
                           "The identity service's answer was not usable.");
        break;
    }
    cmn_metric_inc(app->m.logins_failed);
    sso_token_response_cleanup(&tr);
}

struct exchange_job {
    struct sso_app *app;
    struct cmn_http_deferred *d;
    struct sso_login_state ls;
    char *code;
};

static void
exchange_job(void *arg)
{
    struct exchange_job *j = arg;
    struct sso_gen *g = sso_app_acquire(j->app);
    struct sso_out o = {.req = NULL, .d = j->d};

    cmn_log_set_request_id(cmn_http_deferred_id(j->d));
    exchange(j->app, g, &o, &j->ls, j->code);
    cmn_log_set_request_id(NULL);
    sso_gen_release(g);
    cmn_wipe(j->code, strlen(j->code));
    free(j->code);
    cmn_wipe(&j->ls, sizeof(j->ls));
    free(j);
}

static int
exchange_later(struct sso_app *app, struct cmn_http_req *req,
               const struct sso_login_state *ls, const char *code)
{
    struct exchange_job *j = calloc(1, sizeof(*j));

    if (j == NULL || (j->code = strdup(code)) == NULL) {
        free(j);
        return sso_http_page(req, 503, "Sign-in unavailable",
                             "Out of memory; try again.");
    }
    j->d = cmn_http_defer(req);
    if (j->d == NULL) {
        free(j->code);
        free(j);
        return sso_http_page(req, 503, "Sign-in unavailable",
                             "The server is stopping; try again.");
    }
    j->app = app;
    j->ls = *ls;
    if (cmn_jobs_submit(app->jobs, exchange_job, j) != CMN_OK) {
        struct sso_out o = {.req = NULL, .d = j->d};
        (void)sso_out_page(&o, 503, "Sign-in unavailable",
                           "Too many sign-ins at once; try again.");
        cmn_wipe(j->code, strlen(j->code));
        free(j->code);
        cmn_wipe(&j->ls, sizeof(j->ls));
        free(j);
    }
    return CMN_OK;
}

int
sso_http_callback(struct cmn_http_req *req, void *appv)
{
    struct sso_app *app = appv;
    struct sso_gen *g = sso_app_acquire(app);
    const char *state = cmn_http_req_query(req, "state");
    const char *code = cmn_http_req_query(req, "code");
    const char *error = cmn_http_req_query(req, "error");
    struct sso_login_state ls;
    struct sso_token_response tr = {0};
    struct cmn_err err = {{0}};
    int rc;

    memset(&ls, 0, sizeof(ls));
    if (state == NULL || !sso_id_valid(state)) {
        rc = sso_http_page(req, 400, "Sign-in failed",
                           "The sign-in answer has no valid state.");
        goto fail;
    }
    /* consumed first, whatever follows: a state is good for one try */
    rc = sso_store_state_take(&g->store, state, &ls, &err);
    if (rc == CMN_NOTFOUND || rc == CMN_INVALID) {
        cmn_log_warn("event=login_failed reason=unknown_state");
        rc = sso_http_page(req, 400, "Sign-in expired",
                           "This sign-in was already used or has expired. "
                           "Start again from the softphone.");
        goto fail;
    }
    if (rc != CMN_OK) {
        cmn_log_err("event=login_failed reason=store detail=\"%s\"", err.msg);
        rc = sso_http_page(req, 503, "Sign-in unavailable",
                           "The session store cannot be reached.");
        goto fail;
    }
    if (!sso_bind_check(req, SSO_BIND_COOKIE, ls.bind_hash)) {
        /* another browser's sign-in (a link sent to a victim: login CSRF),
         * or a browser that lost its cookie */
        cmn_log_warn("event=login_failed reason=browser_mismatch cookie=%d",
                     cmn_http_req_cookie(req, SSO_BIND_COOKIE) != NULL);
        rc = sso_http_page(req, 400, "Sign-in refused",
                           "This sign-in was not started in this browser "
                           "(or the browser did not keep its cookie). Start "
                           "again from the softphone.");
        goto fail;
    }
    if (error != NULL) {
        char e[64];
        snprintf(e, sizeof(e), "%s", error);
        for (char *p = e; *p; p++) {
            if (*p < 0x21 || *p > 0x7e) {
                *p = '?';
            }
        }
        cmn_log_warn("event=login_failed reason=ids_error error=%s", e);
        rc = sso_http_page(req, 403, "Sign-in refused",
                           "The identity service refused the sign-in.");
        goto fail;
    }
    /* the allow-list may have changed (SIGHUP) since the login started:
     * check before the code is redeemed, so nothing is stored for a
     * destination that is no longer allowed */
    if (!sso_url_allowed(g->cfg->allowed, g->cfg->nallowed, ls.return_to,
                         NULL)) {
        cmn_log_warn("event=login_failed reason=return_to_not_allowed");
        rc = sso_http_page(req, 400, "Sign-in refused",
                           "The page that started this sign-in is no longer "
                           "allowed (return_to).");
        goto fail;
    }
    if (code == NULL || !printable(code, 4096)) {
        rc = sso_http_page(req, 400, "Sign-in failed",
                           "The sign-in answer has no code.");
        goto fail;
    }
    /* the code exchange waits on IdS: on a job thread, never on an HTTP
     * pool thread (a slow IdS must not hold up token fetches) */
    rc = exchange_later(app, req, &ls, code);
    goto out;
fail:
    cmn_metric_inc(app->m.logins_failed);
out:
    sso_token_response_cleanup(&tr);
    cmn_wipe(&ls, sizeof(ls));
    sso_gen_release(g);
    return rc;
}
