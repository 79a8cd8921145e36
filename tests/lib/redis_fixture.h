/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* redis_fixture.h - start and stop real redis-server / redis-sentinel
 * processes on free loopback ports in a temp dir, for tests. */
#ifndef TST_REDIS_FIXTURE_H
#define TST_REDIS_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

struct tst_redis {
    pid_t pid; /* 0 when not running */
    int port;
    char dir[512]; /* <base>/<port>: config, log, sentinel state */
    char conf[600];
    bool sentinel;
};

/* Creates /tmp/fsc-redis-XXXXXX into out (len >= 32). 0 or -1. */
int tst_redis_tmpdir(char *out, size_t len);
/* Removes a tree made by tst_redis_tmpdir. */
void tst_redis_rmtree(const char *dir);

/* A loopback TCP port that was free a moment ago, or -1. */
int tst_redis_free_port(void);

/* Writes <base>/<port>/redis.conf (port, bind 127.0.0.1, save "",
 * appendonly no, dir, logfile, daemonize no, then the extra lines, which
 * may be NULL), starts redis-server on it and waits (5 s max) until it
 * answers PING. 0 or -1. s->port must not be reused while running. */
int tst_redis_start(struct tst_redis *s, const char *base, int port,
                    const char *extra);

/* Same for a sentinel monitoring master_name at 127.0.0.1:master_port,
 * quorum 2, down-after 1000 ms, failover-timeout 5000 ms. */
int tst_redis_start_sentinel(struct tst_redis *s, const char *base, int port,
                             const char *master_name, int master_port);

/* Starts again with the config it was last started with (after stop). */
int tst_redis_restart(struct tst_redis *s);

/* SIGTERM, wait (SIGKILL after 5 s). No-op when not running. */
void tst_redis_stop(struct tst_redis *s);
/* SIGKILL and reap: a crash. */
void tst_redis_kill(struct tst_redis *s);

/* One command on a new direct connection (1 s timeouts); NULL when the
 * server did not answer. Free with freeReplyObject. */
redisReply *tst_redis_cmd(int port, const char *fmt, ...);

/* True when 127.0.0.1:port answers PING with PONG. */
bool tst_redis_ping(int port);

#endif
