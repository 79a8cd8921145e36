/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_config.h - INI configuration (libinih) with typed getters.
 *
 * Every error names the file, the line and the key:
 *     /etc/fsc/sso.ini:12: [redis] url: expected redis://host:port/db
 * A key that is absent has line 0 and the message names the section and
 * key only. Unknown sections or keys are errors (cmn_config_check_known):
 * a typo must not silently fall back to a default. */
#ifndef CMN_CONFIG_H
#define CMN_CONFIG_H

#include "cmn.h"
#include "cmn_secret.h"

struct cmn_config;

/* Parse a file. NULL on failure (unreadable, syntax error, duplicate key,
 * over 1 MiB) with err filled. */
struct cmn_config *cmn_config_load(const char *path, struct cmn_err *err);

/* Parse text held in memory; name is used in messages (fuzzing, tests). */
struct cmn_config *cmn_config_parse(const char *name, const char *text,
                                    size_t len, struct cmn_err *err);

void cmn_config_free(struct cmn_config *cfg);

/* Name given at load (the path). */
const char *cmn_config_name(const struct cmn_config *cfg);

/* Raw value or NULL when absent. Borrowed: valid until cmn_config_free. */
const char *cmn_config_get(const struct cmn_config *cfg, const char *section,
                           const char *key);
bool cmn_config_has_section(const struct cmn_config *cfg, const char *section);

/* Typed getters. They return CMN_OK and set *out (to def when the key is
 * absent), or CMN_INVALID with err = "file:line: [section] key: why".
 * A required key that is absent: pass required=true. */
int cmn_config_str(const struct cmn_config *cfg, const char *section,
                   const char *key, bool required, const char *def,
                   const char **out, struct cmn_err *err) CMN_NODISCARD;
int cmn_config_long(const struct cmn_config *cfg, const char *section,
                    const char *key, long def, long min, long max, long *out,
                    struct cmn_err *err) CMN_NODISCARD;
int cmn_config_bool(const struct cmn_config *cfg, const char *section,
                    const char *key, bool def, bool *out,
                    struct cmn_err *err) CMN_NODISCARD;
/* Comma-separated list, items trimmed, empty items refused. *out is a
 * NULL-terminated array of borrowed strings, freed with free() (one block). */
int cmn_config_list(const struct cmn_config *cfg, const char *section,
                    const char *key, bool required, char ***out, size_t *n,
                    struct cmn_err *err) CMN_NODISCARD;

/* Secrets are only ever given as "<key>_file = path": reads that file with
 * cmn_secret_read_file(). An inline "<key> = value" is refused with a
 * message saying to use <key>_file. *out is NULL when absent and not
 * required. */
int cmn_config_secret(const struct cmn_config *cfg, const char *section,
                      const char *key, bool required, size_t max_len, bool trim,
                      struct cmn_secret **out,
                      struct cmn_err *err) CMN_NODISCARD;

/* A public file given as "<key>_file = path" (a TLS certificate): read
 * with cmn_public_read_file() (any mode but group/other-writable;
 * symbolic links followed). Same messages and rules otherwise. */
int cmn_config_public_file(const struct cmn_config *cfg, const char *section,
                           const char *key, bool required, size_t max_len,
                           struct cmn_secret **out,
                           struct cmn_err *err) CMN_NODISCARD;

/* Refuse any section or key not in known, given as "section.key" strings
 * (NULL-terminated). "section.*" accepts every key of a section. */
int cmn_config_check_known(const struct cmn_config *cfg,
                           const char *const *known,
                           struct cmn_err *err) CMN_NODISCARD;

/* Message for a value that was read fine but fails a check done by the
 * caller: "file:line: [section] key: <fmt>". */
void cmn_config_errf(const struct cmn_config *cfg, const char *section,
                     const char *key, struct cmn_err *err, const char *fmt, ...)
    CMN_PRINTF(5, 6);

#endif
