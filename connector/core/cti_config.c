/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_config.c - reads and validates the fsc-connector INI file; every
 * error names file, line and key. */
#include <stdlib.h>
#include <string.h>

#include "cmn_seal.h"
#include "cmn_server_config.h"
#include "cti_config.h"
#include "cti_web_dir.h"
#include "fin_xmpp_link.h"

/* clang-format off */
static const char *const known_keys[] = {
    "server.listen", "server.public_url", "server.tls_cert_file",
    "server.tls_key_file", "server.threads", "server.max_body",
    "server.log_level", "server.session_idle_s", "server.web_dir",
    "server.agent_lease_s", "server.admin_key_file", "server.tabs_closed_after_s", "server.sse_ping_s",
    "server.tabs_closed_state", "server.tabs_closed_reason_code_id",
    "server.session_key_file", "server.login_max_failures",
    "server.login_max_failures_per_address", "server.login_lockout_s",
    "server.trusted_proxies", "server.metrics_listen",
    "server.stream_ticket_s",
    "finesse.nodes", "finesse.xmpp_port", "finesse.xmpp_addresses", "finesse.xmpp_domain",
    "finesse.xmpp_resource", "finesse.xmpp_tls", "finesse.ca_file",
    "finesse.rest_timeout_ms", "finesse.agents_per_worker",
    "finesse.ping_interval_s", "finesse.failover_check_ms",
    "finesse.xmpp_connects_per_s", "finesse.xmpp_transport",
    "finesse.xmpp_websocket_path", "finesse.xmpp_websocket_urls",
    "sso.url", "sso.public_url", "sso.service_key_file",
    "redis.url", "redis.sentinels", "redis.master", "redis.prefix",
    "redis.password_file", "redis.connect_timeout_ms",
    "redis.command_timeout_ms", "redis.pool_size", "redis.wait_replicas",
    "redis.wait_timeout_ms", "redis.failover_wait_ms",
    /* [salesforce]: read by salesforce/sf_config.c (and the page's part
     * here); listed so that a misspelt key is an error, not a default */
    "salesforce.login_url", "salesforce.client_id", "salesforce.jwt_audience",
    "salesforce.jwt_key_file", "salesforce.integration_user",
    "salesforce.org_origins", "salesforce.task_external_id_field",
    "salesforce.agent_user_field", "salesforce.ca_file",
    "salesforce.api_version", "salesforce.opencti_version",
    "salesforce.timeout_ms", "salesforce.pop", "salesforce.pop_on",
    "salesforce.outbox_max_attempts", "salesforce.outbox_writers",
    "salesforce.outbox_upsert_batch", "salesforce.outbox_reclaim_ms",
    "salesforce.outbox_backoff_max_ms", "salesforce.spool_dir",
    "salesforce.outbox_key_file",
    NULL,
};
/* clang-format on */

static bool
is_http_url(const char *s)
{
    return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

static int
load_server(struct cti_config *c, struct cmn_err *err)
{
    if (cmn_config_str(c->ini, "server", "listen", true, NULL, &c->listen,
                       err) != CMN_OK ||
        cmn_config_str(c->ini, "server", "public_url", false, NULL,
                       &c->public_url, err) != CMN_OK ||
        cmn_config_long(c->ini, "server", "threads", 2, 1, 64, &c->threads,
                        err) != CMN_OK ||
        cmn_config_long(c->ini, "server", "max_body", 65536, 1024, 1 << 24,
                        &c->max_body, err) != CMN_OK ||
        cmn_config_long(c->ini, "server", "session_idle_s", 43200, 60,
                        7 * 86400, &c->session_idle_s, err) != CMN_OK ||
        cmn_config_str(c->ini, "server", "web_dir", false,
                       cti_web_dir_default(), &c->web_dir, err) != CMN_OK ||
        cmn_config_long(c->ini, "server", "agent_lease_s", 30, 2, 3600,
                        &c->agent_lease_s, err) != CMN_OK ||
        cmn_config_long(c->ini, "server", "sse_ping_s", 15, 1, 55,
                        &c->sse_ping_s, err) != CMN_OK ||
        cmn_config_long(c->ini, "server", "tabs_closed_after_s", 0, 0, 86400,
                        &c->tabs_closed_after_s, err) != CMN_OK ||
        cmn_config_str(c->ini, "server", "tabs_closed_state", false,
                       "NOT_READY", &c->tabs_closed_state, err) != CMN_OK ||
        cmn_config_str(c->ini, "server", "tabs_closed_reason_code_id", false,
                       NULL, &c->tabs_closed_reason, err) != CMN_OK ||
        cmn_config_long(c->ini, "server", "login_max_failures", 5, 0, 1000,
                        &c->login_max_failures, err) != CMN_OK ||
        cmn_config_long(c->ini, "server", "login_max_failures_per_address", 30,
                        0, 100000, &c->login_max_failures_per_address,
                        err) != CMN_OK ||
        cmn_config_long(c->ini, "server", "login_lockout_s", 300, 1, 86400,
                        &c->login_lockout_s, err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (strcmp(c->tabs_closed_state, "NOT_READY") != 0 &&
        strcmp(c->tabs_closed_state, "LOGOUT") != 0) {
        cmn_config_errf(c->ini, "server", "tabs_closed_state", err,
                        "NOT_READY or LOGOUT");
        return CMN_INVALID;
    }
    if (cmn_config_log_level(c->ini, "server", &c->log_level, err) != CMN_OK ||
        cmn_config_tls(c->ini, "server", &c->tls_cert, &c->tls_key, err) !=
            CMN_OK) {
        return CMN_INVALID;
    }
    if (cmn_config_secret(c->ini, "server", "admin_key", false, 4096, true,
                          &c->admin_key, err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (cmn_config_netlist(c->ini, "server", "trusted_proxies",
                           &c->trusted_proxies, err) != CMN_OK ||
        cmn_config_str(c->ini, "server", "metrics_listen", false, NULL,
                       &c->metrics_listen, err) != CMN_OK ||
        cmn_config_long(c->ini, "server", "stream_ticket_s", 30, 1, 300,
                        &c->stream_ticket_s, err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (c->metrics_listen != NULL &&
        strcmp(c->metrics_listen, c->listen) == 0) {
        cmn_config_errf(c->ini, "server", "metrics_listen", err,
                        "must differ from listen (it is a second socket)");
        return CMN_INVALID;
    }
    if (c->admin_key != NULL && c->admin_key->len < 16) {
        cmn_config_errf(c->ini, "server", "admin_key_file", err,
                        "the admin key must be at least 16 bytes");
        return CMN_INVALID;
    }
    return CMN_OK;
}

/* host part of a node URL */
static char *
url_host(const char *url)
{
    const char *p = strstr(url, "://");
    size_t n;

    p = p != NULL ? p + 3 : url;
    if (*p == '[') {
        p++;
        n = strcspn(p, "]");
    } else {
        n = strcspn(p, ":/");
    }
    return strndup(p, n);
}

static int
load_xmpp_addresses(struct cti_config *c, struct cmn_err *err)
{
    char **list = NULL;
    size_t n = 0;

    if (cmn_config_list(c->ini, "finesse", "xmpp_addresses", false, &list, &n,
                        err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (n != 0 && n != c->nnodes) {
        free(list);
        cmn_config_errf(c->ini, "finesse", "xmpp_addresses", err,
                        "one host:port per node in [finesse] nodes");
        return CMN_INVALID;
    }
    for (size_t i = 0; i < c->nnodes; i++) {
        if (n == 0) {
            c->xmpp_hosts[i] = url_host(c->nodes[i]);
            c->xmpp_ports[i] = (int)c->xmpp_port;
            continue;
        }
        const char *colon = strrchr(list[i], ':');
        char *end = NULL;
        long port = colon != NULL ? strtol(colon + 1, &end, 10) : 0;
        if (colon == NULL || colon == list[i] || *end != '\0' || port < 1 ||
            port > 65535) {
            cmn_config_errf(c->ini, "finesse", "xmpp_addresses", err,
                            "'%s' is not host:port", list[i]);
            free(list);
            return CMN_INVALID;
        }
        c->xmpp_hosts[i] = strndup(list[i], (size_t)(colon - list[i]));
        c->xmpp_ports[i] = (int)port;
    }
    free(list);
    return CMN_OK;
}

/* websocket: each node's URL, given or derived from its REST URL (same
 * scheme, host and port: https://a:8445 -> wss://a:8445/ws), so that a
 * stock Finesse needs nothing but 8445 open */
static int
load_xmpp_websocket(struct cti_config *c, struct cmn_err *err)
{
    char **list = NULL;
    size_t n = 0;
    const char *path;

    if (cmn_config_str(c->ini, "finesse", "xmpp_websocket_path", false, "/ws",
                       &path, err) != CMN_OK ||
        cmn_config_list(c->ini, "finesse", "xmpp_websocket_urls", false, &list,
                        &n, err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (path[0] != '/' || strpbrk(path, " ?#\"") != NULL) {
        free(list);
        cmn_config_errf(c->ini, "finesse", "xmpp_websocket_path", err,
                        "'%s' is not a URL path (e.g. /ws)", path);
        return CMN_INVALID;
    }
    if (n != 0 && n != c->nnodes) {
        free(list);
        cmn_config_errf(c->ini, "finesse", "xmpp_websocket_urls", err,
                        "one ws:// or wss:// URL per node in [finesse] nodes");
        return CMN_INVALID;
    }
    for (size_t i = 0; i < c->nnodes; i++) {
        const char *node = c->nodes[i];
        bool tls;
        char host[256], upath[512];
        int port;
        if (n != 0) {
            c->xmpp_ws_urls[i] = strdup(list[i]);
        } else {
            bool https = strncmp(node, "https://", 8) == 0;
            size_t len = strlen(node) + strlen(path) + 2;
            c->xmpp_ws_urls[i] = malloc(len);
            if (c->xmpp_ws_urls[i] != NULL) {
                snprintf(c->xmpp_ws_urls[i], len, "%s%s%s",
                         https ? "wss://" : "ws://", node + (https ? 8 : 7),
                         path);
            }
        }
        if (c->xmpp_ws_urls[i] == NULL) {
            free(list);
            cmn_err_set(err, "out of memory");
            return CMN_NOMEM;
        }
        if (fin_xmpp_parse_ws_url(c->xmpp_ws_urls[i], &tls, host, sizeof(host),
                                  &port, upath, sizeof(upath)) != CMN_OK) {
            cmn_config_errf(c->ini, "finesse",
                            n != 0 ? "xmpp_websocket_urls" : "nodes", err,
                            "'%s' is not a usable ws:// or wss:// URL",
                            c->xmpp_ws_urls[i]);
            free(list);
            return CMN_INVALID;
        }
    }
    free(list);
    return CMN_OK;
}

static int
load_finesse(struct cti_config *c, struct cmn_err *err)
{
    char **nodes = NULL;
    size_t n = 0;

    if (cmn_config_list(c->ini, "finesse", "nodes", true, &nodes, &n, err) !=
        CMN_OK) {
        return CMN_INVALID;
    }
    if (n == 0 || n > CTI_MAX_NODES) {
        free(nodes);
        cmn_config_errf(c->ini, "finesse", "nodes", err,
                        "one or two node URLs (A, B)");
        return CMN_INVALID;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(nodes[i]);
        if (!is_http_url(nodes[i])) {
            cmn_config_errf(c->ini, "finesse", "nodes", err,
                            "'%s' is not an http(s) URL", nodes[i]);
            free(nodes);
            return CMN_INVALID;
        }
        while (len > 0 && nodes[i][len - 1] == '/') {
            len--;
        }
        c->nodes[i] = strndup(nodes[i], len);
        c->nnodes = i + 1;
    }
    free(nodes);
    {
        const char *name;
        if (cmn_config_str(c->ini, "finesse", "xmpp_transport", false,
                           "websocket", &name, err) != CMN_OK) {
            return CMN_INVALID;
        }
        if (fin_xmpp_transport_parse(name, &c->xmpp_transport) != CMN_OK) {
            cmn_config_errf(c->ini, "finesse", "xmpp_transport", err,
                            "'%s': websocket, tls or starttls", name);
            return CMN_INVALID;
        }
    }
    if (cmn_config_long(c->ini, "finesse", "xmpp_port",
                        c->xmpp_transport == FIN_XMPP_TRANSPORT_TLS ? 5223
                                                                    : 5222,
                        1, 65535, &c->xmpp_port, err) != CMN_OK ||
        cmn_config_str(c->ini, "finesse", "xmpp_domain", false, NULL,
                       &c->xmpp_domain, err) != CMN_OK ||
        cmn_config_str(c->ini, "finesse", "xmpp_resource", false, "fsc",
                       &c->xmpp_resource, err) != CMN_OK ||
        cmn_config_bool(c->ini, "finesse", "xmpp_tls", true, &c->xmpp_tls,
                        err) != CMN_OK ||
        cmn_config_str(c->ini, "finesse", "ca_file", false, NULL, &c->ca_file,
                       err) != CMN_OK ||
        cmn_config_long(c->ini, "finesse", "rest_timeout_ms", 5000, 100, 60000,
                        &c->rest_timeout_ms, err) != CMN_OK ||
        cmn_config_long(c->ini, "finesse", "agents_per_worker", 500, 1, 900,
                        &c->agents_per_worker, err) != CMN_OK ||
        cmn_config_long(c->ini, "finesse", "ping_interval_s", 10, 1, 300,
                        &c->ping_interval_s, err) != CMN_OK ||
        cmn_config_long(c->ini, "finesse", "failover_check_ms", 1000, 100,
                        60000, &c->failover_check_ms, err) != CMN_OK ||
        cmn_config_long(c->ini, "finesse", "xmpp_connects_per_s", 500, 10, 5000,
                        &c->xmpp_connects_per_s, err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (load_xmpp_addresses(c, err) != CMN_OK ||
        load_xmpp_websocket(c, err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (strcmp(c->xmpp_resource, "desktop") == 0) {
        /* reserved for the Finesse desktop: using it logs the agent's
         * desktop out (reference/finesse.md §2) */
        cmn_config_errf(c->ini, "finesse", "xmpp_resource", err,
                        "\"desktop\" is reserved by Finesse");
        return CMN_INVALID;
    }
    return CMN_OK;
}

static int
load_sso(struct cti_config *c, struct cmn_err *err)
{
    if (cmn_config_str(c->ini, "sso", "url", false, NULL, &c->sso_url, err) !=
        CMN_OK) {
        return CMN_INVALID;
    }
    if (c->sso_url == NULL) {
        return CMN_OK; /* non-SSO site */
    }
    if (!is_http_url(c->sso_url)) {
        cmn_config_errf(c->ini, "sso", "url", err, "expected an http(s) URL");
        return CMN_INVALID;
    }
    if (cmn_config_str(c->ini, "sso", "public_url", false, c->sso_url,
                       &c->sso_public_url, err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (!is_http_url(c->sso_public_url)) {
        cmn_config_errf(c->ini, "sso", "public_url", err,
                        "expected an http(s) URL");
        return CMN_INVALID;
    }
    return cmn_config_secret(c->ini, "sso", "service_key", true, 4096, true,
                             &c->sso_service_key, err);
}

static int
load_salesforce_page(struct cti_config *c, struct cmn_err *err)
{
    if (cmn_config_list(c->ini, "salesforce", "org_origins", false,
                        &c->org_origins, &c->norg_origins, err) != CMN_OK ||
        cmn_config_str(c->ini, "salesforce", "opencti_version", false, "60.0",
                       &c->opencti_version, err) != CMN_OK) {
        return CMN_INVALID;
    }
    for (size_t i = 0; i < c->norg_origins; i++) {
        const char *o = c->org_origins[i];
        /* an origin: scheme://host[:port], nothing after */
        const char *host = strstr(o, "://");
        if (!is_http_url(o) || host == NULL || strchr(host + 3, '/') != NULL) {
            cmn_config_errf(c->ini, "salesforce", "org_origins", err,
                            "'%s' is not an origin (https://host)", o);
            return CMN_INVALID;
        }
    }
    return CMN_OK;
}

static int
load_redis(struct cti_config *c, struct cmn_err *err)
{
    if (cmn_config_get(c->ini, "redis", "url") == NULL &&
        cmn_config_get(c->ini, "redis", "sentinels") == NULL) {
        return CMN_OK; /* one host serves every agent */
    }
    c->redis_enabled = true;
    return cmn_redis_opts_from_config(c->ini, "redis", &c->redis,
                                      &c->redis_storage, err);
}

/* [server] session_key_file: sessions kept (sealed) in Redis so that a
 * restarted or surviving host picks them up; checked here so that
 * --check-config reports a bad key. */
static int
load_session_key(struct cti_config *c, struct cmn_err *err)
{
    struct cmn_err kerr = {{0}};
    struct cmn_seal *seal;

    if (cmn_config_str(c->ini, "server", "session_key_file", false, NULL,
                       &c->session_key_file, err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (c->session_key_file == NULL) {
        return CMN_OK;
    }
    if (!c->redis_enabled) {
        cmn_config_errf(c->ini, "server", "session_key_file", err,
                        "needs [redis] (the sessions are kept there)");
        return CMN_INVALID;
    }
    seal = cmn_seal_load(c->session_key_file, &kerr);
    if (seal == NULL) {
        cmn_config_errf(c->ini, "server", "session_key_file", err, "%s",
                        kerr.msg);
        return CMN_INVALID;
    }
    cmn_seal_free(seal);
    return CMN_OK;
}

struct cti_config *
cti_config_load(const char *path, struct cmn_err *err)
{
    struct cti_config *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    c->ini = cmn_config_load(path, err);
    if (c->ini == NULL ||
        cmn_config_check_known(c->ini, known_keys, err) != CMN_OK ||
        load_server(c, err) != CMN_OK || load_finesse(c, err) != CMN_OK ||
        load_sso(c, err) != CMN_OK || load_salesforce_page(c, err) != CMN_OK ||
        load_redis(c, err) != CMN_OK || load_session_key(c, err) != CMN_OK) {
        cti_config_free(c);
        return NULL;
    }
    return c;
}

void
cti_config_free(struct cti_config *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < c->nnodes; i++) {
        free(c->nodes[i]);
        free(c->xmpp_hosts[i]);
        free(c->xmpp_ws_urls[i]);
    }
    free(c->org_origins);
    free(c->redis_storage);
    cmn_secret_free(c->sso_service_key);
    cmn_secret_free(c->admin_key);
    cmn_netlist_cleanup(&c->trusted_proxies);
    cmn_secret_free(c->tls_cert);
    cmn_secret_free(c->tls_key);
    cmn_config_free(c->ini);
    free(c);
}
