/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_api_pops.c - focus reports, pop claims and their "done" (see
 * cti_api_pops.h and cti_agent.h for the rules). Bad input gets a 400/404 and
 * changes nothing. */
#include <stdio.h>
#include <string.h>

#include "cmn_log.h"
#include "cti_api_pops.h"

/* A stream id as cti_agent_attach makes them: base64url, short. */
static bool
stream_id_ok(const char *s, size_t len)
{
    return len > 0 && len < CTI_STREAM_ID_MAX &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     "0123456789-_") >= len;
}

/* A JSON boolean member: required ones must be there, optional ones
 * default to dflt. false when present but not a boolean, or missing. */
static bool
bool_member(json_t *body, const char *name, bool required, bool dflt, bool *out)
{
    json_t *v = json_object_get(body, name);

    if (v == NULL) {
        *out = dflt;
        return !required;
    }
    if (!json_is_boolean(v)) {
        return false;
    }
    *out = json_is_true(v);
    return true;
}

/* POST /api/v1/tabs/{stream}/focus {"focused", "visible", "can_pop"?} */
static int
tab_focus(struct cmn_http_req *req, struct cti_app *app, const char *stream)
{
    bool focused, visible, can_pop;
    struct cti_agent *a;
    json_t *body;
    int rc;

    a = cti_api_authed(req, app, cmn_http_req_bearer(req));
    if (a == NULL) {
        return CMN_OK;
    }
    body = cmn_http_req_json(req);
    if (body == NULL) {
        cti_agent_unref(a);
        return CMN_OK;
    }
    bool ok = bool_member(body, "focused", true, false, &focused) &&
              bool_member(body, "visible", true, false, &visible) &&
              bool_member(body, "can_pop", false, true, &can_pop);
    json_decref(body);
    if (!ok) {
        cti_agent_unref(a);
        return cmn_http_reply_error(req, 400, "invalid_request",
                                    "\"focused\" and \"visible\" are "
                                    "booleans (\"can_pop\" too, if given)");
    }
    rc =
        cti_agent_tab_focus(a, stream, focused, visible, can_pop, cmn_now_ms());
    cti_agent_unref(a);
    if (rc != CMN_OK) {
        return cmn_http_reply_error(req, 404, "unknown_stream",
                                    "no such event stream for this agent "
                                    "(reconnected? use the id of its "
                                    "latest `stream` event)");
    }
    return cmn_http_reply_json(req, 200, json_pack("{s:b}", "ok", 1));
}

int
cti_api_tab_sub(struct cmn_http_req *req, void *appv)
{
    const char *rest = cmn_http_req_path_rest(req);
    size_t idlen = strcspn(rest, "/");
    char stream[CTI_STREAM_ID_MAX];

    if (strcmp(rest + idlen, "/focus") != 0) {
        return cmn_http_reply_error(req, 404, "not_found", "no such resource");
    }
    if (!stream_id_ok(rest, idlen)) {
        return cmn_http_reply_error(req, 404, "unknown_stream",
                                    "malformed stream id");
    }
    memcpy(stream, rest, idlen);
    stream[idlen] = '\0';
    return tab_focus(req, appv, stream);
}

int
cti_api_call_popped(struct cmn_http_req *req, struct cti_app *app,
                    const char *rest, size_t idlen)
{
    char dialog[FIN_ID_MAX];
    struct cti_agent *a;
    json_t *body, *v;
    bool done;

    if (idlen == 0 || idlen >= FIN_ID_MAX) {
        return cmn_http_reply_error(req, 404, "unknown_dialog",
                                    "malformed dialog id");
    }
    memcpy(dialog, rest, idlen);
    dialog[idlen] = '\0';
    a = cti_api_authed(req, app, cmn_http_req_bearer(req));
    if (a == NULL) {
        return CMN_OK;
    }
    body = cmn_http_req_json(req);
    if (body == NULL) {
        cti_agent_unref(a);
        return CMN_OK;
    }
    v = json_object_get(body, "stream");
    if (!json_is_string(v) ||
        !stream_id_ok(json_string_value(v), json_string_length(v)) ||
        !bool_member(body, "done", false, false, &done)) {
        json_decref(body);
        cti_agent_unref(a);
        return cmn_http_reply_error(req, 400, "invalid_request",
                                    "\"stream\" is the id of the tab's "
                                    "event stream that got the pop "
                                    "(\"done\" a boolean, if given)");
    }
    enum cti_pop_claim rc = cti_agent_pop_claim(a, dialog, json_string_value(v),
                                                done, cmn_now_ms());
    json_decref(body);
    cti_agent_unref(a);
    switch (rc) {
    case CTI_POP_CLAIMED:
        return cmn_http_reply_json(
            req, 200,
            done ? json_pack("{s:b, s:b}", "claimed", 1, "done", 1)
                 : json_pack("{s:b}", "claimed", 1));
    case CTI_POP_TAKEN:
        return cmn_http_reply_error(req, 409, "already_popped",
                                    "another tab popped this call");
    case CTI_POP_NOT_OFFERED:
        return cmn_http_reply_error(req, 409, "not_offered",
                                    "this call's pop was not offered to "
                                    "this tab");
    case CTI_POP_STREAM_CLOSED:
        return cmn_http_reply_error(req, 409, "stream_closed",
                                    "this tab's event stream has closed; "
                                    "the pop goes to a connected tab");
    case CTI_POP_NONE:
    default:
        return cmn_http_reply_error(req, 404, "no_pop",
                                    "no screen pop is waiting for this "
                                    "call (none decided, or the call is "
                                    "over)");
    }
}
