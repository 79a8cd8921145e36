/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_notify.c - sd_notify READY/STOPPING and the watchdog thread
 * (see cmn_notify.h). libsystemd does the socket protocol: abstract and
 * path sockets, credentials, and it is what systemd itself tests. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "cmn_log.h"
#include "cmn_notify.h"

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool running;
    bool stop;
    long long stall_ms;    /* 0: ping unconditionally */
    long long interval_ms; /* WatchdogSec */
} wd = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static atomic_llong last_alive_ms;

static void
send_state(const char *state, const char *status)
{
    int rc = sd_notifyf(0, "%s\nSTATUS=%s\nMAINPID=%lu", state,
                        status != NULL ? status : "", (unsigned long)getpid());

    if (rc < 0) {
        /* systemd may refuse the start on a timeout: say why */
        cmn_log_warn("event=sd_notify_failed state=%s errno=%d", state, -rc);
    }
}

void
cmn_notify_ready(const char *status)
{
    send_state("READY=1", status);
}

void
cmn_notify_stopping(const char *status)
{
    send_state("STOPPING=1", status);
}

void
cmn_notify_alive(void)
{
    atomic_store(&last_alive_ms, cmn_now_ms());
}

static void *
watchdog_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&wd.lock);
    while (!wd.stop) {
        long long half = wd.interval_ms / 2;
        struct timespec until;

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += half / 1000;
        until.tv_nsec += (half % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&wd.wake, &wd.lock, &until);
        if (wd.stop) {
            break;
        }
        long long quiet = cmn_now_ms() - atomic_load(&last_alive_ms);
        if (wd.stall_ms == 0 || quiet < wd.stall_ms) {
            (void)sd_notify(0, "WATCHDOG=1");
        } else {
            cmn_log_err("event=watchdog_withheld detail=\"periodic work has "
                        "not run for %lld ms; systemd will restart us\"",
                        quiet);
        }
    }
    pthread_mutex_unlock(&wd.lock);
    return NULL;
}

int
cmn_notify_watchdog_start(long long stall_ms)
{
    uint64_t usec = 0;

    if (sd_watchdog_enabled(0, &usec) <= 0 || usec < 2000) {
        return CMN_OK;
    }
    pthread_mutex_lock(&wd.lock);
    if (wd.running) {
        pthread_mutex_unlock(&wd.lock);
        return CMN_OK;
    }
    wd.interval_ms = (long long)(usec / 1000);
    wd.stall_ms = stall_ms;
    wd.stop = false;
    cmn_notify_alive();
    if (pthread_create(&wd.thread, NULL, watchdog_thread, NULL) != 0) {
        pthread_mutex_unlock(&wd.lock);
        return CMN_ERR;
    }
    wd.running = true;
    pthread_mutex_unlock(&wd.lock);
    cmn_log_info("event=watchdog_on interval_ms=%lld", wd.interval_ms);
    return CMN_OK;
}

void
cmn_notify_watchdog_stop(void)
{
    pthread_mutex_lock(&wd.lock);
    if (!wd.running) {
        pthread_mutex_unlock(&wd.lock);
        return;
    }
    wd.stop = true;
    pthread_cond_signal(&wd.wake);
    pthread_mutex_unlock(&wd.lock);
    pthread_join(wd.thread, NULL);
    pthread_mutex_lock(&wd.lock);
    wd.running = false;
    pthread_mutex_unlock(&wd.lock);
}
