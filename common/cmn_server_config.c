/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_server_config.c - [server] log level and TLS pair, shared by
 * fsc-sso and fsc-connector. */
#include "cmn_server_config.h"

int
cmn_config_log_level(const struct cmn_config *cfg, const char *section,
                     enum cmn_log_level *out, struct cmn_err *err)
{
    const char *level;

    if (cmn_config_str(cfg, section, "log_level", false, "info", &level, err) !=
        CMN_OK) {
        return CMN_INVALID;
    }
    if (cmn_log_parse_level(level, out) != CMN_OK) {
        cmn_config_errf(cfg, section, "log_level", err,
                        "expected err, warn, notice, info or debug");
        return CMN_INVALID;
    }
    return CMN_OK;
}

int
cmn_config_tls(const struct cmn_config *cfg, const char *section,
               struct cmn_secret **cert, struct cmn_secret **key,
               struct cmn_err *err)
{
    /* the certificate is public (admins keep them 0644); its key is not */
    if (cmn_config_public_file(cfg, section, "tls_cert", false, 1 << 20, cert,
                               err) != CMN_OK ||
        cmn_config_secret(cfg, section, "tls_key", false, 1 << 20, false, key,
                          err) != CMN_OK) {
        return CMN_INVALID;
    }
    if ((*cert == NULL) != (*key == NULL)) {
        cmn_config_errf(cfg, section, "tls_cert_file", err,
                        "tls_cert_file and tls_key_file go together");
        return CMN_INVALID;
    }
    return CMN_OK;
}
