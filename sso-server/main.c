/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* main.c - fsc-sso: the IdS token broker daemon.
 *
 *   fsc-sso --config FILE [--check-config]
 *
 * Signals are taken synchronously by the main thread (sigwait): SIGHUP
 * reloads the configuration atomically, SIGTERM/SIGINT stop accepting and
 * drain in-flight requests before exiting. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_httpc.h"
#include "cmn_log.h"
#include "cmn_notify.h"
#include "sso_app.h"
#include "sso_http.h"

#define DRAIN_MS 10000

static void
usage(void)
{
    fprintf(stderr, "usage: fsc-sso --config FILE [--check-config]\n");
}

static int
serve(struct sso_app *app, const sigset_t *signals)
{
    struct sso_gen *g = sso_app_acquire(app);
    struct cmn_httpd_opts opts = {
        .listen = g->cfg->listen,
        .max_body = (size_t)g->cfg->max_body,
        .tls_cert_pem = g->cfg->tls_cert,
        .tls_key_pem = g->cfg->tls_key,
        .metrics_prefix = "fsc_sso",
        .threads = (unsigned)g->cfg->threads,
    };
    struct cmn_err err = {{0}};
    struct cmn_httpd *d, *m = NULL;
    int sig;

    app->metrics_elsewhere = g->cfg->metrics_listen != NULL;
    d = cmn_httpd_start(&opts, sso_http_routes, sso_http_nroutes, app, &err);
    if (d != NULL && g->cfg->metrics_listen != NULL) {
        /* /metrics on its own address, away from the load balancer */
        struct cmn_httpd_opts mo = {.listen = g->cfg->metrics_listen};
        m = cmn_httpd_start(&mo, sso_http_metrics_routes,
                            sso_http_metrics_nroutes, app, &err);
        if (m == NULL) {
            cmn_httpd_stop(d, 0);
            d = NULL;
        }
    }
    if (d == NULL) {
        cmn_log_err("event=start_failed detail=\"%s\"", err.msg);
        sso_gen_release(g);
        return 1;
    }
    cmn_log_notice("event=started listen=%s port=%d instance=%s metrics=%s",
                   g->cfg->listen, cmn_httpd_port(d), g->cfg->instance,
                   g->cfg->metrics_listen != NULL ? g->cfg->metrics_listen
                                                  : "listen");
    char status[160];
    snprintf(status, sizeof(status), "serving on %s (port %d)", g->cfg->listen,
             cmn_httpd_port(d));
    cmn_notify_ready(status);
    if (cmn_notify_watchdog_start(0) != CMN_OK) {
        cmn_log_warn("event=watchdog_unavailable");
    }
    sso_gen_release(g);

    for (;;) {
        if (sigwait(signals, &sig) != 0) {
            continue;
        }
        if (sig == SIGHUP) {
            if (sso_app_reload(app, &err) == CMN_OK) {
                cmn_log_notice("event=reloaded config=%s", app->config_path);
            } else {
                cmn_log_err("event=reload_refused detail=\"%s\"", err.msg);
            }
            continue;
        }
        cmn_log_notice("event=stopping signal=%d inflight=%u", sig,
                       cmn_httpd_inflight(d));
        cmn_notify_stopping("draining");
        cmn_notify_watchdog_stop();
        cmn_httpd_stop(d, DRAIN_MS);
        cmn_httpd_stop(m, 0);
        cmn_log_notice("event=stopped");
        return 0;
    }
}

int
main(int argc, char **argv)
{
    const char *config = NULL;
    bool check_only = false;
    struct sso_app app;
    struct cmn_err err = {{0}};
    sigset_t signals;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strcmp(argv[i], "--check-config") == 0) {
            check_only = true;
        } else {
            usage();
            return 2;
        }
    }
    if (config == NULL) {
        usage();
        return 2;
    }
    cmn_log_init("fsc-sso", CMN_LOG_INFO);

    /* block before any thread exists so that every thread inherits it */
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (cmn_httpc_global_init() != CMN_OK) {
        fprintf(stderr, "fsc-sso: libcurl initialisation failed\n");
        return 1;
    }
    if (sso_app_init(&app, config, &err) != CMN_OK) {
        fprintf(stderr, "fsc-sso: %s\n", err.msg);
        return 1;
    }
    if (check_only) {
        printf("fsc-sso: %s: configuration ok\n", config);
        sso_app_cleanup(&app);
        return 0;
    }
    cmn_log_set_level(app.gen->cfg->log_level);
    /* not for --check-config: that only reads the file */
    sso_keys_start(app.gen->keys);
    rc = serve(&app, &signals);
    sso_app_cleanup(&app);
    return rc;
}
