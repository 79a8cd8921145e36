/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn.h - return codes and small attributes shared by every common module. */
#ifndef CMN_H
#define CMN_H

#include <stdbool.h>
#include <stddef.h>

/* Functions that can fail return CMN_OK (0) or a negative enum cmn_rc. */
enum cmn_rc {
    CMN_OK = 0,
    CMN_ERR = -1,      /* generic failure, see the error text */
    CMN_NOMEM = -2,    /* allocation failed */
    CMN_INVALID = -3,  /* input rejected: malformed, too large, wrong state */
    CMN_TIMEOUT = -4,  /* peer did not answer in time */
    CMN_NOTFOUND = -5, /* key, session or record does not exist */
    CMN_AGAIN = -6,    /* transient: retry later (lock held, peer 5xx) */
    CMN_DENIED = -7,   /* authentication or authorisation refused */
    CMN_IO = -8,       /* connection to a peer failed */
};

#define CMN_NODISCARD    __attribute__((warn_unused_result))
#define CMN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define CMN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Error text buffer passed down so that the caller can log or reply with a
 * precise reason. Functions fill it only when they fail. */
#define CMN_ERRLEN 256
struct cmn_err {
    char msg[CMN_ERRLEN];
};

void cmn_err_set(struct cmn_err *err, const char *fmt, ...) CMN_PRINTF(2, 3);

/* Short name of a return code, for logs ("timeout", "io", ...). */
const char *cmn_rc_str(int rc);

/* Monotonic and wall clocks in milliseconds / seconds. */
long long cmn_now_ms(void);   /* CLOCK_MONOTONIC */
long long cmn_wall_ms(void);  /* CLOCK_REALTIME */
long long cmn_wall_sec(void); /* unix seconds */

#endif
