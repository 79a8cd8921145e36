/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* main.c - fsc-connector: holds each agent's Finesse session and serves
 * the softphone's API.
 *
 *   fsc-connector --config FILE [--check-config]
 *   fsc-connector --xmpp-worker ...     (internal: started by itself)
 *
 * The main thread waits for signals; a timer thread ticks the engine
 * once a second (tab heartbeats, XMPP reconnects, node checks). */
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cmn_httpc.h"
#include "cmn_log.h"
#include "cmn_notify.h"
#include "cmn_xml.h"
#include "cti_api.h"
#include "cti_config_check.h"
#include "fin_xmpp.h"

#define DRAIN_MS 5000
/* The engine ticks once a second; one that has not finished a tick for
 * this long is wedged: the systemd watchdog pings stop and systemd
 * restarts the connector (the agents resume from Redis). */
#define ENGINE_STALL_MS 60000

static atomic_bool stopping;

static void *
ticker(void *arg)
{
    struct cti_engine *e = arg;

    while (!atomic_load(&stopping)) {
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
        if (!atomic_load(&stopping)) {
            cti_engine_tick(e);
            cmn_notify_alive(); /* the watchdog pings while ticks run */
        }
    }
    return NULL;
}

static void
usage(void)
{
    fprintf(stderr, "usage: fsc-connector --config FILE [--check-config]\n");
}

int
main(int argc, char **argv)
{
    const char *config = NULL;
    bool check_only = false;
    struct cmn_err err = {{0}};
    char self[PATH_MAX];
    sigset_t signals;
    int sig;

    if (argc >= 2 && strcmp(argv[1], "--xmpp-worker") == 0) {
        return fin_xmpp_worker_main(argc, argv);
    }
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
    cmn_log_init("fsc-connector", CMN_LOG_INFO);
    cmn_xml_init();
    struct cti_config *cfg = cti_config_load(config, &err);
    if (cfg == NULL) {
        fprintf(stderr, "fsc-connector: %s\n", err.msg);
        return 1;
    }
    if (check_only && cti_config_check_all(cfg, &err) != CMN_OK) {
        fprintf(stderr, "fsc-connector: %s\n", err.msg);
        cti_config_free(cfg);
        return 1;
    }
    if (check_only) {
        printf("fsc-connector: %s: configuration ok\n", config);
        cti_config_free(cfg);
        return 0;
    }
    cmn_log_set_level(cfg->log_level);

    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (cmn_httpc_global_init() != CMN_OK) {
        fprintf(stderr, "fsc-connector: libcurl initialisation failed\n");
        return 1;
    }
    /* thousands of tabs, each an SSE connection: use the hard limit (the
     * XMPP sockets live in the workers, which set their own) */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) {
        fprintf(stderr, "fsc-connector: cannot find its own executable\n");
        return 1;
    }
    self[n] = '\0';

    struct cti_app app = {.cfg = cfg};
    app.engine = cti_engine_new(cfg, self, &err);
    if (app.engine == NULL) {
        cmn_log_err("event=start_failed detail=\"%s\"", err.msg);
        cti_config_free(cfg);
        return 1;
    }
    if (cti_api_init(&app) != CMN_OK) {
        cmn_log_err("event=start_failed detail=\"out of memory\"");
        cti_engine_free(app.engine);
        cti_config_free(cfg);
        return 1;
    }
    struct cmn_httpd_opts opts = {
        .listen = cfg->listen,
        .max_body = (size_t)cfg->max_body,
        .connection_limit = 10000,
        .connection_timeout_s = 60,
        .threads = (unsigned)cfg->threads,
        .tls_cert_pem = cfg->tls_cert,
        .tls_key_pem = cfg->tls_key,
        .metrics_prefix = "fsc_connector",
    };
    struct cmn_httpd *d =
        cmn_httpd_start(&opts, cti_api_routes, cti_api_nroutes, &app, &err);
    struct cmn_httpd *m = NULL;
    if (d != NULL && cfg->metrics_listen != NULL) {
        /* /metrics on its own address, away from agents' browsers */
        struct cmn_httpd_opts mo = {.listen = cfg->metrics_listen};
        m = cmn_httpd_start(&mo, cti_api_metrics_routes,
                            cti_api_metrics_nroutes, &app, &err);
        if (m == NULL) {
            cmn_httpd_stop(d, 0);
            d = NULL;
        }
    }
    if (d == NULL) {
        cmn_log_err("event=start_failed detail=\"%s\"", err.msg);
        cti_api_cleanup(&app);
        cti_engine_free(app.engine);
        cti_config_free(cfg);
        return 1;
    }
    pthread_t tick;
    pthread_create(&tick, NULL, ticker, app.engine);
    cmn_log_notice("event=started listen=%s port=%d nodes=%zu sso=%d",
                   cfg->listen, cmn_httpd_port(d), cfg->nnodes,
                   cfg->sso_url != NULL);
    char status[160];
    snprintf(status, sizeof(status), "serving on %s (port %d)", cfg->listen,
             cmn_httpd_port(d));
    cmn_notify_ready(status);
    if (cmn_notify_watchdog_start(ENGINE_STALL_MS) != CMN_OK) {
        cmn_log_warn("event=watchdog_unavailable");
    }
    /* agents this host drove before a restart: back before Finesse's
     * presence grace runs out */
    cti_engine_resume_all(app.engine);
    for (;;) {
        if (sigwait(&signals, &sig) != 0 || sig == SIGHUP) {
            continue; /* reload: not yet, the running config stays */
        }
        break;
    }
    cmn_log_notice("event=stopping signal=%d", sig);
    cmn_notify_stopping("draining");
    cmn_notify_watchdog_stop();
    atomic_store(&stopping, true);
    pthread_join(tick, NULL);
    cmn_httpd_stop(d, DRAIN_MS);
    cmn_httpd_stop(m, 0);
    cti_api_cleanup(&app);
    cti_engine_free(app.engine);
    cti_config_free(cfg);
    cmn_log_notice("event=stopped");
    return 0;
}
