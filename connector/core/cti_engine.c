/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_engine.c - the engine's lifecycle, the session and token
 * registries, the once-a-second tick and statistics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmn_log.h"
#include "cmn_seal.h"
#include "cti_calls.h"
#include "cti_engine_int.h"

static unsigned
bucket_of(const char *hash)
{
    unsigned h = 2166136261u;

    for (const char *p = hash; *p; p++) {
        h = (h ^ (unsigned char)*p) * 16777619u;
    }
    return h % TOKEN_BUCKETS;
}

static int engine_salesforce_start(struct cti_engine *e, struct cmn_err *err);

struct cti_engine *
cti_engine_new(const struct cti_config *cfg, const char *self_exe,
               struct cmn_err *err)
{
    struct cti_engine *e = calloc(1, sizeof(*e));
    /* the workers log at the connector's level */
    static const char *const levels[] = {"err", "warn", "notice", "info",
                                         "debug"};
    const char *worker_argv[] = {"fsc-connector", "--xmpp-worker",
                                 "--log-level", levels[cfg->log_level], NULL};

    if (e == NULL) {
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    e->cfg = cfg;
    pthread_mutex_init(&e->lock, NULL);
    pthread_mutex_init(&e->calls_lock, NULL);
    pthread_cond_init(&e->waiters_cv, NULL);
    e->rest.ca_file = cfg->ca_file;
    e->rest.timeout_ms = cfg->rest_timeout_ms;
    for (size_t i = 0; i < cfg->nnodes; i++) {
        e->nodes[i].up = true;
    }
    if (cfg->xmpp_domain != NULL) {
        snprintf(e->xmpp_domain, sizeof(e->xmpp_domain), "%s",
                 cfg->xmpp_domain);
    }
    e->throttle_agent = cti_throttle_new((unsigned)cfg->login_max_failures,
                                         cfg->login_lockout_s * 1000,
                                         cfg->login_lockout_s * 1000);
    e->throttle_addr = cti_throttle_new(
        (unsigned)cfg->login_max_failures_per_address,
        cfg->login_lockout_s * 1000, cfg->login_lockout_s * 1000);
    e->m_resumed = cmn_metric_counter(
        "fsc_connector_sessions_resumed_total",
        "Agent sessions picked up from Redis (a restart, another host)");
    e->m_throttled =
        cmn_metric_counter("fsc_connector_logins_throttled_total",
                           "Password sign-ins refused after too many failures");
    e->m_spooled = cmn_metric_counter(
        "fsc_connector_tasks_spooled_total",
        "Call logs Redis did not take, kept in the local spool");
    e->m_spool_waiting = cmn_metric_gauge(
        "fsc_connector_spool_waiting",
        "1 while the local spool holds call logs not yet in the outbox");
    e->m_pops = cmn_metric_counter(
        "fsc_connector_pops_total",
        "Screen pops decided and sent to one of the agent's tabs");
    e->m_pop_reoffers = cmn_metric_counter(
        "fsc_connector_pop_reoffers_total",
        "Screen pops offered to another tab: the first did not claim in "
        "time or went away");
    e->m_pops_skipped = cmn_metric_counter(
        "fsc_connector_pops_skipped_total",
        "Screen pops not sent: the call was popped before (another host, "
        "or this one before a restart)");
    e->lease = cti_lease_new(cfg, err);
    e->resume = e->lease != NULL ? cti_resume_new(cfg, err) : NULL;
    e->popmark = e->lease != NULL ? cti_popmark_new(cfg, err) : NULL;
    if (cfg->redis_enabled &&
        (e->lease == NULL || e->popmark == NULL ||
         (cfg->session_key_file != NULL && e->resume == NULL))) {
        cti_engine_free(e);
        return NULL;
    }
    if (engine_salesforce_start(e, err) != CMN_OK) {
        cti_engine_free(e);
        return NULL;
    }
    /* jobs block on Finesse, fsc-sso and the XMPP handshake of a sign-in:
     * enough of them that 2,000 agents signing in at once do not queue */
    e->jobs = cmn_jobs_new(32, 10000);
    struct fin_xmpp_pool_opts xo = {
        .worker_path = self_exe,
        .worker_argv = worker_argv,
        .agents_per_worker = (int)cfg->agents_per_worker,
        .ping_interval_s = (int)cfg->ping_interval_s,
        .ping_timeout_s = 2 * (int)cfg->ping_interval_s,
        .connects_per_100ms = (int)cfg->xmpp_connects_per_s / 10,
        .transport = cfg->xmpp_transport,
    };
    e->xmpp = fin_xmpp_pool_new(&xo, engine_on_xmpp, e, err);
    if (e->jobs == NULL || e->xmpp == NULL) {
        cti_engine_free(e);
        return NULL;
    }
    return e;
}

void
cti_engine_free(struct cti_engine *e)
{
    if (e == NULL) {
        return;
    }
    /* jobs first: they may still use sessions and the pool */
    cmn_jobs_free(e->jobs);
    fin_xmpp_pool_free(e->xmpp);
    cti_lease_free(e->lease);
    cti_resume_free(e->resume);
    cti_popmark_free(e->popmark);
    cti_throttle_free(e->throttle_agent);
    cti_throttle_free(e->throttle_addr);
    /* outbox, then its client, then the config it borrows from; every
     * writer is told first, so the blocked reads end together (one by one
     * they took up to block_ms each) */
    for (size_t i = 0; i < e->nwriters; i++) {
        sf_outbox_stop_begin(e->writers[i]);
    }
    for (size_t i = 0; i < e->nwriters; i++) {
        sf_outbox_free(e->writers[i]);
    }
    free(e->writers);
    sf_spool_close(e->spool);
    sf_free(e->sf);
    cmn_redis_free(e->sf_redis);
    sf_config_cleanup(&e->sfcfg);
    while (e->sessions != NULL) {
        struct cti_session *s = e->sessions;
        e->sessions = s->next;
        cti_agent_detach_all(s->agent);
        session_unref(s);
    }
    for (size_t b = 0; b < TOKEN_BUCKETS; b++) {
        while (e->tokens[b] != NULL) {
            struct token_entry *t = e->tokens[b];
            e->tokens[b] = t->next;
            free(t);
        }
    }
    cti_calls_free_all(e);
    pthread_cond_destroy(&e->waiters_cv);
    pthread_mutex_destroy(&e->calls_lock);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

struct cmn_jobs *
cti_engine_jobs(struct cti_engine *e)
{
    return e->jobs;
}

void
session_unref(struct cti_session *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1) {
        return;
    }
    cti_agent_unref(s->agent);
    cmn_secret_free(s->password);
    cmn_secret_free(s->sso_session);
    if (s->bearer != NULL) {
        cmn_wipe(s->bearer, strlen(s->bearer));
        free(s->bearer);
    }
    pthread_cond_destroy(&s->xmpp_cv);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* Every XMPP event looks its agent up: a hash, not a list walk under the
 * engine lock. */
static unsigned
session_bucket(const char *id)
{
    return bucket_of(id) % SESSION_BUCKETS;
}

void
engine_add_session_locked(struct cti_engine *e, struct cti_session *s)
{
    unsigned b = session_bucket(s->id);

    atomic_fetch_add(&s->refs, 1);
    s->next = e->sessions;
    e->sessions = s;
    s->next_by_id = e->by_id[b];
    e->by_id[b] = s;
    e->nsessions++;
}

bool
engine_add_session_if_absent(struct cti_engine *e, struct cti_session *s)
{
    pthread_mutex_lock(&e->lock);
    for (struct cti_session *o = e->by_id[session_bucket(s->id)]; o != NULL;
         o = o->next_by_id) {
        if (strcmp(o->id, s->id) == 0) {
            pthread_mutex_unlock(&e->lock);
            return false;
        }
    }
    engine_add_session_locked(e, s);
    pthread_mutex_unlock(&e->lock);
    return true;
}

struct cti_session *
engine_find_session(struct cti_engine *e, const char *id)
{
    struct cti_session *s;

    pthread_mutex_lock(&e->lock);
    for (s = e->by_id[session_bucket(id)]; s != NULL; s = s->next_by_id) {
        if (strcmp(s->id, id) == 0) {
            atomic_fetch_add(&s->refs, 1);
            break;
        }
    }
    pthread_mutex_unlock(&e->lock);
    return s;
}

void
engine_new_request_id(struct cti_engine *e, char out[40])
{
    char rnd[12];

    if (cmn_random_id(rnd, sizeof(rnd), 6) != CMN_OK) {
        snprintf(rnd, sizeof(rnd), "x");
    }
    snprintf(out, 40, "fsc-%u-%s", atomic_fetch_add(&e->request_seq, 1), rnd);
}

/* --- tokens (the API's bearer tokens; only their hashes are kept) --- */

int
engine_token_issue(struct cti_engine *e, struct cti_session *s,
                   char token[CTI_TOKEN_LEN])
{
    struct token_entry *t = calloc(1, sizeof(*t));

    if (t == NULL || cmn_random_id(token, CTI_TOKEN_LEN, 32) != CMN_OK) {
        free(t);
        return CMN_ERR;
    }
    cmn_sha256_hex(token, strlen(token), t->hash);
    t->s = s;
    pthread_mutex_lock(&e->lock);
    unsigned b = bucket_of(t->hash);
    t->next = e->tokens[b];
    e->tokens[b] = t;
    pthread_mutex_unlock(&e->lock);
    if (cti_resume_save_token(e->resume, s->id, t->hash) != CMN_OK) {
        /* the token works here; only a resume elsewhere would not know it */
        cmn_log_warn("event=resume_token_not_saved agent=%s", s->id);
    }
    return CMN_OK;
}

void
engine_token_adopt(struct cti_engine *e, struct cti_session *s,
                   const char hash[65])
{
    struct token_entry *t = calloc(1, sizeof(*t));

    if (t == NULL) {
        return;
    }
    memcpy(t->hash, hash, sizeof(t->hash));
    t->s = s;
    pthread_mutex_lock(&e->lock);
    for (struct token_entry *o = e->tokens[bucket_of(hash)]; o != NULL;
         o = o->next) {
        if (strcmp(o->hash, hash) == 0) {
            pthread_mutex_unlock(&e->lock);
            free(t);
            return; /* adopted already (two requests raced) */
        }
    }
    unsigned b = bucket_of(t->hash);
    t->next = e->tokens[b];
    e->tokens[b] = t;
    pthread_mutex_unlock(&e->lock);
}

struct cti_session *
engine_session_by_token(struct cti_engine *e, const char *token)
{
    char hash[65];
    struct cti_session *s = NULL;

    if (token == NULL || strlen(token) != CTI_TOKEN_LEN - 1) {
        return NULL;
    }
    cmn_sha256_hex(token, strlen(token), hash);
    pthread_mutex_lock(&e->lock);
    for (struct token_entry *t = e->tokens[bucket_of(hash)]; t != NULL;
         t = t->next) {
        if (cmn_ct_streq(t->hash, hash) && !t->s->ended) {
            s = t->s;
            atomic_fetch_add(&s->refs, 1);
            break;
        }
    }
    pthread_mutex_unlock(&e->lock);
    return s;
}

struct cti_agent *
cti_engine_agent(struct cti_engine *e, const char *token)
{
    struct cti_session *s = engine_session_by_token(e, token);
    struct cti_agent *a = NULL;

    if (s != NULL) {
        a = s->agent;
        cti_agent_ref(a);
        session_unref(s);
    }
    return a;
}

void
engine_remove_session_locked(struct cti_engine *e, struct cti_session *s)
{
    for (struct cti_session **pp = &e->sessions; *pp != NULL;
         pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            e->nsessions--;
            break;
        }
    }
    for (struct cti_session **pp = &e->by_id[session_bucket(s->id)];
         *pp != NULL; pp = &(*pp)->next_by_id) {
        if (*pp == s) {
            *pp = s->next_by_id;
            break;
        }
    }
    for (size_t b = 0; b < TOKEN_BUCKETS; b++) {
        for (struct token_entry **pp = &e->tokens[b]; *pp != NULL;) {
            if ((*pp)->s == s) {
                struct token_entry *t = *pp;
                *pp = t->next;
                free(t);
            } else {
                pp = &(*pp)->next;
            }
        }
    }
    s->ended = true;
}

/* --- tick --- */

struct tabs_closed_job {
    struct cti_engine *e;
    struct cti_session *s;
};

static void
tabs_closed_job(void *arg)
{
    struct tabs_closed_job *j = arg;
    struct cti_result r = {0};
    struct fin_user u;

    cti_agent_user(j->s->agent, &u);
    if (strcmp(u.state, "READY") == 0 || strcmp(u.state, "NOT_READY") == 0) {
        cmn_log_notice("event=all_tabs_closed agent=%s state=%s", j->s->id,
                       j->e->cfg->tabs_closed_state);
        cti_engine_set_state(j->e, j->s->agent, j->e->cfg->tabs_closed_state,
                             j->e->cfg->tabs_closed_reason, &r);
    }
    session_unref(j->s);
    free(j);
}

static void
engine_tabs_closed_later(struct cti_engine *e, struct cti_session *s)
{
    struct tabs_closed_job *j = malloc(sizeof(*j));

    if (j == NULL) {
        return;
    }
    atomic_fetch_add(&s->refs, 1);
    j->e = e;
    j->s = s;
    if (cmn_jobs_submit(e->jobs, tabs_closed_job, j) != CMN_OK) {
        session_unref(s);
        free(j);
    }
}

void
cti_engine_tick(struct cti_engine *e)
{
    long long now = cmn_now_ms();
    struct cti_session **list;
    size_t n = 0;

    bool ping = now - e->last_ping_ms >= e->cfg->sse_ping_s * 1000;
    bool renew = e->lease != NULL &&
                 now - e->last_renew_ms >= e->cfg->agent_lease_s * 1000 / 3;

    if (ping) {
        e->last_ping_ms = now;
    }
    if (renew) {
        e->last_renew_ms = now;
    }
    engine_check_nodes(e);
    cti_calls_expire(e);
    engine_spool_drain_later(e);
    pthread_mutex_lock(&e->lock);
    list = malloc((e->nsessions + 1) * sizeof(*list));
    for (struct cti_session *s = e->sessions; s != NULL && list != NULL;
         s = s->next) {
        atomic_fetch_add(&s->refs, 1);
        list[n++] = s;
    }
    pthread_mutex_unlock(&e->lock);
    for (size_t i = 0; i < n; i++) {
        struct cti_session *s = list[i];
        size_t tabs = ping ? cti_agent_heartbeat(s->agent) : 1;
        bool reconnect = false;

        if (renew && !cti_lease_renew(e->lease, s->id)) {
            /* another host took the agent over (we stalled past the
             * lease): stop driving it, without signing it out */
            cmn_log_warn("event=agent_lease_lost agent=%s", s->id);
            cti_resume_disown(e->resume, s->id);
            fin_xmpp_pool_disconnect(e->xmpp, s->id);
            pthread_mutex_lock(&e->lock);
            if (!s->ended) {
                engine_remove_session_locked(e, s);
                session_unref(s); /* the registry's */
            }
            pthread_mutex_unlock(&e->lock);
            cti_agent_emit_error(s->agent, NULL, "session_moved",
                                 "this agent is now served by another host");
            cti_agent_detach_all(s->agent);
            session_unref(s);
            continue;
        }

        /* a pop offered to a tab that went or did not claim it in time
         * moves on to the next tab */
        size_t moved = cti_agent_pops_tick(s->agent, now);
        if (moved > 0) {
            cmn_metric_add(e->m_pop_reoffers, (double)moved);
        }

        bool tabs_closed = false;
        pthread_mutex_lock(&s->lock);
        if (tabs > 0) {
            s->no_tabs_since_ms = 0;
            s->tabs_closed_applied = false;
        } else if (s->no_tabs_since_ms == 0) {
            s->no_tabs_since_ms = now;
        } else if (e->cfg->tabs_closed_after_s > 0 && !s->tabs_closed_applied &&
                   now - s->no_tabs_since_ms >=
                       e->cfg->tabs_closed_after_s * 1000) {
            /* every Salesforce tab has been closed that long: nobody can
             * take a call, so stop routing them here */
            s->tabs_closed_applied = true;
            tabs_closed = true;
        }
        bool touch =
            e->resume != NULL && now - s->resume_touched_ms >= RESUME_TOUCH_MS;
        if (touch) {
            s->resume_touched_ms = now;
        }
        bool check_login = false;
        if (s->login_check_at_ms != 0 && now >= s->login_check_at_ms &&
            !s->logout_requested) {
            s->login_check_at_ms = 0;
            check_login = true;
        }
        if (!s->xmpp_online && !s->xmpp_connecting &&
            s->xmpp_retry_at_ms != 0 && now >= s->xmpp_retry_at_ms) {
            s->xmpp_retry_at_ms = 0;
            reconnect = true;
        }
        pthread_mutex_unlock(&s->lock);
        if (reconnect) {
            engine_xmpp_connect(e, s);
        }
        if (tabs_closed) {
            engine_tabs_closed_later(e, s);
        }
        if (touch) {
            /* the record outlives the session's idle limit only while the
             * session is alive */
            cti_resume_touch(e->resume, s->id);
        }
        if (check_login && !reconnect) {
            /* a notification lost between the server and us (Finesse
             * does not replay them) would leave the tabs showing
             * LOGOUT for a signed-in agent until its next event */
            struct fin_user u;
            cti_agent_user(s->agent, &u);
            if (strcmp(u.state, "LOGOUT") == 0) {
                cmn_log_warn("event=login_unconfirmed agent=%s", s->id);
                engine_resync_later(e, s, false);
            }
        }
        session_unref(s);
    }
    free(list);
}

void
cti_engine_stats(struct cti_engine *e, struct cti_engine_stats *st)
{
    memset(st, 0, sizeof(*st));
    pthread_mutex_lock(&e->lock);
    st->sessions = e->nsessions;
    for (struct cti_session *s = e->sessions; s != NULL; s = s->next) {
        st->xmpp_online += s->xmpp_online ? 1 : 0;
    }
    st->active_node = e->active;
    for (size_t i = 0; i < e->cfg->nnodes; i++) {
        st->nodes_up[i] = e->nodes[i].up;
    }
    pthread_mutex_unlock(&e->lock);
    int conns = 0;
    fin_xmpp_pool_stats(e->xmpp, &conns, &st->xmpp_workers);
}

/* [salesforce]: the REST client and the durable outbox whose consumer
 * writes the Tasks. */
static int
engine_salesforce_start(struct cti_engine *e, struct cmn_err *err)
{
    struct sf_outbox_opts o;

    if (sf_config_load(e->cfg->ini, &e->sfcfg, err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (!e->sfcfg.sf_enabled) {
        return CMN_OK;
    }
    e->sf = sf_new(&e->sfcfg, err);
    e->sf_redis = e->sf != NULL ? cmn_redis_new(&e->sfcfg.redis, err) : NULL;
    if (e->sf_redis == NULL) {
        return CMN_ERR;
    }
    sf_outbox_opts_from_config(&e->sfcfg, &o);
    e->writers = calloc((size_t)e->sfcfg.outbox_writers, sizeof(*e->writers));
    if (e->writers == NULL) {
        cmn_err_set(err, "out of memory");
        return CMN_NOMEM;
    }
    /* several consumers of the one group: entries are spread over them and
     * each has one upsert in flight; the upsert merges fields, so two
     * entries of one call written out of order lose nothing */
    char host[128], name[192];
    if (gethostname(host, sizeof(host)) != 0) {
        snprintf(host, sizeof(host), "fsc");
    }
    host[sizeof(host) - 1] = '\0';
    for (long i = 0; i < e->sfcfg.outbox_writers; i++) {
        snprintf(name, sizeof(name), "%s:%d:%ld", host, (int)getpid(), i);
        o.consumer = name;
        e->writers[i] = sf_outbox_new(e->sf_redis, e->sf, &o, err);
        if (e->writers[i] == NULL ||
            sf_outbox_start(e->writers[i], err) != CMN_OK) {
            return CMN_ERR;
        }
        e->nwriters++;
    }
    e->outbox = e->writers[0];
    if (e->sfcfg.spool_dir != NULL) {
        e->spool = sf_spool_open(e->sfcfg.spool_dir, err);
        if (e->spool == NULL) {
            return CMN_ERR;
        }
    }
    return CMN_OK;
}

#define TASK_PUT_TRIES 3

static int
spool_put(void *ud, const char *dialog, json_t *fields)
{
    struct cti_engine *e = ud;
    struct cmn_err err = {{0}};

    return sf_outbox_put(e->outbox, dialog, fields, &err);
}

static void
spool_drain_job(void *arg)
{
    struct cti_engine *e = arg;
    long n = sf_spool_drain(e->spool, spool_put, e);

    if (n > 0) {
        cmn_log_notice("event=spool_drained tasks=%ld pending=%d", n,
                       sf_spool_pending(e->spool) ? 1 : 0);
    }
    atomic_store(&e->spool_draining, false);
}

void
engine_spool_drain_later(struct cti_engine *e)
{
    bool idle = false;
    bool waiting = e->spool != NULL && sf_spool_pending(e->spool);

    cmn_metric_set(e->m_spool_waiting, waiting ? 1.0 : 0.0);
    if (!waiting ||
        !atomic_compare_exchange_strong(&e->spool_draining, &idle, true)) {
        return;
    }
    if (cmn_jobs_submit(e->jobs, spool_drain_job, e) != CMN_OK) {
        atomic_store(&e->spool_draining, false);
    }
}

void
engine_log_task(struct cti_engine *e, const char *agent, const char *dialog_id,
                json_t *fields)
{
    struct cmn_err err = {{0}};
    char owner[19];

    if (e->outbox == NULL) {
        /* without [salesforce] there is nowhere to write the Task */
        cmn_log_info("event=task_not_written agent=%s dialog=%s "
                     "reason=salesforce_not_configured",
                     agent, dialog_id);
        json_decref(fields);
        return;
    }
    /* the agent's Salesforce user owns the Task; the lookup is cached, so
     * an outage later in the shift does not lose it. Unknown: the Task
     * falls back to the integration user and says so in the log. */
    if (sf_user_for_agent(e->sf, agent, owner, &err) == CMN_OK) {
        json_object_set_new(fields, "OwnerId", json_string(owner));
    } else {
        cmn_log_warn("event=task_owner_unknown agent=%s detail=\"%s\"", agent,
                     err.msg);
    }
    /* "a call log accepted is a call log written": it is accepted once
     * Redis has it (durably), or the local spool does. While the spool
     * holds call logs, new ones queue behind them (a wrap-up update must
     * not overtake its call's end). */
    for (int i = 0; i < TASK_PUT_TRIES; i++) {
        if (e->spool != NULL && sf_spool_pending(e->spool)) {
            break;
        }
        if (sf_outbox_put(e->outbox, dialog_id, fields, &err) == CMN_OK) {
            cmn_log_info("event=task_queued agent=%s dialog=%s", agent,
                         dialog_id);
            json_decref(fields);
            return;
        }
        if (e->spool != NULL) {
            break; /* no need to hold a job thread: spool it */
        }
        struct timespec ts = {1L << i, 0};
        nanosleep(&ts, NULL);
    }
    if (e->spool != NULL &&
        sf_spool_append(e->spool, dialog_id, fields, &err) == CMN_OK) {
        cmn_log_warn("event=task_spooled agent=%s dialog=%s", agent, dialog_id);
        cmn_metric_inc(e->m_spooled);
        json_decref(fields);
        return;
    }
    cmn_log_err("event=task_not_queued agent=%s dialog=%s detail=\"%s\"", agent,
                dialog_id, err.msg);
    json_decref(fields);
}

struct sf_outbox *
cti_engine_outbox(struct cti_engine *e)
{
    return e->outbox;
}

void
cti_engine_outbox_stats(struct cti_engine *e, struct sf_outbox_stats *sum)
{
    memset(sum, 0, sizeof(*sum));
    for (size_t i = 0; i < e->nwriters; i++) {
        struct sf_outbox_stats one;
        sf_outbox_stats(e->writers[i], &one);
        sum->written += one.written;
        sum->retries += one.retries;
        sum->dead += one.dead;
        sum->reclaimed += one.reclaimed;
    }
}

struct owner_job {
    struct cti_engine *e;
    char agent[FIN_ID_MAX];
};

static void
owner_job(void *arg)
{
    struct owner_job *j = arg;
    struct cmn_err err = {{0}};
    char owner[19];

    /* warm the agent -> Salesforce user cache now, so Tasks written during
     * a later Salesforce outage still get their owner */
    if (sf_user_for_agent(j->e->sf, j->agent, owner, &err) != CMN_OK) {
        cmn_log_warn("event=sf_user_unknown agent=%s detail=\"%s\"", j->agent,
                     err.msg);
    }
    free(j);
}

void
engine_warm_owner(struct cti_engine *e, const char *agent)
{
    struct owner_job *j;

    if (e->sf == NULL || (j = calloc(1, sizeof(*j))) == NULL) {
        return;
    }
    j->e = e;
    snprintf(j->agent, sizeof(j->agent), "%s", agent);
    if (cmn_jobs_submit(e->jobs, owner_job, j) != CMN_OK) {
        free(j);
    }
}
