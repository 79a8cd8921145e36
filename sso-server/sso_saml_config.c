/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_saml_config.c - reads and checks [saml]: the IdP's metadata file,
 * the SP's key pair, attribute names, the group gate and the switches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_secret.h"
#include "sso_config.h"
#include "sso_saml_config.h"
#include "sso_url.h"

#define MAX_FILE (1024 * 1024)

/* clang-format off */
const char *const sso_saml_known_keys[] = {
    "saml.idp_metadata_file", "saml.sp_entity_id", "saml.sp_key_file",
    "saml.sp_cert_file", "saml.acs_url", "saml.user_attribute",
    "saml.groups_attribute", "saml.allowed_groups", "saml.gate_agents",
    "saml.allow_idp_initiated", "saml.clock_skew_s", "saml.allow_sha1",
    "saml.default_return_to", "saml.slo_url",
    NULL,
};
/* clang-format on */

/* A public file (metadata, certificate): any permissions. */
static char *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n;

    if (f == NULL) {
        return NULL;
    }
    buf = malloc(MAX_FILE + 1);
    if (buf != NULL) {
        n = fread(buf, 1, MAX_FILE + 1, f);
        if (n == 0 || n > MAX_FILE || ferror(f)) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
            *len = n;
        }
    }
    fclose(f);
    return buf;
}

static char *
derived_url(const char *public_url, const char *path)
{
    size_t n = strlen(public_url) + strlen(path) + 1;
    char *s = malloc(n);

    if (s != NULL) {
        snprintf(s, n, "%s%s", public_url, path);
    }
    return s;
}

static int
load_metadata(struct sso_config *c, struct sso_saml_config *s,
              struct cmn_err *err)
{
    const char *path;
    char *buf;
    size_t len = 0;
    struct cmn_err why = {{0}};

    if (cmn_config_str(c->ini, "saml", "idp_metadata_file", true, NULL, &path,
                       err) != CMN_OK) {
        return CMN_INVALID;
    }
    buf = read_file(path, &len);
    if (buf == NULL) {
        cmn_config_errf(c->ini, "saml", "idp_metadata_file", err,
                        "cannot read %s (or empty, or over 1 MiB)", path);
        return CMN_INVALID;
    }
    if (saml_metadata_parse(buf, len, &s->idp, &why) != CMN_OK) {
        free(buf);
        cmn_config_errf(c->ini, "saml", "idp_metadata_file", err, "%s: %s",
                        path, why.msg);
        return CMN_INVALID;
    }
    free(buf);
    return CMN_OK;
}

static int
load_key(struct sso_config *c, struct sso_saml_config *s, struct cmn_err *err)
{
    const char *cert_path, *key_path;
    struct cmn_secret *key = NULL;
    char *cert;
    size_t cert_len = 0;
    struct cmn_err why = {{0}};
    int rc;

    if (cmn_config_str(c->ini, "saml", "sp_cert_file", false, NULL, &cert_path,
                       err) != CMN_OK ||
        cmn_config_str(c->ini, "saml", "sp_key_file", false, NULL, &key_path,
                       err) != CMN_OK) {
        return CMN_INVALID;
    }
    if ((cert_path == NULL) != (key_path == NULL)) {
        cmn_config_errf(c->ini, "saml",
                        cert_path ? "sp_key_file" : "sp_cert_file", err,
                        "sp_key_file and sp_cert_file go together");
        return CMN_INVALID;
    }
    if (cert_path == NULL) {
        return CMN_OK;
    }
    /* the private key: owner-only file, like every secret */
    if (cmn_config_secret(c->ini, "saml", "sp_key", true, 64 * 1024, false,
                          &key, err) != CMN_OK) {
        return CMN_INVALID;
    }
    cert = read_file(cert_path, &cert_len);
    if (cert == NULL) {
        cmn_secret_free(key);
        cmn_config_errf(c->ini, "saml", "sp_cert_file", err, "cannot read %s",
                        cert_path);
        return CMN_INVALID;
    }
    rc = saml_sp_key_load((const char *)key->data, key->len, cert, cert_len,
                          &s->key, &why);
    cmn_secret_free(key);
    free(cert);
    if (rc != CMN_OK) {
        cmn_config_errf(c->ini, "saml", "sp_key_file", err, "%s", why.msg);
        return CMN_INVALID;
    }
    s->has_key = true;
    return CMN_OK;
}

/* An optional absolute http(s) URL key. */
static int
url_key(struct sso_config *c, const char *key, const char **out,
        struct cmn_err *err)
{
    char *o = NULL, *p = NULL;
    int rc;

    if (cmn_config_str(c->ini, "saml", key, false, NULL, out, err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (*out == NULL) {
        return CMN_OK;
    }
    rc = sso_url_split(*out, &o, &p);
    free(o);
    free(p);
    if (rc != CMN_OK) {
        cmn_config_errf(c->ini, "saml", key, err,
                        "expected an absolute http(s) URL");
        return CMN_INVALID;
    }
    return CMN_OK;
}

static int
load_urls(struct sso_config *c, struct sso_saml_config *s, struct cmn_err *err)
{
    const char *entity, *acs, *slo;

    if (cmn_config_str(c->ini, "saml", "sp_entity_id", false, NULL, &entity,
                       err) != CMN_OK ||
        url_key(c, "acs_url", &acs, err) != CMN_OK ||
        url_key(c, "slo_url", &slo, err) != CMN_OK) {
        return CMN_INVALID;
    }
    s->sp_entity_id = entity ? strdup(entity)
                             : derived_url(c->public_url, "/sso/saml/metadata");
    s->acs_url =
        acs ? strdup(acs) : derived_url(c->public_url, "/sso/saml/acs");
    s->slo_url =
        slo ? strdup(slo) : derived_url(c->public_url, "/sso/saml/slo");
    if (s->sp_entity_id == NULL || s->acs_url == NULL || s->slo_url == NULL) {
        cmn_err_set(err, "out of memory");
        return CMN_NOMEM;
    }
    return CMN_OK;
}

static int
load_switches(struct sso_config *c, struct sso_saml_config *s,
              struct cmn_err *err)
{
    if (cmn_config_str(c->ini, "saml", "user_attribute", false, NULL,
                       &s->user_attribute, err) != CMN_OK ||
        cmn_config_str(c->ini, "saml", "groups_attribute", false, NULL,
                       &s->groups_attribute, err) != CMN_OK ||
        cmn_config_list(c->ini, "saml", "allowed_groups", false,
                        &s->allowed_groups, &s->nallowed_groups,
                        err) != CMN_OK ||
        cmn_config_bool(c->ini, "saml", "gate_agents", false, &s->gate_agents,
                        err) != CMN_OK ||
        cmn_config_bool(c->ini, "saml", "allow_idp_initiated", false,
                        &s->allow_idp_initiated, err) != CMN_OK ||
        cmn_config_bool(c->ini, "saml", "allow_sha1", false, &s->allow_sha1,
                        err) != CMN_OK ||
        cmn_config_long(c->ini, "saml", "clock_skew_s", SAML_DEFAULT_SKEW_S, 0,
                        600, &s->clock_skew_s, err) != CMN_OK ||
        cmn_config_str(c->ini, "saml", "default_return_to", false, NULL,
                       &s->default_return_to, err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (s->nallowed_groups > 0 && s->groups_attribute == NULL) {
        cmn_config_errf(c->ini, "saml", "allowed_groups", err,
                        "needs groups_attribute (where the IdP lists them)");
        return CMN_INVALID;
    }
    if (s->default_return_to == NULL && c->nallowed > 0) {
        /* the first allowed softphone address, when it is a whole URL */
        s->default_return_to =
            cmn_config_get(c->ini, "login", "allowed_return_to");
    }
    if (s->default_return_to != NULL &&
        (!sso_url_allowed(c->allowed, c->nallowed, s->default_return_to,
                          NULL) ||
         strchr(s->default_return_to, ',') != NULL)) {
        if (s->allow_idp_initiated) {
            cmn_config_errf(c->ini, "saml", "default_return_to", err,
                            "must be one URL that [login] allowed_return_to "
                            "allows");
            return CMN_INVALID;
        }
        s->default_return_to = NULL;
    }
    if (s->allow_idp_initiated && s->default_return_to == NULL) {
        cmn_config_errf(c->ini, "saml", "allow_idp_initiated", err,
                        "needs default_return_to");
        return CMN_INVALID;
    }
    return CMN_OK;
}

int
sso_saml_config_load(struct sso_config *c, struct cmn_err *err)
{
    struct sso_saml_config *s;

    if (!cmn_config_has_section(c->ini, "saml")) {
        return CMN_OK;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        cmn_err_set(err, "out of memory");
        return CMN_NOMEM;
    }
    c->saml = s;
    if (load_metadata(c, s, err) != CMN_OK || load_key(c, s, err) != CMN_OK ||
        load_urls(c, s, err) != CMN_OK || load_switches(c, s, err) != CMN_OK) {
        return CMN_INVALID;
    }
    return CMN_OK;
}

void
sso_saml_config_free(struct sso_saml_config *s)
{
    if (s == NULL) {
        return;
    }
    saml_idp_cleanup(&s->idp);
    saml_sp_key_cleanup(&s->key);
    free(s->sp_entity_id);
    free(s->acs_url);
    free(s->slo_url);
    free(s->allowed_groups);
    free(s);
}

bool
sso_saml_slo_enabled(const struct sso_saml_config *s)
{
    return s != NULL && s->has_key && s->idp.slo_url != NULL;
}

void
sso_saml_sp(const struct sso_saml_config *s, struct saml_sp *sp)
{
    memset(sp, 0, sizeof(*sp));
    sp->entity_id = s->sp_entity_id;
    sp->acs_url = s->acs_url;
    sp->key = s->has_key ? &s->key : NULL;
    sp->user_attribute = s->user_attribute;
    sp->groups_attribute = s->groups_attribute;
    sp->allow_sha1 = s->allow_sha1;
    sp->clock_skew_s = s->clock_skew_s;
}
