/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_saml_config.h - the [saml] section: fsc-sso as a SAML 2.0 service
 * provider (DESIGN.md §4). Absent section: cfg->saml is NULL and nothing
 * about sign-in changes. */
#ifndef SSO_SAML_CONFIG_H
#define SSO_SAML_CONFIG_H

#include "saml.h"

struct sso_config;

struct sso_saml_config {
    struct saml_idp idp;          /* from idp_metadata_file */
    struct saml_sp_key key;       /* sp_key_file + sp_cert_file */
    bool has_key;                 /* both set: AuthnRequests signed, encrypted
                                     assertions decrypted */
    char *sp_entity_id;           /* default public_url + /sso/saml/metadata */
    char *acs_url;                /* default public_url + /sso/saml/acs */
    char *slo_url;                /* default public_url + /sso/saml/slo */
    const char *user_attribute;   /* NULL: the NameID */
    const char *groups_attribute; /* NULL: no groups */
    char **allowed_groups;        /* NULL-terminated; NULL: no gate */
    size_t nallowed_groups;
    bool gate_agents;         /* /sso/login goes to the IdP first */
    bool allow_idp_initiated; /* unsolicited responses accepted */
    bool allow_sha1;          /* legacy IdPs only */
    long clock_skew_s;
    const char *default_return_to; /* where IdP-initiated sign-ins go */
};

/* Reads [saml] when present (c->saml stays NULL otherwise). Errors name
 * the file, line and key. */
int sso_saml_config_load(struct sso_config *c,
                         struct cmn_err *err) CMN_NODISCARD;
void sso_saml_config_free(struct sso_saml_config *s);

/* Single Logout is offered (in our metadata, at /sso/saml/slo and
 * /sso/saml/logout) when messages can be signed (sp_key_file: the SLO
 * profile requires signed messages on HTTP-Redirect) and the IdP's
 * metadata names its SingleLogoutService (HTTP-Redirect). */
bool sso_saml_slo_enabled(const struct sso_saml_config *s);

/* The verifier's view of this configuration. */
void sso_saml_sp(const struct sso_saml_config *s, struct saml_sp *sp);

#endif
