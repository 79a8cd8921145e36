/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_http_ops.c - /healthz, /readyz, /metrics, the route table and the
 * HTML error page shared by the browser endpoints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_log.h"
#include "sso_http.h"
#include "sso_out.h"

/* clang-format off */
const struct cmn_http_route sso_http_routes[] = {
    {"GET",    "/sso/login",     sso_http_login},
    {"GET",    "/sso/callback",  sso_http_callback},
    {"GET",    "/sso/saml/metadata", sso_http_saml_metadata},
    {"GET",    "/sso/saml/login",    sso_http_saml_login},
    {"POST",   "/sso/saml/acs",      sso_http_saml_acs},
    {"GET",    "/sso/saml/slo",      sso_http_saml_slo},
    {"GET",    "/sso/saml/logout",   sso_http_saml_logout},
    {"POST",   "/v1/saml-logout", sso_http_saml_logout_code},
    {"POST",   "/v1/handoff",    sso_http_handoff},
    {"GET",    "/v1/sessions/*", sso_http_sessions},
    {"DELETE", "/v1/sessions/*", sso_http_sessions},
    {"DELETE", "/v1/sessions",   sso_http_revoke_user},
    {"GET",    "/healthz",       sso_http_healthz},
    {"GET",    "/readyz",        sso_http_readyz},
    {"GET",    "/metrics",       sso_http_metrics_public},
};
/* [server] metrics_listen: the second socket serves only these */
const struct cmn_http_route sso_http_metrics_routes[] = {
    {"GET",    "/metrics",       sso_http_metrics},
    {"GET",    "/healthz",       sso_http_healthz},
};
/* clang-format on */
const size_t sso_http_nroutes = CMN_ARRAY_LEN(sso_http_routes);
const size_t sso_http_metrics_nroutes = CMN_ARRAY_LEN(sso_http_metrics_routes);

int
sso_http_healthz(struct cmn_http_req *req, void *app)
{
    (void)app;
    return cmn_http_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

/* verify = required and IdS served no key yet: ask again on a job thread
 * (never on the HTTP thread: IdS may be slow), every few seconds while
 * the load balancer keeps checking. */
static void
key_retry_job(void *arg)
{
    struct sso_gen *g = arg;

    sso_keys_retry(g->keys);
    sso_gen_release(g);
}

static void
key_retry_later(struct sso_app *app, struct sso_gen *g)
{
    if (!sso_keys_retry_due(g->keys)) {
        return;
    }
    atomic_fetch_add(&g->refs, 1); /* the job's reference */
    if (cmn_jobs_submit(app->jobs, key_retry_job, g) != CMN_OK) {
        sso_keys_retry(g->keys); /* queue full: a rare, bounded wait */
        sso_gen_release(g);
    }
}

int
sso_http_readyz(struct cmn_http_req *req, void *appv)
{
    struct sso_app *app = appv;
    struct sso_gen *g = sso_app_acquire(app);
    struct cmn_err err = {{0}};
    char why[256];
    int rc;

    if (!sso_keys_ready(g->keys, why, sizeof(why))) {
        key_retry_later(app, g);
        rc = cmn_http_reply_json(req, 503,
                                 json_pack("{s:s, s:s, s:s}", "status",
                                           "unready", "instance",
                                           g->cfg->instance, "detail", why));
    } else if (cmn_redis_ping(g->redis, &err)) {
        rc = cmn_http_reply_json(req, 200,
                                 json_pack("{s:s, s:s}", "status", "ready",
                                           "instance", g->cfg->instance));
    } else {
        /* not ready: the load balancer sends traffic to the other node */
        rc = cmn_http_reply_json(
            req, 503,
            json_pack("{s:s, s:s, s:s}", "status", "unready", "instance",
                      g->cfg->instance, "detail", err.msg));
    }
    sso_gen_release(g);
    return rc;
}

int
sso_http_metrics(struct cmn_http_req *req, void *appv)
{
    struct sso_app *app = appv;
    struct sso_gen *g = sso_app_acquire(app);
    char *text = NULL;
    size_t len = 0;
    int rc;

    cmn_metric_set(app->m.redis_errors, (double)cmn_redis_errors(g->redis));
    sso_gen_release(g);
    if (cmn_metrics_render(&text, &len) != CMN_OK) {
        return cmn_http_reply_error(req, 500, "internal", "metrics");
    }
    rc = cmn_http_reply_text(req, 200, "text/plain; version=0.0.4", text, len);
    free(text);
    return rc;
}

/* /metrics on [server] listen: not there when metrics have their own
 * address (the public listener need not expose them at all). */
int
sso_http_metrics_public(struct cmn_http_req *req, void *appv)
{
    struct sso_app *app = appv;

    if (app->metrics_elsewhere) {
        return cmn_http_reply_error(req, 404, "not_found",
                                    "metrics are served on [server] "
                                    "metrics_listen");
    }
    return sso_http_metrics(req, appv);
}

int
sso_http_page(struct cmn_http_req *req, unsigned status, const char *title,
              const char *detail)
{
    struct sso_out o = {.req = req, .d = NULL};

    return sso_out_page(&o, status, title, detail);
}
