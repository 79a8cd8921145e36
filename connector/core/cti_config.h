/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_config.h - fsc-connector configuration: the INI keys of DESIGN.md §4
 * (see deploy/fsc-connector.ini.sample), validated once, then read-only. */
#ifndef CTI_CONFIG_H
#define CTI_CONFIG_H

#include "cmn.h"
#include "cmn_config.h"
#include "cmn_log.h"
#include "cmn_net.h"
#include "cmn_redis.h"
#include "cmn_secret.h"
#include "fin_xmpp.h"

#define CTI_MAX_NODES 2

struct cti_config {
    struct cmn_config *ini;

    /* [server] */
    const char *listen;
    const char *public_url;
    struct cmn_secret *tls_cert;
    struct cmn_secret *tls_key;
    long threads; /* HTTP epoll threads */
    long max_body;
    enum cmn_log_level log_level;
    long session_idle_s; /* API token lifetime without any tab attached */
    const char *web_dir; /* the softphone page's files */
    struct cmn_secret *admin_key; /* Bearer for /admin/v1/ (NULL: off) */
    long sse_ping_s;          /* ": ping" to every tab (DESIGN: 15 s); a closed
                                 tab is noticed on the first or second ping */
    long tabs_closed_after_s; /* 0: off; else when every tab of an
                                 agent has been closed this long... */
    const char *tabs_closed_state;  /* ...the agent goes NOT_READY or
                                       LOGOUT... */
    const char *tabs_closed_reason; /* ...with this reason code id */
    long agent_lease_s;      /* with [redis]: how long an agent stays bound to
                                this host after it stops renewing */
    long login_max_failures; /* failed password sign-ins per agent ID
                                before a lockout (0: off) */
    long login_max_failures_per_address; /* ... per client address */
    long login_lockout_s;                /* counting window and lockout */
    struct cmn_netlist trusted_proxies;  /* reverse proxies whose
                                            X-Forwarded-For names the
                                            client (empty: none) */
    const char *metrics_listen;   /* NULL: /metrics on listen; else only on
                                     this second address */
    long stream_ticket_s;         /* lifetime of an event-stream ticket */
    const char *session_key_file; /* with [redis]: sessions sealed in Redis
                                     survive a restart or a host's death
                                     (NULL: they end with the process) */

    /* [redis]: optional; when set, several connector hosts share a site's
     * agents (each agent's session lives on exactly one host) */
    bool redis_enabled;
    struct cmn_redis_opts redis;
    void *redis_storage;

    /* [finesse] */
    char *nodes[CTI_MAX_NODES]; /* base URLs, "https://finesse-a:8445" */
    size_t nnodes;
    /* how notifications arrive: websocket (default: the REST port, which
     * a stock Finesse 12.5+ opens), tls (5223) or starttls (5222) */
    enum fin_xmpp_transport xmpp_transport;
    char *xmpp_ws_urls[CTI_MAX_NODES]; /* websocket: per node */
    long xmpp_port;                    /* tls 5223, starttls 5222 */
    /* tls/starttls: where each node's XMPP service listens: host of the
     * node URL and xmpp_port unless xmpp_addresses = host:port, host:port
     * says so */
    char *xmpp_hosts[CTI_MAX_NODES];
    int xmpp_ports[CTI_MAX_NODES];
    const char *xmpp_domain;   /* NULL: learnt from SystemInfo */
    const char *xmpp_resource; /* never "desktop" */
    bool xmpp_tls;             /* starttls: STARTTLS required */
    const char *ca_file;
    long rest_timeout_ms;
    long agents_per_worker;
    long ping_interval_s;
    long xmpp_connects_per_s; /* per worker: a failover reconnects
                                 everyone, prosody/Openfire must keep up */
    long failover_check_ms;   /* SystemInfo poll while a node is down */

    /* [sso]: absent on non-SSO sites */
    const char *sso_url;        /* server-to-server (service API) */
    const char *sso_public_url; /* what browsers open (sign-in popup) */
    struct cmn_secret *sso_service_key;

    /* [salesforce], the part the page needs (the rest: salesforce/) */
    char **org_origins; /* NULL-terminated, one block */
    size_t norg_origins;
    const char *opencti_version;
};

struct cti_config *cti_config_load(const char *path, struct cmn_err *err);
void cti_config_free(struct cti_config *cfg);

#endif
