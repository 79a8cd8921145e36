/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_app.h - the running daemon's state shared by every request: the
 * current configuration generation (swapped atomically on SIGHUP) and the
 * metrics. */
#ifndef SSO_APP_H
#define SSO_APP_H

#include <pthread.h>
#include <stdatomic.h>

#include "cmn_jobs.h"
#include "cmn_metrics.h"
#include "cmn_rate.h"
#include "cmn_redis.h"
#include "saml.h"
#include "sso_config.h"
#include "sso_keys.h"
#include "sso_store.h"

/* Everything built from one configuration file. A request takes a
 * reference for its whole duration, so a reload never pulls the Redis
 * pool or the seal key from under it. */
struct sso_gen {
    atomic_int refs;
    struct sso_config *cfg;
    struct cmn_redis *redis;
    struct sso_keys *keys; /* IdS's token key and the token check */
    struct sso_store store;
};

/* How SAML Single Logouts end (fsc_sso_saml_logouts_total{initiator,
 * status}), registered by sso_http_slo.c. */
enum sso_slo_outcome {
    SSO_SLO_IDP_SUCCESS,    /* IdP's LogoutRequest: sessions ended */
    SSO_SLO_IDP_PARTIAL,    /* some ended, then the store failed */
    SSO_SLO_IDP_RESPONDER,  /* the store failed: nothing ended */
    SSO_SLO_SP_STARTED,     /* our LogoutRequest sent to the IdP */
    SSO_SLO_SP_SUCCESS,     /* the IdP's LogoutResponse: Success */
    SSO_SLO_SP_NOT_SUCCESS, /* the IdP's LogoutResponse: anything else */
    SSO_SLO_OUTCOMES
};

struct sso_metrics {
    struct cmn_metric *logins_ok;
    struct cmn_metric *logins_failed;
    struct cmn_metric *handoffs_ok;
    struct cmn_metric *handoffs_failed;
    struct cmn_metric *refresh_ok;
    struct cmn_metric *refresh_invalid_grant;
    struct cmn_metric *refresh_failed;
    struct cmn_metric *refresh_waited;
    struct cmn_metric *token_fetch_seconds;
    struct cmn_metric *redis_errors;
    struct cmn_metric *logouts;
    struct cmn_metric *saml_accepted;
    struct cmn_metric *saml_refused[SAML_R_COUNT]; /* by reason */
    struct cmn_metric *starts_limited; /* sign-in starts refused (429) */
    struct cmn_metric *saml_logout_refused[SAML_R_COUNT]; /* by reason */
    struct cmn_metric *saml_logouts[SSO_SLO_OUTCOMES];
};

struct sso_app {
    pthread_mutex_t lock;
    struct sso_gen *gen;
    const char *config_path;
    struct sso_metrics m;
    struct cmn_jobs *jobs;   /* blocking work (IdS, refresh, Redis waits);
                                sized at start ([server] jobs) */
    struct cmn_rate *starts; /* sign-in starts per client address ([login]
                                starts_per_minute); kept across reloads */
    bool metrics_elsewhere;  /* [server] metrics_listen at start: /metrics
                                only there, 404 on listen */
};

/* Build a generation from a config file; NULL with err. Fetches nothing:
 * sso_keys_start(gen->keys) does, once the daemon is really starting. */
struct sso_gen *sso_gen_new(const char *path, struct cmn_err *err);
struct sso_gen *sso_app_acquire(struct sso_app *app);
void sso_gen_release(struct sso_gen *gen);

int sso_app_init(struct sso_app *app, const char *path,
                 struct cmn_err *err) CMN_NODISCARD;
/* Parse the file again; swap only when the whole new generation is
 * valid (its IdS key fetched first, as at start). The old one is freed
 * when its last request ends. */
int sso_app_reload(struct sso_app *app, struct cmn_err *err) CMN_NODISCARD;
void sso_app_cleanup(struct sso_app *app);

#endif
