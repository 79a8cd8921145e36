/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fin_xmpp_pool.c - the parent side of the XMPP workers: spawns them,
 * places agents, forwards commands, and reports their events from one
 * reader thread (fin_xmpp.h).
 *
 * Workers are started with posix_spawn(worker_path, worker_argv) and get
 * their end of a SOCK_STREAM socketpair as fd 3 (the worker's default for
 * --xmpp-fd). The first frame to a worker is its config. An agent goes to
 * the running worker with the fewest agents that still has room; a new
 * worker is spawned only when every running one is full (up to
 * max_workers). A reconnect of a known agent stays on its worker.
 *
 * Every connect gets a session number ("gen"); the worker echoes it, and
 * events of an older session are dropped, so a late OFFLINE of a replaced
 * session never hides the new one. Explicit disconnects and replaced
 * sessions produce no event.
 *
 * When a worker dies (EOF, HUP, bad frame, or a command write that stalls
 * for 5 s) it is killed and reaped, each of its agents is reported OFFLINE
 * "worker died", and the slot is respawned by the next connect that needs
 * it. Writes use MSG_NOSIGNAL, so a dead worker never raises SIGPIPE. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmn_log.h"
#include "fin_xmpp.h"
#include "fin_xmpp_proto.h"

extern char **environ;

#define POOL_BUCKETS    4096
#define POOL_SNDTIMEO_S 5
#define POOL_READ_CHUNK 65536
#define POOL_WORKER_FD  3

struct pool_agent {
    char *pa_id;
    int pa_worker;
    long long pa_gen;
    struct pool_agent *pa_next;
};

struct pool_worker {
    pid_t pw_pid; /* 0: slot empty */
    int pw_fd;
    int pw_agents;
    struct fin_xmpp_framer pw_in; /* reader thread only */
};

struct fin_xmpp_pool {
    struct fin_xmpp_pool_opts opts;
    char *worker_path;
    char **worker_argv;
    fin_xmpp_cb cb;
    void *cls;
    pthread_mutex_t lock; /* everything below, and all command writes */
    struct pool_worker *workers;
    struct pool_agent *buckets[POOL_BUCKETS];
    long long next_gen;
    int wake[2]; /* pipe: wakes the reader when the worker set changes */
    bool stop;
    bool reader_started;
    pthread_t reader;
};

/* -- agent map ------------------------------------------------------------ */

static unsigned
pool_hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s != '\0'; s++) {
        h = (h ^ (unsigned char)*s) * 16777619u;
    }
    return h % POOL_BUCKETS;
}

static struct pool_agent *
pool_find(struct fin_xmpp_pool *p, const char *id)
{
    for (struct pool_agent *a = p->buckets[pool_hash(id)]; a != NULL;
         a = a->pa_next) {
        if (strcmp(a->pa_id, id) == 0) {
            return a;
        }
    }
    return NULL;
}

static void
pool_remove(struct fin_xmpp_pool *p, struct pool_agent *dead)
{
    struct pool_agent **pp = &p->buckets[pool_hash(dead->pa_id)];

    while (*pp != NULL) {
        if (*pp == dead) {
            *pp = dead->pa_next;
            if (dead->pa_worker >= 0) {
                p->workers[dead->pa_worker].pw_agents--;
            }
            free(dead->pa_id);
            free(dead);
            return;
        }
        pp = &(*pp)->pa_next;
    }
}

/* -- workers -------------------------------------------------------------- */

static void
pool_wake(struct fin_xmpp_pool *p)
{
    char c = 1;
    ssize_t n = write(p->wake[1], &c, 1);
    (void)n; /* a full pipe already wakes the reader */
}

/* Sends one frame to worker i; caller holds the lock. On failure the
 * worker is considered dead: the reader reaps it (we shut the socket down
 * so it sees HUP). */
static int
pool_send(struct fin_xmpp_pool *p, int i, const char *buf, size_t len)
{
    struct pool_worker *w = &p->workers[i];
    size_t done = 0;

    while (done < len) {
        ssize_t n = send(w->pw_fd, buf + done, len - done, MSG_NOSIGNAL);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        cmn_log_err("event=worker_write_failed worker=%d pid=%d errno=%d", i,
                    (int)w->pw_pid, n < 0 ? errno : 0);
        shutdown(w->pw_fd, SHUT_RDWR);
        pool_wake(p);
        return CMN_IO;
    }
    return CMN_OK;
}

static int
pool_send_cmd(struct fin_xmpp_pool *p, int i, const struct fin_xmpp_cmd *c)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = fin_xmpp_proto_encode_cmd(c, &buf, &len);

    if (rc != CMN_OK) {
        return rc;
    }
    rc = pool_send(p, i, buf, len);
    fin_xmpp_proto_wipe_free(buf, len);
    return rc;
}

/* Starts a worker in slot i; caller holds the lock. */
static int
pool_spawn(struct fin_xmpp_pool *p, int i)
{
    struct pool_worker *w = &p->workers[i];
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none;
    struct timeval tv = {.tv_sec = POOL_SNDTIMEO_S};
    struct fin_xmpp_cmd cfg = {.op = FIN_XMPP_OP_CONFIG};
    int sv[2];
    pid_t pid;
    int rc;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        cmn_log_err("event=socketpair_failed errno=%d", errno);
        return CMN_IO;
    }
    if (sv[1] == POOL_WORKER_FD) {
        /* dup2(3, 3) would keep FD_CLOEXEC: move it out of the way */
        int moved = fcntl(sv[1], F_DUPFD_CLOEXEC, POOL_WORKER_FD + 1);
        close(sv[1]);
        sv[1] = moved;
        if (moved < 0) {
            close(sv[0]);
            return CMN_IO;
        }
    }
    (void)setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], POOL_WORKER_FD);
    posix_spawnattr_init(&attr);
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    rc = posix_spawn(&pid, p->worker_path, &fa, &attr, p->worker_argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(sv[1]);
    if (rc != 0) {
        cmn_log_err("event=worker_spawn_failed path=%s errno=%d",
                    p->worker_path, rc);
        close(sv[0]);
        return CMN_IO;
    }
    w->pw_pid = pid;
    w->pw_fd = sv[0];
    w->pw_agents = 0;
    fin_xmpp_framer_init(&w->pw_in);
    cfg.ping_interval_s = p->opts.ping_interval_s;
    cfg.ping_timeout_s = p->opts.ping_timeout_s;
    cfg.connects_per_100ms = p->opts.connects_per_100ms;
    cfg.transport = p->opts.transport;
    cmn_log_info("event=worker_spawned worker=%d pid=%d transport=%s", i,
                 (int)pid, fin_xmpp_transport_name(p->opts.transport));
    pool_wake(p);
    return pool_send_cmd(p, i, &cfg);
}

/* Picks the worker for a new agent, spawning one if all are full; caller
 * holds the lock. -1 when the pool is at capacity or spawning failed. */
static int
pool_pick(struct fin_xmpp_pool *p)
{
    int best = -1;
    int empty = -1;

    for (int i = 0; i < p->opts.max_workers; i++) {
        struct pool_worker *w = &p->workers[i];
        if (w->pw_pid == 0) {
            if (empty < 0) {
                empty = i;
            }
            continue;
        }
        if (w->pw_agents < p->opts.agents_per_worker &&
            (best < 0 || w->pw_agents < p->workers[best].pw_agents)) {
            best = i;
        }
    }
    if (best >= 0) {
        return best;
    }
    if (empty >= 0 && pool_spawn(p, empty) == CMN_OK) {
        return empty;
    }
    return -1;
}

/* Kills and reaps worker i and collects its agents (ids, malloc'd) into
 * *ids and *n; caller holds the lock. Reader thread only. */
static void
pool_bury(struct fin_xmpp_pool *p, int i, char ***ids, size_t *n)
{
    struct pool_worker *w = &p->workers[i];
    size_t cap = (size_t)w->pw_agents + 1;
    int status = 0;

    *ids = calloc(cap, sizeof(char *));
    *n = 0;
    kill(w->pw_pid, SIGKILL);
    while (waitpid(w->pw_pid, &status, 0) < 0 && errno == EINTR) {
    }
    cmn_log_warn("event=worker_died worker=%d pid=%d status=%d agents=%d", i,
                 (int)w->pw_pid, status, w->pw_agents);
    close(w->pw_fd);
    fin_xmpp_framer_cleanup(&w->pw_in);
    for (int b = 0; b < POOL_BUCKETS; b++) {
        struct pool_agent **pp = &p->buckets[b];
        while (*pp != NULL) {
            struct pool_agent *a = *pp;
            if (a->pa_worker != i) {
                pp = &a->pa_next;
                continue;
            }
            *pp = a->pa_next;
            if (*ids != NULL && *n < cap) {
                (*ids)[(*n)++] = a->pa_id; /* handed to the caller */
            } else {
                free(a->pa_id);
            }
            free(a);
        }
    }
    memset(w, 0, sizeof(*w));
    w->pw_fd = -1;
}

/* -- reader thread -------------------------------------------------------- */

/* Handles one event frame from worker i. Returns false on a bad frame. */
static bool
pool_on_frame(struct fin_xmpp_pool *p, int i, const char *buf, size_t len)
{
    struct fin_xmpp_event ev;
    json_t *root = NULL;
    long long gen = 0;
    bool deliver = false;

    if (fin_xmpp_proto_decode_event(buf, len, &ev, &gen, &root) != CMN_OK) {
        cmn_log_err("event=bad_event worker=%d bytes=%zu", i, len);
        return false;
    }
    pthread_mutex_lock(&p->lock);
    struct pool_agent *a = pool_find(p, ev.agent);
    if (a != NULL && a->pa_worker == i && a->pa_gen == gen) {
        deliver = true;
        if (ev.kind == FIN_XMPP_OFFLINE || ev.kind == FIN_XMPP_AUTH_FAILED) {
            pool_remove(p, a);
        }
    }
    pthread_mutex_unlock(&p->lock);
    if (deliver) {
        p->cb(&ev, p->cls);
    }
    json_decref(root);
    return true;
}

/* Reads what worker i sent; false when the worker must be buried. */
static bool
pool_read_worker(struct fin_xmpp_pool *p, int i, int fd)
{
    static __thread char buf[POOL_READ_CHUNK];
    struct fin_xmpp_framer *in = &p->workers[i].pw_in;

    for (int round = 0; round < 8; round++) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return true;
        }
        if (n <= 0) {
            return false;
        }
        if (fin_xmpp_framer_feed(in, buf, (size_t)n) != CMN_OK) {
            cmn_log_err("event=bad_frame worker=%d", i);
            return false;
        }
        for (;;) {
            const char *f;
            size_t flen;
            int rc = fin_xmpp_framer_next(in, &f, &flen);
            if (rc == CMN_AGAIN) {
                break;
            }
            if (rc != CMN_OK || !pool_on_frame(p, i, f, flen)) {
                return false;
            }
        }
    }
    return true;
}

static void
pool_worker_died(struct fin_xmpp_pool *p, int i)
{
    char **ids = NULL;
    size_t n = 0;

    pthread_mutex_lock(&p->lock);
    pool_bury(p, i, &ids, &n);
    pthread_mutex_unlock(&p->lock);
    for (size_t k = 0; k < n; k++) {
        struct fin_xmpp_event ev = {
            .kind = FIN_XMPP_OFFLINE, .agent = ids[k], .detail = "worker died"};
        p->cb(&ev, p->cls);
        free(ids[k]);
    }
    free(ids);
}

static void *
pool_reader(void *arg)
{
    struct fin_xmpp_pool *p = arg;
    int max = p->opts.max_workers;
    struct pollfd *pfd = calloc((size_t)max + 1, sizeof(*pfd));
    int *slot = calloc((size_t)max + 1, sizeof(int));

    if (pfd == NULL || slot == NULL) {
        cmn_log_err("event=oom");
        free(pfd);
        free(slot);
        return NULL;
    }
    for (;;) {
        int n = 1;
        pthread_mutex_lock(&p->lock);
        if (p->stop) {
            pthread_mutex_unlock(&p->lock);
            break;
        }
        pfd[0] = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
        for (int i = 0; i < max; i++) {
            if (p->workers[i].pw_pid != 0) {
                pfd[n] = (struct pollfd){.fd = p->workers[i].pw_fd,
                                         .events = POLLIN};
                slot[n++] = i;
            }
        }
        pthread_mutex_unlock(&p->lock);
        if (poll(pfd, (nfds_t)n, 1000) < 0) {
            continue;
        }
        if (pfd[0].revents & POLLIN) {
            char drain[64];
            while (read(p->wake[0], drain, sizeof(drain)) > 0) {
            }
        }
        for (int k = 1; k < n; k++) {
            if (pfd[k].revents == 0) {
                continue;
            }
            /* read first: a dying worker's last events still count */
            bool ok = pool_read_worker(p, slot[k], pfd[k].fd);
            if (!ok || (pfd[k].revents & (POLLHUP | POLLERR | POLLNVAL) &&
                        !(pfd[k].revents & POLLIN))) {
                pool_worker_died(p, slot[k]);
            }
        }
    }
    free(pfd);
    free(slot);
    return NULL;
}

/* -- API ------------------------------------------------------------------ */

struct fin_xmpp_pool *
fin_xmpp_pool_new(const struct fin_xmpp_pool_opts *o, fin_xmpp_cb cb, void *cls,
                  struct cmn_err *err)
{
    struct fin_xmpp_pool *p;
    size_t argc = 0;

    if (o == NULL || o->worker_path == NULL || cb == NULL) {
        cmn_err_set(err, "xmpp pool: worker_path and callback are required");
        return NULL;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    p->wake[0] = p->wake[1] = -1;
    p->opts = *o;
    if (p->opts.agents_per_worker <= 0) {
        p->opts.agents_per_worker = 500;
    }
    if (p->opts.max_workers <= 0) {
        p->opts.max_workers = 8;
    }
    if (p->opts.ping_interval_s <= 0) {
        p->opts.ping_interval_s = 10;
    }
    if (p->opts.ping_timeout_s <= 0) {
        p->opts.ping_timeout_s = 20;
    }
    if (p->opts.connects_per_100ms <= 0) {
        p->opts.connects_per_100ms = 20;
    }
    if (p->opts.agents_per_worker > 900) {
        /* one thread serves a worker's connections: bound its work (and
         * its descriptor table, see fin_xmpp_worker.c) */
        cmn_err_set(err, "xmpp pool: agents_per_worker %d > 900",
                    p->opts.agents_per_worker);
        goto fail;
    }
    p->cb = cb;
    p->cls = cls;
    p->next_gen = 1;
    p->worker_path = strdup(o->worker_path);
    if (o->worker_argv != NULL) {
        while (o->worker_argv[argc] != NULL) {
            argc++;
        }
    }
    p->worker_argv = calloc(argc + 2, sizeof(char *));
    p->workers = calloc((size_t)p->opts.max_workers, sizeof(*p->workers));
    if (p->worker_path == NULL || p->worker_argv == NULL ||
        p->workers == NULL) {
        cmn_err_set(err, "out of memory");
        goto fail;
    }
    if (argc == 0) {
        p->worker_argv[0] = strdup(o->worker_path);
    }
    for (size_t i = 0; i < argc; i++) {
        p->worker_argv[i] = strdup(o->worker_argv[i]);
    }
    for (size_t i = 0; i < (argc ? argc : 1); i++) {
        if (p->worker_argv[i] == NULL) {
            cmn_err_set(err, "out of memory");
            goto fail;
        }
    }
    for (int i = 0; i < p->opts.max_workers; i++) {
        p->workers[i].pw_fd = -1;
    }
    if (pipe2(p->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        cmn_err_set(err, "xmpp pool: pipe: %s", strerror(errno));
        goto fail;
    }
    pthread_mutex_init(&p->lock, NULL);
    if (pthread_create(&p->reader, NULL, pool_reader, p) != 0) {
        cmn_err_set(err, "xmpp pool: cannot start the reader thread");
        pthread_mutex_destroy(&p->lock);
        goto fail;
    }
    p->reader_started = true;
    return p;
fail:
    fin_xmpp_pool_free(p);
    return NULL;
}

int
fin_xmpp_pool_connect(struct fin_xmpp_pool *p, const struct fin_xmpp_login *l)
{
    struct fin_xmpp_cmd c = {.op = FIN_XMPP_OP_CONNECT};
    struct pool_agent *a;
    int rc;

    bool websocket = p->opts.transport == FIN_XMPP_TRANSPORT_WEBSOCKET;

    if (l == NULL || l->agent == NULL || l->agent[0] == '\0' ||
        l->jid == NULL || l->password == NULL ||
        (websocket && l->url == NULL) ||
        (!websocket && (l->host == NULL || l->port <= 0 || l->port > 65535)) ||
        (l->resource != NULL && strcmp(l->resource, "desktop") == 0)) {
        return CMN_INVALID;
    }
    c.login = *l;
    pthread_mutex_lock(&p->lock);
    a = pool_find(p, l->agent);
    if (a == NULL) {
        int i = pool_pick(p);
        if (i < 0) {
            pthread_mutex_unlock(&p->lock);
            cmn_log_warn("event=pool_full agent=%s", l->agent);
            return CMN_AGAIN;
        }
        a = calloc(1, sizeof(*a));
        if (a == NULL || (a->pa_id = strdup(l->agent)) == NULL) {
            free(a);
            pthread_mutex_unlock(&p->lock);
            return CMN_NOMEM;
        }
        unsigned h = pool_hash(l->agent);
        a->pa_worker = i;
        a->pa_next = p->buckets[h];
        p->buckets[h] = a;
        p->workers[i].pw_agents++;
    }
    a->pa_gen = p->next_gen++;
    c.gen = a->pa_gen;
    rc = pool_send_cmd(p, a->pa_worker, &c);
    if (rc == CMN_INVALID) {
        pool_remove(p, a);
    }
    /* CMN_IO: the reader buries the worker and reports the agent OFFLINE */
    pthread_mutex_unlock(&p->lock);
    return rc == CMN_IO ? CMN_OK : rc;
}

int
fin_xmpp_pool_disconnect(struct fin_xmpp_pool *p, const char *agent)
{
    struct fin_xmpp_cmd c = {.op = FIN_XMPP_OP_DISCONNECT};
    struct pool_agent *a;
    int rc;

    if (agent == NULL) {
        return CMN_INVALID;
    }
    c.login.agent = agent;
    pthread_mutex_lock(&p->lock);
    a = pool_find(p, agent);
    if (a == NULL) {
        pthread_mutex_unlock(&p->lock);
        return CMN_NOTFOUND;
    }
    rc = pool_send_cmd(p, a->pa_worker, &c);
    pool_remove(p, a);
    pthread_mutex_unlock(&p->lock);
    return rc == CMN_IO ? CMN_OK : rc;
}

void
fin_xmpp_pool_stats(struct fin_xmpp_pool *p, int *connections, int *workers)
{
    int c = 0;
    int w = 0;

    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < p->opts.max_workers; i++) {
        if (p->workers[i].pw_pid != 0) {
            w++;
            c += p->workers[i].pw_agents;
        }
    }
    pthread_mutex_unlock(&p->lock);
    if (connections != NULL) {
        *connections = c;
    }
    if (workers != NULL) {
        *workers = w;
    }
}

/* Asks each worker to shut down, waits up to 3 s in all, then kills. */
static void
pool_stop_workers(struct fin_xmpp_pool *p)
{
    struct fin_xmpp_cmd c = {.op = FIN_XMPP_OP_SHUTDOWN};
    long long until;

    for (int i = 0; i < p->opts.max_workers; i++) {
        if (p->workers[i].pw_pid != 0) {
            (void)pool_send_cmd(p, i, &c);
        }
    }
    until = cmn_now_ms() + 3000;
    for (int i = 0; i < p->opts.max_workers; i++) {
        struct pool_worker *w = &p->workers[i];
        if (w->pw_pid == 0) {
            continue;
        }
        while (waitpid(w->pw_pid, NULL, WNOHANG) == 0) {
            if (cmn_now_ms() >= until) {
                kill(w->pw_pid, SIGKILL);
                (void)waitpid(w->pw_pid, NULL, 0);
                break;
            }
            usleep(10000);
        }
        close(w->pw_fd);
        fin_xmpp_framer_cleanup(&w->pw_in);
        w->pw_pid = 0;
        w->pw_fd = -1;
    }
}

void
fin_xmpp_pool_free(struct fin_xmpp_pool *p)
{
    if (p == NULL) {
        return;
    }
    if (p->reader_started) {
        pthread_mutex_lock(&p->lock);
        p->stop = true;
        pthread_mutex_unlock(&p->lock);
        pool_wake(p);
        pthread_join(p->reader, NULL);
        pthread_mutex_destroy(&p->lock);
    }
    if (p->workers != NULL) {
        pool_stop_workers(p);
    }
    for (int b = 0; b < POOL_BUCKETS; b++) {
        while (p->buckets[b] != NULL) {
            struct pool_agent *a = p->buckets[b];
            p->buckets[b] = a->pa_next;
            free(a->pa_id);
            free(a);
        }
    }
    if (p->worker_argv != NULL) {
        for (size_t i = 0; p->worker_argv[i] != NULL; i++) {
            free(p->worker_argv[i]);
        }
        free(p->worker_argv);
    }
    if (p->wake[0] >= 0) {
        close(p->wake[0]);
        close(p->wake[1]);
    }
    free(p->workers);
    free(p->worker_path);
    free(p);
}
