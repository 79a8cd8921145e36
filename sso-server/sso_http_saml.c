/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_http_saml.c - fsc-sso's SAML 2.0 SP endpoints:
 *   GET  /sso/saml/metadata   our metadata for the IdP admin
 *   GET  /sso/saml/login      SP-initiated sign-in (HTTP-Redirect)
 *   POST /sso/saml/acs        the IdP's Response (HTTP-POST)
 * The verifier (saml/) is pure; here are the parts that need Redis: the
 * AuthnRequest IDs behind InResponseTo and the replay cache, both shared
 * by A and B and both failing closed when Redis cannot answer. An
 * accepted Response continues to IdS (login_hint = the asserted user) or,
 * without [ids], ends in a session and a handoff. A refused one gets a
 * generic 403 page; the specific reason goes to the log and /metrics.
 * A request is bound to the browser that started it: the ACS refuses a
 * Response for it posted from another browser (sso_bind.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_log.h"
#include "cmn_seal.h"
#include "sso_bind.h"
#include "sso_http.h"
#include "sso_saml.h"
#include "sso_saml_config.h"
#include "sso_url.h"

void
sso_saml_refused(struct sso_app *app, enum saml_reason r, const char *detail)
{
    cmn_log_warn("event=saml_refused reason=%s detail=\"%s\"",
                 saml_reason_str(r), detail != NULL ? detail : "");
    if (r > SAML_OK && r < SAML_R_COUNT && app->m.saml_refused[r] != NULL) {
        cmn_metric_inc(app->m.saml_refused[r]);
    }
}

static int
refuse(struct sso_app *app, struct cmn_http_req *req, enum saml_reason r,
       const char *detail)
{
    sso_saml_refused(app, r, detail);
    if (r == SAML_R_STORE) {
        return sso_http_page(req, 503, "Sign-in unavailable",
                             "The session store cannot be reached; try "
                             "again in a moment.");
    }
    /* generic on purpose: the reason is for the admin, not the sender */
    return sso_http_page(req, 403, "Sign-in refused",
                         "Your organisation's sign-in answer could not be "
                         "accepted. Start again from the softphone.");
}

static int
not_configured(struct cmn_http_req *req)
{
    return cmn_http_reply_error(req, 404, "not_found",
                                "SAML is not configured ([saml])");
}

int
sso_http_saml_metadata(struct cmn_http_req *req, void *appv)
{
    struct sso_app *app = appv;
    struct sso_gen *g = sso_app_acquire(app);
    const struct sso_saml_config *s = g->cfg->saml;
    char *xml;
    int rc;

    if (s == NULL) {
        rc = not_configured(req);
        goto out;
    }
    xml = saml_sp_metadata(s->sp_entity_id, s->acs_url,
                           sso_saml_slo_enabled(s) ? s->slo_url : NULL,
                           s->has_key ? &s->key : NULL);
    if (xml == NULL) {
        rc = cmn_http_reply_error(req, 500, "internal", "out of memory");
        goto out;
    }
    rc = cmn_http_reply_text(req, 200, "application/samlmetadata+xml", xml,
                             strlen(xml));
    free(xml);
out:
    sso_gen_release(g);
    return rc;
}

int
sso_saml_begin(struct sso_app *app, struct sso_gen *g, struct cmn_http_req *req,
               const char *return_to, const char *hint, bool popup)
{
    const struct sso_saml_config *s = g->cfg->saml;
    struct sso_saml_request rq = {0};
    struct cmn_err err = {{0}};
    char id[34], bind[SSO_ID_LEN], *url;
    int rc;

    (void)app;
    if (saml_new_id(id) != CMN_OK ||
        cmn_random_id(rq.relay_state, sizeof(rq.relay_state), SSO_ID_BYTES) !=
            CMN_OK ||
        sso_bind_value(req, bind) != CMN_OK) {
        return sso_http_page(req, 500, "Sign-in failed", "No randomness.");
    }
    /* the IdP posts the Response cross-site: a SameSite=None cookie is
     * what reaches the ACS */
    sso_bind_hash(bind, rq.bind_hash);
    (void)sso_bind_set_cookie(req, SSO_BIND_COOKIE_SAML, bind,
                              g->cfg->state_ttl_s, true);
    cmn_wipe(bind, sizeof(bind));
    snprintf(rq.return_to, sizeof(rq.return_to), "%s", return_to);
    snprintf(rq.login_hint, sizeof(rq.login_hint), "%s", hint ? hint : "");
    rq.popup = popup;
    rq.created = cmn_wall_sec();
    if (sso_store_saml_request_put(&g->store, id, &rq, &err) != CMN_OK) {
        cmn_log_err("event=saml_login_failed reason=store detail=\"%s\"",
                    err.msg);
        cmn_wipe(&rq, sizeof(rq));
        return sso_http_page(req, 503, "Sign-in unavailable",
                             "The session store cannot be reached; try again "
                             "in a moment.");
    }
    /* RelayState is opaque: a random id whose meaning stays in Redis */
    url = saml_authn_request_url(&s->idp, s->sp_entity_id, s->acs_url, id,
                                 rq.relay_state, rq.created,
                                 s->has_key ? &s->key : NULL);
    cmn_wipe(&rq, sizeof(rq));
    if (url == NULL) {
        return sso_http_page(req, 500, "Sign-in failed", "Out of memory.");
    }
    cmn_log_info("event=saml_login_started request=%s signed=%d popup=%d", id,
                 s->has_key, popup);
    rc = cmn_http_reply_redirect(req, url);
    free(url);
    return rc;
}

int
sso_http_saml_login(struct cmn_http_req *req, void *appv)
{
    struct sso_app *app = appv;
    struct sso_gen *g = sso_app_acquire(app);
    const char *return_to, *hint;
    bool popup;
    int rc;

    if (g->cfg->saml == NULL) {
        rc = not_configured(req);
    } else if ((rc = sso_http_login_check(req, app, g, &return_to, &hint,
                                          &popup)) == CMN_AGAIN) {
        rc = sso_saml_begin(app, g, req, return_to, hint, popup);
    }
    sso_gen_release(g);
    return rc;
}

/* --- the ACS --- */

static int
hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* One field of an application/x-www-form-urlencoded body, decoded;
 * malloc'd, NULL when absent or badly escaped. */
static char *
form_field(const char *body, size_t len, const char *name)
{
    size_t nl = strlen(name);
    const char *p = body, *end = body + len;

    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *fe = amp ? amp : end;
        if ((size_t)(fe - p) > nl && strncmp(p, name, nl) == 0 &&
            p[nl] == '=') {
            const char *v = p + nl + 1;
            char *out = malloc((size_t)(fe - v) + 1), *o = out;
            if (out == NULL) {
                return NULL;
            }
            for (; v < fe; v++) {
                if (*v == '%') {
                    if (fe - v < 3 || hexval(v[1]) < 0 || hexval(v[2]) < 0) {
                        free(out);
                        return NULL;
                    }
                    *o++ = (char)(hexval(v[1]) << 4 | hexval(v[2]));
                    v += 2;
                } else {
                    *o++ = *v == '+' ? ' ' : *v;
                }
            }
            *o = '\0';
            return out;
        }
        p = amp ? amp + 1 : end;
    }
    return NULL;
}

static bool
group_allowed(const struct sso_saml_config *s, const struct saml_assertion *a)
{
    if (s->nallowed_groups == 0) {
        return true;
    }
    for (size_t i = 0; i < a->ngroups; i++) {
        for (size_t j = 0; j < s->nallowed_groups; j++) {
            if (strcmp(a->groups[i], s->allowed_groups[j]) == 0) {
                return true;
            }
        }
    }
    return false;
}

/* Where the sign-in goes next: the request it answers (consumed once, on
 * A or B), or the configured default for an IdP-initiated one. */
static enum saml_reason
take_request(struct sso_gen *g, const struct saml_assertion *a,
             const char *relay_state, struct sso_saml_request *rq, char *why,
             size_t why_size)
{
    const struct sso_saml_config *s = g->cfg->saml;
    struct cmn_err err = {{0}};
    int rc;

    if (a->in_response_to == NULL) {
        if (!s->allow_idp_initiated) {
            snprintf(why, why_size,
                     "unsolicited Response (IdP-initiated "
                     "sign-in is off)");
            return SAML_R_UNSOLICITED;
        }
        /* RelayState of an unsolicited response is the IdP's, never a
         * destination we follow */
        snprintf(rq->return_to, sizeof(rq->return_to), "%s",
                 s->default_return_to);
        return SAML_OK;
    }
    if (strlen(a->in_response_to) > 64) {
        snprintf(why, why_size, "InResponseTo is not one of our IDs");
        return SAML_R_UNKNOWN_REQUEST;
    }
    rc = sso_store_saml_request_take(&g->store, a->in_response_to, rq, &err);
    if (rc == CMN_NOTFOUND || rc == CMN_INVALID) {
        snprintf(why, why_size,
                 "InResponseTo %.40s: unknown, expired or "
                 "already used",
                 a->in_response_to);
        return SAML_R_UNKNOWN_REQUEST;
    }
    if (rc != CMN_OK) {
        snprintf(why, why_size, "request store: %.150s", err.msg);
        return SAML_R_STORE;
    }
    if (relay_state == NULL || !cmn_ct_streq(relay_state, rq->relay_state)) {
        snprintf(why, why_size,
                 "RelayState is not the one sent with "
                 "request %.40s",
                 a->in_response_to);
        return SAML_R_RELAY_STATE;
    }
    return SAML_OK;
}

/* The request was started by this browser: its __Host-fsc_saml cookie
 * hashes to what the request stored. An IdP-initiated Response has no
 * request to be bound to (allow_idp_initiated: off by default). */
static enum saml_reason
check_browser(struct cmn_http_req *req, const struct saml_assertion *a,
              const struct sso_saml_request *rq, char *why, size_t why_size)
{
    if (a->in_response_to == NULL ||
        sso_bind_check(req, SSO_BIND_COOKIE_SAML, rq->bind_hash)) {
        return SAML_OK;
    }
    snprintf(why, why_size,
             "request %.40s was started in another browser (cookie %s)",
             a->in_response_to,
             cmn_http_req_cookie(req, SSO_BIND_COOKIE_SAML) != NULL
                 ? "differs"
                 : "missing");
    return SAML_R_BROWSER;
}

void
sso_saml_subject_copy(struct sso_session *s, const struct sso_login_state *ls)
{
    snprintf(s->saml_name_id, sizeof(s->saml_name_id), "%s", ls->saml_name_id);
    snprintf(s->saml_session_index, sizeof(s->saml_session_index), "%s",
             ls->saml_session_index);
    snprintf(s->saml_name_id_format, sizeof(s->saml_name_id_format), "%s",
             ls->saml_name_id_format);
    snprintf(s->saml_name_qualifier, sizeof(s->saml_name_qualifier), "%s",
             ls->saml_name_qualifier);
    snprintf(s->saml_sp_name_qualifier, sizeof(s->saml_sp_name_qualifier), "%s",
             ls->saml_sp_name_qualifier);
    s->saml_authn_instant = ls->saml_authn_instant;
}

/* An assertion for an IdP session the IdP has since logged out (its
 * LogoutRequest may overtake the browser's POST): refused, as
 * saml-core-2.0-os §3.7.3.1 requires. */
static enum saml_reason
logged_out(struct sso_gen *g, const struct saml_assertion *a, char *why,
           size_t why_size)
{
    struct cmn_err err = {{0}};
    int rc = sso_store_saml_logged_out(&g->store, a->name_id, a->session_index,
                                       a->authn_instant, &err);

    if (rc == CMN_DENIED) {
        snprintf(why, why_size,
                 "the IdP logged out this authentication of "
                 "%.100s (LogoutRequest)",
                 a->user);
        return SAML_R_LOGGED_OUT;
    }
    if (rc != CMN_OK) {
        snprintf(why, why_size, "logout markers: %.150s", err.msg);
        return SAML_R_STORE;
    }
    return SAML_OK;
}

/* After every check: IdS next, or (SAML-only) a session and a handoff. */
static int
continue_sign_in(struct sso_app *app, struct sso_gen *g,
                 struct cmn_http_req *req, const struct saml_assertion *a,
                 const struct sso_saml_request *rq)
{
    struct sso_login_state ls = {0};
    struct sso_out o = {.req = req, .d = NULL};
    int rc;

    snprintf(ls.return_to, sizeof(ls.return_to), "%s", rq->return_to);
    ls.popup = rq->popup;
    snprintf(ls.saml_user, sizeof(ls.saml_user), "%s", a->user);
    snprintf(ls.saml_name_id, sizeof(ls.saml_name_id), "%s", a->name_id);
    snprintf(ls.saml_session_index, sizeof(ls.saml_session_index), "%s",
             a->session_index ? a->session_index : "");
    snprintf(ls.saml_name_id_format, sizeof(ls.saml_name_id_format), "%s",
             a->name_id_format ? a->name_id_format : "");
    snprintf(ls.saml_name_qualifier, sizeof(ls.saml_name_qualifier), "%s",
             a->name_qualifier ? a->name_qualifier : "");
    snprintf(ls.saml_sp_name_qualifier, sizeof(ls.saml_sp_name_qualifier), "%s",
             a->sp_name_qualifier ? a->sp_name_qualifier : "");
    ls.saml_authn_instant = a->authn_instant;
    if (g->cfg->ids_enabled) {
        /* the IdP's user is IdS's hint; the callback checks IdS agrees */
        snprintf(ls.login_hint, sizeof(ls.login_hint), "%s", a->user);
        rc = sso_http_login_ids(req, g, &ls);
    } else {
        struct sso_session s = {0};
        long long now = cmn_wall_sec();
        snprintf(s.user, sizeof(s.user), "%s", a->user);
        sso_saml_subject_copy(&s, &ls);
        s.saml_only = true;
        s.created_at = now;
        s.access_issued_at = now;
        s.access_expires_at = now + g->cfg->max_lifetime_s;
        if (a->session_not_on_or_after > now &&
            a->session_not_on_or_after < s.access_expires_at) {
            s.access_expires_at = a->session_not_on_or_after;
        }
        rc = sso_login_deliver(app, g, &o, &ls, &s);
    }
    cmn_wipe(&ls, sizeof(ls));
    return rc;
}

int
sso_http_saml_acs(struct cmn_http_req *req, void *appv)
{
    struct sso_app *app = appv;
    struct sso_gen *g = sso_app_acquire(app);
    const struct sso_saml_config *s = g->cfg->saml;
    struct saml_assertion a = {0};
    struct sso_saml_request rq = {0};
    struct saml_sp sp;
    struct cmn_err detail = {{0}};
    char *b64 = NULL, *relay = NULL, *xml = NULL, why[256] = "";
    const char *body;
    size_t body_len = 0, xml_len = 0;
    enum saml_reason r;
    int rc;

    if (s == NULL) {
        rc = not_configured(req);
        goto out;
    }
    body = cmn_http_req_body(req, &body_len);
    b64 = body != NULL ? form_field(body, body_len, "SAMLResponse") : NULL;
    relay = body != NULL ? form_field(body, body_len, "RelayState") : NULL;
    if (b64 == NULL) {
        rc = refuse(app, req, SAML_R_BASE64, "no SAMLResponse form field");
        goto out;
    }
    r = saml_post_decode(b64, strlen(b64), &xml, &xml_len);
    if (r != SAML_OK) {
        rc = refuse(app, req, r, "the SAMLResponse field");
        goto out;
    }
    sso_saml_sp(s, &sp);
    r = saml_response_verify(xml, xml_len, &s->idp, &sp, cmn_wall_sec(), &a,
                             NULL, &detail);
    if (r != SAML_OK) {
        rc = refuse(app, req, r, detail.msg);
        goto out;
    }
    /* the replay cache first: of two posts of one Response (to A and to
     * B at once) exactly one gets past SET NX */
    struct cmn_err err = {{0}};
    int seen = sso_store_saml_seen(&g->store, a.issuer, a.assertion_id,
                                   a.not_on_or_after + s->clock_skew_s, &err);
    if (seen == CMN_AGAIN) {
        snprintf(why, sizeof(why), "assertion %.60s was already used",
                 a.assertion_id);
        rc = refuse(app, req, SAML_R_REPLAY, why);
        goto out;
    }
    if (seen != CMN_OK) {
        snprintf(why, sizeof(why), "replay cache: %.150s", err.msg);
        rc = refuse(app, req, SAML_R_STORE, why); /* fail closed */
        goto out;
    }
    r = take_request(g, &a, relay, &rq, why, sizeof(why));
    if (r == SAML_OK) {
        r = check_browser(req, &a, &rq, why, sizeof(why));
    }
    if (r != SAML_OK) {
        rc = refuse(app, req, r, why);
        goto out;
    }
    if (!group_allowed(s, &a)) {
        snprintf(why, sizeof(why), "user %.100s is in none of allowed_groups",
                 a.user);
        rc = refuse(app, req, SAML_R_GROUP, why);
        goto out;
    }
    r = logged_out(g, &a, why, sizeof(why));
    if (r != SAML_OK) {
        rc = refuse(app, req, r, why);
        goto out;
    }
    cmn_metric_inc(app->m.saml_accepted);
    cmn_log_notice("event=saml_accepted user=%s assertion=%s signed=%s%s "
                   "encrypted=%d idp_initiated=%d next=%s",
                   a.user, a.assertion_id, a.response_signed ? "response" : "",
                   a.assertion_signed ? "+assertion" : "", a.encrypted,
                   a.in_response_to == NULL,
                   g->cfg->ids_enabled ? "ids" : "handoff");
    rc = continue_sign_in(app, g, req, &a, &rq);
out:
    saml_assertion_cleanup(&a);
    cmn_wipe(&rq, sizeof(rq));
    free(b64);
    free(relay);
    if (xml != NULL) {
        cmn_wipe(xml, xml_len);
        free(xml);
    }
    sso_gen_release(g);
    return rc;
}
