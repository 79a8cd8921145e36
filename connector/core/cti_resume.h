/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_resume.h - agent sessions that outlive the connector process that
 * started them. With [server] session_key_file (and [redis]), a sign-in
 * leaves in Redis what it takes to drive the agent again: the Finesse
 * credentials (password, or the fsc-sso session id) sealed with
 * AES-256-GCM under that key, and the SHA-256 of every API token issued
 * for it. A connector that restarts picks its agents up again on its own
 * (before Finesse's 60 s presence grace signs them out), and any host that
 * sees a token it does not know (a restart, or a host that died and whose
 * lease ran out) resumes that agent's session, so the tabs carry on with
 * the token they hold instead of asking the agent to sign in again.
 *
 * Keys (prefix from [redis]; TTL [server] session_idle_s, refreshed while
 * the session lives):
 *   <p>agent:<id>:session  sealed JSON {"agent", "extension",
 *                          "login_name", "password" | "sso_session"}
 *                          (the key name is the AAD: it opens nowhere else)
 *   <p>token:<sha256>      the agent id, sealed the same way (a mapping
 *                          planted by someone who can write to Redis
 *                          does not open: it cannot take an agent over)
 *   <p>agent:<id>:tokens   set of that agent's token hashes (for logout)
 *   <p>host:<self>:agents  set of the agents this host drives (restart)
 * Nothing here holds a secret in the clear; a Redis dump without the key
 * file yields token hashes and agent ids only. */
#ifndef CTI_RESUME_H
#define CTI_RESUME_H

#include "cmn.h"
#include "cmn_secret.h"
#include "cti_config.h"
#include "fin_model.h"

struct cti_resume;

/* What a session needs to be driven again. */
struct cti_resume_record {
    char agent[FIN_ID_MAX];
    char extension[FIN_ADDR_MAX];
    char login_name[FIN_NAME_MAX];
    struct cmn_secret *password;    /* non-SSO (or NULL) */
    struct cmn_secret *sso_session; /* SSO (or NULL) */
};

void cti_resume_record_cleanup(struct cti_resume_record *rec);

/* NULL without an error when session_key_file is not set. */
struct cti_resume *cti_resume_new(const struct cti_config *cfg,
                                  struct cmn_err *err);
void cti_resume_free(struct cti_resume *rs);

/* Store (or replace) an agent's sealed record and add it to this host's
 * set. */
int cti_resume_save(struct cti_resume *rs,
                    const struct cti_resume_record *rec) CMN_NODISCARD;
/* Remember a token (by its SHA-256 hex) as the agent's. */
int cti_resume_save_token(struct cti_resume *rs, const char *agent,
                          const char *token_hash) CMN_NODISCARD;
/* The agent a token hash belongs to: CMN_OK, CMN_NOTFOUND, CMN_IO. */
int cti_resume_agent_of(struct cti_resume *rs, const char *token_hash,
                        char *agent, size_t agent_size) CMN_NODISCARD;
/* An agent's record: CMN_OK (rec filled; cti_resume_record_cleanup),
 * CMN_NOTFOUND, CMN_INVALID (does not open under our key: tampered or
 * another key), CMN_IO. */
int cti_resume_load(struct cti_resume *rs, const char *agent,
                    struct cti_resume_record *rec) CMN_NODISCARD;
/* The session is over (signed out here or by Finesse): record, tokens and
 * this host's set entry go. */
void cti_resume_forget(struct cti_resume *rs, const char *agent);
/* Another host drives the agent now: only this host's set entry goes. */
void cti_resume_disown(struct cti_resume *rs, const char *agent);
/* Extend the TTLs of an agent's keys (the session is alive). */
void cti_resume_touch(struct cti_resume *rs, const char *agent);
/* The agents this host was driving (when it last ran): *agents is a
 * malloc'd array of malloc'd ids (cti_resume_list_free). */
int cti_resume_host_agents(struct cti_resume *rs, char ***agents,
                           size_t *n) CMN_NODISCARD;
void cti_resume_list_free(char **agents, size_t n);

#endif
