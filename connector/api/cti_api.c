/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_api.c - HTTP handlers of fsc-connector. Each handler validates what
 * it can at once (token, JSON shape), then hands the work to a job and
 * answers from there with a deferred reply. Bad input gets a 4xx and
 * changes nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_log.h"
#include "cmn_seal.h"
#include "cti_admin.h"
#include "cti_api.h"
#include "cti_api_pops.h"
#include "cti_calls.h"
#include "cti_web.h"

#define STR_MAX 256

enum op {
    OP_LOGIN,
    OP_LOGOUT,
    OP_STATE,
    OP_CALL,
    OP_ACTION,
    OP_WRAPUP,
    OP_REASON_CODES,
    OP_WRAPUP_REASONS,
};

/* Everything a job needs, copied out of the request (which is gone once
 * the handler returns). */
struct api_job {
    enum op op;
    struct cti_app *app;
    struct cmn_http_deferred *d;
    struct cti_agent *agent; /* referenced; NULL for login */
    char token[CTI_TOKEN_LEN];
    char a[STR_MAX], b[STR_MAX], c[STR_MAX], dialog[FIN_ID_MAX];
    char password[STR_MAX];
};

static void
metrics_init(struct cti_app *app)
{
    app->logins_ok = cmn_metric_counter(
        "fsc_connector_logins_total{result=\"ok\"}", "Agent sign-ins");
    app->logins_failed = cmn_metric_counter(
        "fsc_connector_logins_total{result=\"failed\"}", "Agent sign-ins");
    app->actions = cmn_metric_counter("fsc_connector_requests_total",
                                      "State and call requests to Finesse");
    app->sessions = cmn_metric_gauge("fsc_connector_agents",
                                     "Agents with a Finesse session");
    app->xmpp_online = cmn_metric_gauge("fsc_connector_xmpp_online",
                                        "Agents whose XMPP session is up");
}

int
cti_api_init(struct cti_app *app)
{
    metrics_init(app);
    app->tickets = cti_tickets_new(app->cfg->stream_ticket_s * 1000);
    return app->tickets != NULL ? CMN_OK : CMN_NOMEM;
}

void
cti_api_cleanup(struct cti_app *app)
{
    cti_tickets_free(app->tickets);
    app->tickets = NULL;
}

/* A JSON string field, copied; absent is "" (callers decide). Non-string
 * or too long: false. */
static bool
field(json_t *body, const char *name, char *out, size_t size)
{
    json_t *v = json_object_get(body, name);

    out[0] = '\0';
    if (v == NULL || json_is_null(v)) {
        return true;
    }
    if (!json_is_string(v) || json_string_length(v) >= size ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        return false;
    }
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return true;
}

static const char *
or_null(const char *s)
{
    return s[0] != '\0' ? s : NULL;
}

static void
reply_result(struct api_job *j, const struct cti_result *r, json_t *extra)
{
    if (r->status >= 400) {
        json_decref(extra);
        json_t *err = json_pack("{s:s, s:s, s:s?, s:s?}", "error", r->error,
                                "detail", r->detail, "request_id",
                                r->request_id[0] ? r->request_id : NULL,
                                "owner", r->owner[0] ? r->owner : NULL);
        if (err != NULL && r->retry_after_s > 0) {
            json_object_set_new(err, "retry_after_s",
                                json_integer(r->retry_after_s));
        }
        cmn_http_deferred_reply_json(j->d, r->status, err);
        return;
    }
    if (extra == NULL) {
        extra = json_object();
    }
    if (r->request_id[0] != '\0') {
        json_object_set_new(extra, "request_id", json_string(r->request_id));
    }
    cmn_http_deferred_reply_json(j->d, r->status, extra);
}

static void
run_job(void *arg)
{
    struct api_job *j = arg;
    struct cti_engine *e = j->app->engine;
    struct cti_result r = {0};
    json_t *out = NULL;

    switch (j->op) {
    case OP_LOGIN: {
        char token[CTI_TOKEN_LEN] = {0};
        json_t *agent = NULL;
        struct cti_login in = {
            .agent = or_null(j->a),
            .password = or_null(j->password),
            .handoff = or_null(j->b),
            .extension = or_null(j->c),
            .peer = or_null(j->dialog), /* the client's address */
        };
        cti_engine_login(e, &in, token, &agent, &r);
        cmn_metric_inc(r.status == 200 ? j->app->logins_ok
                                       : j->app->logins_failed);
        if (r.status == 200) {
            out = json_pack("{s:s, s:o}", "token", token, "agent", agent);
        }
        memset(token, 0, sizeof(token));
        break;
    }
    case OP_LOGOUT:
        cti_engine_logout(e, j->token, or_null(j->a), &r);
        break;
    case OP_STATE:
        cmn_metric_inc(j->app->actions);
        cti_engine_set_state(e, j->agent, j->a, or_null(j->b), &r);
        break;
    case OP_CALL: {
        char dialog_id[FIN_ID_MAX];
        cmn_metric_inc(j->app->actions);
        cti_engine_make_call(e, j->agent, j->a, dialog_id, &r);
        if (r.status < 400) {
            out = json_pack("{s:s?}", "dialog_id",
                            dialog_id[0] ? dialog_id : NULL);
        }
        break;
    }
    case OP_ACTION:
        cmn_metric_inc(j->app->actions);
        cti_engine_call_action(e, j->agent, j->dialog, j->a, or_null(j->b),
                               or_null(j->c), &r);
        break;
    case OP_WRAPUP:
        cmn_metric_inc(j->app->actions);
        cti_engine_wrapup(e, j->agent, j->dialog, j->a, &r);
        break;
    case OP_REASON_CODES:
        cti_engine_reason_codes(e, j->agent, j->a, &out, &r);
        if (out != NULL) {
            out =
                json_pack("{s:s, s:o}", "category", j->a, "reason_codes", out);
        }
        break;
    case OP_WRAPUP_REASONS:
        cti_engine_wrapup_reasons(e, j->agent, &out, &r);
        if (out != NULL) {
            out = json_pack("{s:o}", "wrapup_reasons", out);
        }
        break;
    }
    reply_result(j, &r, out);
    cti_agent_unref(j->agent);
    memset(j, 0, sizeof(*j)); /* passwords, tokens */
    free(j);
}

static int
submit(struct cmn_http_req *req, struct api_job *j)
{
    j->d = cmn_http_defer(req);
    if (j->d == NULL) {
        cti_agent_unref(j->agent);
        free(j);
        return cmn_http_reply_error(req, 503, "unavailable",
                                    "the server is stopping");
    }
    if (cmn_jobs_submit(cti_engine_jobs(j->app->engine), run_job, j) !=
        CMN_OK) {
        cmn_http_deferred_reply_error(j->d, 503, "busy",
                                      "too many requests in flight");
        cti_agent_unref(j->agent);
        free(j);
    }
    return CMN_OK;
}

struct cti_agent *
cti_api_authed(struct cmn_http_req *req, struct cti_app *app, const char *token)
{
    struct cti_agent *a = cti_engine_agent(app->engine, token);
    bool busy = false;
    char owner[256] = "";

    if (a == NULL) {
        /* issued by a connector process that is gone (a restart, a host
         * that died): its session is resumed here */
        a = cti_engine_agent_resume(app->engine, token, &busy, owner,
                                    sizeof(owner));
    }
    if (a == NULL && owner[0] != '\0') {
        cmn_http_reply_json(
            req, 409,
            json_pack("{s:s, s:s, s:s}", "error", "agent_elsewhere", "detail",
                      "this agent's session runs on another connector host "
                      "(owner); it moves here if that host stops",
                      "owner", owner));
        return NULL;
    }
    if (a == NULL && busy) {
        cmn_http_add_header(req, "Retry-After", "1");
        cmn_http_reply_error(req, 503, "session_resuming",
                             "this agent's session is being picked up by "
                             "this host; retry in a moment");
        return NULL;
    }
    if (a == NULL) {
        cmn_http_add_header(req, "WWW-Authenticate",
                            "Bearer realm=\"fsc-connector\"");
        cmn_http_reply_error(req, 401, "unauthorized",
                             "sign in first (missing, unknown or expired "
                             "token)");
    }
    return a;
}

static struct api_job *
new_job(struct cti_app *app, enum op op, struct cti_agent *a)
{
    struct api_job *j = calloc(1, sizeof(*j));

    if (j != NULL) {
        j->op = op;
        j->app = app;
        j->agent = a;
    } else {
        cti_agent_unref(a);
    }
    return j;
}

/* How every authenticated job handler starts: the agent behind the bearer
 * token, the JSON body (when body is not NULL) and the job for op. NULL
 * when a reply (401, 400, 503) has already been queued. */
static struct api_job *
start_job(struct cmn_http_req *req, struct cti_app *app, enum op op,
          json_t **body)
{
    struct cti_agent *a = cti_api_authed(req, app, cmn_http_req_bearer(req));
    struct api_job *j;

    if (a == NULL) {
        return NULL;
    }
    if (body != NULL && (*body = cmn_http_req_json(req)) == NULL) {
        cti_agent_unref(a);
        return NULL;
    }
    j = new_job(app, op, a);
    if (j == NULL) {
        if (body != NULL) {
            json_decref(*body);
            *body = NULL;
        }
        cmn_http_reply_error(req, 503, "internal", "out of memory");
    }
    return j;
}

static int
bad_request(struct cmn_http_req *req, struct api_job *j, json_t *body,
            const char *detail)
{
    if (j != NULL) {
        cti_agent_unref(j->agent);
        free(j);
    }
    json_decref(body);
    return cmn_http_reply_error(req, 400, "invalid_request", detail);
}

static int
h_login(struct cmn_http_req *req, void *appv)
{
    struct cti_app *app = appv;
    json_t *body = cmn_http_req_json(req);
    struct api_job *j;

    if (body == NULL) {
        return CMN_OK;
    }
    j = new_job(app, OP_LOGIN, NULL);
    if (j == NULL) {
        json_decref(body);
        return cmn_http_reply_error(req, 503, "internal", "out of memory");
    }
    if (!field(body, "agent", j->a, FIN_ID_MAX) ||
        !field(body, "password", j->password, sizeof(j->password)) ||
        !field(body, "handoff", j->b, 128) ||
        !field(body, "extension", j->c, FIN_ADDR_MAX)) {
        return bad_request(req, j, body,
                           "agent, password, handoff and extension are "
                           "short strings");
    }
    json_decref(body);
    /* the client for the failed-sign-in count per address: behind one of
     * [server] trusted_proxies the one its X-Forwarded-For names, and an
     * IPv6 client's /64 (cmn_net_count_key) */
    char client[CMN_ADDR_MAX];
    cmn_http_req_client(req, &app->cfg->trusted_proxies, client);
    cmn_net_count_key(client, j->dialog);
    return submit(req, j);
}

static int
h_logout(struct cmn_http_req *req, void *appv)
{
    struct cti_app *app = appv;
    const char *token = cmn_http_req_bearer(req);
    struct cti_agent *a = cti_api_authed(req, app, token);
    struct api_job *j;
    size_t len = 0;

    if (a == NULL) {
        return CMN_OK;
    }
    j = new_job(app, OP_LOGOUT, a);
    if (j == NULL) {
        return cmn_http_reply_error(req, 503, "internal", "out of memory");
    }
    snprintf(j->token, sizeof(j->token), "%s", token);
    cmn_http_req_body(req, &len);
    if (len > 0) {
        json_t *body = cmn_http_req_json(req);
        if (body == NULL) {
            cti_agent_unref(j->agent);
            free(j);
            return CMN_OK;
        }
        if (!field(body, "reason_code_id", j->a, FIN_ID_MAX)) {
            return bad_request(req, j, body, "bad reason_code_id");
        }
        json_decref(body);
    }
    return submit(req, j);
}

static int
h_state(struct cmn_http_req *req, void *appv)
{
    json_t *body = NULL;
    struct api_job *j = start_job(req, appv, OP_STATE, &body);

    if (j == NULL) {
        return CMN_OK;
    }
    if (!field(body, "state", j->a, 32) ||
        !field(body, "reason_code_id", j->b, FIN_ID_MAX)) {
        return bad_request(req, j, body,
                           "state and reason_code_id are "
                           "strings");
    }
    json_decref(body);
    return submit(req, j);
}

static int
h_reason_codes(struct cmn_http_req *req, void *appv)
{
    const char *category = cmn_http_req_query(req, "category");
    struct api_job *j = start_job(req, appv, OP_REASON_CODES, NULL);

    if (j == NULL) {
        return CMN_OK;
    }
    snprintf(j->a, sizeof(j->a), "%s",
             category != NULL ? category : "NOT_READY");
    return submit(req, j);
}

static int
h_wrapup_reasons(struct cmn_http_req *req, void *appv)
{
    struct api_job *j = start_job(req, appv, OP_WRAPUP_REASONS, NULL);

    return j != NULL ? submit(req, j) : CMN_OK;
}

static int
h_calls(struct cmn_http_req *req, void *appv)
{
    json_t *body = NULL;
    struct api_job *j = start_job(req, appv, OP_CALL, &body);

    if (j == NULL) {
        return CMN_OK;
    }
    if (!field(body, "to", j->a, 64)) {
        return bad_request(req, j, body, "\"to\" is a string");
    }
    json_decref(body);
    return submit(req, j);
}

/* /api/v1/calls/{id}/context {"who_id", "what_id"}: the Salesforce record
 * the agent has open; no Finesse call, so answered right here. */
static int
h_context(struct cmn_http_req *req, struct cti_app *app, const char *rest,
          size_t idlen)
{
    char dialog[FIN_ID_MAX], who[32], what[32];
    struct cti_agent *a;
    json_t *body;
    int rc;

    if (idlen == 0 || idlen >= FIN_ID_MAX) {
        return cmn_http_reply_error(req, 404, "unknown_dialog",
                                    "malformed dialog id");
    }
    a = cti_api_authed(req, app, cmn_http_req_bearer(req));
    if (a == NULL) {
        return CMN_OK;
    }
    body = cmn_http_req_json(req);
    if (body == NULL) {
        cti_agent_unref(a);
        return CMN_OK;
    }
    memcpy(dialog, rest, idlen);
    dialog[idlen] = '\0';
    if (!field(body, "who_id", who, sizeof(who)) ||
        !field(body, "what_id", what, sizeof(what))) {
        json_decref(body);
        cti_agent_unref(a);
        return cmn_http_reply_error(req, 400, "invalid_request",
                                    "who_id and what_id are record ids");
    }
    json_decref(body);
    rc = cti_calls_context(app->engine, a, dialog, or_null(who), or_null(what));
    cti_agent_unref(a);
    if (rc == CMN_NOTFOUND) {
        return cmn_http_reply_error(req, 404, "unknown_dialog",
                                    "no such call for this agent");
    }
    if (rc != CMN_OK) {
        return cmn_http_reply_error(req, 400, "invalid_request",
                                    "who_id/what_id must be 15 or 18 "
                                    "character Salesforce ids");
    }
    return cmn_http_reply_json(req, 200, json_pack("{s:b}", "ok", 1));
}

/* /api/v1/calls/{id}/actions, .../wrapup, .../context and .../popped */
static int
h_call_sub(struct cmn_http_req *req, void *appv)
{
    struct cti_app *app = appv;
    const char *rest = cmn_http_req_path_rest(req);
    size_t idlen = strcspn(rest, "/");
    const char *tail = rest + idlen;
    json_t *body = NULL;
    struct api_job *j;
    enum op op;

    if (strcmp(tail, "/actions") == 0) {
        op = OP_ACTION;
    } else if (strcmp(tail, "/wrapup") == 0) {
        op = OP_WRAPUP;
    } else if (strcmp(tail, "/context") == 0) {
        return h_context(req, app, rest, idlen);
    } else if (strcmp(tail, "/popped") == 0) {
        return cti_api_call_popped(req, app, rest, idlen);
    } else {
        return cmn_http_reply_error(req, 404, "not_found", "no such resource");
    }
    if (idlen == 0 || idlen >= FIN_ID_MAX) {
        return cmn_http_reply_error(req, 404, "unknown_dialog",
                                    "malformed dialog id");
    }
    j = start_job(req, app, op, &body);
    if (j == NULL) {
        return CMN_OK;
    }
    memcpy(j->dialog, rest, idlen);
    j->dialog[idlen] = '\0';
    if (op == OP_ACTION
            ? (!field(body, "action", j->a, 32) ||
               !field(body, "to", j->b, 64) || !field(body, "digits", j->c, 64))
            : !field(body, "reason", j->a, 160)) {
        return bad_request(req, j, body, "fields must be short strings");
    }
    json_decref(body);
    return submit(req, j);
}

/* POST /api/v1/events/ticket: a single-use ticket for one stream
 * (cti_ticket.h), so that the API token never rides in a URL. */
static int
h_events_ticket(struct cmn_http_req *req, void *appv)
{
    struct cti_app *app = appv;
    const char *token = cmn_http_req_bearer(req);
    struct cti_agent *a = cti_api_authed(req, app, token);
    char ticket[CTI_TICKET_LEN];
    int rc;

    if (a == NULL) {
        return CMN_OK;
    }
    cti_agent_unref(a);
    rc = cti_tickets_issue(app->tickets, token, cmn_now_ms(), ticket);
    if (rc != CMN_OK) {
        cmn_http_add_header(req, "Retry-After", "1");
        return cmn_http_reply_error(req, 503, "busy",
                                    "no stream ticket now; retry in a "
                                    "moment");
    }
    rc = cmn_http_reply_json(req, 200,
                             json_pack("{s:s, s:I}", "ticket", ticket,
                                       "expires_in",
                                       (json_int_t)app->cfg->stream_ticket_s));
    cmn_wipe(ticket, sizeof(ticket));
    return rc;
}

/* Where a resumed stream starts: Last-Event-ID (EventSource's own
 * reconnect) or ?last_event_id= (a page that opens a new EventSource with
 * a fresh ticket). 0: a snapshot. */
static unsigned long long
last_event_id(struct cmn_http_req *req)
{
    const char *last = cmn_http_req_header(req, "Last-Event-ID");
    unsigned long long id;
    char *end;

    if (last == NULL) {
        last = cmn_http_req_query(req, "last_event_id");
    }
    if (last == NULL || last[0] == '\0') {
        return 0;
    }
    id = strtoull(last, &end, 10);
    return *end == '\0' ? id : 0; /* not ours: send a snapshot */
}

/* GET /api/v1/events?ticket=... (EventSource, which cannot set headers)
 * or with Authorization: Bearer (other clients). Never ?token=: an API
 * token in a URL ends up in proxy logs. */
static int
h_events(struct cmn_http_req *req, void *appv)
{
    struct cti_app *app = appv;
    const char *ticket = cmn_http_req_query(req, "ticket");
    char token[CTI_TOKEN_LEN] = "";
    struct cti_agent *a;
    int rc;

    if (cmn_http_req_query(req, "token") != NULL) {
        return cmn_http_reply_error(req, 400, "token_in_url",
                                    "the API token never goes in a URL: "
                                    "POST /api/v1/events/ticket, then open "
                                    "/api/v1/events?ticket=...");
    }
    if (ticket != NULL) {
        if (cti_tickets_redeem(app->tickets, ticket, cmn_now_ms(), token) !=
            CMN_OK) {
            cmn_http_add_header(req, "WWW-Authenticate",
                                "Bearer realm=\"fsc-connector\"");
            return cmn_http_reply_error(req, 401, "invalid_ticket",
                                        "unknown, used or expired stream "
                                        "ticket: POST /api/v1/events/ticket "
                                        "for a new one");
        }
    }
    a = cti_api_authed(req, app,
                       ticket != NULL ? token : cmn_http_req_bearer(req));
    cmn_wipe(token, sizeof(token));
    if (a == NULL) {
        return CMN_OK;
    }
    rc = cti_agent_attach(a, req, last_event_id(req));
    cti_agent_unref(a);
    if (rc != CMN_OK) {
        return cmn_http_reply_error(req, 503, "unavailable",
                                    "cannot open the event stream");
    }
    return CMN_OK;
}

static int
h_healthz(struct cmn_http_req *req, void *appv)
{
    (void)appv;
    return cmn_http_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

static int
h_readyz(struct cmn_http_req *req, void *appv)
{
    struct cti_app *app = appv;
    struct cti_engine_stats st;
    bool any_up = false;

    cti_engine_stats(app->engine, &st);
    for (size_t i = 0; i < app->cfg->nnodes; i++) {
        any_up = any_up || st.nodes_up[i];
    }
    return cmn_http_reply_json(
        req, any_up ? 200 : 503,
        json_pack("{s:s, s:i, s:I, s:I}", "status",
                  any_up ? "ready" : "no Finesse node in service",
                  "active_node", st.active_node, "agents",
                  (json_int_t)st.sessions, "xmpp_online",
                  (json_int_t)st.xmpp_online));
}

static int h_metrics(struct cmn_http_req *req, void *appv);

/* /metrics on [server] listen: 404 when metrics have their own address */
static int
h_metrics_public(struct cmn_http_req *req, void *appv)
{
    struct cti_app *app = appv;

    if (app->cfg->metrics_listen != NULL) {
        return cmn_http_reply_error(req, 404, "not_found",
                                    "metrics are served on [server] "
                                    "metrics_listen");
    }
    return h_metrics(req, appv);
}

static int
h_metrics(struct cmn_http_req *req, void *appv)
{
    struct cti_app *app = appv;
    struct cti_engine_stats st;
    char *text = NULL;
    size_t len = 0;
    int rc;

    cti_engine_stats(app->engine, &st);
    cmn_metric_set(app->sessions, (double)st.sessions);
    cmn_metric_set(app->xmpp_online, (double)st.xmpp_online);
    if (cmn_metrics_render(&text, &len) != CMN_OK) {
        return cmn_http_reply_error(req, 500, "internal", "metrics");
    }
    rc = cmn_http_reply_text(req, 200, "text/plain; version=0.0.4", text, len);
    free(text);
    return rc;
}

/* clang-format off */
const struct cmn_http_route cti_api_routes[] = {
    {"POST", "/api/v1/login",           h_login},
    {"POST", "/api/v1/logout",          h_logout},
    {"GET",  "/api/v1/events",          h_events},
    {"POST", "/api/v1/events/ticket",   h_events_ticket},
    {"POST", "/api/v1/state",           h_state},
    {"GET",  "/api/v1/reason-codes",    h_reason_codes},
    {"GET",  "/api/v1/wrapup-reasons",  h_wrapup_reasons},
    {"POST", "/api/v1/calls",           h_calls},
    {"POST", "/api/v1/calls/*",         h_call_sub},
    {"POST", "/api/v1/tabs/*",          cti_api_tab_sub},
    {"GET",  "/api/v1/config",          cti_web_config},
    {"GET",  "/softphone/*",            cti_web_softphone},
    {"GET",  "/admin/v1/outbox",        cti_admin_outbox},
    {"POST", "/admin/v1/outbox/replay", cti_admin_replay},
    {"GET",  "/healthz",                h_healthz},
    {"GET",  "/readyz",                 h_readyz},
    {"GET",  "/metrics",                h_metrics_public},
};
/* [server] metrics_listen: the second socket serves only these */
const struct cmn_http_route cti_api_metrics_routes[] = {
    {"GET",  "/metrics",                h_metrics},
    {"GET",  "/healthz",                h_healthz},
};
/* clang-format on */
const size_t cti_api_nroutes = CMN_ARRAY_LEN(cti_api_routes);
const size_t cti_api_metrics_nroutes = CMN_ARRAY_LEN(cti_api_metrics_routes);
