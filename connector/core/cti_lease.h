/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_lease.h - several connector hosts sharing one site's agents through
 * Redis. Each agent's Finesse session lives on exactly one host: the one
 * holding the agent's lease (SET NX PX, renewed by that host's tick). A
 * sign-in reaching another host is told where the agent is; a host that
 * dies stops renewing and after agent_lease_s any host may take the agent
 * (well inside Finesse's 60 s presence grace with the default 30 s). */
#ifndef CTI_LEASE_H
#define CTI_LEASE_H

#include "cmn_redis.h"
#include "cti_config.h"

struct cti_lease;

/* NULL (and no error) when [redis] is not configured. */
struct cti_lease *cti_lease_new(const struct cti_config *cfg,
                                struct cmn_err *err);
void cti_lease_free(struct cti_lease *l);

/* CMN_OK: this host holds the agent (taken now or already ours);
 * CMN_DENIED: another host does, owner (its public URL) is filled;
 * CMN_IO: Redis unreachable (fail closed: the caller refuses the
 * sign-in rather than risk two hosts driving one agent). */
int cti_lease_take(struct cti_lease *l, const char *agent, char *owner,
                   size_t owner_size) CMN_NODISCARD;
/* Who holds the agent now, without taking it: CMN_OK with owner filled
 * (another host), CMN_NOTFOUND (nobody, or this host), CMN_IO. */
int cti_lease_owner(struct cti_lease *l, const char *agent, char *owner,
                    size_t owner_size) CMN_NODISCARD;
/* Renew; false when the lease was lost (taken over after a stall). */
bool cti_lease_renew(struct cti_lease *l, const char *agent);
void cti_lease_release(struct cti_lease *l, const char *agent);

#endif
