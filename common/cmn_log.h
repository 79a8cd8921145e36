/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_log.h - one line per event, key=value fields, on stderr.
 *
 * Line shape:  ts=2026-11-26T03:00:00.123Z level=info proc=fsc-sso
 *              fn=sso_login event=... (caller's fields) req=...
 * Callers write their fields as "key=value" pairs in fmt. Values that come
 * from the network must go through %s only: the logger escapes control
 * characters, so a value can never forge a second line. Secrets are never
 * passed in; use cmn_log_fingerprint() for session ids and codes. */
#ifndef CMN_LOG_H
#define CMN_LOG_H

#include <stdio.h>

#include "cmn.h"

enum cmn_log_level {
    CMN_LOG_ERR = 0,
    CMN_LOG_WARN,
    CMN_LOG_NOTICE,
    CMN_LOG_INFO,
    CMN_LOG_DEBUG,
};

/* Process name for the proc= field; the string is copied. */
void cmn_log_init(const char *proc, enum cmn_log_level level);
void cmn_log_set_level(enum cmn_log_level level);
bool cmn_log_enabled(enum cmn_log_level level);
/* "err", "warn", "notice", "info", "debug" -> level; CMN_INVALID if unknown */
int cmn_log_parse_level(const char *s, enum cmn_log_level *out);

/* Thread-local request id added to every line as req=... while set
 * (the HTTP server sets it around each handler). NULL clears it. */
void cmn_log_set_request_id(const char *id);

void cmn_log_write(enum cmn_log_level level, const char *fn, const char *fmt,
                   ...) CMN_PRINTF(3, 4);

/* Redirect output (tests); NULL restores stderr. Not thread-safe. */
void cmn_log_set_stream(FILE *fp);

/* First 12 hex digits of SHA-256(secret): lets logs correlate a session or
 * code without revealing it. out must hold 13 bytes. */
void cmn_log_fingerprint(const char *secret, char out[13]);

#define cmn_log_(lvl, ...)                             \
    do {                                               \
        if (cmn_log_enabled(lvl))                      \
            cmn_log_write(lvl, __func__, __VA_ARGS__); \
    } while (0)
#define cmn_log_err(...)    cmn_log_(CMN_LOG_ERR, __VA_ARGS__)
#define cmn_log_warn(...)   cmn_log_(CMN_LOG_WARN, __VA_ARGS__)
#define cmn_log_notice(...) cmn_log_(CMN_LOG_NOTICE, __VA_ARGS__)
#define cmn_log_info(...)   cmn_log_(CMN_LOG_INFO, __VA_ARGS__)
#define cmn_log_debug(...)  cmn_log_(CMN_LOG_DEBUG, __VA_ARGS__)

#endif
