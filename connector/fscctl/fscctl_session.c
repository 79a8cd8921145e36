/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fscctl_session.c - `fscctl session revoke USER`: ends every fsc-sso
 * session of a user (a leaver, a stolen laptop) through fsc-sso's service
 * API, DELETE /v1/sessions?user=USER: each session is deleted and its
 * refresh token revoked at Cisco IdS. The agent's connector session ends
 * at its next token fetch (session_ended on the softphone).
 *
 *   fscctl [--config FILE | --url URL --key-file FILE] [--ca-file FILE]
 *          session revoke USER
 *
 * --config takes either daemon's INI: fsc-sso's (this instance, at
 * http(s)://<[server] listen>, key [service] key_file) or
 * fsc-connector's (its fsc-sso, [sso] url and service_key_file). USER is
 * the user as fsc-sso knows it (the "user" of a handoff answer, e.g.
 * agent1001@example.com). Sessions of opaque tokens (IdS before 12.6(2))
 * carry no user and are not found this way. Exit status: 0 done (also
 * when the user had no session), 1 refused, 2 usage or configuration,
 * 3 fsc-sso cannot be reached. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_config.h"
#include "cmn_httpc.h"
#include "fscctl.h"

#define USER_MAX 255

static int
usage(void)
{
    fprintf(stderr, "usage: fscctl [--config FILE | --url URL --key-file FILE] "
                    "[--ca-file FILE] session revoke USER\n");
    return 2;
}

/* fsc-sso's INI: this instance; fsc-connector's: its fsc-sso. */
static int
target_from_config(struct fscctl_target *t, struct cmn_secret **key,
                   const char *path)
{
    struct cmn_err err = {{0}};
    struct cmn_config *ini = cmn_config_load(path, &err);
    const char *listen = NULL, *url = NULL, *cert = NULL;
    static char from[FSCCTL_URL_MAX + 64];
    int rc = 2;

    if (ini == NULL) {
        fprintf(stderr, "fscctl: %s\n", err.msg);
        return 2;
    }
    if (cmn_config_has_section(ini, "ids")) {
        if (cmn_config_str(ini, "server", "listen", true, NULL, &listen,
                           &err) != CMN_OK ||
            cmn_config_str(ini, "server", "tls_cert_file", false, NULL, &cert,
                           &err) != CMN_OK ||
            cmn_config_secret(ini, "service", "key", true, 4096, true, key,
                              &err) != CMN_OK) {
            fprintf(stderr, "fscctl: %s\n", err.msg);
            goto out;
        }
        snprintf(t->base, sizeof(t->base), "%s://%s",
                 cert != NULL ? "https" : "http", listen);
        snprintf(from, sizeof(from), "[server] listen of %s", path);
    } else if (cmn_config_has_section(ini, "sso")) {
        if (cmn_config_str(ini, "sso", "url", true, NULL, &url, &err) !=
                CMN_OK ||
            cmn_config_secret(ini, "sso", "service_key", true, 4096, true, key,
                              &err) != CMN_OK) {
            fprintf(stderr, "fscctl: %s\n", err.msg);
            goto out;
        }
        snprintf(t->base, sizeof(t->base), "%s", url);
        snprintf(from, sizeof(from), "[sso] url of %s", path);
    } else {
        fprintf(stderr,
                "fscctl: %s is neither fsc-sso's configuration ([ids]) nor "
                "that of a connector that uses SSO ([sso])\n",
                path);
        goto out;
    }
    t->address_from = from;
    rc = 0;
out:
    cmn_config_free(ini);
    return rc;
}

/* RFC 3986 unreserved characters stay, everything else is %XX. */
static void
query_escape(const char *in, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (const unsigned char *c = (const unsigned char *)in;
         *c != '\0' && o + 4 < size; c++) {
        if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
            (*c >= '0' && *c <= '9') || strchr("-._~", *c) != NULL) {
            out[o++] = (char)*c;
        } else {
            out[o++] = '%';
            out[o++] = hex[*c >> 4];
            out[o++] = hex[*c & 15];
        }
    }
    out[o] = '\0';
}

static int
revoke(const struct fscctl_target *t, const char *user)
{
    char path[3 * USER_MAX + 64], escaped[3 * USER_MAX + 4];
    long status = 0;
    json_t *j = NULL;
    int rc;

    query_escape(user, escaped, sizeof(escaped));
    snprintf(path, sizeof(path), "/v1/sessions?user=%s", escaped);
    rc = fscctl_http_json(t, "DELETE", path, NULL, &status, &j);
    if (rc != 0) {
        return rc;
    }
    if (status != 200) {
        fprintf(stderr, "fscctl: fsc-sso refused: HTTP %ld %s: %s\n", status,
                json_string_value(json_object_get(j, "error")) != NULL
                    ? json_string_value(json_object_get(j, "error"))
                    : "-",
                json_string_value(json_object_get(j, "detail")) != NULL
                    ? json_string_value(json_object_get(j, "detail"))
                    : "-");
        json_decref(j);
        return 1;
    }
    long long n = (long long)json_integer_value(json_object_get(j, "revoked"));
    if (n == 0) {
        printf("no session of %s to revoke\n", user);
    } else {
        printf("revoked %lld session%s of %s (refresh tokens revoked at "
               "IdS)\n",
               n, n == 1 ? "" : "s", user);
    }
    json_decref(j);
    return 0;
}

int
fscctl_session(int argc, char **argv)
{
    struct fscctl_target t = {.daemon = "fsc-sso", .address_from = "--url"};
    const char *config = NULL, *url = NULL, *key_file = NULL;
    const char *words[3] = {NULL, NULL, NULL};
    struct cmn_secret *key = NULL;
    struct cmn_err err = {{0}};
    size_t nwords = 0;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) == 0) {
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
                t.ca_file = argv[++i];
            } else {
                return usage();
            }
        } else if (nwords < 3) {
            words[nwords++] = argv[i];
        } else {
            return usage();
        }
    }
    if (nwords != 3 || strcmp(words[0], "session") != 0 ||
        strcmp(words[1], "revoke") != 0 || words[2][0] == '\0' ||
        strlen(words[2]) > USER_MAX || (config == NULL) == (url == NULL) ||
        (url != NULL && key_file == NULL)) {
        return usage();
    }
    if (config != NULL) {
        if (target_from_config(&t, &key, config) != 0) {
            return 2;
        }
    } else {
        snprintf(t.base, sizeof(t.base), "%s", url);
        key = cmn_secret_read_file(key_file, 4096, true, &err);
        if (key == NULL) {
            fprintf(stderr, "fscctl: %s\n", err.msg);
            return 2;
        }
    }
    size_t blen = strlen(t.base);
    if (blen > 0 && t.base[blen - 1] == '/') {
        t.base[blen - 1] = '\0';
    }
    t.key = key;
    if (cmn_httpc_global_init() != CMN_OK) {
        cmn_secret_free(key);
        return 1;
    }
    rc = revoke(&t, words[2]);
    cmn_secret_free(key);
    return rc;
}
