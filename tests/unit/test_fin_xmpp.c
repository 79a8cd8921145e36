/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_fin_xmpp.c - the XMPP worker pool against a real prosody 0.12 started
 * by the test (internal_plain accounts written as files, pubsub component
 * fed through the admin shell, as Finesse's notification service would),
 * once per transport: "starttls" on plain c2s (no TLS offered), "tls" on
 * prosody's direct-TLS port and "websocket" on mod_websocket over HTTPS
 * (wss://127.0.0.1:P/ws, RFC 7395), both with a certificate from a CA the
 * test makes. The worker executable comes from FSC_XMPP_TEST_WORKER (set by
 * CMake) or $FSC_BUILD_DIR/tests/unit/xmpp_test_worker. */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cmn_log.h"
#include "fin_xmpp.h"

#define N_BULK 300

static char tmpdir[64];
static char cfgpath[128];
static char worker[512];
static int xmpp_port;   /* plain c2s (starttls transport, TLS not offered) */
static int tls_port;    /* c2s_direct_tls_ports */
static int https_port;  /* mod_websocket at /ws */
static char ca_file[160];    /* signs the server certificate */
static char other_ca[160];   /* an unrelated CA */
static enum fin_xmpp_transport cur_transport;
static pid_t prosody_pid;
static uid_t run_uid;
static gid_t run_gid;
static bool have_prosody;

/* -- collected events ------------------------------------------------------ */

struct ev_copy {
    enum fin_xmpp_event_kind kind;
    char agent[64];
    char node[128];
    char *payload;
    char detail[128];
    char from[128];
    bool available;
    bool fatal;
};

static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ev_cond = PTHREAD_COND_INITIALIZER;
static struct ev_copy *evs;
static size_t ev_n;
static size_t ev_cap;

static void
on_event(const struct fin_xmpp_event *ev, void *cls)
{
    struct ev_copy *c;

    (void)cls;
    pthread_mutex_lock(&ev_lock);
    if (ev_n == ev_cap) {
        ev_cap = ev_cap ? ev_cap * 2 : 256;
        evs = realloc(evs, ev_cap * sizeof(*evs));
        assert_non_null(evs);
    }
    c = &evs[ev_n++];
    memset(c, 0, sizeof(*c));
    c->kind = ev->kind;
    snprintf(c->agent, sizeof(c->agent), "%s", ev->agent);
    snprintf(c->node, sizeof(c->node), "%s", ev->node ? ev->node : "");
    snprintf(c->detail, sizeof(c->detail), "%s", ev->detail ? ev->detail : "");
    snprintf(c->from, sizeof(c->from), "%s", ev->from ? ev->from : "");
    c->available = ev->available;
    c->fatal = ev->fatal;
    if (ev->payload != NULL) {
        c->payload = strndup(ev->payload, ev->payload_len);
    }
    pthread_cond_broadcast(&ev_cond);
    pthread_mutex_unlock(&ev_lock);
}

static void
ev_reset(void)
{
    pthread_mutex_lock(&ev_lock);
    for (size_t i = 0; i < ev_n; i++) {
        free(evs[i].payload);
    }
    ev_n = 0;
    pthread_mutex_unlock(&ev_lock);
}

/* Events of kind (and agent, when not NULL) seen so far; caller locks. */
static size_t
ev_count_locked(enum fin_xmpp_event_kind kind, const char *agent)
{
    size_t n = 0;
    for (size_t i = 0; i < ev_n; i++) {
        if (evs[i].kind == kind &&
            (agent == NULL || strcmp(evs[i].agent, agent) == 0)) {
            n++;
        }
    }
    return n;
}

/* Waits until at least want such events were seen; returns the count. */
static size_t
ev_wait(enum fin_xmpp_event_kind kind, const char *agent, size_t want,
        int timeout_ms)
{
    struct timespec ts;
    size_t n;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&ev_lock);
    while ((n = ev_count_locked(kind, agent)) < want) {
        if (pthread_cond_timedwait(&ev_cond, &ev_lock, &ts) == ETIMEDOUT) {
            n = ev_count_locked(kind, agent);
            break;
        }
    }
    pthread_mutex_unlock(&ev_lock);
    return n;
}

/* Copy of the first event of kind for agent (payload not copied). */
static bool
ev_find(enum fin_xmpp_event_kind kind, const char *agent, struct ev_copy *out)
{
    bool found = false;

    pthread_mutex_lock(&ev_lock);
    for (size_t i = 0; i < ev_n && !found; i++) {
        if (evs[i].kind == kind && strcmp(evs[i].agent, agent) == 0) {
            *out = evs[i];
            out->payload = evs[i].payload ? strdup(evs[i].payload) : NULL;
            found = true;
        }
    }
    pthread_mutex_unlock(&ev_lock);
    return found;
}

/* -- prosody fixture --------------------------------------------------------
 */

static int
free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port = -1;

    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
        port = ntohs(sa.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    if (getuid() == 0) {
        assert_int_equal(chown(path, run_uid, run_gid), 0);
    }
}

static void
mkdir_owned(const char *path)
{
    assert_int_equal(mkdir(path, 0750), 0);
    if (getuid() == 0) {
        assert_int_equal(chown(path, run_uid, run_gid), 0);
    }
}

/* internal_plain account file; "localhost" needs no %2e escaping */
static void
add_account(const char *user, const char *pw)
{
    char path[256];
    char body[256];

    snprintf(path, sizeof(path), "%s/data/localhost/accounts/%s.dat", tmpdir,
             user);
    snprintf(body, sizeof(body), "return {\n\t[\"password\"] = \"%s\";\n};\n",
             pw);
    write_file(path, body);
}

static bool
port_open(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

static void
prosody_start(void)
{
    prosody_pid = fork();
    assert_true(prosody_pid >= 0);
    if (prosody_pid == 0) {
        char logp[160];
        snprintf(logp, sizeof(logp), "%s/stdout.log", tmpdir);
        FILE *f = freopen(logp, "a", stdout);
        (void)f;
        dup2(STDOUT_FILENO, STDERR_FILENO);
        if (getuid() == 0) {
            /* prosody refuses root; setgid/setuid keep RLIMIT_NOFILE */
            if (setgid(run_gid) != 0 || setuid(run_uid) != 0) {
                _exit(126);
            }
        }
        execlp("prosody", "prosody", "--config", cfgpath, "-F", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 300 && !(port_open(xmpp_port) && port_open(tls_port) &&
                                 port_open(https_port));
         i++) {
        usleep(20000);
    }
    assert_true(port_open(xmpp_port));
    assert_true(port_open(tls_port));
    assert_true(port_open(https_port));
}

static void
prosody_stop(int sig)
{
    if (prosody_pid <= 0) {
        return;
    }
    kill(prosody_pid, SIGCONT);
    kill(prosody_pid, sig);
    for (int i = 0; i < 500; i++) {
        if (waitpid(prosody_pid, NULL, WNOHANG) == prosody_pid) {
            prosody_pid = 0;
            return;
        }
        usleep(20000);
    }
    kill(prosody_pid, SIGKILL);
    waitpid(prosody_pid, NULL, 0);
    prosody_pid = 0;
}

/* Runs one admin-shell line; returns its output (malloc'd). */
static char *
prosody_shell(const char *lua)
{
    char cmd[512];
    char *out = calloc(1, 65536);
    size_t len = 0;
    FILE *p;
    char path[160];

    snprintf(path, sizeof(path), "%s/shell.in", tmpdir);
    write_file(path, lua);
    snprintf(cmd, sizeof(cmd), "prosodyctl --config %s shell < %s 2>&1",
             cfgpath, path);
    p = popen(cmd, "r");
    assert_non_null(p);
    while (len < 65535) {
        size_t n = fread(out + len, 1, 65535 - len, p);
        if (n == 0) {
            break;
        }
        len += n;
    }
    pclose(p);
    return out;
}

/* Creates the User nodes of agents [from, to) with server-side
 * subscriptions (what Finesse does), and publishes one Update to each. */
static void
publish_range(int from, int to, const char *tag)
{
    char lua[2048];
    char *out;

    snprintf(
        lua, sizeof(lua),
        "> local st=require'util.stanza'; "
        "local ps=prosody.hosts['pubsub.localhost'].modules.pubsub.service; "
        "for i=%d,%d do local node='/finesse/api/User/agent'..i; "
        "ps:create(node,true,{['pubsub#access_model']='whitelist'}); "
        "ps:set_affiliation(node,true,'agent'..i..'@localhost','member'); "
        "ps:add_subscription(node,true,'agent'..i..'@localhost'); "
        "local it=st.stanza('item',{xmlns='http://jabber.org/protocol/pubsub',"
        "id='%s'..i}):tag('notification',"
        "{xmlns='http://jabber.org/protocol/pubsub'}):text("
        "'<Update><event>PUT</event><source>'..node..'</source>"
        "<data><user><state>%s &amp; co</state></user></data></Update>'); "
        "assert(ps:publish(node,true,'%s'..i,it)) end return 'published'\n",
        from, to - 1, tag, tag, tag);
    out = prosody_shell(lua);
    if (strstr(out, "published") == NULL) {
        fprintf(stderr, "shell: %s\n", out);
    }
    assert_non_null(strstr(out, "published"));
    free(out);
}

/* c2s sessions of user (admin shell). */
static int
sessions_of(const char *user)
{
    char lua[512];
    char *out;
    char *p;
    int n = -1;

    snprintf(lua, sizeof(lua),
             "> local n=0; for _,s in pairs(prosody.full_sessions) do "
             "if s.username=='%s' then n=n+1 end end; return 'count='..n\n",
             user);
    out = prosody_shell(lua);
    p = strstr(out, "count=");
    if (p != NULL) {
        n = (int)strtol(p + 6, NULL, 10);
    }
    free(out);
    return n;
}

/* A CA, a server certificate it signs (localhost, 127.0.0.1) for prosody,
 * and an unrelated CA, with the openssl command line. */
static void
make_certificates(void)
{
    char cmd[2048];

    snprintf(ca_file, sizeof(ca_file), "%s/ca.crt", tmpdir);
    snprintf(other_ca, sizeof(other_ca), "%s/other-ca.crt", tmpdir);
    snprintf(cmd, sizeof(cmd),
             "(cd '%s' && "
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "
             "/CN=fsc-test-ca -keyout ca.key -out ca.crt && "
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "
             "/CN=fsc-other-ca -keyout other-ca.key -out other-ca.crt && "
             "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost "
             "-keyout server.key -out server.csr && "
             "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext && "
             "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key "
             "-CAcreateserial -days 2 -extfile ext -out server.crt && "
             "chmod 644 server.key) >/dev/null 2>&1",
             tmpdir);
    if (system(cmd) != 0) {
        fail_msg("cannot make test certificates: %s", cmd);
    }
    if (getuid() == 0) {
        char path[256];
        snprintf(path, sizeof(path), "%s/server.key", tmpdir);
        assert_int_equal(chown(path, run_uid, run_gid), 0);
    }
}

static int
setup_prosody(void **state)
{
    char path[256];
    char cfg[4096];
    const char *w = getenv("FSC_XMPP_TEST_WORKER");
    const char *bd = getenv("FSC_BUILD_DIR");
    struct passwd *pw;

    (void)state;
    cmn_log_init("test_fin_xmpp", CMN_LOG_WARN);
    if (w != NULL) {
        snprintf(worker, sizeof(worker), "%s", w);
    } else {
        snprintf(worker, sizeof(worker), "%s/tests/unit/xmpp_test_worker",
                 bd ? bd : ".");
    }
    if (access(worker, X_OK) != 0 || system("command -v prosody >/dev/null "
                                            "2>&1 && command -v prosodyctl "
                                            ">/dev/null 2>&1") != 0) {
        fprintf(stderr, "skipping: no prosody or no worker at %s\n", worker);
        return 0;
    }
    run_uid = getuid();
    run_gid = getgid();
    if (run_uid == 0) {
        pw = getpwnam("prosody");
        if (pw == NULL) {
            fprintf(stderr, "skipping: root without a prosody user\n");
            return 0;
        }
        run_uid = pw->pw_uid;
        run_gid = pw->pw_gid;
    }
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_fin_xmpp.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    if (getuid() == 0) {
        assert_int_equal(chown(tmpdir, run_uid, run_gid), 0);
    }
    snprintf(path, sizeof(path), "%s/data", tmpdir);
    mkdir_owned(path);
    snprintf(path, sizeof(path), "%s/data/localhost", tmpdir);
    mkdir_owned(path);
    snprintf(path, sizeof(path), "%s/data/localhost/accounts", tmpdir);
    mkdir_owned(path);
    xmpp_port = free_port();
    assert_true(xmpp_port > 0);
    snprintf(cfgpath, sizeof(cfgpath), "%s/prosody.cfg.lua", tmpdir);
    tls_port = free_port();
    https_port = free_port();
    make_certificates();
    snprintf(cfg, sizeof(cfg),
             "daemonize = false\n"
             "pidfile = \"%s/prosody.pid\"\n"
             "data_path = \"%s/data\"\n"
             "admins = { }\n"
             "modules_enabled = { \"roster\"; \"saslauth\"; \"disco\"; "
             "\"ping\"; \"admin_shell\"; \"posix\"; \"websocket\" }\n"
             /* no mod_tls: plain c2s offers no STARTTLS */
             "modules_disabled = { \"s2s\"; \"offline\"; \"tls\" }\n"
             "c2s_ports = { %d }\n"
             "c2s_interfaces = { \"127.0.0.1\" }\n"
             "c2s_direct_tls_ports = { %d }\n"
             "c2s_direct_tls_interfaces = { \"127.0.0.1\" }\n"
             "http_ports = { }\n"
             "https_ports = { %d }\n"
             "https_interfaces = { \"127.0.0.1\" }\n"
             "http_paths = { websocket = \"/ws\" }\n"
             "consider_websocket_secure = true\n"
             "ssl = { certificate = \"%s/server.crt\"; key = \"%s/server.key\" }\n"
             "https_ssl = { certificate = \"%s/server.crt\"; "
             "key = \"%s/server.key\" }\n"
             "s2s_ports = { }\n"
             "c2s_require_encryption = false\n"
             "allow_unencrypted_plain_auth = true\n"
             "authentication = \"internal_plain\"\n"
             "log = { warn = \"%s/prosody.log\" }\n"
             "VirtualHost \"localhost\"\n"
             "Component \"pubsub.localhost\" \"pubsub\"\n",
             tmpdir, tmpdir, xmpp_port, tls_port, https_port, tmpdir, tmpdir,
             tmpdir, tmpdir, tmpdir);
    write_file(cfgpath, cfg);
    for (int i = 0; i < N_BULK; i++) {
        char user[32];
        char pass[32];
        snprintf(user, sizeof(user), "agent%d", i);
        snprintf(pass, sizeof(pass), "pw%d", i);
        add_account(user, pass);
    }
    prosody_start();
    have_prosody = true;
    return 0;
}

static int
teardown_prosody(void **state)
{
    char cmd[128];

    (void)state;
    ev_reset();
    free(evs);
    evs = NULL;
    ev_cap = 0;
    if (!have_prosody) {
        return 0;
    }
    prosody_stop(SIGTERM);
    if (getenv("FSC_KEEP_TMP") == NULL) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        return system(cmd) == 0 ? 0 : -1;
    }
    return 0;
}

/* -- helpers ----------------------------------------------------------------
 */

/* The pool of the running case: freed by the case, or by teardown_case
 * when an assertion left early (so one failure does not leak sessions into
 * the next case). */
static struct fin_xmpp_pool *cur_pool;

static void
pool_done(void)
{
    fin_xmpp_pool_free(cur_pool);
    cur_pool = NULL;
}

static int
teardown_case(void **state)
{
    (void)state;
    pool_done();
    if (have_prosody && prosody_pid > 0) {
        kill(prosody_pid, SIGCONT);
    } else if (have_prosody) {
        prosody_start();
    }
    return 0;
}

static struct fin_xmpp_pool *
pool_new(int per_worker, int max_workers, int ping_interval, int ping_timeout)
{
    const char *lvl = getenv("FSC_XMPP_TEST_LOG");
    const char *argv[] = {worker, "--log-level", lvl ? lvl : "warn", NULL};
    struct fin_xmpp_pool_opts o = {.worker_path = worker,
                                   .transport = cur_transport,
                                   .worker_argv = argv,
                                   .agents_per_worker = per_worker,
                                   .max_workers = max_workers,
                                   .ping_interval_s = ping_interval,
                                   .ping_timeout_s = ping_timeout,
                                   .connects_per_100ms = 20};
    struct cmn_err err = {{0}};
    struct fin_xmpp_pool *p = fin_xmpp_pool_new(&o, on_event, NULL, &err);

    if (p == NULL) {
        fprintf(stderr, "pool: %s\n", err.msg);
    }
    assert_non_null(p);
    ev_reset();
    cur_pool = p;
    return p;
}

/* Where the current transport reaches prosody (port: 0 = the real one,
 * else a port nobody listens on). */
static void
target(struct fin_xmpp_login *l, int port, char *url, size_t url_len)
{
    switch (cur_transport) {
    case FIN_XMPP_TRANSPORT_STARTTLS:
        l->host = "127.0.0.1";
        l->port = port ? port : xmpp_port;
        break;
    case FIN_XMPP_TRANSPORT_TLS:
        l->host = "127.0.0.1";
        l->port = port ? port : tls_port;
        l->ca_file = ca_file;
        break;
    case FIN_XMPP_TRANSPORT_WEBSOCKET:
        snprintf(url, url_len, "wss://127.0.0.1:%d/ws", port ? port : https_port);
        l->url = url;
        l->ca_file = ca_file;
        break;
    }
}

static int
connect_agent(struct fin_xmpp_pool *p, int i, const char *password)
{
    char agent[32];
    char jid[64];
    char pw[32];
    char url[80];
    struct fin_xmpp_login l = {.resource = "fsc"};

    target(&l, 0, url, sizeof(url));
    snprintf(agent, sizeof(agent), "agent%d", i);
    snprintf(jid, sizeof(jid), "agent%d@localhost", i);
    snprintf(pw, sizeof(pw), "pw%d", i);
    l.agent = agent;
    l.jid = jid;
    l.password = password ? password : pw;
    return fin_xmpp_pool_connect(p, &l);
}

/* Pids of our running worker children, from /proc. */
static int
worker_pids(pid_t *out, int max)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL && n < max) {
        char path[300];
        char line[256];
        FILE *f;
        int ppid = -1;
        bool is_worker = false;
        if (e->d_name[0] < '0' || e->d_name[0] > '9') {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/%s/status", e->d_name);
        f = fopen(path, "r");
        if (f == NULL) {
            continue;
        }
        while (fgets(line, sizeof(line), f) != NULL) {
            if (strncmp(line, "Name:", 5) == 0 &&
                strstr(line, "xmpp_test_worke") != NULL) {
                is_worker = true;
            }
            if (strncmp(line, "PPid:", 5) == 0) {
                ppid = (int)strtol(line + 5, NULL, 10);
            }
        }
        fclose(f);
        if (is_worker && ppid == getpid()) {
            out[n++] = (pid_t)(int)strtol(e->d_name, NULL, 10);
        }
    }
    closedir(d);
    return n;
}

static long
rss_kb(pid_t pid)
{
    char path[64];
    char line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = atol(line + 6);
        }
    }
    fclose(f);
    return kb;
}

#define REQUIRE_PROSODY()    \
    do {                     \
        if (!have_prosody) { \
            skip();          \
        }                    \
    } while (0)

/* -- cases ------------------------------------------------------------------
 */

static void
test_fin_xmpp_connect_online_and_update(void **state)
{
    struct fin_xmpp_pool *p;
    struct ev_copy ev;
    int conns = 0;
    int workers = 0;

    (void)state;
    REQUIRE_PROSODY();
    p = pool_new(150, 2, 10, 20);
    assert_int_equal(connect_agent(p, 0, NULL), CMN_OK);
    assert_int_equal(ev_wait(FIN_XMPP_ONLINE, "agent0", 1, 5000), 1);
    fin_xmpp_pool_stats(p, &conns, &workers);
    assert_int_equal(conns, 1);
    assert_int_equal(workers, 1);
    assert_int_equal(sessions_of("agent0"), 1);

    publish_range(0, 1, "one");
    assert_int_equal(ev_wait(FIN_XMPP_UPDATE, "agent0", 1, 5000), 1);
    assert_true(ev_find(FIN_XMPP_UPDATE, "agent0", &ev));
    assert_string_equal(ev.node, "/finesse/api/User/agent0");
    /* the <notification> text arrives unescaped, entity included */
    assert_string_equal(ev.payload,
                        "<Update><event>PUT</event><source>/finesse/api/User/"
                        "agent0</source><data><user><state>one &amp; co"
                        "</state></user></data></Update>");
    free(ev.payload);
    pool_done();
}

/* Injects a stanza into prosody's router as if a local user sent it. */
static void
inject(const char *stanza_lua)
{
    char lua[1024];
    char *out;

    snprintf(lua, sizeof(lua),
             "> local st=require'util.stanza'; prosody.core_post_stanza("
             "prosody.hosts['localhost'], %s); return 'injected'\n",
             stanza_lua);
    out = prosody_shell(lua);
    if (strstr(out, "injected") == NULL) {
        fprintf(stderr, "shell: %s\n", out);
    }
    assert_non_null(strstr(out, "injected"));
    free(out);
}

static void
test_fin_xmpp_presence_and_forged_events(void **state)
{
    struct fin_xmpp_pool *p;
    struct ev_copy ev;

    (void)state;
    REQUIRE_PROSODY();
    p = pool_new(150, 2, 10, 20);
    assert_int_equal(connect_agent(p, 6, NULL), CMN_OK);
    assert_int_equal(ev_wait(FIN_XMPP_ONLINE, "agent6", 1, 5000), 1);
    /* the 'finesse' user's presence, then its going away */
    inject("st.presence({from='finesse@localhost/srv',"
           "to='agent6@localhost/fsc'})");
    assert_int_equal(ev_wait(FIN_XMPP_PRESENCE, "agent6", 1, 5000), 1);
    inject("st.presence({from='finesse@localhost/srv',"
           "to='agent6@localhost/fsc',type='unavailable'})");
    assert_int_equal(ev_wait(FIN_XMPP_PRESENCE, "agent6", 2, 5000), 2);
    pthread_mutex_lock(&ev_lock);
    for (size_t i = 0, k = 0; i < ev_n; i++) {
        if (evs[i].kind == FIN_XMPP_PRESENCE) {
            assert_string_equal(evs[i].from, "finesse@localhost/srv");
            assert_int_equal(evs[i].available, k++ == 0);
        }
    }
    pthread_mutex_unlock(&ev_lock);
    /* a pubsub-shaped message from an ordinary user is not an event */
    inject("st.message({from='agent7@localhost/x',to='agent6@localhost/fsc'})"
           ":tag('event',{xmlns='http://jabber.org/protocol/pubsub#event'})"
           ":tag('items',{node='/finesse/api/User/agent6'}):tag('item')"
           ":tag('notification',{xmlns='http://jabber.org/protocol/pubsub'})"
           ":text('<Update><data><user><state>FORGED</state></user></data>"
           "</Update>')");
    /* ...while the same from the pubsub service is */
    inject("st.message({from='pubsub.localhost',to='agent6@localhost/fsc'})"
           ":tag('event',{xmlns='http://jabber.org/protocol/pubsub#event'})"
           ":tag('items',{node='/finesse/api/User/agent6'}):tag('item')"
           ":tag('notification',{xmlns='http://jabber.org/protocol/pubsub'})"
           ":text('<Update><data><user><state>REAL</state></user></data>"
           "</Update>')");
    assert_int_equal(ev_wait(FIN_XMPP_UPDATE, "agent6", 1, 5000), 1);
    assert_true(ev_find(FIN_XMPP_UPDATE, "agent6", &ev));
    assert_non_null(strstr(ev.payload, "REAL"));
    free(ev.payload);
    usleep(200000);
    assert_int_equal(ev_wait(FIN_XMPP_UPDATE, "agent6", 2, 0), 1);
    pool_done();
}

static void
test_fin_xmpp_wrong_password_is_auth_failed(void **state)
{
    struct fin_xmpp_pool *p;
    struct ev_copy ev;
    int conns = -1;

    (void)state;
    REQUIRE_PROSODY();
    p = pool_new(150, 2, 10, 20);
    assert_int_equal(connect_agent(p, 1, "wrong"), CMN_OK);
    assert_int_equal(ev_wait(FIN_XMPP_AUTH_FAILED, "agent1", 1, 8000), 1);
    assert_true(ev_find(FIN_XMPP_AUTH_FAILED, "agent1", &ev));
    free(ev.payload);
    assert_int_equal(ev_wait(FIN_XMPP_ONLINE, "agent1", 1, 10), 0);
    assert_int_equal(ev_wait(FIN_XMPP_OFFLINE, "agent1", 1, 10), 0);
    fin_xmpp_pool_stats(p, &conns, NULL);
    assert_int_equal(conns, 0);
    /* a closed port is a network failure, not an auth failure */
    {
        char url[80];
        struct fin_xmpp_login l = {.agent = "agentX",
                                   .jid = "agent2@localhost",
                                   .password = "pw2",
                                   .resource = "fsc"};
        target(&l, free_port(), url, sizeof(url));
        assert_int_equal(fin_xmpp_pool_connect(p, &l), CMN_OK);
        assert_int_equal(ev_wait(FIN_XMPP_OFFLINE, "agentX", 1, 8000), 1);
        assert_true(ev_find(FIN_XMPP_OFFLINE, "agentX", &ev));
        assert_non_null(strstr(ev.detail, "connect failed"));
        free(ev.payload);
        l.resource = "desktop";
        assert_int_equal(fin_xmpp_pool_connect(p, &l), CMN_INVALID);
    }
    pool_done();
}

static void
test_fin_xmpp_disconnect_ends_session(void **state)
{
    struct fin_xmpp_pool *p;
    int n = -1;

    (void)state;
    REQUIRE_PROSODY();
    p = pool_new(150, 2, 10, 20);
    assert_int_equal(connect_agent(p, 3, NULL), CMN_OK);
    assert_int_equal(ev_wait(FIN_XMPP_ONLINE, "agent3", 1, 5000), 1);
    assert_int_equal(sessions_of("agent3"), 1);
    /* a reconnect replaces the session quietly: ONLINE again, no OFFLINE */
    assert_int_equal(connect_agent(p, 3, NULL), CMN_OK);
    assert_int_equal(ev_wait(FIN_XMPP_ONLINE, "agent3", 2, 5000), 2);
    for (int i = 0; i < 50 && (n = sessions_of("agent3")) != 1; i++) {
        usleep(100000);
    }
    assert_int_equal(n, 1);
    assert_int_equal(ev_wait(FIN_XMPP_OFFLINE, "agent3", 1, 0), 0);
    assert_int_equal(fin_xmpp_pool_disconnect(p, "agent3"), CMN_OK);
    assert_int_equal(fin_xmpp_pool_disconnect(p, "agent3"), CMN_NOTFOUND);
    for (int i = 0; i < 50; i++) {
        n = sessions_of("agent3");
        if (n == 0) {
            break;
        }
        usleep(100000);
    }
    assert_int_equal(n, 0);
    /* an explicit disconnect reports nothing */
    assert_int_equal(ev_wait(FIN_XMPP_OFFLINE, "agent3", 1, 200), 0);
    pool_done();
}

static void
test_fin_xmpp_bulk_two_workers(void **state)
{
    struct fin_xmpp_pool *p;
    pid_t pids[8];
    int conns = 0;
    int workers = 0;
    long long t0;
    long long t1;
    int np;

    (void)state;
    REQUIRE_PROSODY();
    p = pool_new(150, 4, 10, 20);
    t0 = cmn_now_ms();
    for (int i = 0; i < N_BULK; i++) {
        assert_int_equal(connect_agent(p, i, NULL), CMN_OK);
    }
    assert_int_equal(ev_wait(FIN_XMPP_ONLINE, NULL, N_BULK, 30000), N_BULK);
    t1 = cmn_now_ms();
    fin_xmpp_pool_stats(p, &conns, &workers);
    assert_int_equal(conns, N_BULK);
    assert_int_equal(workers, 2);
    np = worker_pids(pids, 8);
    assert_int_equal(np, 2);
    fprintf(stderr,
            "bulk: %d agents ONLINE in %lld ms (%.0f/s); worker RSS %ld kB, "
            "%ld kB\n",
            N_BULK, t1 - t0, N_BULK * 1000.0 / (double)(t1 - t0),
            rss_kb(pids[0]), rss_kb(pids[1]));

    publish_range(0, N_BULK, "bulk");
    assert_int_equal(ev_wait(FIN_XMPP_UPDATE, NULL, N_BULK, 20000), N_BULK);
    pthread_mutex_lock(&ev_lock);
    for (size_t i = 0; i < ev_n; i++) {
        char node[96];
        if (evs[i].kind != FIN_XMPP_UPDATE) {
            continue;
        }
        /* each agent got its own node, with its own source inside */
        snprintf(node, sizeof(node), "/finesse/api/User/%s", evs[i].agent);
        assert_string_equal(evs[i].node, node);
        assert_non_null(strstr(evs[i].payload, node));
    }
    pthread_mutex_unlock(&ev_lock);
    for (int i = 0; i < N_BULK; i++) {
        char agent[32];
        snprintf(agent, sizeof(agent), "agent%d", i);
        assert_int_equal(ev_wait(FIN_XMPP_UPDATE, agent, 1, 0), 1);
    }
    t0 = cmn_now_ms();
    (void)p;
    pool_done();
    fprintf(stderr, "bulk: pool_free (300 sessions closed) %lld ms\n",
            cmn_now_ms() - t0);
}

static void
test_fin_xmpp_worker_killed(void **state)
{
    struct fin_xmpp_pool *p;
    pid_t pids[8];
    pid_t after[8];
    int workers = 0;
    int conns = 0;
    size_t died = 0;
    char victim[64] = "";

    (void)state;
    REQUIRE_PROSODY();
    p = pool_new(5, 2, 10, 20);
    for (int i = 10; i < 20; i++) {
        assert_int_equal(connect_agent(p, i, NULL), CMN_OK);
    }
    assert_int_equal(ev_wait(FIN_XMPP_ONLINE, NULL, 10, 10000), 10);
    assert_int_equal(worker_pids(pids, 8), 2);
    assert_int_equal(kill(pids[0], SIGKILL), 0);
    assert_int_equal(ev_wait(FIN_XMPP_OFFLINE, NULL, 5, 5000), 5);
    pthread_mutex_lock(&ev_lock);
    for (size_t i = 0; i < ev_n; i++) {
        if (evs[i].kind == FIN_XMPP_OFFLINE) {
            assert_string_equal(evs[i].detail, "worker died");
            snprintf(victim, sizeof(victim), "%s", evs[i].agent);
            died++;
        }
    }
    pthread_mutex_unlock(&ev_lock);
    assert_int_equal(died, 5);
    fin_xmpp_pool_stats(p, &conns, &workers);
    assert_int_equal(conns, 5);
    assert_int_equal(workers, 1);
    /* the owner reconnects: a new worker takes the agent */
    assert_int_equal(connect_agent(p, (int)strtol(victim + 5, NULL, 10), NULL),
                     CMN_OK);
    assert_int_equal(ev_wait(FIN_XMPP_ONLINE, victim, 2, 5000), 2);
    fin_xmpp_pool_stats(p, &conns, &workers);
    assert_int_equal(conns, 6);
    assert_int_equal(workers, 2);
    assert_int_equal(worker_pids(after, 8), 2);
    assert_true(after[0] != pids[0] && after[1] != pids[0]);
    pool_done();
}

static void
test_fin_xmpp_ping_timeout_and_server_death(void **state)
{
    struct fin_xmpp_pool *p;
    struct ev_copy ev;
    long long t0;

    (void)state;
    REQUIRE_PROSODY();
    p = pool_new(150, 2, 1, 2);
    assert_int_equal(connect_agent(p, 4, NULL), CMN_OK);
    assert_int_equal(ev_wait(FIN_XMPP_ONLINE, "agent4", 1, 5000), 1);
    /* pings are answered: a live session outlasts interval + timeout */
    assert_int_equal(ev_wait(FIN_XMPP_OFFLINE, "agent4", 1, 3500), 0);
    /* a frozen server answers no ping: OFFLINE after ping_timeout_s */
    assert_int_equal(kill(prosody_pid, SIGSTOP), 0);
    t0 = cmn_now_ms();
    assert_int_equal(ev_wait(FIN_XMPP_OFFLINE, "agent4", 1, 6000), 1);
    assert_true(ev_find(FIN_XMPP_OFFLINE, "agent4", &ev));
    assert_string_equal(ev.detail, "ping timeout");
    fprintf(stderr, "ping timeout reported after %lld ms\n", cmn_now_ms() - t0);
    assert_int_equal(kill(prosody_pid, SIGCONT), 0);

    /* a killed server: OFFLINE as soon as the socket closes */
    ev_reset();
    assert_int_equal(connect_agent(p, 5, NULL), CMN_OK);
    assert_int_equal(ev_wait(FIN_XMPP_ONLINE, "agent5", 1, 5000), 1);
    prosody_stop(SIGKILL);
    t0 = cmn_now_ms();
    assert_int_equal(ev_wait(FIN_XMPP_OFFLINE, "agent5", 1, 3000), 1);
    assert_true(ev_find(FIN_XMPP_OFFLINE, "agent5", &ev));
    fprintf(stderr, "server killed: OFFLINE (%s) after %lld ms\n", ev.detail,
            cmn_now_ms() - t0);
    pool_done(); /* teardown_case restarts prosody */
}

/* A server certificate from a CA we do not trust: refused as such, and
 * marked fatal (no retry fixes it), on both TLS transports. */
static void
test_fin_xmpp_untrusted_certificate(void **state)
{
    struct fin_xmpp_pool *p;
    struct ev_copy ev;
    char url[80];
    struct fin_xmpp_login l = {.agent = "agent8", .jid = "agent8@localhost",
                               .password = "pw8", .resource = "fsc"};

    (void)state;
    REQUIRE_PROSODY();
    if (cur_transport == FIN_XMPP_TRANSPORT_STARTTLS) {
        skip(); /* plain c2s here: the integration tests cover STARTTLS */
    }
    p = pool_new(150, 2, 10, 20);
    target(&l, 0, url, sizeof(url));
    l.ca_file = other_ca;
    assert_int_equal(fin_xmpp_pool_connect(p, &l), CMN_OK);
    assert_int_equal(ev_wait(FIN_XMPP_OFFLINE, "agent8", 1, 8000), 1);
    assert_true(ev_find(FIN_XMPP_OFFLINE, "agent8", &ev));
    assert_non_null(strstr(ev.detail, "tls certificate rejected"));
    free(ev.payload);
    pthread_mutex_lock(&ev_lock);
    for (size_t i = 0; i < ev_n; i++) {
        if (evs[i].kind == FIN_XMPP_OFFLINE) {
            assert_true(evs[i].fatal);
        }
    }
    pthread_mutex_unlock(&ev_lock);
    assert_int_equal(ev_wait(FIN_XMPP_ONLINE, "agent8", 1, 0), 0);
    assert_int_equal(sessions_of("agent8"), 0);
    pool_done();
}

/* websocket: a path that is no XMPP endpoint answers the upgrade with 404,
 * which is reported as a refused upgrade (fatal), not as lost network. */
static void
test_fin_xmpp_websocket_not_found(void **state)
{
    struct fin_xmpp_pool *p;
    struct ev_copy ev;
    char url[80];
    struct fin_xmpp_login l = {.agent = "agent9", .jid = "agent9@localhost",
                               .password = "pw9", .resource = "fsc",
                               .ca_file = NULL};

    (void)state;
    REQUIRE_PROSODY();
    if (cur_transport != FIN_XMPP_TRANSPORT_WEBSOCKET) {
        skip();
    }
    p = pool_new(150, 2, 10, 20);
    snprintf(url, sizeof(url), "wss://127.0.0.1:%d/not-xmpp", https_port);
    l.url = url;
    l.ca_file = ca_file;
    assert_int_equal(fin_xmpp_pool_connect(p, &l), CMN_OK);
    assert_int_equal(ev_wait(FIN_XMPP_OFFLINE, "agent9", 1, 8000), 1);
    assert_true(ev_find(FIN_XMPP_OFFLINE, "agent9", &ev));
    assert_non_null(strstr(ev.detail, "websocket upgrade refused"));
    assert_non_null(strstr(ev.detail, "404"));
    free(ev.payload);
    pthread_mutex_lock(&ev_lock);
    for (size_t i = 0; i < ev_n; i++) {
        if (evs[i].kind == FIN_XMPP_OFFLINE) {
            assert_true(evs[i].fatal);
        }
    }
    pthread_mutex_unlock(&ev_lock);
    pool_done();
}

static int
use_starttls(void **state)
{
    cur_transport = FIN_XMPP_TRANSPORT_STARTTLS;
    return setup_prosody(state);
}

static int
use_tls(void **state)
{
    cur_transport = FIN_XMPP_TRANSPORT_TLS;
    return setup_prosody(state);
}

static int
use_websocket(void **state)
{
    cur_transport = FIN_XMPP_TRANSPORT_WEBSOCKET;
    return setup_prosody(state);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_fin_xmpp_connect_online_and_update,
                                  teardown_case),
        cmocka_unit_test_teardown(test_fin_xmpp_presence_and_forged_events,
                                  teardown_case),
        cmocka_unit_test_teardown(test_fin_xmpp_wrong_password_is_auth_failed,
                                  teardown_case),
        cmocka_unit_test_teardown(test_fin_xmpp_disconnect_ends_session,
                                  teardown_case),
        cmocka_unit_test_teardown(test_fin_xmpp_bulk_two_workers,
                                  teardown_case),
        cmocka_unit_test_teardown(test_fin_xmpp_worker_killed, teardown_case),
        cmocka_unit_test_teardown(test_fin_xmpp_ping_timeout_and_server_death,
                                  teardown_case),
        cmocka_unit_test_teardown(test_fin_xmpp_untrusted_certificate,
                                  teardown_case),
        cmocka_unit_test_teardown(test_fin_xmpp_websocket_not_found,
                                  teardown_case),
    };
    int failed = 0;

    /* the same cases over each transport, each against a fresh prosody */
    failed += cmocka_run_group_tests_name("starttls", tests, use_starttls,
                                          teardown_prosody);
    failed += cmocka_run_group_tests_name("tls", tests, use_tls,
                                          teardown_prosody);
    failed += cmocka_run_group_tests_name("websocket", tests, use_websocket,
                                          teardown_prosody);
    return failed;
}
