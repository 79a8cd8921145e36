/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_config.c - libFuzzer target for cmn_config_parse and the typed
 * getters (keys taken from the sample config so seeds reach them). */
#include <stdint.h>
#include <stdlib.h>

#include "cmn_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const keys[][2] = {
    {"server", "listen"},
    {"server", "max_body"},
    {"server", "log_level"},
    {"redis", "url"},
    {"redis", "sentinels"},
    {"redis", "wait_replicas"},
    {"ids", "client_id"},
    {"ids", "client_secret"},
    {"session", "refresh_at"},
    {"login", "allowed_return_to"},
    {"a", "b"},
};

static const char *const known[] = {
    "server.listen",
    "server.public_url",
    "server.instance",
    "redis.*",
    "ids.client_secret_file",
    "session.seal_key_file",
    "login.*",
    NULL,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cmn_err err;
    struct cmn_config *cfg;
    /* Results are counted only so warn_unused_result is honoured. */
    volatile int rc = 0;

    cfg = cmn_config_parse("fuzz.ini", (const char *)data, size, &err);
    if (cfg == NULL) {
        return 0;
    }
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *s = NULL;
        long l = 0;
        bool b = false;
        char **vec = NULL;
        size_t n = 0;

        (void)cmn_config_get(cfg, keys[i][0], keys[i][1]);
        (void)cmn_config_has_section(cfg, keys[i][0]);
        if (cmn_config_str(cfg, keys[i][0], keys[i][1], true, NULL, &s, &err) !=
            CMN_OK) {
            continue;
        }
        if (cmn_config_long(cfg, keys[i][0], keys[i][1], 0, -1000, 1000, &l,
                            &err) != CMN_OK) {
            cmn_config_errf(cfg, keys[i][0], keys[i][1], &err, "bad %s", s);
        }
        if (cmn_config_bool(cfg, keys[i][0], keys[i][1], false, &b, &err) ==
                CMN_OK &&
            b) {
            rc++;
        }
        if (cmn_config_list(cfg, keys[i][0], keys[i][1], false, &vec, &n,
                            &err) == CMN_OK) {
            for (size_t j = 0; j < n; j++) {
                /* Touch every item so ASan sees out-of-block pointers. */
                (void)vec[j][0];
            }
            free(vec);
        }
    }
    if (cmn_config_check_known(cfg, known, &err) != CMN_OK) {
        rc++;
    }
    cmn_config_free(cfg);
    return 0;
}
