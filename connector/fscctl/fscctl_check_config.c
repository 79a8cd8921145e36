/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fscctl_check_config.c - `fscctl check-config [--for DAEMON] FILE`:
 * validates either daemon's configuration with that daemon's own loader,
 * so the verdict and the messages are those of `fsc-sso --check-config`
 * or `fsc-connector --check-config` (file, line and key; missing key
 * files named), and so is the exit status (0 ok, 1 refused).
 *
 * Which daemon a file is for is told by its sections: fsc-sso's has
 * [ids], fsc-connector's has [finesse] (both required there). --for says
 * it outright, for a file too broken to tell. Nothing is contacted:
 * neither Redis nor IdS nor Finesse. */
#include <stdio.h>
#include <string.h>

#include "cmn_config.h"
#include "cmn_log.h"
#include "cmn_xml.h"
#include "cti_config_check.h"
#include "fscctl.h"
#include "sso_app.h"

enum daemon { DAEMON_UNKNOWN, DAEMON_SSO, DAEMON_CONNECTOR };

static int
usage(void)
{
    fprintf(stderr, "usage: fscctl check-config [--for fsc-sso|fsc-connector] "
                    "FILE\n");
    return 2;
}

/* By the sections; DAEMON_UNKNOWN with a message when it cannot tell. */
static enum daemon
detect(const char *path)
{
    struct cmn_err err = {{0}};
    struct cmn_config *ini = cmn_config_load(path, &err);
    enum daemon d = DAEMON_UNKNOWN;

    if (ini == NULL) {
        fprintf(stderr,
                "fscctl: %s\nfscctl: say which daemon it is for with --for "
                "fsc-sso or --for fsc-connector to see its own verdict\n",
                err.msg);
        return DAEMON_UNKNOWN;
    }
    bool sso = cmn_config_has_section(ini, "ids");
    bool conn = cmn_config_has_section(ini, "finesse");
    if (sso && !conn) {
        d = DAEMON_SSO;
    } else if (conn && !sso) {
        d = DAEMON_CONNECTOR;
    } else {
        fprintf(stderr,
                "fscctl: %s: cannot tell which daemon this file is for: it "
                "has %s (fsc-sso's has [ids], fsc-connector's [finesse]); "
                "say --for fsc-sso or --for fsc-connector\n",
                path, sso ? "both [ids] and [finesse]" : "neither section");
    }
    cmn_config_free(ini);
    return d;
}

/* What fsc-sso --check-config does (sso-server/main.c): build the whole
 * configuration generation (config, Redis client, token keys) without
 * starting anything. */
static int
check_sso(const char *path)
{
    struct cmn_err err = {{0}};
    struct sso_gen *g;

    cmn_log_init("fsc-sso", CMN_LOG_INFO);
    g = sso_gen_new(path, &err);
    if (g == NULL) {
        fprintf(stderr, "fsc-sso: %s\n", err.msg);
        return 1;
    }
    sso_gen_release(g);
    printf("fsc-sso: %s: configuration ok\n", path);
    return 0;
}

/* What fsc-connector --check-config does (connector/main.c). */
static int
check_connector(const char *path)
{
    struct cmn_err err = {{0}};
    struct cti_config *cfg;

    cmn_log_init("fsc-connector", CMN_LOG_INFO);
    cmn_xml_init();
    cfg = cti_config_load(path, &err);
    if (cfg == NULL || cti_config_check_all(cfg, &err) != CMN_OK) {
        fprintf(stderr, "fsc-connector: %s\n", err.msg);
        cti_config_free(cfg);
        return 1;
    }
    cti_config_free(cfg);
    printf("fsc-connector: %s: configuration ok\n", path);
    return 0;
}

int
fscctl_check_config(int argc, char **argv)
{
    enum daemon d = DAEMON_UNKNOWN;
    const char *path = NULL;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--for") == 0 && i + 1 < argc) {
            i++;
            if (strcmp(argv[i], "fsc-sso") == 0) {
                d = DAEMON_SSO;
            } else if (strcmp(argv[i], "fsc-connector") == 0) {
                d = DAEMON_CONNECTOR;
            } else {
                return usage();
            }
        } else if (argv[i][0] != '-' && path == NULL) {
            path = argv[i];
        } else {
            return usage();
        }
    }
    if (path == NULL) {
        return usage();
    }
    if (d == DAEMON_UNKNOWN) {
        d = detect(path);
        if (d == DAEMON_UNKNOWN) {
            return 2;
        }
    }
    return d == DAEMON_SSO ? check_sso(path) : check_connector(path);
}
