/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_config_check.h - the whole of `fsc-connector --check-config`. */
#ifndef CTI_CONFIG_CHECK_H
#define CTI_CONFIG_CHECK_H

#include "cti_config.h"

/* What cti_config_load leaves to the start of the engine, checked now
 * ([salesforce]: its URLs, names and jwt_key_file), so that a config
 * --check-config accepts does not fail at start. Reads files, contacts
 * nothing. CMN_OK, or CMN_INVALID with err naming file, line and key. */
int cti_config_check_all(const struct cti_config *cfg,
                         struct cmn_err *err) CMN_NODISCARD;

#endif
