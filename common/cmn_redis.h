/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_redis.h - a thread-safe pool of hiredis connections to the current
 * Redis master, found directly (url) or through Sentinel.
 *
 * Every command runs with a connect and a command timeout. A connection
 * that fails is dropped, never reused; the next checkout reconnects, with
 * exponential backoff (capped) shared by the pool so that a dead Redis is
 * not hammered. With Sentinel, the master is re-discovered after any
 * connection error or -READONLY reply and confirmed with ROLE, so the pool
 * follows a failover by itself. All keys are the caller's business; the
 * prefix is kept here only so that every module builds keys the same way. */
#ifndef CMN_REDIS_H
#define CMN_REDIS_H

#include <hiredis/hiredis.h>

#include "cmn.h"
#include "cmn_config.h"

struct cmn_redis_opts {
    const char *url;              /* redis://[:password@]host:port[/db] */
    const char *const *sentinels; /* "host:port" strings, NULL-terminated;
                                   * when set, url's host/port are unused */
    const char *master;           /* Sentinel master name */
    const char *password;         /* overrides url password; may be NULL */
    const char *prefix;           /* key prefix, e.g. "fsc:" */
    int db;                       /* SELECT db when not 0 (url /db wins) */
    int connect_timeout_ms;       /* default 500 */
    int command_timeout_ms;       /* default 1000 */
    int pool_size;                /* max idle connections kept, default 16 */
    int backoff_max_ms;           /* reconnect backoff cap, default 2000 */
    int wait_replicas;            /* for CMN_REDIS_DURABLE, default 0 */
    int wait_timeout_ms;          /* default 100 */
};

struct cmn_redis;

/* Reads [section] url | sentinels + master, prefix, password_file,
 * connect_timeout_ms, command_timeout_ms, pool_size, wait_replicas,
 * wait_timeout_ms into opts. String fields borrow from cfg (and from
 * *storage, free()d by the caller). */
int cmn_redis_opts_from_config(const struct cmn_config *cfg,
                               const char *section, struct cmn_redis_opts *opts,
                               void **storage,
                               struct cmn_err *err) CMN_NODISCARD;

/* Copies opts. Does not connect (the first command does), so a daemon can
 * start while Redis is down and report it in /readyz. */
struct cmn_redis *cmn_redis_new(const struct cmn_redis_opts *opts,
                                struct cmn_err *err);
void cmn_redis_free(struct cmn_redis *r);

const char *cmn_redis_prefix(const struct cmn_redis *r);

/* Flags for cmn_redis_cmd. */
#define CMN_REDIS_RETRY                              \
    0x1 /* command is idempotent: after a connection \
           error, retry once on a fresh connection */
#define CMN_REDIS_DURABLE                           \
    0x2 /* a write that must survive a failover: on \
         the same connection, follow it with        \
         WAIT wait_replicas wait_timeout_ms (when   \
         wait_replicas > 0); a shortfall is logged, \
         not an error */

/* Run one command (binary-safe argv). Returns the reply (free with
 * freeReplyObject) or NULL with err set when Redis could not be reached or
 * timed out. A Redis error reply (REDIS_REPLY_ERROR) is returned as a reply;
 * the caller decides. Any thread. */
redisReply *cmn_redis_cmd(struct cmn_redis *r, int flags, int argc,
                          const char **argv, const size_t *argvlen,
                          struct cmn_err *err);

/* printf-style convenience for commands without binary values
 * (hiredis format rules: %s, %b with (ptr, len), %d...). */
redisReply *cmn_redis_cmdf(struct cmn_redis *r, int flags, struct cmn_err *err,
                           const char *fmt, ...);

/* A Lua script run with EVALSHA, falling back to EVAL on NOSCRIPT (the
 * script cache is not replicated: after a failover the SHA is unknown). */
struct cmn_redis_script {
    const char *source;
    char sha[41]; /* filled lazily */
};
/* args holds nkeys keys followed by nargs arguments (nkeys + nargs
 * entries), as in EVAL's own argument order. */
redisReply *cmn_redis_eval(struct cmn_redis *r, struct cmn_redis_script *s,
                           int flags, int nkeys, int nargs, const char **args,
                           const size_t *arglens, struct cmn_err *err);

/* PING through the pool; true when the master answered. */
bool cmn_redis_ping(struct cmn_redis *r, struct cmn_err *err);

/* Counters for /metrics. */
unsigned long cmn_redis_errors(const struct cmn_redis *r);
unsigned long cmn_redis_reconnects(const struct cmn_redis *r);

#endif
