/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_notify.h - tells systemd how a daemon is doing (Type=notify), with
 * libsystemd's sd_notify: READY=1 once it serves, STOPPING=1 when it
 * starts to drain, WATCHDOG=1 pings while it is alive (WatchdogSec=).
 *
 * Outside systemd (no NOTIFY_SOCKET in the environment) every call does
 * nothing, so the daemons need no flag for it. Messages never carry
 * secrets: STATUS= is visible to anyone with `systemctl status`. */
#ifndef CMN_NOTIFY_H
#define CMN_NOTIFY_H

#include "cmn.h"

/* READY=1 with STATUS=<status> and MAINPID. Call once the listening
 * socket accepts connections: `systemctl start` returns then. */
void cmn_notify_ready(const char *status);

/* STOPPING=1 with STATUS=<status>: the daemon has begun to shut down. */
void cmn_notify_stopping(const char *status);

/* When systemd asked for a watchdog (WATCHDOG_USEC, WatchdogSec= in the
 * unit), start a thread that sends WATCHDOG=1 every half interval.
 * With stall_ms > 0, a ping goes out only if cmn_notify_alive() was called
 * within the last stall_ms, so a daemon whose periodic work has stalled
 * that long (a deadlock) stops pinging and systemd restarts it; with 0 the
 * pings only prove that the process is scheduled. CMN_OK also when no
 * watchdog was asked for; CMN_ERR if the thread cannot start. */
int cmn_notify_watchdog_start(long long stall_ms) CMN_NODISCARD;

/* The daemon's periodic work ran; cheap, any thread. */
void cmn_notify_alive(void);

/* Stop the watchdog thread (before exit); safe when none runs. */
void cmn_notify_watchdog_stop(void);

#endif
