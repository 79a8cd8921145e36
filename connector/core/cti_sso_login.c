/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_sso_login.c - who an SSO sign-in is. fsc-sso redeems the handoff
 * code; then either
 *   - the IdS token named a user (IdS 12.6(2) and later): Finesse maps it
 *     to the loginId (GET /finesse/api/User?loginName=, as the Finesse
 *     developer guide's SSO client flow does; a user_id that is already a
 *     loginId is confirmed with GET /finesse/api/User/<id>), or
 *   - the token is opaque (IdS before 12.6(2) encrypts it): the agent ID
 *     typed on the softphone (else the login_hint the sign-in started
 *     with) is proven by Finesse answering GET /finesse/api/User/<id> with
 *     that Bearer token: an agent can read only their own User.
 * Whatever fails, the fsc-sso session is ended and nothing is signed in. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_httpc.h"
#include "cmn_log.h"
#include "cmn_seal.h"
#include "cti_calls.h"
#include "cti_engine_int.h"

/* A Finesse loginId: short, letters, digits and - _ . @ */
static bool
agent_id_ok(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > FIN_ID_MAX - 1) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && strchr("-_.@", s[i]) == NULL) {
            return false;
        }
    }
    return true;
}

/* Opaque token: the agent the sign-in claims to be, proven by Finesse. */
static bool
prove_agent(struct cti_engine *e, struct cti_session *s, const char *claimed,
            struct fin_user *u, struct cti_result *r)
{
    char path[FIN_URI_MAX];

    if (claimed[0] == '\0') {
        cmn_log_warn("event=sso_login_refused reason=agent_id_required");
        result_set(r, 400, "agent_id_required",
                   "single sign-on did not say which agent you are (IdS "
                   "before 12.6(2) issues tokens nobody else can read): "
                   "enter your Agent ID and sign in with SSO again");
        return false;
    }
    if (!agent_id_ok(claimed)) {
        result_set(r, 400, "invalid_request", "\"agent\" is not an agent ID");
        return false;
    }
    snprintf(path, sizeof(path), "/finesse/api/User/%s", claimed);
    if (!engine_fetch_user(e, s, path, u, r)) {
        if (r->status == 401 || r->status == 403) {
            /* the token is someone else's (or no one's): Finesse lets an
             * agent read only their own User */
            cmn_log_warn("event=sso_login_refused reason=agent_not_proven "
                         "agent=%s",
                         claimed);
            result_set(r, 401, "invalid_agent",
                       "Finesse did not accept this single sign-on for agent "
                       "%s: enter your own Agent ID",
                       claimed);
        }
        return false;
    }
    if (strcmp(u->login_id, claimed) != 0) {
        cmn_log_warn("event=sso_login_refused reason=agent_mismatch "
                     "agent=%s finesse=%s",
                     claimed, u->login_id);
        result_set(r, 401, "invalid_agent",
                   "Finesse answered for another agent than %s", claimed);
        return false;
    }
    return true;
}

/* The IdS user to the loginId. The Finesse developer guide: IdS's user_id
 * "can be either the loginName or the peripheralId (loginId)", and
 * GET User?loginName= turns a loginName into the loginId. When no User
 * has that loginName and the name can be a loginId, it is tried as one:
 * Finesse answers GET User/<id> only to that agent's own token. */
static bool
map_user(struct cti_engine *e, struct cti_session *s, const char *user,
         struct fin_user *u, struct cti_result *r)
{
    char path[FIN_URI_MAX];
    char *q = cmn_url_escape(user);

    snprintf(path, sizeof(path), "/finesse/api/User?loginName=%s",
             q != NULL ? q : "");
    free(q);
    if (engine_fetch_user(e, s, path, u, r)) {
        return true;
    }
    if (r->status != 401 || !agent_id_ok(user) || strchr(user, '@') != NULL) {
        return false;
    }
    snprintf(path, sizeof(path), "/finesse/api/User/%s", user);
    if (!engine_fetch_user(e, s, path, u, r)) {
        return false;
    }
    cmn_log_info("event=sso_user_is_login_id agent=%s", u->login_id);
    return strcmp(u->login_id, user) == 0;
}

struct cti_session *
engine_sso_identify(struct cti_engine *e, const struct cti_login *in,
                    struct fin_user *u, struct cti_result *r)
{
    char sso_session[128], user[FIN_NAME_MAX], hint[FIN_NAME_MAX];
    struct cmn_err err = {{0}};
    struct cti_session *s;
    bool opaque;
    bool ok;

    if (sso_client_handoff(e, in->handoff, sso_session, user, hint, &err) !=
        CMN_OK) {
        result_set(r, 401, "invalid_handoff", "%s", err.msg);
        return NULL;
    }
    s = engine_session_new(e, "pending");
    if (s == NULL) {
        cmn_wipe(sso_session, sizeof(sso_session));
        result_set(r, 503, "internal", "out of memory");
        return NULL;
    }
    s->sso_session = cmn_secret_new(sso_session, strlen(sso_session));
    cmn_wipe(sso_session, sizeof(sso_session));
    opaque = user[0] == '\0';
    if (opaque) {
        const char *typed = in->agent != NULL ? in->agent : "";
        ok = prove_agent(e, s, typed[0] != '\0' ? typed : hint, u, r);
    } else {
        ok = map_user(e, s, user, u, r);
    }
    if (!ok) {
        sso_client_logout(e, s); /* the sign-in is over: end it at fsc-sso */
        session_unref(s);
        return NULL;
    }
    snprintf(s->id, sizeof(s->id), "%s", u->login_id);
    snprintf(s->login_name, sizeof(s->login_name), "%s",
             opaque ? u->login_name : user);
    cti_agent_unref(s->agent);
    s->agent = cti_agent_new(s->id);
    if (s->agent == NULL) {
        result_set(r, 503, "internal", "out of memory");
        sso_client_logout(e, s);
        session_unref(s);
        return NULL;
    }
    cti_agent_set_dialog_hook(s->agent, cti_calls_on_dialog, e);
    cmn_log_info("event=sso_identified agent=%s by=%s", s->id,
                 opaque ? "finesse_user" : "ids_user");
    return s;
}
