/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_app.c - configuration generations and metrics registration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_log.h"
#include "sso_app.h"
#include "sso_saml.h"

struct sso_gen *
sso_gen_new(const char *path, struct cmn_err *err)
{
    struct sso_gen *g = calloc(1, sizeof(*g));

    if (g == NULL) {
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    atomic_init(&g->refs, 1);
    g->cfg = sso_config_load(path, err);
    if (g->cfg == NULL) {
        goto fail;
    }
    g->redis = cmn_redis_new(&g->cfg->redis, err);
    if (g->redis == NULL) {
        goto fail;
    }
    g->store.redis = g->redis;
    g->store.cfg = g->cfg;
    g->keys = sso_keys_new(g->cfg, &g->store, err);
    if (g->keys == NULL) {
        goto fail;
    }
    return g;
fail:
    sso_gen_release(g);
    return NULL;
}

void
sso_gen_release(struct sso_gen *g)
{
    if (g == NULL || atomic_fetch_sub(&g->refs, 1) != 1) {
        return;
    }
    sso_keys_free(g->keys);
    cmn_redis_free(g->redis);
    sso_config_free(g->cfg);
    free(g);
}

struct sso_gen *
sso_app_acquire(struct sso_app *app)
{
    struct sso_gen *g;

    pthread_mutex_lock(&app->lock);
    g = app->gen;
    atomic_fetch_add(&g->refs, 1);
    pthread_mutex_unlock(&app->lock);
    return g;
}

static void
metrics_init(struct sso_metrics *m)
{
    m->logins_ok = cmn_metric_counter("fsc_sso_logins_total{result=\"ok\"}",
                                      "Sign-ins completed (callbacks)");
    m->logins_failed =
        cmn_metric_counter("fsc_sso_logins_total{result=\"failed\"}",
                           "Sign-ins completed (callbacks)");
    m->handoffs_ok =
        cmn_metric_counter("fsc_sso_handoffs_total{result=\"ok\"}",
                           "Handoff codes redeemed by the connector");
    m->handoffs_failed =
        cmn_metric_counter("fsc_sso_handoffs_total{result=\"refused\"}",
                           "Handoff codes redeemed by the connector");
    m->refresh_ok =
        cmn_metric_counter("fsc_sso_refreshes_total{result=\"ok\"}",
                           "Refresh-token grants sent to IdS by outcome");
    m->refresh_invalid_grant =
        cmn_metric_counter("fsc_sso_refreshes_total{result=\"invalid_grant\"}",
                           "Refresh-token grants sent to IdS by outcome");
    m->refresh_failed = cmn_metric_counter(
        "fsc_sso_refresh_failures_total",
        "Refreshes that failed for a transient reason (IdS down, timeout)");
    m->refresh_waited = cmn_metric_counter(
        "fsc_sso_refresh_waits_total",
        "Token fetches that waited for another instance's refresh");
    m->token_fetch_seconds = cmn_metric_histogram(
        "fsc_sso_token_fetch_seconds",
        "Latency of GET /v1/sessions/{id}/token, including refreshes",
        cmn_metric_latency_buckets, cmn_metric_latency_buckets_n);
    m->redis_errors = cmn_metric_gauge("fsc_sso_redis_errors",
                                       "Redis command failures since start");
    m->logouts =
        cmn_metric_counter("fsc_sso_logouts_total", "Sessions ended by DELETE");
    m->saml_accepted = cmn_metric_counter("fsc_sso_saml_accepted_total",
                                          "SAML Responses accepted at the ACS");
    /* every reason is registered, so a dashboard sees zeros, not gaps */
    for (int r = SAML_OK + 1; r < SAML_R_COUNT; r++) {
        char name[128];
        snprintf(name, sizeof(name),
                 "fsc_sso_saml_refused_total{reason=\"%s\"}",
                 saml_reason_str((enum saml_reason)r));
        m->saml_refused[r] = cmn_metric_counter(
            name, "SAML sign-ins refused, by the reason in the log");
    }
    m->starts_limited = cmn_metric_counter(
        "fsc_sso_login_starts_limited_total",
        "Sign-in starts refused (429): too many from one client address");
    sso_slo_metrics_init(m);
}

/* Addresses tracked at once by the start limiter (~80 bytes each). */
#define STARTS_SLOTS 65536

int
sso_app_init(struct sso_app *app, const char *path, struct cmn_err *err)
{
    pthread_mutex_init(&app->lock, NULL);
    app->config_path = path;
    app->gen = sso_gen_new(path, err);
    if (app->gen == NULL) {
        return CMN_INVALID;
    }
    metrics_init(&app->m);
    app->jobs = cmn_jobs_new((int)app->gen->cfg->jobs, 100000);
    if (app->jobs == NULL) {
        cmn_err_set(err, "cannot start the job threads");
        return CMN_ERR;
    }
    app->starts = cmn_rate_new(app->gen->cfg->starts_per_minute,
                               app->gen->cfg->starts_per_minute, STARTS_SLOTS);
    if (app->starts == NULL) {
        cmn_err_set(err, "out of memory (sign-in start limiter)");
        return CMN_NOMEM;
    }
    return CMN_OK;
}

int
sso_app_reload(struct sso_app *app, struct cmn_err *err)
{
    struct sso_gen *fresh = sso_gen_new(app->config_path, err);
    struct sso_gen *old;

    if (fresh == NULL) {
        return CMN_INVALID;
    }
    sso_keys_start(fresh->keys);
    pthread_mutex_lock(&app->lock);
    old = app->gen;
    app->gen = fresh;
    pthread_mutex_unlock(&app->lock);
    if (old->cfg->listen != NULL &&
        strcmp(old->cfg->listen, fresh->cfg->listen) != 0) {
        cmn_log_warn("event=reload_partial detail=\"[server] listen changes "
                     "need a restart\"");
    }
    if (old->cfg->metrics_listen != fresh->cfg->metrics_listen &&
        (old->cfg->metrics_listen == NULL ||
         fresh->cfg->metrics_listen == NULL ||
         strcmp(old->cfg->metrics_listen, fresh->cfg->metrics_listen) != 0)) {
        cmn_log_warn("event=reload_partial detail=\"[server] metrics_listen "
                     "changes need a restart\"");
    }
    cmn_rate_set(app->starts, fresh->cfg->starts_per_minute,
                 fresh->cfg->starts_per_minute);
    cmn_log_set_level(fresh->cfg->log_level);
    sso_gen_release(old);
    return CMN_OK;
}

void
sso_app_cleanup(struct sso_app *app)
{
    cmn_jobs_free(app->jobs); /* runs what is queued; before the config */
    app->jobs = NULL;
    sso_gen_release(app->gen);
    app->gen = NULL;
    cmn_rate_free(app->starts);
    app->starts = NULL;
    pthread_mutex_destroy(&app->lock);
}
