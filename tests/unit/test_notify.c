/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_notify.c - cmn_notify against a socket standing in for systemd:
 * READY/STOPPING messages, no-ops outside systemd, and the watchdog that
 * pings only while the daemon's periodic work runs. */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "cmn_log.h"
#include "cmn_notify.h"

static int sock = -1;
static char sock_path[108];

static int
setup(void **state)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    (void)state;
    cmn_log_init("fsc-test", CMN_LOG_ERR);
    snprintf(sock_path, sizeof(sock_path), "/tmp/fsc-test-notify-%d.sock",
             (int)getpid());
    unlink(sock_path);
    memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
    sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0 || bind(sock, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        return -1;
    }
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    close(sock);
    unlink(sock_path);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    return 0;
}

/* The next datagram within timeout_ms into buf; false when none came. */
static bool
next_message(char *buf, size_t size, int timeout_ms)
{
    struct pollfd p = {.fd = sock, .events = POLLIN};
    ssize_t n;

    if (poll(&p, 1, timeout_ms) != 1) {
        return false;
    }
    n = recv(sock, buf, size - 1, 0);
    assert_true(n >= 0);
    buf[n] = '\0';
    return true;
}

static void
test_notify_outside_systemd_does_nothing(void **state)
{
    char buf[512];

    (void)state;
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    cmn_notify_ready("serving");
    cmn_notify_stopping("draining");
    assert_int_equal(cmn_notify_watchdog_start(0), CMN_OK);
    cmn_notify_watchdog_stop();
    assert_false(next_message(buf, sizeof(buf), 100));
}

static void
test_notify_ready_and_stopping_messages(void **state)
{
    char buf[512], pid[64];

    (void)state;
    setenv("NOTIFY_SOCKET", sock_path, 1);
    snprintf(pid, sizeof(pid), "MAINPID=%d", (int)getpid());
    cmn_notify_ready("serving on 127.0.0.1:0 (port 8444)");
    assert_true(next_message(buf, sizeof(buf), 2000));
    assert_non_null(strstr(buf, "READY=1\n"));
    assert_non_null(strstr(buf, "STATUS=serving on 127.0.0.1:0 (port 8444)"));
    assert_non_null(strstr(buf, pid));
    cmn_notify_stopping("draining");
    assert_true(next_message(buf, sizeof(buf), 2000));
    assert_non_null(strstr(buf, "STOPPING=1\n"));
    assert_null(strstr(buf, "READY=1"));
}

/* Count WATCHDOG=1 datagrams until none came for quiet_ms (true), or
 * until timeout_ms passed with pings still coming (false). */
static bool
pings_stop_within(int quiet_ms, int timeout_ms, int *pings)
{
    char buf[512];
    int waited = 0;

    *pings = 0;
    while (waited < timeout_ms) {
        if (!next_message(buf, sizeof(buf), quiet_ms)) {
            return true;
        }
        assert_string_equal(buf, "WATCHDOG=1");
        (*pings)++;
        waited += 50; /* at most one ping per half interval (100 ms) */
    }
    return false;
}

static void
test_notify_watchdog_pings_only_while_alive(void **state)
{
    char buf[512];
    int pings = 0;

    (void)state;
    setenv("NOTIFY_SOCKET", sock_path, 1);
    setenv("WATCHDOG_USEC", "200000", 1); /* a ping every 100 ms */
    cmn_notify_alive();
    assert_int_equal(cmn_notify_watchdog_start(400), CMN_OK);
    /* the daemon's work runs: pings come */
    for (int i = 0; i < 4; i++) {
        cmn_notify_alive();
        assert_true(next_message(buf, sizeof(buf), 2000));
        assert_string_equal(buf, "WATCHDOG=1");
    }
    /* the work stalls: after stall_ms the pings stop (systemd would now
     * restart the daemon) */
    assert_true(pings_stop_within(600, 10000, &pings));
    /* it runs again: pings resume */
    cmn_notify_alive();
    assert_true(next_message(buf, sizeof(buf), 2000));
    assert_string_equal(buf, "WATCHDOG=1");
    cmn_notify_watchdog_stop();
    /* stopped: nothing more (a ping already on its way may land) */
    (void)next_message(buf, sizeof(buf), 50);
    assert_false(next_message(buf, sizeof(buf), 400));
}

static void
test_notify_watchdog_without_marks_always_pings(void **state)
{
    char buf[512];

    (void)state;
    setenv("NOTIFY_SOCKET", sock_path, 1);
    setenv("WATCHDOG_USEC", "200000", 1);
    assert_int_equal(cmn_notify_watchdog_start(0), CMN_OK);
    for (int i = 0; i < 8; i++) { /* 800 ms: past any stall limit */
        assert_true(next_message(buf, sizeof(buf), 2000));
        assert_string_equal(buf, "WATCHDOG=1");
    }
    cmn_notify_watchdog_stop();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_notify_outside_systemd_does_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_ready_and_stopping_messages,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_notify_watchdog_pings_only_while_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_notify_watchdog_without_marks_always_pings, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
