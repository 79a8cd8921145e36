/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_config_check.c - the sections the engine loads at start, loaded
 * once for --check-config (and fscctl check-config) and thrown away. */
#include <string.h>

#include "cti_config_check.h"
#include "sf_config.h"

int
cti_config_check_all(const struct cti_config *cfg, struct cmn_err *err)
{
    struct sf_config sf;
    int rc;

    memset(&sf, 0, sizeof(sf));
    rc = sf_config_load(cfg->ini, &sf, err);
    sf_config_cleanup(&sf);
    return rc == CMN_OK ? CMN_OK : CMN_INVALID;
}
