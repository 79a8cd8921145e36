/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fscctl.c - the admin CLI: asks a running fsc-connector, over its HTTP
 * API, what an operator needs on a shift.
 *
 *   fscctl [--config FILE | --url URL --key-file FILE] [--ca-file FILE]
 *          status | outbox | replay INDEX|all [--force]
 *   fscctl finesse-check --config FILE [--agent ID ...]
 *          (fscctl_finesse_check.c: can this host reach Finesse?)
 *   fscctl saml-verify --metadata FILE [--at TIME] RESPONSE
 *          (fscctl_saml_verify.c: every check of fsc-sso's SAML verifier)
 *   fscctl check-config [--for fsc-sso|fsc-connector] FILE
 *          (fscctl_check_config.c: either daemon's --check-config)
 *   fscctl [--config FILE | --url URL --key-file FILE] session revoke USER
 *          (fscctl_session.c: end a user's fsc-sso sessions)
 *
 * status  GET /readyz: agents, XMPP sessions online, active Finesse node
 * outbox  GET /admin/v1/outbox: call logs waiting for Salesforce, this
 *         host's counters, the dead letters (index, dialog, reason)
 * replay  POST /admin/v1/outbox/replay: put one dead letter (by the index
 *         `outbox` shows) or all of them back into the outbox; --force
 *         also those that are not authenticated (no or a wrong MAC: check
 *         their fields first)
 *
 * With --config, the connector's own INI gives the address ([server]
 * public_url, else http://<listen>) and the admin key ([server]
 * admin_key_file), so on a connector host `fscctl --config
 * /etc/fsc/fsc-connector.ini outbox` needs nothing else. The key is sent as
 * a Bearer token and never printed. Exit status: 0 done, 1 the connector
 * refused or failed, 2 usage or configuration error, 3 the connector
 * cannot be reached (fscctl_http.c says so, and where the address came
 * from). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cmn_config.h"
#include "cmn_httpc.h"
#include "cmn_secret.h"
#include "fscctl.h"

#define URL_MAX FSCCTL_URL_MAX

struct ctl {
    char base[URL_MAX];
    struct cmn_secret *key;
    const char *ca_file;
    char address_from[URL_MAX + 64];
};

static int
usage(void)
{
    fprintf(stderr,
            "usage: fscctl [--config FILE | --url URL --key-file FILE] "
            "[--ca-file FILE]\n"
            "              status | outbox | replay INDEX|all [--force]\n"
            "       fscctl finesse-check --config FILE [--agent ID "
            "(--password-file F | --token-file F | --handoff CODE)]\n"
            "       fscctl saml-verify --metadata FILE [--at TIME] "
            "[options] RESPONSE\n"
            "       fscctl check-config [--for fsc-sso|fsc-connector] FILE\n"
            "       fscctl [--config FILE | --url URL --key-file FILE] "
            "session revoke USER\n");
    return 2;
}

/* [server] public_url, else http://listen; the admin key file. */
static int
from_config(struct ctl *c, const char *path)
{
    struct cmn_err err = {{0}};
    struct cmn_config *ini = cmn_config_load(path, &err);
    const char *url = NULL, *listen = NULL;
    int rc = 2;

    if (ini == NULL ||
        cmn_config_str(ini, "server", "public_url", false, NULL, &url, &err) !=
            CMN_OK ||
        cmn_config_str(ini, "server", "listen", true, NULL, &listen, &err) !=
            CMN_OK ||
        cmn_config_secret(ini, "server", "admin_key", false, 4096, true,
                          &c->key, &err) != CMN_OK) {
        fprintf(stderr, "fscctl: %s\n", err.msg);
        goto out;
    }
    if (c->key == NULL) {
        fprintf(stderr,
                "fscctl: %s has no [server] admin_key_file: the "
                "admin endpoints are off\n",
                path);
        goto out;
    }
    if (url != NULL) {
        snprintf(c->base, sizeof(c->base), "%s", url);
    } else {
        snprintf(c->base, sizeof(c->base), "http://%s", listen);
    }
    snprintf(c->address_from, sizeof(c->address_from), "[server] %s of %s",
             url != NULL ? "public_url" : "listen", path);
    rc = 0;
out:
    cmn_config_free(ini);
    return rc;
}

/* One request; *out gets the JSON reply (any status). 0, or 1 or
 * FSCCTL_UNREACHABLE with a message when nothing usable came back. */
static int
call(const struct ctl *c, const char *method, const char *path,
     const char *body, long *status, json_t **out)
{
    struct fscctl_target t = {.daemon = "fsc-connector",
                              .key = c->key,
                              .ca_file = c->ca_file,
                              .address_from = c->address_from};

    snprintf(t.base, sizeof(t.base), "%s", c->base);
    return fscctl_http_json(&t, method, path, body, status, out);
}

static const char *
str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));

    return s != NULL ? s : "-";
}

static long long
num(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

/* The connector's error body {"error", "detail"}, as one line. */
static int
refused(long status, const json_t *j)
{
    fprintf(stderr, "fscctl: HTTP %ld %s: %s\n", status, str(j, "error"),
            str(j, "detail"));
    return 1;
}

static int
cmd_status(const struct ctl *c)
{
    long status = 0;
    json_t *j = NULL;

    int rc = call(c, "GET", "/readyz", NULL, &status, &j);

    if (rc != 0) {
        return rc;
    }
    printf("status       %s (HTTP %ld)\n", str(j, "status"), status);
    printf("agents       %lld\n", num(j, "agents"));
    printf("xmpp online  %lld\n", num(j, "xmpp_online"));
    printf("active node  %s\n", num(j, "active_node") == 0 ? "A" : "B");
    json_decref(j);
    return status == 200 ? 0 : 1;
}

static int
cmd_outbox(const struct ctl *c)
{
    long status = 0;
    json_t *j = NULL, *dead, *host;
    int rc = 0;

    rc = call(c, "GET", "/admin/v1/outbox", NULL, &status, &j);
    if (rc != 0) {
        return rc;
    }
    if (status != 200) {
        rc = refused(status, j);
        json_decref(j);
        return rc;
    }
    host = json_object_get(j, "this_host");
    dead = json_object_get(j, "dead");
    printf("waiting      %lld call logs not yet written to Salesforce\n",
           num(j, "pending"));
    printf("this host    written %lld, retries %lld, dead %lld, "
           "reclaimed %lld\n",
           num(host, "written"), num(host, "retries"), num(host, "dead"),
           num(host, "reclaimed"));
    printf("dead letters %zu\n", json_array_size(dead));
    for (size_t i = 0; i < json_array_size(dead); i++) {
        const json_t *d = json_array_get(dead, i);
        printf("  [%zu] dialog %s, %lld attempts: %s\n", i, str(d, "dialog_id"),
               num(d, "attempts"), str(d, "reason"));
    }
    json_decref(j);
    return 0;
}

static int
cmd_replay(const struct ctl *c, const char *what, bool force)
{
    char body[96];
    char *end = NULL;
    long status = 0;
    json_t *j = NULL;
    int rc = 0;

    if (strcmp(what, "all") == 0) {
        snprintf(body, sizeof(body), "{\"all\": true, \"force\": %s}",
                 force ? "true" : "false");
    } else {
        long index = strtol(what, &end, 10);
        if (end == what || *end != '\0' || index < 0) {
            return usage();
        }
        snprintf(body, sizeof(body), "{\"index\": %ld, \"force\": %s}", index,
                 force ? "true" : "false");
    }
    rc = call(c, "POST", "/admin/v1/outbox/replay", body, &status, &j);
    if (rc != 0) {
        return rc;
    }
    if (status != 200) {
        rc = refused(status, j);
    } else {
        printf("replayed %lld\n", num(j, "replayed"));
        if (num(j, "unauthenticated") > 0) {
            printf("left %lld unauthenticated dead letters (check them, then "
                   "replay with --force)\n",
                   num(j, "unauthenticated"));
        }
    }
    json_decref(j);
    return rc;
}

int
main(int argc, char **argv)
{
    struct ctl c;
    const char *config = NULL, *url = NULL, *key_file = NULL;
    struct cmn_err err = {{0}};
    int i, rc;

    memset(&c, 0, sizeof(c));
    if (argc >= 2 && strcmp(argv[1], "finesse-check") == 0) {
        return fscctl_finesse_check(argc - 1, argv + 1);
    }
    if (argc >= 2 && strcmp(argv[1], "saml-verify") == 0) {
        return fscctl_saml_verify(argc - 1, argv + 1);
    }
    if (argc >= 2 && strcmp(argv[1], "check-config") == 0) {
        return fscctl_check_config(argc - 1, argv + 1);
    }
    for (i = 1; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
    }
    if (i < argc && strcmp(argv[i], "session") == 0) {
        return fscctl_session(argc, argv);
    }
    for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (i + 1 >= argc) {
            return usage();
        }
        if (strcmp(argv[i], "--config") == 0) {
            config = argv[++i];
        } else if (strcmp(argv[i], "--url") == 0) {
            url = argv[++i];
        } else if (strcmp(argv[i], "--key-file") == 0) {
            key_file = argv[++i];
        } else if (strcmp(argv[i], "--ca-file") == 0) {
            c.ca_file = argv[++i];
        } else {
            return usage();
        }
    }
    if (i >= argc || (config == NULL && url == NULL) ||
        (config != NULL && url != NULL)) {
        return usage();
    }
    if (config != NULL) {
        if (from_config(&c, config) != 0) {
            return 2;
        }
    } else {
        snprintf(c.base, sizeof(c.base), "%s", url);
        snprintf(c.address_from, sizeof(c.address_from), "--url");
        if (key_file != NULL && (c.key = cmn_secret_read_file(
                                     key_file, 4096, true, &err)) == NULL) {
            fprintf(stderr, "fscctl: %s\n", err.msg);
            return 2;
        }
    }
    c.base[strcspn(c.base, "\n")] = '\0';
    if (c.base[0] != '\0' && c.base[strlen(c.base) - 1] == '/') {
        c.base[strlen(c.base) - 1] = '\0';
    }
    if (cmn_httpc_global_init() != CMN_OK) {
        return 1;
    }
    if (strcmp(argv[i], "status") == 0 && i + 1 == argc) {
        rc = cmd_status(&c);
    } else if (strcmp(argv[i], "outbox") == 0 && i + 1 == argc) {
        rc = cmd_outbox(&c);
    } else if (strcmp(argv[i], "replay") == 0 && i + 2 == argc) {
        rc = cmd_replay(&c, argv[i + 1], false);
    } else if (strcmp(argv[i], "replay") == 0 && i + 3 == argc &&
               strcmp(argv[i + 2], "--force") == 0) {
        rc = cmd_replay(&c, argv[i + 1], true);
    } else {
        rc = usage();
    }
    cmn_secret_free(c.key);
    return rc;
}
