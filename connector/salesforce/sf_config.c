/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sf_config.c - reads the [salesforce] and [redis] sections of the
 * fsc-connector INI file; every error names file, line and key. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_seal.h"
#include "sf_config.h"

#define SF_KEY_MAX (64 * 1024) /* a PEM RSA key is a few KiB */

static bool
host_is_loopback(const char *host, size_t n)
{
    return (n == 9 && strncmp(host, "127.0.0.1", n) == 0) ||
           (n == 9 && strncmp(host, "localhost", n) == 0) ||
           (n == 5 && strncmp(host, "[::1]", n) == 0);
}

bool
sf_url_allowed(const char *url)
{
    const char *host;
    size_t n;

    if (url == NULL) {
        return false;
    }
    for (const char *p = url; *p != '\0'; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
            return false;
        }
    }
    if (strncmp(url, "https://", 8) == 0) {
        return url[8] != '\0' && url[8] != '/';
    }
    if (strncmp(url, "http://", 7) != 0) {
        return false;
    }
    host = url + 7;
    if (*host == '[') {
        n = strcspn(host, "]");
        if (host[n] == ']') {
            n++;
        }
    } else {
        n = strcspn(host, ":/");
    }
    return host_is_loopback(host, n);
}

bool
sf_api_name_ok(const char *s)
{
    size_t n;

    if (s == NULL || !isalpha((unsigned char)s[0])) {
        return false;
    }
    n = strlen(s);
    if (n > SF_API_NAME_MAX || s[n - 1] == '_') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '_') {
            return false;
        }
    }
    return true;
}

/* "https://host[:port]" with nothing after: what a browser sends as
 * Origin and what frame-ancestors takes. */
static bool
origin_ok(const char *s)
{
    const char *host;

    if (!sf_url_allowed(s)) {
        return false;
    }
    host = strstr(s, "://") + 3;
    return strchr(host, '/') == NULL && strchr(host, '?') == NULL &&
           strchr(host, '#') == NULL && strchr(host, '@') == NULL &&
           strchr(host, '*') == NULL;
}

static int
load_pop(const struct cmn_config *ini, struct sf_config *c, struct cmn_err *err)
{
    const char *pop;
    const char *pop_on;

    if (cmn_config_str(ini, "salesforce", "pop", false, "ani", &pop, err) !=
            CMN_OK ||
        cmn_config_str(ini, "salesforce", "pop_on", false, "ring", &pop_on,
                       err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (strcmp(pop, "ani") == 0) {
        c->pop = SF_POP_ANI;
    } else if (strcmp(pop, "sosl") == 0) {
        c->pop = SF_POP_SOSL;
    } else if (strncmp(pop, "callvariable:", 13) == 0 && pop[13] != '\0' &&
               strlen(pop + 13) <= 64 &&
               strspn(pop + 13, "abcdefghijklmnopqrstuvwxyz"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") ==
                   strlen(pop + 13)) {
        c->pop = SF_POP_CALLVARIABLE;
        c->pop_callvariable = pop + 13;
    } else {
        cmn_config_errf(ini, "salesforce", "pop", err,
                        "expected ani, sosl or callvariable:<name>");
        return CMN_INVALID;
    }
    if (strcmp(pop_on, "ring") == 0) {
        c->pop_on = SF_POP_ON_RING;
    } else if (strcmp(pop_on, "answer") == 0) {
        c->pop_on = SF_POP_ON_ANSWER;
    } else {
        cmn_config_errf(ini, "salesforce", "pop_on", err,
                        "expected ring or answer");
        return CMN_INVALID;
    }
    return CMN_OK;
}

static int
load_names(const struct cmn_config *ini, struct sf_config *c,
           struct cmn_err *err)
{
    const char *v = NULL;

    if (cmn_config_str(ini, "salesforce", "task_external_id_field", false,
                       "Finesse_Call_Id__c", &c->task_external_id_field,
                       err) != CMN_OK ||
        cmn_config_str(ini, "salesforce", "agent_user_field", false,
                       "Finesse_Agent_Id__c", &c->agent_user_field,
                       err) != CMN_OK ||
        cmn_config_str(ini, "salesforce", "api_version", false, "60.0",
                       &c->api_version, err) != CMN_OK) {
        return CMN_INVALID;
    }
    /* These go into URL paths and SOQL verbatim: only API names. */
    if (!sf_api_name_ok(c->task_external_id_field)) {
        cmn_config_errf(ini, "salesforce", "task_external_id_field", err,
                        "'%s' is not a field API name",
                        c->task_external_id_field);
        return CMN_INVALID;
    }
    if (!sf_api_name_ok(c->agent_user_field)) {
        cmn_config_errf(ini, "salesforce", "agent_user_field", err,
                        "'%s' is not a field API name", c->agent_user_field);
        return CMN_INVALID;
    }
    v = c->api_version;
    {
        size_t a = strspn(v, "0123456789");
        if (a == 0 || a > 3 || v[a] != '.' || strspn(v + a + 1, "0") != 1 ||
            v[a + 2] != '\0' || strtol(v, NULL, 10) < 31) {
            cmn_config_errf(ini, "salesforce", "api_version", err,
                            "expected NN.0 (31.0 or later), e.g. 60.0");
            return CMN_INVALID;
        }
    }
    return CMN_OK;
}

/* [salesforce] outbox_key_file: what every connector host of the site
 * authenticates outbox entries with (sf_outbox.h). Its own key, not the
 * session key: it guards what the integration user writes to Salesforce,
 * not agents' credentials, is needed on every site with [salesforce]
 * (session_key_file is optional), and each can be rotated without
 * touching the other. */
static int
load_outbox_key(const struct cmn_config *ini, struct sf_config *c,
                struct cmn_err *err)
{
    struct cmn_secret *sec = NULL;
    int rc;

    if (cmn_config_get(ini, "salesforce", "outbox_key_file") == NULL &&
        cmn_config_get(ini, "salesforce", "outbox_key") == NULL) {
        cmn_config_errf(ini, "salesforce", "outbox_key_file", err,
                        "required: 32 random bytes, the same file on every "
                        "connector host (head -c 32 /dev/urandom > "
                        "outbox.key; chmod 600 outbox.key)");
        return CMN_INVALID;
    }
    if (cmn_config_secret(ini, "salesforce", "outbox_key", true, 66, false,
                          &sec, err) != CMN_OK) {
        return CMN_INVALID;
    }
    rc = cmn_key32_decode(sec, c->outbox_key);
    cmn_secret_free(sec);
    if (rc != CMN_OK) {
        cmn_config_errf(ini, "salesforce", "outbox_key_file", err,
                        "expected 32 raw bytes or 64 hex characters");
        return CMN_INVALID;
    }
    return CMN_OK;
}

static int
load_salesforce(const struct cmn_config *ini, struct sf_config *c,
                struct cmn_err *err)
{
    const char *login_url;
    size_t len;

    if (cmn_config_str(ini, "salesforce", "login_url", false,
                       "https://login.salesforce.com", &login_url,
                       err) != CMN_OK ||
        cmn_config_str(ini, "salesforce", "client_id", true, NULL,
                       &c->client_id, err) != CMN_OK ||
        cmn_config_str(ini, "salesforce", "integration_user", true, NULL,
                       &c->integration_user, err) != CMN_OK ||
        cmn_config_str(ini, "salesforce", "ca_file", false, NULL, &c->ca_file,
                       err) != CMN_OK ||
        cmn_config_list(ini, "salesforce", "org_origins", true, &c->org_origins,
                        &c->norg_origins, err) != CMN_OK ||
        cmn_config_long(ini, "salesforce", "timeout_ms", 10000, 100, 120000,
                        &c->timeout_ms, err) != CMN_OK ||
        cmn_config_long(ini, "salesforce", "outbox_max_attempts", 20, 1, 1000,
                        &c->outbox_max_attempts, err) != CMN_OK ||
        cmn_config_long(ini, "salesforce", "outbox_writers", 8, 1, 64,
                        &c->outbox_writers, err) != CMN_OK ||
        cmn_config_long(ini, "salesforce", "outbox_upsert_batch", 50, 1, 200,
                        &c->outbox_upsert_batch, err) != CMN_OK ||
        cmn_config_long(ini, "salesforce", "outbox_reclaim_ms", 30000, 100,
                        3600000, &c->outbox_reclaim_ms, err) != CMN_OK ||
        cmn_config_long(ini, "salesforce", "outbox_backoff_max_ms", 60000, 100,
                        86400000, &c->outbox_backoff_max_ms, err) != CMN_OK ||
        cmn_config_str(ini, "salesforce", "spool_dir", false, NULL,
                       &c->spool_dir, err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (!sf_url_allowed(login_url)) {
        cmn_config_errf(ini, "salesforce", "login_url", err,
                        "expected an https URL");
        return CMN_INVALID;
    }
    len = strlen(login_url);
    while (len > 0 && login_url[len - 1] == '/') {
        len--;
    }
    c->login_url_copy = strndup(login_url, len);
    if (c->login_url_copy == NULL) {
        cmn_err_set(err, "out of memory");
        return CMN_NOMEM;
    }
    c->login_url = c->login_url_copy;
    if (cmn_config_str(ini, "salesforce", "jwt_audience", false, c->login_url,
                       &c->jwt_audience, err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (c->client_id[0] == '\0' || c->integration_user[0] == '\0') {
        cmn_config_errf(ini, "salesforce",
                        c->client_id[0] == '\0' ? "client_id"
                                                : "integration_user",
                        err, "must not be empty");
        return CMN_INVALID;
    }
    for (size_t i = 0; i < c->norg_origins; i++) {
        if (!origin_ok(c->org_origins[i])) {
            cmn_config_errf(ini, "salesforce", "org_origins", err,
                            "'%s' is not an origin (https://host[:port])",
                            c->org_origins[i]);
            return CMN_INVALID;
        }
    }
    if (load_names(ini, c, err) != CMN_OK || load_pop(ini, c, err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (cmn_config_secret(ini, "salesforce", "jwt_key", true, SF_KEY_MAX, false,
                          &c->jwt_key, err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (strstr((const char *)c->jwt_key->data, "PRIVATE KEY-----") == NULL) {
        cmn_config_errf(ini, "salesforce", "jwt_key_file", err,
                        "expected a PEM private key");
        return CMN_INVALID;
    }
    return load_outbox_key(ini, c, err);
}

int
sf_config_load(const struct cmn_config *ini, struct sf_config *out,
               struct cmn_err *err)
{
    memset(out, 0, sizeof(*out));
    if (!cmn_config_has_section(ini, "salesforce")) {
        return CMN_OK; /* not configured: no call logging */
    }
    if (load_salesforce(ini, out, err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (!cmn_config_has_section(ini, "redis")) {
        cmn_config_errf(ini, "redis", "url", err,
                        "required with [salesforce] (the call-log outbox)");
        return CMN_INVALID;
    }
    if (cmn_redis_opts_from_config(ini, "redis", &out->redis,
                                   &out->redis_storage, err) != CMN_OK) {
        return CMN_INVALID;
    }
    out->sf_enabled = true;
    return CMN_OK;
}

void
sf_config_cleanup(struct sf_config *c)
{
    if (c == NULL) {
        return;
    }
    cmn_secret_free(c->jwt_key);
    cmn_wipe(c->outbox_key, sizeof(c->outbox_key));
    free(c->org_origins);
    free(c->redis_storage);
    free(c->login_url_copy);
    memset(c, 0, sizeof(*c));
}
