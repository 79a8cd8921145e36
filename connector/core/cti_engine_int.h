/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_engine_int.h - what the engine's files share (cti_engine.c,
 * cti_ops.c, cti_failover.c, cti_notify.c, cti_sso_client.c). */
#ifndef CTI_ENGINE_INT_H
#define CTI_ENGINE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "cmn_metrics.h"
#include "cmn_secret.h"
#include "cti_engine.h"
#include "cti_lease.h"
#include "cti_popmark.h"
#include "cti_resume.h"
#include "cti_throttle.h"
#include "fin_rest.h"
#include "fin_xmpp.h"
#include "sf_config.h"
#include "sf_outbox.h"
#include "sf_rest.h"
#include "sf_spool.h"

#define TOKEN_BUCKETS   4096
#define SESSION_BUCKETS 4096
#define CALL_BUCKETS    16384
#define FAILOVER_GRACE_MS                                           \
    90000                 /* a LOGOUT this soon after a node switch \
                             is the failover's doing, not the agent's */
#define CALL_WAIT_MS 3000 /* MAKE_CALL: wait for the new dialog */
#define RESUME_TOUCH_MS                                              \
    (10 * 60 * 1000) /* how often a live session's resume record has \
                        its TTL extended */
#define LOGIN_CONFIRM_MS                                              \
    3000 /* a LOGIN still unconfirmed by notification this long after \
            its 202 is checked with a GET */

/* One agent's Finesse session. Fields under s->lock unless noted. */
struct cti_session {
    pthread_mutex_t lock;
    pthread_cond_t xmpp_cv; /* broadcast when the XMPP connection comes up
                               or goes down (a sign-in waits for it) */
    atomic_int refs;
    struct cti_agent *agent; /* model + tabs (own lock) */
    char id[FIN_ID_MAX];     /* loginId; immutable */
    char extension[FIN_ADDR_MAX];
    char login_name[FIN_NAME_MAX];
    struct cmn_secret *password;    /* non-SSO */
    struct cmn_secret *sso_session; /* SSO: fsc-sso session id */
    char *bearer;                   /* SSO: current access token */
    long long bearer_expires_at;    /* unix s */
    int node;                       /* node index in use */
    bool xmpp_online;
    bool xmpp_connecting;
    int xmpp_failures;
    char xmpp_error[160];        /* why the last XMPP connection failed ("" when
                                    online): "tls certificate rejected: ..." */
    bool xmpp_fatal;             /* that error is a configuration problem */
    long long xmpp_retry_at_ms;  /* 0: no retry pending */
    long long failover_until_ms; /* spurious-logout window */
    long long login_check_at_ms; /* LOGIN sent: re-read the User then if
                                    no notification confirmed it */
    bool logout_requested;
    bool ended; /* logged out; removed from registry */
    long long no_tabs_since_ms;
    bool tabs_closed_applied;       /* the all-tabs-closed state was set */
    long long resume_touched_ms;    /* tick thread: last TTL refresh of
                                       the resume record */
    int xmpp_node;                  /* node of the current XMPP connection:
                                       a SystemInfo notification speaks for
                                       that node */
    struct cti_session *next;       /* registry list (iteration) */
    struct cti_session *next_by_id; /* registry hash chain (lookup) */
};

struct token_entry {
    char hash[65]; /* sha256 of the token; the token itself is not kept */
    struct cti_session *s;
    struct token_entry *next;
};

/* A caller waiting for the notification that carries its requestId. */
struct waiter {
    char request_id[40];
    char dialog_id[FIN_ID_MAX];
    bool done;
    char error[128];
    struct waiter *next;
};

struct node_state {
    bool up;
    bool probing; /* a SystemInfo check is in flight */
    long long down_since_ms;
    long long next_check_ms;
};

struct cti_engine {
    const struct cti_config *cfg;
    struct cmn_jobs *jobs;
    struct fin_xmpp_pool *xmpp;
    struct fin_rest_opts rest;
    char xmpp_domain[FIN_NAME_MAX];

    pthread_mutex_t lock; /* sessions, tokens, nodes, waiters */
    pthread_cond_t waiters_cv;
    struct cti_session *sessions;
    struct cti_session *by_id[SESSION_BUCKETS];
    size_t nsessions;
    struct token_entry *tokens[TOKEN_BUCKETS];
    struct node_state nodes[CTI_MAX_NODES];
    int active; /* preferred node */
    struct waiter *waiters;
    atomic_uint request_seq;
    long long last_ping_ms;    /* tick thread only */
    long long last_renew_ms;   /* tick thread only */
    struct cti_lease *lease;   /* NULL: single host */
    struct cti_resume *resume; /* NULL: sessions end with the process */
    struct cti_throttle *throttle_agent; /* failed sign-ins per agent ID */
    struct cti_throttle *throttle_addr;  /* ... per client address */
    struct cti_popmark *popmark;         /* NULL: no [redis] (pops marked
                                            in memory only) */
    struct cmn_metric *m_resumed;        /* sessions picked up from Redis */
    struct cmn_metric *m_throttled;      /* sign-ins refused by throttling */
    struct cmn_metric *m_spooled;        /* call logs written to the spool */
    struct cmn_metric *m_spool_waiting;  /* 1 while the spool holds any */
    struct cmn_metric *m_pops;           /* pops offered to a tab */
    struct cmn_metric *m_pop_reoffers;   /* ... offered to the next tab */
    struct cmn_metric *m_pops_skipped;   /* ... not sent: popped before */
    struct resuming *resuming;           /* agents being resumed (under lock) */

    /* Salesforce (sf_enabled false: no [salesforce] section) */
    struct sf_config sfcfg;
    struct sf *sf;
    struct cmn_redis *sf_redis;
    struct sf_outbox *outbox;   /* puts, admin; also a writer */
    struct sf_outbox **writers; /* outbox_writers consumers (incl. the
                                   first), one upsert in flight each */
    size_t nwriters;
    struct sf_spool *spool; /* NULL: no [salesforce] spool_dir */
    atomic_bool spool_draining;

    pthread_mutex_t calls_lock; /* after an agent's lock, never before */
    /* live and recently ended calls, hashed by dialog id (a busy site has
     * ~100 calls/s and keeps them 30 min for wrap-up and context) */
    struct cti_call *calls[CALL_BUCKETS];
};

/* cti_engine.c */
struct cti_session *engine_find_session(struct cti_engine *e,
                                        const char *id); /* ref'd */
void session_unref(struct cti_session *s);
void engine_new_request_id(struct cti_engine *e, char out[40]);
/* A new API token for s (only its hash is kept). */
int engine_token_issue(struct cti_engine *e, struct cti_session *s,
                       char token[CTI_TOKEN_LEN]) CMN_NODISCARD;
/* The session behind a token, referenced; NULL when unknown. */
struct cti_session *engine_session_by_token(struct cti_engine *e,
                                            const char *token);
/* Accept a token (by its SHA-256 hex) issued by another process for s. */
void engine_token_adopt(struct cti_engine *e, struct cti_session *s,
                        const char hash[65]);
/* Add a session to the registry, taking a reference (e->lock held). */
void engine_add_session_locked(struct cti_engine *e, struct cti_session *s);
/* The same unless a session with its id is registered (false: nothing
 * done). Takes e->lock. */
bool engine_add_session_if_absent(struct cti_engine *e, struct cti_session *s);
/* Remove a session and every token pointing at it (e->lock held). */
void engine_remove_session_locked(struct cti_engine *e, struct cti_session *s);

/* cti_ops.c, shared with cti_resume_ops.c: the steps of a sign-in */
struct cti_session *engine_session_new(struct cti_engine *e, const char *id);
void engine_ensure_xmpp_domain(struct cti_engine *e, struct cti_session *s);
/* XMPP online, LOGIN unless signed in already, dialogs (s registered). */
bool engine_start_session(struct cti_engine *e, struct cti_session *s,
                          const struct fin_user *u, struct cti_result *r);
bool engine_fetch_user(struct cti_engine *e, struct cti_session *s,
                       const char *path, struct fin_user *u,
                       struct cti_result *r);

/* cti_engine.c: the tick's part of the call-log spool: spooled call logs
 * go to the outbox (on a job thread) once Redis takes them again */
void engine_spool_drain_later(struct cti_engine *e);

/* cti_resume_ops.c */
/* Store what it takes to resume s elsewhere (no-op without resume). */
void engine_resume_save(struct cti_engine *e, struct cti_session *s);
/* The session is over for good: its resume record and pop marks go. */
void engine_resume_forget(struct cti_engine *e, const char *agent);

/* cti_failover.c */
int engine_active_node(struct cti_engine *e);
/* A call on node saw it down: switch everyone over (idempotent). */
void engine_node_down(struct cti_engine *e, int node, const char *why);
/* Re-GET User and Dialogs on the session's node (after XMPP comes up:
 * what was published while it was down is fetched), and with
 * reconnect_xmpp the XMPP connection is moved there first. */
void engine_resync(struct cti_engine *e, struct cti_session *s,
                   bool reconnect_xmpp);
/* The same on a job thread. */
void engine_resync_later(struct cti_engine *e, struct cti_session *s,
                         bool reconnect_xmpp);
void engine_check_nodes(struct cti_engine *e);
/* An agent's XMPP dropped: ask the node's SystemInfo, fail over if it is
 * not IN_SERVICE. */
void engine_probe_node(struct cti_engine *e, int node);
/* XMPP (re)connect for a session to its node. */
void engine_xmpp_connect(struct cti_engine *e, struct cti_session *s);

/* cti_ops.c: a REST call for a session with failover and SSO token
 * refresh folded in; retried once on the other node when one is down. */
int engine_rest(struct cti_engine *e, struct cti_session *s, const char *method,
                const char *path, const char *body, const char *request_id,
                struct fin_rest_resp *resp, struct cmn_err *err);
void result_set(struct cti_result *r, unsigned status, const char *error,
                const char *fmt, ...) CMN_PRINTF(4, 5);

/* cti_notify.c */
/* Apply a User to the session's agent, except a LOGOUT that the failover
 * caused (the agent did not ask for it): that one triggers a re-login. */
void engine_apply_user(struct cti_engine *e, struct cti_session *s,
                       const struct fin_user *u);
void engine_on_xmpp(const struct fin_xmpp_event *ev, void *cls);
void engine_waiter_add(struct cti_engine *e, struct waiter *w);
bool engine_waiter_wait(struct cti_engine *e, struct waiter *w, int ms);

/* Task logging: fields (stolen) for the call dialog_id of agent, handed
 * to the outbox (durable) when Salesforce is configured, else logged. */
void engine_log_task(struct cti_engine *e, const char *agent,
                     const char *dialog_id, json_t *fields);

/* Look the agent's Salesforce user up in the background (cache). */
void engine_warm_owner(struct cti_engine *e, const char *agent);

/* cti_sso_client.c */
/* Redeem a handoff code at fsc-sso: session id, and the IdS user ("" when
 * fsc-sso answered "user": null, an opaque token) with the login_hint the
 * sign-in started with ("" when none). */
int sso_client_handoff(struct cti_engine *e, const char *handoff,
                       char session[128], char user[FIN_NAME_MAX],
                       char user_hint[FIN_NAME_MAX], struct cmn_err *err);
/* Fetch the current access token into s->bearer (s->lock held). */
int sso_client_token(struct cti_engine *e, struct cti_session *s,
                     struct cmn_err *err);
void sso_client_logout(struct cti_engine *e, struct cti_session *s);

/* cti_sso_login.c */
/* The SSO half of a sign-in: redeem in->handoff and establish which agent
 * it is (see cti_sso_login.c). A new session (one reference) with its id
 * the agent's loginId, its fsc-sso session and a fresh agent model, and
 * *u as Finesse has it; or NULL with r set, the fsc-sso session ended and
 * nothing signed in. */
struct cti_session *engine_sso_identify(struct cti_engine *e,
                                        const struct cti_login *in,
                                        struct fin_user *u,
                                        struct cti_result *r);

#endif
