/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_config.c - reads and validates the fsc-sso INI file. Every check
 * that can fail names the file, line and key (cmn_config_errf). */
#include <stdlib.h>
#include <string.h>

#include "cmn_server_config.h"
#include "sso_claims.h"
#include "sso_config.h"
#include "sso_saml_config.h"
#include "sso_url.h"

/* clang-format off */
static const char *const known_keys[] = {
    "server.listen", "server.public_url", "server.instance",
    "server.tls_cert_file", "server.tls_key_file", "server.max_body",
    "server.threads", "server.jobs",
    "server.log_level", "server.trusted_proxies", "server.metrics_listen",
    "redis.url", "redis.sentinels", "redis.master", "redis.prefix",
    "redis.password_file", "redis.connect_timeout_ms",
    "redis.command_timeout_ms", "redis.pool_size", "redis.wait_replicas",
    "redis.wait_timeout_ms", "redis.failover_wait_ms",
    "ids.authorize_url", "ids.token_url", "ids.revoke_url", "ids.client_id",
    "ids.client_secret_file", "ids.ca_file", "ids.redirect_uri", "ids.scope",
    "ids.timeout_ms", "ids.user_claim", "ids.verify", "ids.public_key_url",
    "ids.jwt_public_key_file", "ids.jwt_issuer", "ids.jwt_audience",
    "session.seal_key_file", "session.refresh_at", "session.lock_ttl_ms",
    "session.max_lifetime_s", "session.state_ttl_s",
    "service.key_file",
    "login.allowed_return_to", "login.starts_per_minute",
    NULL,
};
/* clang-format on */
extern const char *const sso_saml_known_keys[];

/* known_keys + [saml]'s (sso_saml_config.c), for cmn_config_check_known */
static int
check_known(const struct cmn_config *ini, struct cmn_err *err)
{
    const char *all[CMN_ARRAY_LEN(known_keys) + 16];
    size_t n = 0;

    for (size_t i = 0; known_keys[i] != NULL; i++) {
        all[n++] = known_keys[i];
    }
    for (size_t i = 0; sso_saml_known_keys[i] != NULL; i++) {
        all[n++] = sso_saml_known_keys[i];
    }
    all[n] = NULL;
    return cmn_config_check_known(ini, all, err);
}

static int
check_http_url(const struct cmn_config *ini, const char *section,
               const char *key, const char *value, struct cmn_err *err)
{
    char *origin = NULL, *path = NULL;
    int rc = sso_url_split(value, &origin, &path);

    free(origin);
    free(path);
    if (rc != CMN_OK) {
        cmn_config_errf(ini, section, key, err,
                        "expected an absolute http(s) URL");
        return CMN_INVALID;
    }
    return CMN_OK;
}

/* https, or http on a loopback host (tests, a local demo): what browsers
 * treat as a secure context, where they keep Secure cookies. */
static bool
https_or_loopback(const char *url)
{
    char *origin = NULL, *path = NULL;
    bool ok = false;

    if (sso_url_split(url, &origin, &path) == CMN_OK) {
        ok = strncmp(origin, "https://", 8) == 0 ||
             strncmp(origin, "http://127.", 11) == 0 ||
             strncmp(origin, "http://localhost", 16) == 0 ||
             strncmp(origin, "http://[::1]", 12) == 0;
    }
    free(origin);
    free(path);
    return ok;
}

static int
load_server(struct sso_config *c, struct cmn_err *err)
{
    if (cmn_config_str(c->ini, "server", "listen", true, NULL, &c->listen,
                       err) != CMN_OK ||
        cmn_config_str(c->ini, "server", "public_url", true, NULL,
                       &c->public_url, err) != CMN_OK ||
        cmn_config_str(c->ini, "server", "instance", false, "sso", &c->instance,
                       err) != CMN_OK ||
        cmn_config_long(c->ini, "server", "max_body", 65536, 1024,
                        16 * 1024 * 1024, &c->max_body, err) != CMN_OK ||
        cmn_config_long(c->ini, "server", "threads", 4, 0, 64, &c->threads,
                        err) != CMN_OK ||
        cmn_config_long(c->ini, "server", "jobs", 16, 1, 256, &c->jobs, err) !=
            CMN_OK) {
        return CMN_INVALID;
    }
    if (check_http_url(c->ini, "server", "public_url", c->public_url, err) !=
        CMN_OK) {
        return CMN_INVALID;
    }
    if (c->public_url[strlen(c->public_url) - 1] == '/') {
        cmn_config_errf(c->ini, "server", "public_url", err,
                        "must not end with '/'");
        return CMN_INVALID;
    }
    if (!https_or_loopback(c->public_url)) {
        cmn_config_errf(c->ini, "server", "public_url", err,
                        "must be https:// (sign-ins are bound to the browser "
                        "with __Host- cookies, which browsers keep only over "
                        "HTTPS; http is accepted for loopback only)");
        return CMN_INVALID;
    }
    if (cmn_config_netlist(c->ini, "server", "trusted_proxies",
                           &c->trusted_proxies, err) != CMN_OK ||
        cmn_config_str(c->ini, "server", "metrics_listen", false, NULL,
                       &c->metrics_listen, err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (c->metrics_listen != NULL &&
        strcmp(c->metrics_listen, c->listen) == 0) {
        cmn_config_errf(c->ini, "server", "metrics_listen", err,
                        "must differ from listen (it is a second socket)");
        return CMN_INVALID;
    }
    if (cmn_config_log_level(c->ini, "server", &c->log_level, err) != CMN_OK ||
        cmn_config_tls(c->ini, "server", &c->tls_cert, &c->tls_key, err) !=
            CMN_OK) {
        return CMN_INVALID;
    }
    return CMN_OK;
}

/* A claim name: what JSON keys IdS uses, nothing that needs escaping. */
static bool
claim_name_ok(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && n <= 64 &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     "0123456789_-.:") == n;
}

/* IdS 12.6(2)+ serves its token-signing key beside the OAuth endpoints:
 * https://<ids>:8553/ids/v1/keys/token/public (Finesse developer guide,
 * "Client-side token validation"). */
static char *
default_public_key_url(const char *token_url)
{
    static const char path[] = "/ids/v1/keys/token/public";
    char *origin = NULL, *rest = NULL, *url = NULL;

    if (sso_url_split(token_url, &origin, &rest) == CMN_OK) {
        size_t n = strlen(origin) + sizeof(path);
        url = malloc(n);
        if (url != NULL) {
            snprintf(url, n, "%s%s", origin, path);
        }
    }
    free(origin);
    free(rest);
    return url;
}

/* [ids] verify, public_key_url, jwt_*: how tokens are checked. */
static int
load_verification(struct sso_config *c, struct cmn_err *err)
{
    const char *verify, *url;

    if (cmn_config_str(c->ini, "ids", "verify", false, "auto", &verify, err) !=
            CMN_OK ||
        cmn_config_str(c->ini, "ids", "public_key_url", false, NULL, &url,
                       err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (strcmp(verify, "auto") == 0) {
        c->verify = SSO_VERIFY_AUTO;
    } else if (strcmp(verify, "required") == 0) {
        c->verify = SSO_VERIFY_REQUIRED;
    } else if (strcmp(verify, "off") == 0) {
        c->verify = SSO_VERIFY_OFF;
    } else {
        cmn_config_errf(c->ini, "ids", "verify", err,
                        "expected auto, required or off");
        return CMN_INVALID;
    }
    if (!claim_name_ok(c->user_claim)) {
        cmn_config_errf(c->ini, "ids", "user_claim", err,
                        "expected a claim name (letters, digits, _ - . :)");
        return CMN_INVALID;
    }
    if (c->jwt_public_key_file != NULL && c->verify == SSO_VERIFY_OFF) {
        cmn_config_errf(c->ini, "ids", "verify", err,
                        "off contradicts jwt_public_key_file (remove one)");
        return CMN_INVALID;
    }
    if (url != NULL &&
        check_http_url(c->ini, "ids", "public_key_url", url, err) != CMN_OK) {
        return CMN_INVALID;
    }
    c->public_key_url =
        url != NULL ? strdup(url) : default_public_key_url(c->token_url);
    if (c->public_key_url == NULL) {
        cmn_err_set(err, "out of memory");
        return CMN_NOMEM;
    }
    return CMN_OK;
}

static int
load_ids(struct sso_config *c, struct cmn_err *err)
{
    const char *redirect;

    if (cmn_config_str(c->ini, "ids", "authorize_url", true, NULL,
                       &c->authorize_url, err) != CMN_OK ||
        cmn_config_str(c->ini, "ids", "token_url", true, NULL, &c->token_url,
                       err) != CMN_OK ||
        cmn_config_str(c->ini, "ids", "revoke_url", false, NULL, &c->revoke_url,
                       err) != CMN_OK ||
        cmn_config_str(c->ini, "ids", "client_id", true, NULL, &c->client_id,
                       err) != CMN_OK ||
        cmn_config_str(c->ini, "ids", "ca_file", false, NULL, &c->ca_file,
                       err) != CMN_OK ||
        cmn_config_str(c->ini, "ids", "redirect_uri", false, NULL, &redirect,
                       err) != CMN_OK ||
        cmn_config_str(c->ini, "ids", "scope", false, NULL, &c->scope, err) !=
            CMN_OK ||
        cmn_config_long(c->ini, "ids", "timeout_ms", 5000, 100, 120000,
                        &c->ids_timeout_ms, err) != CMN_OK ||
        cmn_config_str(c->ini, "ids", "user_claim", false,
                       SSO_CLAIMS_DEFAULT_USER, &c->user_claim,
                       err) != CMN_OK ||
        cmn_config_str(c->ini, "ids", "jwt_public_key_file", false, NULL,
                       &c->jwt_public_key_file, err) != CMN_OK ||
        cmn_config_str(c->ini, "ids", "jwt_issuer", false, NULL, &c->jwt_issuer,
                       err) != CMN_OK ||
        cmn_config_str(c->ini, "ids", "jwt_audience", false, NULL,
                       &c->jwt_audience, err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (check_http_url(c->ini, "ids", "authorize_url", c->authorize_url, err) !=
            CMN_OK ||
        check_http_url(c->ini, "ids", "token_url", c->token_url, err) !=
            CMN_OK ||
        (c->revoke_url != NULL &&
         check_http_url(c->ini, "ids", "revoke_url", c->revoke_url, err) !=
             CMN_OK)) {
        return CMN_INVALID;
    }
    if (cmn_config_secret(c->ini, "ids", "client_secret", true, 4096, true,
                          &c->client_secret, err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (redirect != NULL) {
        c->redirect_uri = strdup(redirect);
    } else {
        size_t n = strlen(c->public_url) + sizeof("/sso/callback");
        c->redirect_uri = malloc(n);
        if (c->redirect_uri != NULL) {
            snprintf(c->redirect_uri, n, "%s/sso/callback", c->public_url);
        }
    }
    if (c->redirect_uri == NULL) {
        cmn_err_set(err, "out of memory");
        return CMN_NOMEM;
    }
    return load_verification(c, err);
}

/* [ids] is what fsc-sso is for, except on a SAML-only deployment: with a
 * [saml] section and no [ids], sign-ins end at the ACS with a handoff. */
static int
load_ids_if_configured(struct sso_config *c, struct cmn_err *err)
{
    if (!cmn_config_has_section(c->ini, "ids") &&
        cmn_config_has_section(c->ini, "saml")) {
        c->ids_enabled = false;
        c->verify = SSO_VERIFY_OFF;
        c->user_claim = SSO_CLAIMS_DEFAULT_USER;
        c->ids_timeout_ms = 5000;
        return CMN_OK;
    }
    c->ids_enabled = true;
    return load_ids(c, err);
}

static int
hex_decode(const char *hex, unsigned char out[CMN_SEAL_KEY_LEN])
{
    for (size_t i = 0; i < CMN_SEAL_KEY_LEN; i++) {
        unsigned v = 0;
        for (int j = 0; j < 2; j++) {
            char ch = hex[2 * i + (size_t)j];
            v <<= 4;
            if (ch >= '0' && ch <= '9') {
                v |= (unsigned)(ch - '0');
            } else if (ch >= 'a' && ch <= 'f') {
                v |= (unsigned)(ch - 'a' + 10);
            } else if (ch >= 'A' && ch <= 'F') {
                v |= (unsigned)(ch - 'A' + 10);
            } else {
                return CMN_INVALID;
            }
        }
        out[i] = (unsigned char)v;
    }
    return CMN_OK;
}

static int
load_session(struct sso_config *c, struct cmn_err *err)
{
    const char *refresh_at;
    char *end;

    if (cmn_config_str(c->ini, "session", "refresh_at", false, "0.75",
                       &refresh_at, err) != CMN_OK ||
        cmn_config_long(c->ini, "session", "lock_ttl_ms", 10000, 500, 120000,
                        &c->lock_ttl_ms, err) != CMN_OK ||
        cmn_config_long(c->ini, "session", "max_lifetime_s", 43200, 60,
                        30L * 86400, &c->max_lifetime_s, err) != CMN_OK ||
        cmn_config_long(c->ini, "session", "state_ttl_s", 600, 30, 3600,
                        &c->state_ttl_s, err) != CMN_OK) {
        return CMN_INVALID;
    }
    c->refresh_at = strtod(refresh_at, &end);
    if (*end != '\0' || !(c->refresh_at > 0.0 && c->refresh_at < 1.0)) {
        cmn_config_errf(c->ini, "session", "refresh_at", err,
                        "expected a fraction between 0 and 1, e.g. 0.75");
        return CMN_INVALID;
    }
    if (c->lock_ttl_ms <= c->ids_timeout_ms) {
        cmn_config_errf(c->ini, "session", "lock_ttl_ms", err,
                        "must exceed [ids] timeout_ms (%ld) so a refresh "
                        "cannot outlive its lock",
                        c->ids_timeout_ms);
        return CMN_INVALID;
    }
    /* read through cmn_config_secret (permissions, relative paths), then
     * accept the key raw (32 bytes) or as 64 hex characters */
    struct cmn_secret *key = NULL;
    unsigned char raw[CMN_SEAL_KEY_LEN];
    if (cmn_config_secret(c->ini, "session", "seal_key", true, 128, false, &key,
                          err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (key->len == CMN_SEAL_KEY_LEN) {
        c->seal = cmn_seal_new(key->data, key->len, err);
    } else if (key->len >= 2 * CMN_SEAL_KEY_LEN &&
               key->len <= 2 * CMN_SEAL_KEY_LEN + 2 &&
               strspn((const char *)key->data + 2 * CMN_SEAL_KEY_LEN, "\r\n") ==
                   key->len - 2 * CMN_SEAL_KEY_LEN &&
               hex_decode((const char *)key->data, raw) == CMN_OK) {
        c->seal = cmn_seal_new(raw, sizeof(raw), err);
        cmn_wipe(raw, sizeof(raw));
    } else {
        cmn_err_set(err, "expected 32 raw bytes or 64 hex characters");
    }
    cmn_secret_free(key);
    if (c->seal == NULL) {
        struct cmn_err why = *err;
        cmn_config_errf(c->ini, "session", "seal_key_file", err, "%s", why.msg);
        return CMN_INVALID;
    }
    return CMN_OK;
}

static int
load_login(struct sso_config *c, struct cmn_err *err)
{
    char **list = NULL;
    size_t n = 0;

    if (cmn_config_list(c->ini, "login", "allowed_return_to", true, &list, &n,
                        err) != CMN_OK ||
        cmn_config_long(c->ini, "login", "starts_per_minute", 30, 0, 100000,
                        &c->starts_per_minute, err) != CMN_OK) {
        free(list);
        return CMN_INVALID;
    }
    c->allowed = calloc(n, sizeof(*c->allowed));
    if (c->allowed == NULL) {
        free(list);
        cmn_err_set(err, "out of memory");
        return CMN_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (sso_url_split(list[i], &c->allowed[i].origin,
                          &c->allowed[i].path) != CMN_OK) {
            cmn_config_errf(c->ini, "login", "allowed_return_to", err,
                            "'%s' is not an absolute http(s) URL", list[i]);
            c->nallowed = i;
            free(list);
            return CMN_INVALID;
        }
    }
    c->nallowed = n;
    free(list);
    return CMN_OK;
}

struct sso_config *
sso_config_load(const char *path, struct cmn_err *err)
{
    struct sso_config *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    c->ini = cmn_config_load(path, err);
    if (c->ini == NULL || check_known(c->ini, err) != CMN_OK ||
        load_server(c, err) != CMN_OK ||
        cmn_redis_opts_from_config(c->ini, "redis", &c->redis,
                                   &c->redis_storage, err) != CMN_OK ||
        cmn_config_long(c->ini, "redis", "failover_wait_ms", 3000, 0, 30000,
                        &c->failover_wait_ms, err) != CMN_OK ||
        load_ids_if_configured(c, err) != CMN_OK ||
        load_session(c, err) != CMN_OK ||
        cmn_config_secret(c->ini, "service", "key", true, 4096, true,
                          &c->service_key, err) != CMN_OK ||
        load_login(c, err) != CMN_OK ||
        sso_saml_config_load(c, err) != CMN_OK) {
        sso_config_free(c);
        return NULL;
    }
    if (c->service_key->len < 16) {
        cmn_config_errf(c->ini, "service", "key_file", err,
                        "the service key must be at least 16 bytes");
        sso_config_free(c);
        return NULL;
    }
    return c;
}

void
sso_config_free(struct sso_config *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < c->nallowed; i++) {
        free(c->allowed[i].origin);
        free(c->allowed[i].path);
    }
    free(c->allowed);
    sso_saml_config_free(c->saml);
    cmn_secret_free(c->service_key);
    cmn_seal_free(c->seal);
    cmn_secret_free(c->client_secret);
    free(c->redirect_uri);
    free(c->public_key_url);
    free(c->redis_storage);
    cmn_secret_free(c->tls_cert);
    cmn_secret_free(c->tls_key);
    cmn_netlist_cleanup(&c->trusted_proxies);
    cmn_config_free(c->ini);
    free(c);
}
