/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fscctl_finesse_check.c - "fscctl finesse-check": the first deployment
 * day's question, "can this host reach Finesse the way the connector
 * will?", answered one line per check with a verdict (PASS, WARN, FAIL,
 * SKIP) and, under each failure, the likely fix.
 *
 *   fscctl finesse-check --config FILE
 *          [--agent ID (--password-file F | --token-file F | --handoff CODE)]
 *          [--timeout-s N]
 *
 * For each node in [finesse] nodes: the name resolves; the REST port
 * accepts a connection; for https, the certificate chain (printed)
 * verifies against the system's roots plus [finesse] ca_file and names the
 * host; SystemInfo answers (status, deployment, XMPP domain, peer node).
 * Then each XMPP transport the connector can use (websocket on the REST
 * port, tls on 5223, starttls on 5222; the configured addresses for the
 * configured one): reachable, TLS verified, WebSocket upgrade accepted
 * with the xmpp subprotocol, XMPP stream opened. With an agent's
 * credentials (the Finesse password, an IdS access token, or an SSO
 * handoff code exchanged through [sso]) the REST credentials and SASL
 * authentication too. The XMPP checks run the connector's own session,
 * transports and trust, so what passes here works there.
 *
 * Exit status 0 only when one transport worked on every node: that
 * configuration is printed. 1 otherwise, 2 for usage or configuration
 * errors. Secrets are read from files and never printed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cmn_httpc.h"
#include "cmn_log.h"
#include "cmn_secret.h"
#include "cmn_xml.h"
#include "cti_config.h"
#include "fin_parse.h"
#include "fin_xmpp_link.h"
#include "fscctl.h"

#define NTRANSPORTS    3
#define CHECK_RESOURCE "fsc-check"

/* preference when several work: the one a stock Finesse opens first */
static const enum fin_xmpp_transport order[NTRANSPORTS] = {
    FIN_XMPP_TRANSPORT_WEBSOCKET, FIN_XMPP_TRANSPORT_TLS,
    FIN_XMPP_TRANSPORT_STARTTLS};

struct check {
    struct cti_config *cfg;
    struct fin_xmpp_loop *loop;
    const char *agent;
    struct cmn_secret *password; /* Finesse password (non-SSO) */
    struct cmn_secret *token;    /* IdS access token (SSO) */
    char sso_session[256];       /* from --handoff: ended at exit */
    int timeout_ms;
    /* per node and transport: the XMPP stream opened (and, with an agent,
     * the session went online) */
    bool works[CTI_MAX_NODES][NTRANSPORTS];
    bool node_ok[CTI_MAX_NODES]; /* REST and SystemInfo */
    char domain[CTI_MAX_NODES][256];
};

/* -- output -----------------------------------------------------------------
 */

static void verdict(const char *v, const char *what, const char *fmt, ...)
    CMN_PRINTF(3, 4);

static void
verdict(const char *v, const char *what, const char *fmt, ...)
{
    va_list ap;

    printf("  %-4s  %-10s ", v, what);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

static void fix(const char *fmt, ...) CMN_PRINTF(1, 2);

static void
fix(const char *fmt, ...)
{
    va_list ap;

    printf("        fix: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

/* -- addresses ------------------------------------------------------------- */

struct node_addr {
    char host[256];
    int port;
    bool https;
};

static int
node_addr(const char *url, struct node_addr *a)
{
    bool tls;
    char path[512];
    char ws[1024];

    /* the WebSocket URL parser knows host and port syntax (IPv6 too) */
    a->https = strncmp(url, "https://", 8) == 0;
    snprintf(ws, sizeof(ws), "%s%s", a->https ? "wss://" : "ws://",
             url + (a->https ? 8 : 7));
    return fin_xmpp_parse_ws_url(ws, &tls, a->host, sizeof(a->host), &a->port,
                                 path, sizeof(path));
}

static bool
check_dns(const char *what, const char *host)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    char addr[INET6_ADDRSTRLEN] = "";
    int rc = getaddrinfo(host, NULL, &hints, &res);

    if (rc != 0 || res == NULL) {
        verdict("FAIL", what, "%s does not resolve: %s", host,
                gai_strerror(rc));
        fix("check the host name in [finesse] nodes and this host's DNS");
        return false;
    }
    if (res->ai_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr,
                  addr, sizeof(addr));
    } else {
        inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr,
                  addr, sizeof(addr));
    }
    freeaddrinfo(res);
    verdict("PASS", what, "%s -> %s", host, addr);
    return true;
}

/* A connect within timeout_ms; a blocking descriptor with I/O timeouts, or
 * -1 and why. */
static int
tcp_connect(const char *host, int port, int timeout_ms, char *why,
            size_t why_len)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    struct timeval tv = {.tv_sec = timeout_ms / 1000,
                         .tv_usec = (timeout_ms % 1000) * 1000};
    char p[8];
    int fd, soerr = 0;
    socklen_t sl = sizeof(soerr);

    snprintf(p, sizeof(p), "%d", port);
    if (getaddrinfo(host, p, &hints, &res) != 0 || res == NULL) {
        snprintf(why, why_len, "does not resolve");
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, why_len, "socket: %s", strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    if (connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        if (errno != EINPROGRESS) {
            soerr = errno;
        } else if (poll(&pfd, 1, timeout_ms) != 1) {
            soerr = ETIMEDOUT;
        } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) {
            soerr = errno;
        }
    }
    freeaddrinfo(res);
    if (soerr != 0) {
        snprintf(why, why_len, "%s",
                 soerr == ETIMEDOUT ? "no answer (filtered?)"
                                    : strerror(soerr));
        close(fd);
        return -1;
    }
    (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

/* -- TLS of the REST port -----------------------------------------------------
 */

static void
print_cert(int depth, X509 *x)
{
    char subject[256] = "", issuer[256] = "", until[64] = "?";
    const ASN1_TIME *na = X509_get0_notAfter(x);
    BIO *b = BIO_new(BIO_s_mem());

    X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
    X509_NAME_oneline(X509_get_issuer_name(x), issuer, sizeof(issuer));
    if (b != NULL && na != NULL && ASN1_TIME_print(b, na) == 1) {
        int n = BIO_read(b, until, sizeof(until) - 1);
        until[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
    printf("                   cert %d: %s, issued by %s, until %s\n", depth,
           subject, issuer, until);
}

/* The likely fix for a certificate verdict (also for XMPP's). */
static void
cert_fix(const struct check *c, const char *error, const char *name)
{
    if (strstr(error, "issuer") != NULL || strstr(error, "self-signed") ||
        strstr(error, "self signed") || strstr(error, "unable to verify")) {
        fix("certificate signed by an unknown CA: set [finesse] ca_file to the "
            "CA (or the node's own certificate) that signed it%s%s",
            c->cfg->ca_file ? " (now " : "",
            c->cfg->ca_file ? c->cfg->ca_file : "");
        if (c->cfg->ca_file) {
            printf("        ... which does not hold it)\n");
        }
    } else if (strstr(error, "mismatch") != NULL) {
        fix("the certificate does not name %s: use the name it carries "
            "(usually the node's FQDN)",
            name);
    } else if (strstr(error, "expired") || strstr(error, "not yet valid")) {
        fix("the certificate is outside its validity dates: renew it on the "
            "node, or check this host's clock");
    } else {
        fix("see the certificate chain above");
    }
}

static bool
check_rest_tls(struct check *c, const struct node_addr *a)
{
    char why[160];
    struct cmn_err err = {{0}};
    SSL_CTX *ctx;
    SSL *ssl;
    long v;
    bool ok;
    int fd = tcp_connect(a->host, a->port, c->timeout_ms, why, sizeof(why));

    if (fd < 0) {
        verdict("FAIL", "tcp", "%s:%d: %s", a->host, a->port, why);
        fix("Finesse REST listens on 8445 (HTTPS): check the port in [finesse] "
            "nodes and the firewall between this host and the node");
        return false;
    }
    verdict("PASS", "tcp", "%s:%d accepts connections", a->host, a->port);
    if (!a->https) {
        verdict("WARN", "tls",
                "plain HTTP: Finesse 12.5+ serves REST on "
                "https://<node>:8445 only");
        close(fd);
        return true;
    }
    ctx = fin_xmpp_loop_tls(c->loop, c->cfg->ca_file, &err);
    if (ctx == NULL) {
        verdict("FAIL", "tls", "%s", err.msg);
        close(fd);
        return false;
    }
    ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        verdict("FAIL", "tls", "out of memory");
        SSL_free(ssl);
        close(fd);
        return false;
    }
    SSL_set_tlsext_host_name(ssl, a->host);
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), a->host) != 1) {
        SSL_set1_host(ssl, a->host);
    }
    ERR_clear_error();
    ok = SSL_connect(ssl) == 1;
    v = SSL_get_verify_result(ssl);
    if (!ok && v == X509_V_OK) {
        unsigned long e = ERR_get_error();
        verdict("FAIL", "tls", "handshake failed: %s",
                e ? ERR_reason_error_string(e) : "connection closed");
        fix("the node does not speak TLS on this port, or there is no TLS "
            "version in common (1.2 or later)");
    } else {
        STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
        if (v == X509_V_OK) {
            verdict("PASS", "tls",
                    "%s, certificate verified against the "
                    "system roots%s%s",
                    SSL_get_version(ssl), c->cfg->ca_file ? " + " : "",
                    c->cfg->ca_file ? c->cfg->ca_file : "");
        } else {
            verdict("FAIL", "tls", "certificate rejected: %s",
                    X509_verify_cert_error_string(v));
        }
        for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
            print_cert(i, sk_X509_value(chain, i));
        }
        if (v != X509_V_OK) {
            cert_fix(c, X509_verify_cert_error_string(v), a->host);
        }
        ok = ok && v == X509_V_OK;
    }
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
    return ok;
}

/* -- REST
 * ---------------------------------------------------------------------- */

static bool
check_systeminfo(struct check *c, int i, struct fin_systeminfo *si)
{
    char url[1024];
    struct cmn_httpc_req req = {.method = "GET",
                                .url = url,
                                .ca_file = c->cfg->ca_file,
                                .timeout_ms = c->timeout_ms};
    struct cmn_httpc_resp resp = {0};
    struct cmn_err err = {{0}};
    bool ok = false;

    snprintf(url, sizeof(url), "%s/finesse/api/SystemInfo", c->cfg->nodes[i]);
    if (cmn_httpc_do(&req, &resp, &err) != CMN_OK) {
        verdict("FAIL", "systeminfo", "%s: %s", url, err.msg);
    } else if (resp.status != 200) {
        verdict("FAIL", "systeminfo", "%s answered HTTP %ld", url, resp.status);
        fix("is this a Finesse node? its REST API is /finesse/api on 8445");
    } else if (fin_parse_systeminfo(resp.body, resp.body_len, si, &err) !=
               CMN_OK) {
        verdict("FAIL", "systeminfo", "not a Finesse SystemInfo: %s", err.msg);
    } else {
        bool in_service = strcmp(si->status, "IN_SERVICE") == 0;
        const char *peer =
            si->secondary.host[0] == '\0' ? "none (single node)"
            : strcmp(si->primary.host, si->secondary.host) != 0 &&
                    strstr(c->cfg->nodes[i], si->primary.host) != NULL
                ? si->secondary.host
                : si->primary.host;
        verdict(in_service ? "PASS" : "WARN", "systeminfo",
                "%s, %s, xmppDomain %s, peer node %s, auth %s", si->status,
                si->deployment_type[0] ? si->deployment_type : "?",
                si->xmpp_domain[0] ? si->xmpp_domain : "?", peer,
                si->system_auth_mode[0] ? si->system_auth_mode : "?");
        if (!in_service) {
            fix("the node is %s: agents fail over to the other node; check "
                "Finesse's CTI connection",
                si->status);
        }
        ok = true;
    }
    cmn_httpc_resp_cleanup(&resp);
    return ok;
}

/* With an agent: the credentials against GET /User/<id>. */
static void
check_credentials(struct check *c, int i)
{
    char url[1024], auth[8192];
    const char *headers[] = {auth, NULL};
    struct cmn_httpc_req req = {.method = "GET",
                                .url = url,
                                .ca_file = c->cfg->ca_file,
                                .timeout_ms = c->timeout_ms};
    struct cmn_httpc_resp resp = {0};
    struct cmn_err err = {{0}};

    snprintf(url, sizeof(url), "%s/finesse/api/User/%s", c->cfg->nodes[i],
             c->agent);
    if (c->token != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
                 (const char *)c->token->data);
        req.headers = headers;
    } else {
        req.basic_user = c->agent;
        req.basic_pass = (const char *)c->password->data;
    }
    if (cmn_httpc_do(&req, &resp, &err) != CMN_OK) {
        verdict("FAIL", "agent", "GET User/%s: %s", c->agent, err.msg);
    } else if (resp.status == 200) {
        verdict("PASS", "agent", "%s: credentials accepted by Finesse REST",
                c->agent);
    } else {
        verdict("FAIL", "agent", "GET User/%s answered HTTP %ld", c->agent,
                resp.status);
        if (resp.status == 401) {
            fix("the %s was refused (or the Agent ID is another user's)",
                c->token != NULL ? "access token" : "password");
        } else {
            fix("check the Agent ID (the Finesse loginId)");
        }
    }
    explicit_bzero(auth, sizeof(auth));
    cmn_httpc_resp_cleanup(&resp);
}

/* -- XMPP
 * ------------------------------------------------------------------------ */

struct xmpp_try {
    char notes[4][320]; /* tcp, tls, websocket, sasl */
    bool stream_open;
    char features[200];
    bool online;
    bool ended;
    bool auth_failed;
    bool fatal;
    char detail[256];
    bool probe; /* no credentials: stop at the features */
    struct fin_xmpp_link *link;
};

static void
try_note(void *cls, const char *what, const char *detail)
{
    struct xmpp_try *t = cls;
    int slot = strcmp(what, "tcp") == 0 ? 0 : strcmp(what, "tls") == 0 ? 1 : 2;

    snprintf(t->notes[slot], sizeof(t->notes[slot]), "%s", detail);
}

static void
try_progress(void *cls, enum fin_xmpp_milestone m, const char *detail)
{
    struct xmpp_try *t = cls;

    if (m == FIN_XMPP_MS_STREAM_OPEN) {
        t->stream_open = true;
    } else if (m == FIN_XMPP_MS_FEATURES && !t->features[0]) {
        snprintf(t->features, sizeof(t->features), "%s", detail);
        if (t->probe) {
            /* no credentials: the stream and its offer are the answer */
            fin_xmpp_session_close(fin_xmpp_link_session(t->link), true);
        }
    } else if (m == FIN_XMPP_MS_BOUND) {
        snprintf(t->notes[3], sizeof(t->notes[3]), "bound as %s", detail);
    }
}

static void
try_event(void *cls, const struct fin_xmpp_event *ev)
{
    struct xmpp_try *t = cls;

    if (ev->kind == FIN_XMPP_ONLINE) {
        t->online = true;
        fin_xmpp_session_close(fin_xmpp_link_session(t->link), true);
    } else if (ev->kind == FIN_XMPP_OFFLINE ||
               ev->kind == FIN_XMPP_AUTH_FAILED) {
        t->ended = true;
        t->auth_failed = ev->kind == FIN_XMPP_AUTH_FAILED;
        t->fatal = ev->fatal;
        snprintf(t->detail, sizeof(t->detail), "%s",
                 ev->detail ? ev->detail : "");
    }
}

/* The fix for a transport that did not work, from what it said. */
static void
transport_fix(const struct check *c, enum fin_xmpp_transport tr,
              const struct xmpp_try *t, const char *where)
{
    const char *d = t->detail;

    if (strstr(d, "certificate") != NULL) {
        const char *e = strstr(d, "rejected: ");
        cert_fix(c, e ? e + 10 : d, where);
    } else if (strstr(d, "upgrade refused") != NULL) {
        fix("%s refused the upgrade: the XMPP WebSocket of Finesse is /ws on "
            "the REST port; check xmpp_websocket_path, or set "
            "xmpp_websocket_urls",
            where);
    } else if (strstr(d, "subprotocol") != NULL) {
        fix("%s does not speak XMPP over WebSocket (RFC 7395): check "
            "xmpp_websocket_path / xmpp_websocket_urls",
            where);
    } else if (t->auth_failed) {
        fix("the agent's %s was refused by the notification service",
            c->token != NULL ? "access token" : "password");
    } else if (strstr(d, "no STARTTLS") != NULL) {
        fix("the server offers no STARTTLS: use xmpp_transport = tls or "
            "websocket, or (test labs only) xmpp_tls = false");
    } else if (strstr(d, "connect failed") != NULL) {
        if (tr == FIN_XMPP_TRANSPORT_STARTTLS) {
            fix("%s closed: Finesse 12.5+ disables 5222 by default; use "
                "xmpp_transport = websocket",
                where);
        } else if (tr == FIN_XMPP_TRANSPORT_TLS) {
            fix("%s closed or filtered: use xmpp_transport = websocket (only "
                "the REST port is needed), or open 5223",
                where);
        } else {
            fix("%s is not reachable: the REST port must be open", where);
        }
    } else if (strstr(d, "timed out") != NULL) {
        fix("the server did not complete the XMPP negotiation: is %s an "
            "XMPP service?",
            where);
    }
}

static void
check_transport(struct check *c, int i, enum fin_xmpp_transport tr,
                const struct node_addr *a)
{
    struct xmpp_try t;
    struct cmn_err err = {{0}};
    char where[600], jid[FIN_ID_MAX + sizeof(c->domain[0]) + 2];
    bool configured = tr == c->cfg->xmpp_transport;
    struct fin_xmpp_target tg = {.transport = tr,
                                 .domain = c->domain[i],
                                 .ca_file = c->cfg->ca_file,
                                 .note = try_note};
    const char *name = fin_xmpp_transport_name(tr);

    memset(&t, 0, sizeof(t));
    tg.note_cls = &t;
    if (tr == FIN_XMPP_TRANSPORT_WEBSOCKET) {
        tg.url = c->cfg->xmpp_ws_urls[i];
        snprintf(where, sizeof(where), "%s", tg.url);
    } else {
        tg.host = configured ? c->cfg->xmpp_hosts[i] : a->host;
        tg.port = configured                     ? c->cfg->xmpp_ports[i]
                  : tr == FIN_XMPP_TRANSPORT_TLS ? 5223
                                                 : 5222;
        snprintf(where, sizeof(where), "%s:%d", tg.host, tg.port);
    }
    t.probe = c->agent == NULL;
    snprintf(jid, sizeof(jid), "%s@%s", c->agent ? c->agent : "probe",
             c->domain[i]);
    struct fin_xmpp_session_opts so = {
        .agent = c->agent ? c->agent : "probe",
        .jid = jid,
        .resource = CHECK_RESOURCE,
        .password = c->token      ? (const char *)c->token->data
                    : c->password ? (const char *)c->password->data
                                  : "",
        .tls_required = tr == FIN_XMPP_TRANSPORT_STARTTLS && c->cfg->xmpp_tls,
        .ping_interval_ms = 10000,
        .negotiation_timeout_ms = c->timeout_ms,
    };
    struct fin_xmpp_session_io io = {
        .event = try_event, .progress = try_progress, .cls = &t};
    t.link = fin_xmpp_link_new(c->loop, &tg, &so, &io, cmn_now_ms(), &err);
    if (t.link == NULL) {
        verdict("FAIL", name, "%s: %s", where, err.msg);
        return;
    }
    {
        struct fin_xmpp_session *s = fin_xmpp_link_session(t.link);
        long long until = cmn_now_ms() + c->timeout_ms + 2000;
        while (!fin_xmpp_session_done(s) && cmn_now_ms() < until) {
            fin_xmpp_loop_run_once(c->loop);
            fin_xmpp_session_tick(s, cmn_now_ms());
        }
        if (!fin_xmpp_session_done(s)) {
            fin_xmpp_session_close(s, true);
            while (!fin_xmpp_session_done(s)) {
                fin_xmpp_loop_run_once(c->loop);
            }
        }
    }
    fin_xmpp_link_free(t.link);

    bool works = t.probe ? t.stream_open : t.online;
    if (works) {
        c->works[i][tr] = true;
        verdict("PASS", name, "%s: %s%s%sXMPP stream opened, offers %s", where,
                t.notes[1][0] ? "TLS " : "", t.notes[1][0] ? t.notes[1] : "",
                t.notes[1][0] ? "; " : "", t.features[0] ? t.features : "?");
        if (t.online) {
            verdict("PASS", "sasl", "%s: %s authenticated, %s, online", name,
                    c->agent, t.notes[3]);
        } else if (!strstr(t.features, "PLAIN")) {
            verdict("WARN", "sasl",
                    "%s: no SASL PLAIN offered: the connector "
                    "signs in with PLAIN",
                    name);
        }
        return;
    }
    verdict(configured ? "FAIL" : "WARN", name, "%s: %s", where,
            t.detail[0]     ? t.detail
            : t.stream_open ? "stream opened, no answer after"
                            : "no answer");
    if (t.notes[0][0] && t.stream_open) {
        printf("                   (%s)\n", t.notes[0]);
    }
    transport_fix(c, tr, &t, where);
}

/* -- SSO handoff
 * --------------------------------------------------------------- */

/* A handoff code for a token, through fsc-sso's service API. */
static int
handoff_token(struct check *c, const char *code)
{
    char url[1024], auth[600], body[512], *esc;
    const char *headers[] = {auth, "Content-Type: application/json", NULL};
    struct cmn_httpc_req req = {.method = "POST",
                                .url = url,
                                .headers = headers,
                                .timeout_ms = c->timeout_ms};
    struct cmn_httpc_resp resp = {0};
    struct cmn_err err = {{0}};
    json_t *j = NULL;
    int rc = 2;

    if (c->cfg->sso_url == NULL || c->cfg->sso_service_key == NULL) {
        fprintf(stderr, "fscctl: --handoff needs [sso] url and "
                        "service_key_file in the connector's config\n");
        return 2;
    }
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
             (const char *)c->cfg->sso_service_key->data);
    snprintf(url, sizeof(url), "%s/v1/handoff", c->cfg->sso_url);
    j = json_pack("{s:s}", "handoff", code);
    esc = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    j = NULL;
    snprintf(body, sizeof(body), "%s", esc ? esc : "{}");
    free(esc);
    req.body = body;
    req.body_len = strlen(body);
    if (cmn_httpc_do(&req, &resp, &err) != CMN_OK || resp.status != 200 ||
        (j = json_loadb(resp.body, resp.body_len, 0, NULL)) == NULL ||
        !json_is_string(json_object_get(j, "session"))) {
        fprintf(stderr, "fscctl: fsc-sso refused the handoff code (%s%ld)\n",
                err.msg, resp.status);
        goto out;
    }
    snprintf(c->sso_session, sizeof(c->sso_session), "%s",
             json_string_value(json_object_get(j, "session")));
    json_decref(j);
    j = NULL;
    cmn_httpc_resp_cleanup(&resp);
    snprintf(url, sizeof(url), "%s/v1/sessions/%s/token", c->cfg->sso_url,
             c->sso_session);
    req.method = "GET";
    req.body = NULL;
    req.body_len = 0;
    headers[1] = NULL;
    if (cmn_httpc_do(&req, &resp, &err) != CMN_OK || resp.status != 200 ||
        (j = json_loadb(resp.body, resp.body_len, 0, NULL)) == NULL ||
        !json_is_string(json_object_get(j, "access_token"))) {
        fprintf(stderr,
                "fscctl: fsc-sso gave no token for the session (%s%ld)\n",
                err.msg, resp.status);
        goto out;
    }
    {
        const char *tok = json_string_value(json_object_get(j, "access_token"));
        c->token = calloc(1, sizeof(*c->token));
        if (c->token != NULL) {
            c->token->data = (unsigned char *)strdup(tok);
            c->token->len = strlen(tok);
        }
    }
    rc = c->token != NULL && c->token->data != NULL ? 0 : 2;
out:
    json_decref(j);
    explicit_bzero(auth, sizeof(auth));
    cmn_httpc_resp_cleanup(&resp);
    return rc;
}

/* The check made its own SSO session: end it (and revoke at IdS). */
static void
handoff_end(struct check *c)
{
    char url[1024], auth[600];
    const char *headers[] = {auth, NULL};
    struct cmn_httpc_req req = {.method = "DELETE",
                                .url = url,
                                .headers = headers,
                                .timeout_ms = c->timeout_ms};
    struct cmn_httpc_resp resp = {0};
    struct cmn_err err = {{0}};

    if (c->sso_session[0] == '\0') {
        return;
    }
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
             (const char *)c->cfg->sso_service_key->data);
    snprintf(url, sizeof(url), "%s/v1/sessions/%s", c->cfg->sso_url,
             c->sso_session);
    if (cmn_httpc_do(&req, &resp, &err) != CMN_OK || resp.status >= 300) {
        fprintf(stderr,
                "fscctl: the check's SSO session could not be ended "
                "(%s%ld); it expires on its own\n",
                err.msg, resp.status);
    }
    explicit_bzero(auth, sizeof(auth));
    cmn_httpc_resp_cleanup(&resp);
}

/* -- the whole check
 * ---------------------------------------------------------------- */

static void
loop_idle(void *cls)
{
    (void)cls;
}

static void
check_node(struct check *c, int i)
{
    struct node_addr a;
    struct fin_systeminfo si;
    bool rest;

    memset(&si, 0, sizeof(si));
    printf("node %c %s\n", 'A' + i, c->cfg->nodes[i]);
    if (node_addr(c->cfg->nodes[i], &a) != CMN_OK) {
        verdict("FAIL", "url", "cannot read host and port from %s",
                c->cfg->nodes[i]);
        return;
    }
    rest = check_dns("dns", a.host) && check_rest_tls(c, &a);
    rest = rest && check_systeminfo(c, i, &si);
    c->node_ok[i] = rest;
    /* the XMPP domain agents' JIDs use: configured, else SystemInfo's */
    snprintf(c->domain[i], sizeof(c->domain[i]), "%s",
             c->cfg->xmpp_domain ? c->cfg->xmpp_domain
             : si.xmpp_domain[0] ? si.xmpp_domain
                                 : a.host);
    if (rest && c->agent != NULL) {
        check_credentials(c, i);
    }
    if (c->cfg->xmpp_transport != FIN_XMPP_TRANSPORT_WEBSOCKET &&
        strcmp(c->cfg->xmpp_hosts[i], a.host) != 0) {
        (void)check_dns("xmpp dns", c->cfg->xmpp_hosts[i]);
    }
    for (int k = 0; k < NTRANSPORTS; k++) {
        check_transport(c, i, order[k], &a);
    }
}

/* The transport to recommend: the configured one if it works on every
 * node, else the first in order that does; -1 if none. */
static int
pick_transport(const struct check *c)
{
    int pick = -1;

    for (int k = -1; k < NTRANSPORTS && pick < 0; k++) {
        enum fin_xmpp_transport tr = k < 0 ? c->cfg->xmpp_transport : order[k];
        bool all = true;
        for (size_t i = 0; i < c->cfg->nnodes; i++) {
            all = all && c->node_ok[i] && c->works[i][tr];
        }
        if (all) {
            pick = (int)tr;
        }
    }
    return pick;
}

static void
print_config(const struct check *c, enum fin_xmpp_transport tr)
{
    printf("\nresult: a configuration that works:\n\n[finesse]\nnodes = ");
    for (size_t i = 0; i < c->cfg->nnodes; i++) {
        printf("%s%s", i ? ", " : "", c->cfg->nodes[i]);
    }
    printf("\nxmpp_transport = %s\n", fin_xmpp_transport_name(tr));
    if (tr == FIN_XMPP_TRANSPORT_WEBSOCKET) {
        if (cmn_config_get(c->cfg->ini, "finesse", "xmpp_websocket_urls")) {
            printf("xmpp_websocket_urls = ");
            for (size_t i = 0; i < c->cfg->nnodes; i++) {
                printf("%s%s", i ? ", " : "", c->cfg->xmpp_ws_urls[i]);
            }
            printf("\n");
        }
    } else if (tr == c->cfg->xmpp_transport) {
        printf("xmpp_addresses = ");
        for (size_t i = 0; i < c->cfg->nnodes; i++) {
            printf("%s%s:%d", i ? ", " : "", c->cfg->xmpp_hosts[i],
                   c->cfg->xmpp_ports[i]);
        }
        printf("\n");
    } else {
        printf("xmpp_port = %d\n", tr == FIN_XMPP_TRANSPORT_TLS ? 5223 : 5222);
    }
    if (c->cfg->xmpp_domain != NULL) {
        printf("xmpp_domain = %s\n", c->cfg->xmpp_domain);
    }
    if (c->cfg->ca_file != NULL) {
        printf("ca_file = %s\n", c->cfg->ca_file);
    }
    if (tr != c->cfg->xmpp_transport) {
        printf("\n(the configuration has xmpp_transport = %s)\n",
               fin_xmpp_transport_name(c->cfg->xmpp_transport));
    }
}

static int
check_usage(void)
{
    fprintf(stderr,
            "usage: fscctl finesse-check --config FILE\n"
            "              [--agent ID (--password-file F | --token-file F | "
            "--handoff CODE)]\n"
            "              [--timeout-s N]\n");
    return 2;
}

int
fscctl_finesse_check(int argc, char **argv)
{
    struct check c;
    struct cmn_err err = {{0}};
    const char *config = NULL, *password_file = NULL, *token_file = NULL;
    const char *handoff = NULL;
    int rc = 2, pick;

    memset(&c, 0, sizeof(c));
    c.timeout_ms = 8000;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) {
            return check_usage();
        }
        if (strcmp(argv[i], "--config") == 0) {
            config = argv[++i];
        } else if (strcmp(argv[i], "--agent") == 0) {
            c.agent = argv[++i];
        } else if (strcmp(argv[i], "--password-file") == 0) {
            password_file = argv[++i];
        } else if (strcmp(argv[i], "--token-file") == 0) {
            token_file = argv[++i];
        } else if (strcmp(argv[i], "--handoff") == 0) {
            handoff = argv[++i];
        } else if (strcmp(argv[i], "--timeout-s") == 0) {
            c.timeout_ms = atoi(argv[++i]) * 1000;
        } else {
            return check_usage();
        }
    }
    if (config == NULL || c.timeout_ms <= 0 ||
        (c.agent != NULL) != (password_file || token_file || handoff) ||
        !!password_file + !!token_file + !!handoff > 1) {
        return check_usage();
    }
    cmn_log_init("fscctl", CMN_LOG_ERR);
    cmn_xml_init();
    c.cfg = cti_config_load(config, &err);
    if (c.cfg == NULL) {
        fprintf(stderr, "fscctl: %s\n", err.msg);
        return 2;
    }
    if ((password_file != NULL &&
         (c.password = cmn_secret_read_file(password_file, 4096, true, &err)) ==
             NULL) ||
        (token_file != NULL && (c.token = cmn_secret_read_file(
                                    token_file, 65536, true, &err)) == NULL)) {
        fprintf(stderr, "fscctl: %s\n", err.msg);
        goto out;
    }
    if (cmn_httpc_global_init() != CMN_OK) {
        goto out;
    }
    if (handoff != NULL && handoff_token(&c, handoff) != 0) {
        goto out;
    }
    c.loop = fin_xmpp_loop_new(1024, &err);
    if (c.loop == NULL) {
        fprintf(stderr, "fscctl: %s\n", err.msg);
        goto out;
    }
    /* wake the loop often enough for the sessions' timers */
    fin_xmpp_loop_every(c.loop, 50, loop_idle, NULL);
    printf("finesse-check: %s (%zu node%s, xmpp_transport = %s%s%s)\n", config,
           c.cfg->nnodes, c.cfg->nnodes > 1 ? "s" : "",
           fin_xmpp_transport_name(c.cfg->xmpp_transport),
           c.agent ? ", agent " : "", c.agent ? c.agent : "");
    for (size_t i = 0; i < c.cfg->nnodes; i++) {
        check_node(&c, (int)i);
    }
    pick = pick_transport(&c);
    if (pick < 0) {
        printf("\nresult: no transport worked on every node; see the fixes "
               "above\n");
        rc = 1;
    } else {
        print_config(&c, (enum fin_xmpp_transport)pick);
        rc = 0;
    }
out:
    handoff_end(&c);
    fin_xmpp_loop_free(c.loop);
    cmn_secret_free(c.password);
    cmn_secret_free(c.token);
    cti_config_free(c.cfg);
    return rc;
}
