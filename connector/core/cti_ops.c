/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_ops.c - what an agent can ask for: sign in (non-SSO or with an
 * fsc-sso handoff), sign out, change state, place and control calls,
 * wrap up, list reason codes. Each op runs on a job thread and may block
 * on Finesse; every REST call goes through engine_rest(), which folds in
 * node failover and SSO token refresh. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmn_httpc.h"
#include "cmn_log.h"
#include "cmn_seal.h"
#include "cti_calls.h"
#include "cti_engine_int.h"
#include "fin_parse.h"

void
result_set(struct cti_result *r, unsigned status, const char *error,
           const char *fmt, ...)
{
    va_list ap;

    r->status = status;
    snprintf(r->error, sizeof(r->error), "%s", error != NULL ? error : "");
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
    va_end(ap);
}

/* Finesse ids, extensions and dial strings: short, no surprises. */
static bool
valid_token(const char *s, size_t max, const char *allowed)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > max) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && strchr(allowed, s[i]) == NULL) {
            return false;
        }
    }
    return true;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

int
engine_rest(struct cti_engine *e, struct cti_session *s, const char *method,
            const char *path, const char *body, const char *request_id,
            struct fin_rest_resp *resp, struct cmn_err *err)
{
    int rc = CMN_ERR;

    memset(resp, 0, sizeof(*resp));
    for (int attempt = 0; attempt < 3; attempt++) {
        struct fin_auth auth = {0};
        char *bearer = NULL;
        int node;

        pthread_mutex_lock(&s->lock);
        node = s->node;
        if (s->sso_session != NULL) {
            long long now = cmn_wall_sec();
            if ((s->bearer == NULL || s->bearer_expires_at <= now + 30) &&
                sso_client_token(e, s, err) != CMN_OK) {
                pthread_mutex_unlock(&s->lock);
                resp->outcome = FIN_REST_UNAUTHORIZED;
                return CMN_DENIED;
            }
            bearer = strdup(s->bearer);
            auth.bearer = bearer;
        } else {
            auth.user = s->id;
            auth.password = (const char *)s->password->data;
        }
        pthread_mutex_unlock(&s->lock);

        fin_rest_resp_cleanup(resp);
        rc = fin_rest_call(&e->rest, e->cfg->nodes[node], method, path, &auth,
                           body, request_id, resp, err);
        if (bearer != NULL) {
            cmn_wipe(bearer, strlen(bearer));
            free(bearer);
        }
        if (resp->outcome == FIN_REST_NODE_DOWN) {
            engine_node_down(e, node, err->msg);
            pthread_mutex_lock(&s->lock);
            bool moved = s->node != node;
            if (!moved && engine_active_node(e) != node) {
                /* the session was not on the failed node's list yet (a
                 * login in progress): move it here */
                s->node = engine_active_node(e);
                moved = true;
            }
            pthread_mutex_unlock(&s->lock);
            if (!moved) {
                return rc;
            }
            continue;
        }
        if (resp->outcome == FIN_REST_UNAUTHORIZED && s->sso_session != NULL &&
            attempt == 0) {
            /* an expired or revoked token: fetch the current one once */
            pthread_mutex_lock(&s->lock);
            s->bearer_expires_at = 0;
            pthread_mutex_unlock(&s->lock);
            continue;
        }
        return rc;
    }
    return rc;
}

static void
finesse_refusal(struct cti_result *r, const struct fin_rest_resp *resp,
                const struct cmn_err *err)
{
    switch (resp->outcome) {
    case FIN_REST_NODE_DOWN:
        result_set(r, 503, "finesse_unavailable", "%s", err->msg);
        break;
    case FIN_REST_UNAUTHORIZED:
        result_set(r, 401, "unauthorized", "Finesse refused the credentials");
        break;
    default:
        if (resp->status == 404) {
            result_set(r, 404, "not_found", "%s", err->msg);
        } else {
            const char *type =
                resp->errors.n > 0 ? resp->errors.items[0].type : "";
            result_set(r, 400,
                       strstr(type, "State") != NULL ? "invalid_state"
                                                     : "finesse_refused",
                       "%s", err->msg);
        }
        break;
    }
}

struct cti_session *
engine_session_new(struct cti_engine *e, const char *id)
{
    struct cti_session *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->xmpp_cv, NULL);
    atomic_init(&s->refs, 1);
    snprintf(s->id, sizeof(s->id), "%s", id);
    s->resume_touched_ms = cmn_now_ms(); /* saved at the sign-in */
    s->agent = cti_agent_new(id);
    s->node = engine_active_node(e);
    if (s->agent == NULL) {
        session_unref(s);
        return NULL;
    }
    cti_agent_set_dialog_hook(s->agent, cti_calls_on_dialog, e);
    return s;
}

/* Learn the XMPP domain from SystemInfo once (unless configured). */
void
engine_ensure_xmpp_domain(struct cti_engine *e, struct cti_session *s)
{
    struct fin_rest_resp resp;
    struct fin_systeminfo si;
    struct cmn_err err = {{0}};

    if (e->xmpp_domain[0] != '\0') {
        return;
    }
    if (engine_rest(e, s, "GET", "/finesse/api/SystemInfo", NULL, NULL, &resp,
                    &err) == CMN_OK &&
        fin_parse_systeminfo(resp.body, resp.body_len, &si, &err) == CMN_OK &&
        si.xmpp_domain[0] != '\0') {
        pthread_mutex_lock(&e->lock);
        snprintf(e->xmpp_domain, sizeof(e->xmpp_domain), "%s", si.xmpp_domain);
        pthread_mutex_unlock(&e->lock);
    }
    fin_rest_resp_cleanup(&resp);
}

/* How long a sign-in waits for the XMPP connection before asking Finesse
 * to LOGIN anyway (the agent then gets notifications once it is up, and
 * the User and Dialogs are read again then). */
#define XMPP_SIGN_IN_WAIT_S 3

/* Finesse sign-in for a session that is not signed in yet, then the
 * current dialogs and the XMPP connection. */
bool
engine_start_session(struct cti_engine *e, struct cti_session *s,
                     const struct fin_user *u, struct cti_result *r)
{
    struct fin_rest_resp resp;
    struct cmn_err err = {{0}};
    char path[FIN_URI_MAX], rid[40];

    cti_agent_apply_user(s->agent, u);
    /* The notification service first, then the sign-in (the Finesse
     * desktop's order): a LOGIN published before our presence reached the
     * XMPP server would be lost. */
    engine_xmpp_connect(e, s);
    {
        bool online, fatal;
        char why[sizeof(s->xmpp_error)];
        struct timespec until;

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += XMPP_SIGN_IN_WAIT_S;
        pthread_mutex_lock(&s->lock);
        while (!s->xmpp_online && !s->xmpp_fatal &&
               pthread_cond_timedwait(&s->xmpp_cv, &s->lock, &until) == 0) {
        }
        online = s->xmpp_online;
        fatal = s->xmpp_fatal;
        memcpy(why, s->xmpp_error, sizeof(why));
        pthread_mutex_unlock(&s->lock);
        if (fatal) {
            /* the notification server's certificate is not trusted, TLS
             * was required and refused, the WebSocket endpoint refused
             * the upgrade or the xmpp subprotocol: a configuration or
             * security problem that no retry fixes; signing the agent in
             * blind to every event would be worse than saying so */
            result_set(r, 502, "xmpp_unavailable",
                       "Finesse notifications (XMPP): %s", why);
            return false;
        }
        if (!online) {
            cmn_log_notice("event=xmpp_not_online_yet agent=%s waited_s=%d "
                           "why=\"%s\"",
                           s->id, XMPP_SIGN_IN_WAIT_S,
                           why[0] != '\0' ? why : "connecting");
        }
    }
    if (strcmp(u->state, "LOGOUT") == 0 ||
        strcmp(u->extension, s->extension) != 0) {
        char *body = fin_xml_user_state("LOGIN", NULL, s->extension);
        snprintf(path, sizeof(path), "/finesse/api/User/%s", s->id);
        engine_new_request_id(e, rid);
        int rc = body != NULL
                     ? engine_rest(e, s, "PUT", path, body, rid, &resp, &err)
                     : CMN_NOMEM;
        free(body);
        if (rc != CMN_OK) {
            finesse_refusal(r, &resp, &err);
            fin_rest_resp_cleanup(&resp);
            return false;
        }
        fin_rest_resp_cleanup(&resp);
        pthread_mutex_lock(&s->lock);
        s->login_check_at_ms = cmn_now_ms() + LOGIN_CONFIRM_MS;
        pthread_mutex_unlock(&s->lock);
    }
    snprintf(path, sizeof(path), "/finesse/api/User/%s/Dialogs", s->id);
    if (engine_rest(e, s, "GET", path, NULL, NULL, &resp, &err) == CMN_OK) {
        struct fin_dialogs list = {0};
        if (fin_parse_dialogs(resp.body, resp.body_len, &list, &err) ==
            CMN_OK) {
            cti_agent_replace_dialogs(s->agent, &list);
        }
        fin_dialogs_free(&list);
    }
    fin_rest_resp_cleanup(&resp);
    return true;
}

/* The agent's User from Finesse with the session's credentials. */
bool
engine_fetch_user(struct cti_engine *e, struct cti_session *s, const char *path,
                  struct fin_user *u, struct cti_result *r)
{
    struct fin_rest_resp resp;
    struct cmn_err err = {{0}};
    bool ok = false;

    if (engine_rest(e, s, "GET", path, NULL, NULL, &resp, &err) != CMN_OK) {
        if (resp.outcome == FIN_REST_UNAUTHORIZED || resp.status == 404) {
            /* unknown agent or wrong password: one answer for both */
            result_set(r, 401, "invalid_credentials",
                       "Finesse did not accept this agent ID and password");
        } else {
            finesse_refusal(r, &resp, &err);
        }
    } else if (fin_parse_user(resp.body, resp.body_len, u, &err) != CMN_OK) {
        result_set(r, 502, "finesse_malformed", "User: %s", err.msg);
    } else {
        ok = true;
    }
    fin_rest_resp_cleanup(&resp);
    return ok;
}

/* An SSO sign-in without an extension: the one of the agent's running
 * session here, else the one Finesse has the agent signed in on. false
 * when there is neither (the agent must say). */
static bool
login_extension(struct cti_engine *e, struct cti_session *s,
                const struct fin_user *u)
{
    struct cti_session *running = engine_find_session(e, s->id);

    if (running != NULL) {
        pthread_mutex_lock(&running->lock);
        snprintf(s->extension, sizeof(s->extension), "%s", running->extension);
        pthread_mutex_unlock(&running->lock);
        session_unref(running);
    } else if (strcmp(u->state, "LOGOUT") != 0) {
        snprintf(s->extension, sizeof(s->extension), "%s", u->extension);
    }
    return s->extension[0] != '\0';
}

enum login_outcome {
    LOGIN_OK,
    LOGIN_FAILED,
    LOGIN_REFUND,
};

/* A password sign-in is counted, per agent ID and per client address,
 * before Finesse is asked (cti_throttle.h): false with the 429 set when
 * either is locked (or has no room to be counted). */
static bool
login_attempt_counted(struct cti_engine *e, const struct cti_login *in,
                      struct cti_result *r)
{
    long long now = cmn_now_ms(), wait_ms = 0, wait2_ms = 0;
    enum cti_throttle_verdict by_agent, by_addr = CTI_THROTTLE_GO;

    by_agent =
        cti_throttle_attempt(e->throttle_agent, in->agent, now, &wait_ms);
    if (by_agent == CTI_THROTTLE_GO && in->peer != NULL) {
        by_addr =
            cti_throttle_attempt(e->throttle_addr, in->peer, now, &wait2_ms);
        if (by_addr != CTI_THROTTLE_GO) {
            cti_throttle_attempt_refund(e->throttle_agent, in->agent);
        }
    }
    if (by_agent == CTI_THROTTLE_GO && by_addr == CTI_THROTTLE_GO) {
        return true;
    }
    /* refused here, Finesse is not asked: guessing gets nowhere and
     * cannot lock the agent's account there */
    r->retry_after_s =
        (long)(((wait_ms > wait2_ms ? wait_ms : wait2_ms) + 999) / 1000);
    cmn_log_warn("event=login_throttled agent=%s peer=%s by=%s%s "
                 "retry_after_s=%ld",
                 in->agent, in->peer != NULL ? in->peer : "-",
                 by_agent != CTI_THROTTLE_GO ? "agent" : "address",
                 by_agent == CTI_THROTTLE_FULL || by_addr == CTI_THROTTLE_FULL
                     ? " table=full"
                 : by_agent == CTI_THROTTLE_PENDING ||
                         by_addr == CTI_THROTTLE_PENDING
                     ? " in_flight=1"
                     : "",
                 r->retry_after_s);
    cmn_metric_inc(e->m_throttled);
    if (by_agent == CTI_THROTTLE_PENDING || by_addr == CTI_THROTTLE_PENDING) {
        result_set(r, 429, "too_many_attempts",
                   "too many sign-ins in progress; try again in %ld s",
                   r->retry_after_s);
    } else {
        result_set(r, 429, "too_many_attempts",
                   "too many failed sign-ins; try again in %ld s",
                   r->retry_after_s);
    }
    return false;
}

/* What became of an attempt login_attempt_counted let through. */
static void
login_attempt_settle(struct cti_engine *e, const struct cti_login *in,
                     enum login_outcome outcome)
{
    switch (outcome) {
    case LOGIN_OK:
        cti_throttle_clear(e->throttle_agent, in->agent);
        /* the address's other attempts still count: one good password
         * must not unlock a guesser sharing the address */
        if (in->peer != NULL) {
            cti_throttle_attempt_refund(e->throttle_addr, in->peer);
        }
        break;
    case LOGIN_FAILED:
        cti_throttle_attempt_failed(e->throttle_agent, in->agent);
        if (in->peer != NULL) {
            cti_throttle_attempt_failed(e->throttle_addr, in->peer);
        }
        break;
    case LOGIN_REFUND:
        cti_throttle_attempt_refund(e->throttle_agent, in->agent);
        if (in->peer != NULL) {
            cti_throttle_attempt_refund(e->throttle_addr, in->peer);
        }
        break;
    }
}

void
cti_engine_login(struct cti_engine *e, const struct cti_login *in,
                 char token[CTI_TOKEN_LEN], json_t **agent_json,
                 struct cti_result *r)
{
    struct cti_session *s = NULL, *existing;
    struct fin_user u;
    char path[FIN_URI_MAX];

    *agent_json = NULL;
    /* SSO may leave it out: a browser that keeps nothing across a reload
     * signs in again with one click (see below) */
    if ((in->extension != NULL || in->handoff == NULL) &&
        !valid_token(in->extension, FIN_ADDR_MAX - 1, "+*#-_.")) {
        result_set(r, 400, "invalid_request", "\"extension\" is required");
        return;
    }
    if (in->handoff == NULL &&
        (!valid_token(in->agent, FIN_ID_MAX - 1, "-_.@") ||
         in->password == NULL || in->password[0] == '\0' ||
         strlen(in->password) > 256)) {
        result_set(r, 400, "invalid_request",
                   "\"agent\" and \"password\" (or \"handoff\") are required");
        return;
    }
    if (in->handoff != NULL && e->cfg->sso_url == NULL) {
        result_set(r, 400, "sso_not_configured",
                   "this connector has no [sso] section");
        return;
    }

    if (in->handoff != NULL) {
        /* redeem the code and establish which agent it is (cti_sso_login.c) */
        s = engine_sso_identify(e, in, &u, r);
        if (s == NULL) {
            return;
        }
    } else {
        if (!login_attempt_counted(e, in, r)) {
            return;
        }
        s = engine_session_new(e, in->agent);
        if (s == NULL) {
            login_attempt_settle(e, in, LOGIN_REFUND);
            result_set(r, 503, "internal", "out of memory");
            return;
        }
        s->password = cmn_secret_new(in->password, strlen(in->password));
        snprintf(path, sizeof(path), "/finesse/api/User/%s", in->agent);
        if (!engine_fetch_user(e, s, path, &u, r)) {
            /* only Finesse's "wrong password" counts; an outage proves
             * nothing about the password */
            login_attempt_settle(
                e, in, r->status == 401 ? LOGIN_FAILED : LOGIN_REFUND);
            session_unref(s);
            return;
        }
        login_attempt_settle(e, in, LOGIN_OK);
    }
    if (in->extension != NULL) {
        snprintf(s->extension, sizeof(s->extension), "%s", in->extension);
    } else if (!login_extension(e, s, &u)) {
        result_set(r, 400, "extension_required",
                   "\"extension\" is required: this agent is not signed in "
                   "on any extension");
        sso_client_logout(e, s);
        session_unref(s);
        return;
    }
    engine_ensure_xmpp_domain(e, s);

    /* one Finesse session per agent: a second sign-in (another browser,
     * a refresh that lost its token) joins the running one */
    existing = engine_find_session(e, s->id);
    if (existing != NULL) {
        if (existing->password != NULL && s->password != NULL) {
            /* the new password just passed Finesse: keep it current */
            pthread_mutex_lock(&existing->lock);
            cmn_secret_free(existing->password);
            existing->password = s->password;
            s->password = NULL;
            pthread_mutex_unlock(&existing->lock);
            engine_resume_save(e, existing);
        }
        if (existing->sso_session != NULL && s->sso_session != NULL) {
            /* the old SSO session stays the one we refresh; drop ours */
            sso_client_logout(e, s);
        }
        session_unref(s);
        s = existing;
    } else {
        int lrc = cti_lease_take(e->lease, s->id, r->owner, sizeof(r->owner));
        if (lrc != CMN_OK) {
            if (lrc == CMN_DENIED) {
                result_set(r, 409, "agent_elsewhere",
                           "this agent's session runs on another connector "
                           "host (owner)");
            } else {
                result_set(r, 503, "store_unavailable",
                           "cannot reach Redis to claim the agent");
            }
            if (s->sso_session != NULL) {
                sso_client_logout(e, s);
            }
            session_unref(s);
            return;
        }
        /* registered before it starts: the XMPP events of its connection
         * (ONLINE first) must find it */
        pthread_mutex_lock(&e->lock);
        engine_add_session_locked(e, s);
        pthread_mutex_unlock(&e->lock);
        if (!engine_start_session(e, s, &u, r)) {
            fin_xmpp_pool_disconnect(e->xmpp, s->id);
            pthread_mutex_lock(&e->lock);
            engine_remove_session_locked(e, s);
            pthread_mutex_unlock(&e->lock);
            session_unref(s); /* the registry's */
            cti_lease_release(e->lease, s->id);
            if (s->sso_session != NULL) {
                sso_client_logout(e, s);
            }
            session_unref(s);
            return;
        }
        cmn_log_notice("event=agent_signed_in agent=%s extension=%s sso=%d "
                       "node=%d",
                       s->id, s->extension, s->sso_session != NULL, s->node);
        engine_warm_owner(e, s->id);
        engine_resume_save(e, s);
    }
    if (engine_token_issue(e, s, token) != CMN_OK) {
        result_set(r, 503, "internal", "no randomness");
        session_unref(s);
        return;
    }
    *agent_json = cti_agent_json(s->agent);
    if (*agent_json != NULL &&
        json_string_length(json_object_get(*agent_json, "extension")) == 0) {
        /* LOGIN is on its way: Finesse confirms the extension by
         * notification, the tab shows the one it asked for meanwhile */
        json_object_set_new(*agent_json, "extension",
                            json_string(s->extension));
    }
    result_set(r, 200, NULL, "ok");
    session_unref(s);
}

/* The agent's state as Finesse has it now (GET User); the model's when
 * Finesse cannot be asked. */
static void
finesse_user_now(struct cti_engine *e, struct cti_session *s, const char *path,
                 struct fin_user *u)
{
    struct fin_rest_resp resp;
    struct cmn_err err = {{0}};

    if (engine_rest(e, s, "GET", path, NULL, NULL, &resp, &err) != CMN_OK ||
        fin_parse_user(resp.body, resp.body_len, u, &err) != CMN_OK) {
        cti_agent_user(s->agent, u);
    }
    fin_rest_resp_cleanup(&resp);
}

/* Wait (up to ms) until Finesse reports the wanted state: a 202 only says
 * the change is on its way, and the model may still hold an older one. */
static bool
wait_state(struct cti_engine *e, struct cti_session *s, const char *path,
           const char *want, int ms)
{
    for (int waited = 0; waited <= ms; waited += 100) {
        struct fin_user u;
        finesse_user_now(e, s, path, &u);
        if (strcmp(u.state, want) == 0) {
            return true;
        }
        sleep_ms(100);
    }
    return false;
}

void
cti_engine_logout(struct cti_engine *e, const char *token,
                  const char *reason_code_id, struct cti_result *r)
{
    struct cti_session *s = engine_session_by_token(e, token);
    struct fin_rest_resp resp;
    struct cmn_err err = {{0}};
    char path[FIN_URI_MAX], rid[40];
    struct fin_user u;
    char *body;

    if (s == NULL) {
        result_set(r, 401, "unauthorized", "unknown or expired token");
        return;
    }
    pthread_mutex_lock(&s->lock);
    s->logout_requested = true;
    pthread_mutex_unlock(&s->lock);
    snprintf(path, sizeof(path), "/finesse/api/User/%s", s->id);
    /* Finesse's own view of the state: the notification of a change made
     * a moment ago may not have reached the model yet, and LOGOUT from
     * anything but NOT_READY is refused */
    finesse_user_now(e, s, path, &u);
    if (strcmp(u.state, "LOGOUT") != 0) {
        /* Finesse signs agents out from NOT_READY only */
        if (strcmp(u.state, "NOT_READY") != 0) {
            body = fin_xml_user_state("NOT_READY", NULL, NULL);
            engine_new_request_id(e, rid);
            if (body != NULL) {
                (void)engine_rest(e, s, "PUT", path, body, rid, &resp, &err);
                fin_rest_resp_cleanup(&resp);
            }
            free(body);
            (void)wait_state(e, s, path, "NOT_READY", 2000);
        }
        body = fin_xml_user_state("LOGOUT", reason_code_id, NULL);
        engine_new_request_id(e, rid);
        int rc = body != NULL
                     ? engine_rest(e, s, "PUT", path, body, rid, &resp, &err)
                     : CMN_NOMEM;
        free(body);
        if (rc != CMN_OK && resp.outcome != FIN_REST_NODE_DOWN) {
            finesse_refusal(r, &resp, &err);
            fin_rest_resp_cleanup(&resp);
            pthread_mutex_lock(&s->lock);
            s->logout_requested = false;
            pthread_mutex_unlock(&s->lock);
            session_unref(s);
            return;
        }
        fin_rest_resp_cleanup(&resp);
    }
    fin_xmpp_pool_disconnect(e->xmpp, s->id);
    pthread_mutex_lock(&e->lock);
    engine_remove_session_locked(e, s);
    pthread_mutex_unlock(&e->lock);
    engine_resume_forget(e, s->id);
    cti_lease_release(e->lease, s->id);
    if (s->sso_session != NULL) {
        sso_client_logout(e, s);
    }
    cti_agent_emit(s->agent, "agent",
                   json_pack("{s:s, s:s}", "id", s->id, "state", "LOGOUT"));
    cti_agent_detach_all(s->agent);
    cmn_log_notice("event=agent_signed_out agent=%s", s->id);
    session_unref(s); /* the registry's reference */
    session_unref(s);
    result_set(r, 200, NULL, "signed out");
}

static struct cti_session *
session_of(struct cti_engine *e, struct cti_agent *a, struct cti_result *r)
{
    struct cti_session *s = engine_find_session(e, cti_agent_id(a));

    if (s == NULL) {
        result_set(r, 401, "unauthorized", "the session has ended");
    }
    return s;
}

/* PUT/POST with a fresh requestId; 202 with it when Finesse accepted. */
static void
send_request(struct cti_engine *e, struct cti_session *s, const char *method,
             const char *path, char *body, struct cti_result *r)
{
    struct fin_rest_resp resp;
    struct cmn_err err = {{0}};

    if (body == NULL) {
        result_set(r, 400, "invalid_request", "could not build the request");
        return;
    }
    if (r->request_id[0] == '\0') {
        engine_new_request_id(e, r->request_id);
    }
    if (engine_rest(e, s, method, path, body, r->request_id, &resp, &err) ==
        CMN_OK) {
        result_set(r, 202, NULL, "accepted");
    } else {
        finesse_refusal(r, &resp, &err);
    }
    fin_rest_resp_cleanup(&resp);
    free(body);
}

void
cti_engine_set_state(struct cti_engine *e, struct cti_agent *a,
                     const char *state, const char *reason_code_id,
                     struct cti_result *r)
{
    static const char *const states[] = {"READY", "NOT_READY", "LOGOUT", "WORK",
                                         "WORK_READY"};
    struct cti_session *s;
    char path[FIN_URI_MAX];
    bool known = false;

    for (size_t i = 0; state != NULL && i < CMN_ARRAY_LEN(states); i++) {
        known = known || strcmp(state, states[i]) == 0;
    }
    if (!known) {
        result_set(r, 400, "invalid_request",
                   "\"state\" must be READY, NOT_READY, LOGOUT, WORK or "
                   "WORK_READY");
        return;
    }
    if (reason_code_id != NULL &&
        !valid_token(reason_code_id, FIN_ID_MAX - 1, "-_")) {
        result_set(r, 400, "invalid_request", "bad \"reason_code_id\"");
        return;
    }
    s = session_of(e, a, r);
    if (s == NULL) {
        return;
    }
    if (strcmp(state, "LOGOUT") == 0) {
        pthread_mutex_lock(&s->lock);
        s->logout_requested = true;
        pthread_mutex_unlock(&s->lock);
    }
    snprintf(path, sizeof(path), "/finesse/api/User/%s", s->id);
    send_request(e, s, "PUT", path,
                 fin_xml_user_state(state, reason_code_id, NULL), r);
    session_unref(s);
}

void
cti_engine_make_call(struct cti_engine *e, struct cti_agent *a, const char *to,
                     char dialog_id[FIN_ID_MAX], struct cti_result *r)
{
    struct cti_session *s;
    char path[FIN_URI_MAX];
    struct waiter w = {0};

    dialog_id[0] = '\0';
    if (!valid_token(to, 32, "+*#")) {
        result_set(r, 400, "invalid_request",
                   "\"to\" must be a number (digits, + * #)");
        return;
    }
    s = session_of(e, a, r);
    if (s == NULL) {
        return;
    }
    engine_new_request_id(e, r->request_id);
    snprintf(w.request_id, sizeof(w.request_id), "%s", r->request_id);
    engine_waiter_add(e, &w);
    snprintf(path, sizeof(path), "/finesse/api/User/%s/Dialogs", s->id);
    send_request(e, s, "POST", path, fin_xml_make_call(to, s->extension), r);
    /* Finesse answers 202 without the id: it comes with the notification
     * that carries our requestId */
    bool done = engine_waiter_wait(e, &w, r->status == 202 ? CALL_WAIT_MS : 0);
    if (done && w.dialog_id[0] != '\0') {
        snprintf(dialog_id, FIN_ID_MAX, "%s", w.dialog_id);
    } else if (done && w.error[0] != '\0') {
        result_set(r, 400, "call_failed", "%s", w.error);
    }
    session_unref(s);
}

void
cti_engine_call_action(struct cti_engine *e, struct cti_agent *a,
                       const char *dialog_id, const char *action,
                       const char *to, const char *digits, struct cti_result *r)
{
    /* clang-format off */
    static const struct { const char *api, *finesse; bool needs_to; }
    map[] = {
        {"answer", "ANSWER", false},     {"hold", "HOLD", false},
        {"retrieve", "RETRIEVE", false}, {"drop", "DROP", false},
        {"consult", "CONSULT_CALL", true}, {"transfer", "TRANSFER", false},
        {"transfer_sst", "TRANSFER_SST", true},
        {"conference", "CONFERENCE", false}, {"dtmf", "SEND_DTMF", false},
    };
    /* clang-format on */
    const char *finesse = NULL;
    bool needs_to = false;
    struct cti_session *s;
    struct fin_dialog *d;
    char path[FIN_URI_MAX];

    for (size_t i = 0; action != NULL && i < CMN_ARRAY_LEN(map); i++) {
        if (strcmp(action, map[i].api) == 0) {
            finesse = map[i].finesse;
            needs_to = map[i].needs_to;
        }
    }
    if (finesse == NULL) {
        result_set(r, 400, "invalid_request", "unknown \"action\"");
        return;
    }
    if (needs_to && !valid_token(to, 32, "+*#")) {
        result_set(r, 400, "invalid_request",
                   "\"to\" (digits, + * #) is required for %s", action);
        return;
    }
    if (strcmp(action, "dtmf") == 0 && !valid_token(digits, 32, "*#")) {
        result_set(r, 400, "invalid_request",
                   "\"digits\" (0-9 * # A-D) is required for dtmf");
        return;
    }
    d = malloc(sizeof(*d));
    if (d == NULL) {
        result_set(r, 503, "internal", "out of memory");
        return;
    }
    /* only the agent's own calls: a dialog id from someone else's call is
     * unknown here */
    if (dialog_id == NULL || !cti_agent_dialog(a, dialog_id, d)) {
        free(d);
        result_set(r, 404, "unknown_dialog", "no such call for this agent");
        return;
    }
    free(d);
    s = session_of(e, a, r);
    if (s == NULL) {
        return;
    }
    snprintf(path, sizeof(path), "/finesse/api/Dialog/%s", dialog_id);
    send_request(
        e, s, "PUT", path,
        fin_xml_dialog_action(finesse, s->extension, needs_to ? to : NULL,
                              strcmp(action, "dtmf") == 0 ? digits : NULL),
        r);
    session_unref(s);
}

void
cti_engine_wrapup(struct cti_engine *e, struct cti_agent *a,
                  const char *dialog_id, const char *reason,
                  struct cti_result *r)
{
    struct cti_session *s;
    char path[FIN_URI_MAX];

    if (reason == NULL || reason[0] == '\0' || strlen(reason) > 128 ||
        !valid_token(dialog_id, FIN_ID_MAX - 1, "-_")) {
        result_set(r, 400, "invalid_request", "\"reason\" is required");
        return;
    }
    s = session_of(e, a, r);
    if (s == NULL) {
        return;
    }
    snprintf(path, sizeof(path), "/finesse/api/Dialog/%s", dialog_id);
    send_request(e, s, "PUT", path, fin_xml_wrapup(reason), r);
    if (r->status == 202) {
        cti_calls_wrapup(e, a, dialog_id, reason);
    }
    session_unref(s);
}

static json_t *
reason_codes_json(const struct fin_reason_codes *rc)
{
    json_t *arr = json_array();

    for (size_t i = 0; i < rc->n; i++) {
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}", "id",
                                             rc->items[i].id, "code",
                                             rc->items[i].code, "label",
                                             rc->items[i].label, "category",
                                             rc->items[i].category));
    }
    return arr;
}

void
cti_engine_reason_codes(struct cti_engine *e, struct cti_agent *a,
                        const char *category, json_t **out,
                        struct cti_result *r)
{
    struct cti_session *s;
    struct fin_rest_resp resp;
    struct cmn_err err = {{0}};
    char path[FIN_URI_MAX];

    *out = NULL;
    if (category == NULL || (strcmp(category, "NOT_READY") != 0 &&
                             strcmp(category, "LOGOUT") != 0)) {
        result_set(r, 400, "invalid_request",
                   "category must be NOT_READY or LOGOUT");
        return;
    }
    s = session_of(e, a, r);
    if (s == NULL) {
        return;
    }
    snprintf(path, sizeof(path), "/finesse/api/User/%s/ReasonCodes?category=%s",
             s->id, category);
    if (engine_rest(e, s, "GET", path, NULL, NULL, &resp, &err) == CMN_OK) {
        struct fin_reason_codes *rc = malloc(sizeof(*rc));
        if (rc != NULL && fin_parse_reason_codes(resp.body, resp.body_len, rc,
                                                 &err) == CMN_OK) {
            *out = reason_codes_json(rc);
            result_set(r, 200, NULL, "ok");
        } else {
            result_set(r, 502, "finesse_malformed", "%s", err.msg);
        }
        free(rc);
    } else {
        finesse_refusal(r, &resp, &err);
    }
    fin_rest_resp_cleanup(&resp);
    session_unref(s);
}

void
cti_engine_wrapup_reasons(struct cti_engine *e, struct cti_agent *a,
                          json_t **out, struct cti_result *r)
{
    struct cti_session *s;
    struct fin_rest_resp resp;
    struct cmn_err err = {{0}};
    char path[FIN_URI_MAX];

    *out = NULL;
    s = session_of(e, a, r);
    if (s == NULL) {
        return;
    }
    snprintf(path, sizeof(path), "/finesse/api/User/%s/WrapUpReasons", s->id);
    if (engine_rest(e, s, "GET", path, NULL, NULL, &resp, &err) == CMN_OK) {
        struct fin_wrapup_reasons *w = malloc(sizeof(*w));
        if (w != NULL && fin_parse_wrapup_reasons(resp.body, resp.body_len, w,
                                                  &err) == CMN_OK) {
            json_t *arr = json_array();
            for (size_t i = 0; i < w->n; i++) {
                json_array_append_new(arr, json_pack("{s:s, s:s}", "id",
                                                     w->items[i].id, "label",
                                                     w->items[i].label));
            }
            *out = arr;
            result_set(r, 200, NULL, "ok");
        } else {
            result_set(r, 502, "finesse_malformed", "%s", err.msg);
        }
        free(w);
    } else {
        finesse_refusal(r, &resp, &err);
    }
    fin_rest_resp_cleanup(&resp);
    session_unref(s);
}
