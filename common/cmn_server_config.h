/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_server_config.h - the [server] settings both daemons read the same
 * way: the log level and the optional TLS certificate/key pair. */
#ifndef CMN_SERVER_CONFIG_H
#define CMN_SERVER_CONFIG_H

#include "cmn_config.h"
#include "cmn_log.h"
#include "cmn_secret.h"

/* <section> log_level (default "info"). */
int cmn_config_log_level(const struct cmn_config *cfg, const char *section,
                         enum cmn_log_level *out,
                         struct cmn_err *err) CMN_NODISCARD;

/* <section> tls_cert_file and tls_key_file: both or neither (PEM). The
 * certificate may be world-readable (not writable by others); the key is
 * a secret (0600, no symbolic link).
 * *cert and *key stay NULL when neither is set. */
int cmn_config_tls(const struct cmn_config *cfg, const char *section,
                   struct cmn_secret **cert, struct cmn_secret **key,
                   struct cmn_err *err) CMN_NODISCARD;

#endif
