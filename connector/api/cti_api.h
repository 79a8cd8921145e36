/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_api.h - the connector's HTTP API (DESIGN.md §4) for the softphone
 * page and integrators: JSON in and out, bearer tokens from
 * /api/v1/login, Server-Sent Events per tab. Handlers never block: ops
 * that call Finesse run on the engine's job threads and answer through a
 * deferred reply. */
#ifndef CTI_API_H
#define CTI_API_H

#include "cmn_httpd.h"
#include "cmn_metrics.h"
#include "cti_engine.h"
#include "cti_ticket.h"

struct cti_app {
    const struct cti_config *cfg;
    struct cti_engine *engine;
    struct cti_tickets *tickets; /* event-stream tickets */
    struct cmn_metric *logins_ok;
    struct cmn_metric *logins_failed;
    struct cmn_metric *actions;
    struct cmn_metric *sessions;
    struct cmn_metric *xmpp_online;
};

/* Metrics and the stream tickets; CMN_NOMEM. cti_api_cleanup frees. */
int cti_api_init(struct cti_app *app) CMN_NODISCARD;
void cti_api_cleanup(struct cti_app *app);

/* The agent behind token (referenced: cti_agent_unref), resumed from Redis
 * when another process issued it; NULL when a reply (401, 409
 * agent_elsewhere, 503 session_resuming) has been queued. */
struct cti_agent *cti_api_authed(struct cmn_http_req *req, struct cti_app *app,
                                 const char *token);

extern const struct cmn_http_route cti_api_routes[];
extern const size_t cti_api_nroutes;
/* [server] metrics_listen's routes: /metrics and /healthz */
extern const struct cmn_http_route cti_api_metrics_routes[];
extern const size_t cti_api_metrics_nroutes;

#endif
