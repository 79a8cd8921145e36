/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_config.h - fsc-sso configuration: the INI keys of DESIGN.md §4 (see
 * deploy/fsc-sso.ini.sample), validated once, then read-only. */
#ifndef SSO_CONFIG_H
#define SSO_CONFIG_H

#include "cmn.h"
#include "cmn_config.h"
#include "cmn_log.h"
#include "cmn_net.h"
#include "cmn_redis.h"
#include "cmn_seal.h"
#include "cmn_secret.h"

/* One allowed return_to: the URL must have exactly this origin and its
 * path must start with path. */
struct sso_allowed_url {
    char *origin; /* "https://connector.example.com" (default port elided) */
    char *path;   /* "/softphone/" */
};

/* [ids] verify: whether access tokens are checked against IdS's key. */
enum sso_verify_mode {
    SSO_VERIFY_AUTO,     /* verify when IdS serves a key (12.6(2) and later) */
    SSO_VERIFY_REQUIRED, /* every token must verify; no key = not ready */
    SSO_VERIFY_OFF,      /* read claims without checking them */
};

struct sso_config {
    struct cmn_config *ini;

    /* [server] */
    const char *listen;
    const char *public_url; /* no trailing slash */
    const char *instance;
    struct cmn_secret *tls_cert;
    struct cmn_secret *tls_key;
    long max_body;
    long threads; /* HTTP: 0 thread per connection; N an epoll pool of N
                     (blocking work then runs on `jobs` threads) */
    long jobs;    /* threads for IdS calls, refreshes and Redis waits */
    enum cmn_log_level log_level;
    struct cmn_netlist trusted_proxies; /* whose X-Forwarded-For names the
                                           client (the load balancers) */
    const char *metrics_listen; /* NULL: /metrics on listen; else only on
                                   this second address */

    /* [redis] */
    struct cmn_redis_opts redis;
    void *redis_storage;
    long failover_wait_ms; /* how long a token fetch rides out a Redis
                              outage before answering 503 */

    /* [ids]; absent only beside [saml] (a SAML-only deployment) */
    bool ids_enabled;
    const char *authorize_url;
    const char *token_url;
    const char *revoke_url; /* NULL: logout does not revoke */
    const char *client_id;
    struct cmn_secret *client_secret;
    const char *ca_file;
    char *redirect_uri;
    const char *scope;
    long ids_timeout_ms;
    const char *user_claim; /* default "user_id" (sso_claims.h) */
    enum sso_verify_mode verify;
    char *public_key_url;            /* IdS token key; default derived from
                                        token_url: /ids/v1/keys/token/public */
    const char *jwt_public_key_file; /* set: this key only, never fetched */
    const char *jwt_issuer;          /* NULL: iss not checked */
    const char *jwt_audience;        /* NULL: aud not checked */

    /* [session] */
    struct cmn_seal *seal;
    double refresh_at;
    long lock_ttl_ms;
    long max_lifetime_s;
    long state_ttl_s;

    /* [service] */
    struct cmn_secret *service_key;

    /* [login] */
    struct sso_allowed_url *allowed;
    size_t nallowed;
    long starts_per_minute; /* sign-in starts per client address and
                               instance (burst: as many); 0 = no limit */

    /* [saml]: NULL without the section (sso_saml_config.h) */
    struct sso_saml_config *saml;
};

/* Load and validate; NULL with err ("file:line: [section] key: why"). */
struct sso_config *sso_config_load(const char *path, struct cmn_err *err);
void sso_config_free(struct sso_config *cfg);

#endif
