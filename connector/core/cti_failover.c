/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_failover.c - Finesse A/B: which node the agents use, what happens
 * when it fails (everyone moves, User and Dialogs are fetched again on the
 * other node, XMPP reconnects there, a LOGOUT the move causes is not
 * shown), and when a failed node is back. Failback is not automatic: like
 * the Finesse desktop, agents stay where they are. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_log.h"
#include "cti_engine_int.h"
#include "fin_parse.h"

int
engine_active_node(struct cti_engine *e)
{
    int n;

    pthread_mutex_lock(&e->lock);
    n = e->active;
    pthread_mutex_unlock(&e->lock);
    return n;
}

void
engine_xmpp_connect(struct cti_engine *e, struct cti_session *s)
{
    char jid[FIN_ID_MAX + FIN_NAME_MAX + 2], host[FIN_NAME_MAX];
    bool websocket = e->cfg->xmpp_transport == FIN_XMPP_TRANSPORT_WEBSOCKET;
    int rc;

    pthread_mutex_lock(&s->lock);
    if (s->ended || e->xmpp_domain[0] == '\0') {
        pthread_mutex_unlock(&s->lock);
        return;
    }
    snprintf(jid, sizeof(jid), "%s@%s", s->id, e->xmpp_domain);
    snprintf(host, sizeof(host), "%s", e->cfg->xmpp_hosts[s->node]);
    /* SSO agents log in to XMPP with their access token (reference/
     * finesse.md §2, unverified on a lab system: kept in this one place) */
    const char *secret =
        s->password != NULL ? (const char *)s->password->data : s->bearer;
    struct fin_xmpp_login login = {
        .agent = s->id,
        .jid = jid,
        .password = secret != NULL ? secret : "",
        /* websocket: the node's URL; tls/starttls: its host and port */
        .host = websocket ? NULL : host,
        .port = websocket ? 0 : e->cfg->xmpp_ports[s->node],
        .url = websocket ? e->cfg->xmpp_ws_urls[s->node] : NULL,
        .resource = e->cfg->xmpp_resource,
        .tls_required = e->cfg->xmpp_tls,
        .ca_file = e->cfg->ca_file,
    };
    s->xmpp_connecting = true;
    s->xmpp_online = false; /* until the new connection says so */
    s->xmpp_node = s->node;
    rc = fin_xmpp_pool_connect(e->xmpp, &login);
    if (rc != CMN_OK) {
        s->xmpp_connecting = false;
        s->xmpp_retry_at_ms = cmn_now_ms() + 2000;
    }
    pthread_mutex_unlock(&s->lock);
}

struct resync_job {
    struct cti_engine *e;
    struct cti_session *s;
    bool reconnect_xmpp;
};

static void
resync_job(void *arg)
{
    struct resync_job *j = arg;

    engine_resync(j->e, j->s, j->reconnect_xmpp);
    session_unref(j->s);
    free(j);
}

void
engine_resync_later(struct cti_engine *e, struct cti_session *s,
                    bool reconnect_xmpp)
{
    struct resync_job *j = malloc(sizeof(*j));

    if (j == NULL) {
        return;
    }
    atomic_fetch_add(&s->refs, 1);
    j->e = e;
    j->s = s;
    j->reconnect_xmpp = reconnect_xmpp;
    if (cmn_jobs_submit(e->jobs, resync_job, j) != CMN_OK) {
        session_unref(s);
        free(j);
    }
}

void
engine_node_down(struct cti_engine *e, int node, const char *why)
{
    struct cti_session **list = NULL;
    size_t n = 0;
    int to;

    pthread_mutex_lock(&e->lock);
    if (!e->nodes[node].up) {
        pthread_mutex_unlock(&e->lock);
        return;
    }
    e->nodes[node].up = false;
    e->nodes[node].down_since_ms = cmn_now_ms();
    e->nodes[node].next_check_ms = cmn_now_ms() + e->cfg->failover_check_ms;
    to = node;
    for (size_t i = 0; i < e->cfg->nnodes; i++) {
        if ((int)i != node && e->nodes[i].up) {
            to = (int)i;
        }
    }
    e->active = to;
    if (to != node) {
        list = malloc((e->nsessions + 1) * sizeof(*list));
        for (struct cti_session *s = e->sessions; s != NULL && list != NULL;
             s = s->next) {
            if (s->node == node) {
                atomic_fetch_add(&s->refs, 1);
                list[n++] = s;
            }
        }
    }
    pthread_mutex_unlock(&e->lock);
    cmn_log_warn("event=finesse_node_down node=%d why=\"%s\" failover_to=%d "
                 "agents=%zu",
                 node, why, to, n);
    for (size_t i = 0; i < n; i++) {
        struct cti_session *s = list[i];

        pthread_mutex_lock(&s->lock);
        s->node = to;
        s->failover_until_ms = cmn_now_ms() + FAILOVER_GRACE_MS;
        pthread_mutex_unlock(&s->lock);
        engine_resync_later(e, s, true);
        session_unref(s);
    }
    free(list);
}

void
engine_resync(struct cti_engine *e, struct cti_session *s, bool reconnect_xmpp)
{
    struct fin_rest_resp resp;
    struct cmn_err err = {{0}};
    char path[FIN_URI_MAX];

    if (reconnect_xmpp) {
        engine_xmpp_connect(e, s);
    }
    snprintf(path, sizeof(path), "/finesse/api/User/%s", s->id);
    if (engine_rest(e, s, "GET", path, NULL, NULL, &resp, &err) == CMN_OK) {
        struct fin_user u;
        if (fin_parse_user(resp.body, resp.body_len, &u, &err) == CMN_OK) {
            engine_apply_user(e, s, &u);
        }
    }
    fin_rest_resp_cleanup(&resp);
    snprintf(path, sizeof(path), "/finesse/api/User/%s/Dialogs", s->id);
    if (engine_rest(e, s, "GET", path, NULL, NULL, &resp, &err) == CMN_OK) {
        struct fin_dialogs list = {0};
        if (fin_parse_dialogs(resp.body, resp.body_len, &list, &err) ==
            CMN_OK) {
            cti_agent_replace_dialogs(s->agent, &list);
        }
        fin_dialogs_free(&list);
    }
    fin_rest_resp_cleanup(&resp);
    cmn_log_info("event=agent_resynced agent=%s node=%d", s->id, s->node);
}

struct check_job {
    struct cti_engine *e;
    int node;
};

static void
check_job(void *arg)
{
    struct check_job *j = arg;
    struct cti_engine *e = j->e;
    struct fin_rest_resp resp;
    struct fin_auth none = {0};
    struct cmn_err err = {{0}};
    struct fin_systeminfo si;
    bool up = false;

    /* SystemInfo answers without credentials; a 401 still proves the node
     * is serving, but only IN_SERVICE brings it back */
    if (fin_rest_call(&e->rest, e->cfg->nodes[j->node], "GET",
                      "/finesse/api/SystemInfo", &none, NULL, NULL, &resp,
                      &err) == CMN_OK &&
        fin_parse_systeminfo(resp.body, resp.body_len, &si, &err) == CMN_OK) {
        up = strcmp(si.status, "IN_SERVICE") == 0;
    }
    fin_rest_resp_cleanup(&resp);
    pthread_mutex_lock(&e->lock);
    bool was_up = e->nodes[j->node].up;
    e->nodes[j->node].probing = false;
    if (up && !was_up) {
        e->nodes[j->node].up = true;
        cmn_log_notice("event=finesse_node_up node=%d", j->node);
    } else if (!was_up) {
        e->nodes[j->node].next_check_ms =
            cmn_now_ms() + e->cfg->failover_check_ms;
    }
    pthread_mutex_unlock(&e->lock);
    if (was_up && !up) {
        /* probed because an agent's XMPP dropped: the node is gone */
        engine_node_down(e, j->node, "SystemInfo not IN_SERVICE");
    }
    free(j);
}

static void
submit_check(struct cti_engine *e, int node)
{
    struct check_job *j = malloc(sizeof(*j));

    if (j == NULL) {
        return;
    }
    j->e = e;
    j->node = node;
    if (cmn_jobs_submit(e->jobs, check_job, j) != CMN_OK) {
        pthread_mutex_lock(&e->lock);
        e->nodes[node].probing = false;
        pthread_mutex_unlock(&e->lock);
        free(j);
    }
}

void
engine_probe_node(struct cti_engine *e, int node)
{
    bool go;

    pthread_mutex_lock(&e->lock);
    go = e->nodes[node].up && !e->nodes[node].probing;
    e->nodes[node].probing = e->nodes[node].probing || go;
    pthread_mutex_unlock(&e->lock);
    if (go) {
        submit_check(e, node);
    }
}

void
engine_check_nodes(struct cti_engine *e)
{
    long long now = cmn_now_ms();

    for (size_t i = 0; i < e->cfg->nnodes; i++) {
        bool due;
        pthread_mutex_lock(&e->lock);
        due = !e->nodes[i].up && !e->nodes[i].probing &&
              now >= e->nodes[i].next_check_ms;
        e->nodes[i].probing = e->nodes[i].probing || due;
        pthread_mutex_unlock(&e->lock);
        if (due) {
            submit_check(e, (int)i);
        }
    }
}
