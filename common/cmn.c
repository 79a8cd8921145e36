/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn.c - error text, return-code names and clocks. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "cmn.h"

void
cmn_err_set(struct cmn_err *err, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

const char *
cmn_rc_str(int rc)
{
    switch (rc) {
    case CMN_OK:
        return "ok";
    case CMN_NOMEM:
        return "nomem";
    case CMN_INVALID:
        return "invalid";
    case CMN_TIMEOUT:
        return "timeout";
    case CMN_NOTFOUND:
        return "notfound";
    case CMN_AGAIN:
        return "again";
    case CMN_DENIED:
        return "denied";
    case CMN_IO:
        return "io";
    default:
        return "error";
    }
}

static long long
clock_ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long
cmn_now_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

long long
cmn_wall_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

long long
cmn_wall_sec(void)
{
    return (long long)time(NULL);
}
