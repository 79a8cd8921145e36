/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* redis_fixture.c - real redis-server / redis-sentinel processes for tests,
 * each in its own directory under a temp dir, on loopback ports. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "redis_fixture.h"

#define REDIS_BIN "/usr/bin/redis-server"

static void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int
tst_redis_tmpdir(char *out, size_t len)
{
    if (len < 32) {
        return -1;
    }
    snprintf(out, len, "/tmp/fsc-redis-XXXXXX");
    return mkdtemp(out) != NULL ? 0 : -1;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void
tst_redis_rmtree(const char *dir)
{
    if (dir == NULL || dir[0] == '\0') {
        return;
    }
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int
tst_redis_free_port(void)
{
    struct sockaddr_in sa;
    socklen_t salen = sizeof(sa);
    int fd;
    int port = -1;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &salen) == 0) {
        port = ntohs(sa.sin_port);
    }
    close(fd);
    return port;
}

redisReply *
tst_redis_cmd(int port, const char *fmt, ...)
{
    struct timeval tv = {1, 0};
    redisContext *c;
    redisReply *rep = NULL;
    va_list ap;

    c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c == NULL || c->err != 0) {
        goto out;
    }
    redisSetTimeout(c, tv);
    va_start(ap, fmt);
    rep = redisvCommand(c, fmt, ap);
    va_end(ap);
out:
    if (c != NULL) {
        redisFree(c);
    }
    return rep;
}

bool
tst_redis_ping(int port)
{
    redisReply *rep = tst_redis_cmd(port, "PING");
    bool ok;

    ok = rep != NULL && rep->type == REDIS_REPLY_STATUS &&
         strcmp(rep->str, "PONG") == 0;
    if (rep != NULL) {
        freeReplyObject(rep);
    }
    return ok;
}

static int
spawn(struct tst_redis *s)
{
    pid_t pid;
    long long deadline;
    struct timespec ts;

    pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        int fd = open("/dev/null", O_RDWR);

        if (fd >= 0) {
            dup2(fd, 0);
            dup2(fd, 1);
            dup2(fd, 2);
        }
        /* Own process group: a Ctrl-C of the test run reaches the test,
         * which then stops its servers itself. */
        setpgid(0, 0);
        if (s->sentinel) {
            execl(REDIS_BIN, "redis-server", s->conf, "--sentinel",
                  (char *)NULL);
        } else {
            execl(REDIS_BIN, "redis-server", s->conf, (char *)NULL);
        }
        _exit(127);
    }
    s->pid = pid;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    deadline = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000 + 5000;
    for (;;) {
        int status;

        if (tst_redis_ping(s->port)) {
            return 0;
        }
        if (waitpid(pid, &status, WNOHANG) == pid) {
            s->pid = 0;
            fprintf(stderr, "redis_fixture: %s exited early, see %s\n", s->conf,
                    s->dir);
            return -1;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if (ts.tv_sec * 1000LL + ts.tv_nsec / 1000000 > deadline) {
            tst_redis_kill(s);
            return -1;
        }
        sleep_ms(20);
    }
}

static int
write_conf(struct tst_redis *s, const char *base, int port, const char *body)
{
    FILE *fp;

    s->port = port;
    s->pid = 0;
    snprintf(s->dir, sizeof(s->dir), "%s/%d", base, port);
    snprintf(s->conf, sizeof(s->conf), "%s/%s", s->dir,
             s->sentinel ? "sentinel.conf" : "redis.conf");
    if (mkdir(s->dir, 0700) != 0 && errno != EEXIST) {
        return -1;
    }
    fp = fopen(s->conf, "w");
    if (fp == NULL) {
        return -1;
    }
    fprintf(fp,
            "port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\n"
            "logfile %s/log.txt\n%s",
            port, s->dir, s->dir, body);
    return fclose(fp) == 0 ? 0 : -1;
}

int
tst_redis_start(struct tst_redis *s, const char *base, int port,
                const char *extra)
{
    char body[2048];

    s->sentinel = false;
    snprintf(body, sizeof(body), "save \"\"\nappendonly no\n%s\n",
             extra != NULL ? extra : "");
    if (write_conf(s, base, port, body) != 0) {
        return -1;
    }
    return spawn(s);
}

int
tst_redis_start_sentinel(struct tst_redis *s, const char *base, int port,
                         const char *master_name, int master_port)
{
    char body[1024];

    s->sentinel = true;
    snprintf(body, sizeof(body),
             "sentinel monitor %s 127.0.0.1 %d 2\n"
             "sentinel down-after-milliseconds %s 1000\n"
             "sentinel failover-timeout %s 5000\n"
             "sentinel parallel-syncs %s 1\n",
             master_name, master_port, master_name, master_name, master_name);
    if (write_conf(s, base, port, body) != 0) {
        return -1;
    }
    return spawn(s);
}

int
tst_redis_restart(struct tst_redis *s)
{
    if (s->pid != 0) {
        return -1;
    }
    return spawn(s);
}

static void
reap(struct tst_redis *s, int sig, int grace_ms)
{
    int status;

    if (s->pid <= 0) {
        return;
    }
    kill(s->pid, sig);
    for (int waited = 0;; waited += 10) {
        pid_t w = waitpid(s->pid, &status, WNOHANG);

        if (w == s->pid || (w < 0 && errno != EINTR)) {
            break;
        }
        if (waited >= grace_ms) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            break;
        }
        sleep_ms(10);
    }
    s->pid = 0;
}

void
tst_redis_stop(struct tst_redis *s)
{
    reap(s, SIGTERM, 5000);
}

void
tst_redis_kill(struct tst_redis *s)
{
    reap(s, SIGKILL, 5000);
}
