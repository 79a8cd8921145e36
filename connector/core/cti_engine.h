/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_engine.h - the connector's runtime: one Finesse session per agent
 * (REST + XMPP), the API tokens of the tabs watching it, the A/B node
 * choice and failover. The HTTP API (api/) calls the cti_engine_* ops
 * from job threads: they may block on Finesse. */
#ifndef CTI_ENGINE_H
#define CTI_ENGINE_H

#include <jansson.h>

#include "cmn_jobs.h"
#include "cti_agent.h"
#include "cti_config.h"

#define CTI_TOKEN_LEN 44 /* base64url of 32 random bytes + NUL */

struct cti_engine;

/* self_exe: this executable, started again as "--xmpp-worker". */
struct cti_engine *cti_engine_new(const struct cti_config *cfg,
                                  const char *self_exe, struct cmn_err *err);
void cti_engine_free(struct cti_engine *e);
struct cmn_jobs *cti_engine_jobs(struct cti_engine *e);
/* Once a second from a timer thread: heartbeats to tabs, XMPP reconnects
 * with backoff, node health while one is down, idle sessions. */
void cti_engine_tick(struct cti_engine *e);

/* Outcome of an op, mapped to HTTP by the API layer. */
struct cti_result {
    unsigned status; /* 200, 202, 400, 401, 404, 409, 502, 503 */
    char error[48];  /* "invalid_credentials", "invalid_state", ... */
    char detail[256];
    char request_id[40]; /* the requestId sent to Finesse */
    char owner[256];     /* 409 agent_elsewhere: the host that has it */
    long retry_after_s;  /* 429 too_many_attempts: when to try again */
};

struct cti_login {
    const char *agent; /* non-SSO: loginId + password */
    const char *password;
    const char *handoff; /* SSO: one-time code from fsc-sso */
    const char *extension;
    const char *peer; /* client address (sign-in throttling), may be NULL */
};

/* Sign in (or re-attach to the agent's running session). On success
 * token gets a new API token and *agent_json the agent. */
void cti_engine_login(struct cti_engine *e, const struct cti_login *in,
                      char token[CTI_TOKEN_LEN], json_t **agent_json,
                      struct cti_result *r);
/* The agent behind an API token (referenced: cti_agent_unref), or NULL. */
struct cti_agent *cti_engine_agent(struct cti_engine *e, const char *token);
/* A token this process did not issue but Redis knows ([server]
 * session_key_file): the agent when its session runs here (the token is
 * adopted); else NULL with *busy true when a resume has been started (or
 * Redis cannot say): answer "retry shortly", not 401; or NULL with owner
 * set when another host holds the agent's lease (a dead host's lease runs
 * out within agent_lease_s, then the resume happens here). */
struct cti_agent *cti_engine_agent_resume(struct cti_engine *e,
                                          const char *token, bool *busy,
                                          char *owner, size_t owner_size);
/* After a restart: resume (on job threads) the agents this host drove. */
void cti_engine_resume_all(struct cti_engine *e);
/* LOGOUT in Finesse (reason optional), XMPP closed, tokens revoked. */
void cti_engine_logout(struct cti_engine *e, const char *token,
                       const char *reason_code_id, struct cti_result *r);

void cti_engine_set_state(struct cti_engine *e, struct cti_agent *a,
                          const char *state, const char *reason_code_id,
                          struct cti_result *r);
/* MAKE_CALL; waits (briefly) for Finesse's notification to learn the new
 * dialog's id. */
void cti_engine_make_call(struct cti_engine *e, struct cti_agent *a,
                          const char *to, char dialog_id[FIN_ID_MAX],
                          struct cti_result *r);
/* answer, hold, retrieve, drop, consult, transfer, transfer_sst,
 * conference, dtmf (DESIGN.md §4 action names). */
void cti_engine_call_action(struct cti_engine *e, struct cti_agent *a,
                            const char *dialog_id, const char *action,
                            const char *to, const char *digits,
                            struct cti_result *r);
void cti_engine_wrapup(struct cti_engine *e, struct cti_agent *a,
                       const char *dialog_id, const char *reason,
                       struct cti_result *r);
/* GET lists from Finesse as JSON arrays. */
void cti_engine_reason_codes(struct cti_engine *e, struct cti_agent *a,
                             const char *category, json_t **out,
                             struct cti_result *r);
void cti_engine_wrapup_reasons(struct cti_engine *e, struct cti_agent *a,
                               json_t **out, struct cti_result *r);

/* Admin: the outbox (NULL without [salesforce]). */
struct sf_outbox *cti_engine_outbox(struct cti_engine *e);
/* Counters summed over this process's outbox writers. */
struct sf_outbox_stats;
void cti_engine_outbox_stats(struct cti_engine *e, struct sf_outbox_stats *s);

/* For /readyz and /metrics. */
struct cti_engine_stats {
    size_t sessions;
    size_t xmpp_online;
    int active_node; /* index into cfg->nodes */
    bool nodes_up[CTI_MAX_NODES];
    int xmpp_workers;
};
void cti_engine_stats(struct cti_engine *e, struct cti_engine_stats *s);

#endif
