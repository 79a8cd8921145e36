/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_cti_agent.c - an agent's model and event log as a tab sees them
 * over a real SSE stream: snapshot on attach, call variables kept when an
 * update lacks them, a dialog dropped exactly once, a re-read list that
 * drops what it no longer lists, and Last-Event-ID replay. Screen pops:
 * each goes to one tab (the focused one), is claimed once, moves to the
 * next tab when not claimed in time, waits for a tab when there is none,
 * moves on when its claimant closes before it said done (never after),
 * refuses claims from closed streams, keeps claims that never say done
 * (older clients) after CTI_POP_DONE_MS, and is forgotten when the call
 * ends. An agent whose JSON is larger than any fixed frame buffer still
 * arrives whole. */
#include <arpa/inet.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "cmn_httpd.h"
#include "cti_agent.h"
#include "fin_parse.h"

static struct cti_agent *agent;
static struct cmn_httpd *server;

static int
h_events(struct cmn_http_req *req, void *app)
{
    const char *last = cmn_http_req_header(req, "Last-Event-ID");

    (void)app;
    if (cti_agent_attach(agent, req, last ? strtoull(last, NULL, 10) : 0) !=
        CMN_OK) {
        return cmn_http_reply_error(req, 500, "attach", "failed");
    }
    return CMN_OK;
}

static const struct cmn_http_route routes[] = {
    {"GET", "/events", h_events},
};

/* A tab: connects, sends the request, and reads what arrives. */
struct tab {
    int fd;
    char buf[65536];
    size_t len;
};

static void
tab_open(struct tab *t, const char *last_id)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    char req[256];

    memset(t, 0, sizeof(*t));
    sa.sin_port = htons((uint16_t)cmn_httpd_port(server));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    t->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(t->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    int n = snprintf(req, sizeof(req),
                     "GET /events HTTP/1.1\r\nHost: x\r\n%s%s%s\r\n",
                     last_id ? "Last-Event-ID: " : "", last_id ? last_id : "",
                     last_id ? "\r\n" : "");
    assert_int_equal(write(t->fd, req, (size_t)n), n);
}

/* Read until needle shows up (true) or 2 s pass (false). */
static bool
tab_until(struct tab *t, const char *needle)
{
    for (int i = 0; i < 200; i++) {
        if (strstr(t->buf, needle) != NULL) {
            return true;
        }
        struct pollfd p = {.fd = t->fd, .events = POLLIN};
        if (poll(&p, 1, 10) == 1) {
            ssize_t n =
                read(t->fd, t->buf + t->len, sizeof(t->buf) - t->len - 1);
            if (n <= 0) {
                break;
            }
            t->len += (size_t)n;
            t->buf[t->len] = '\0';
        }
    }
    return strstr(t->buf, needle) != NULL;
}

static size_t
count(const char *hay, const char *needle)
{
    size_t n = 0;

    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

static void
tab_close(struct tab *t)
{
    close(t->fd);
}

/* Read for ms milliseconds; true if needle showed up. */
static bool
tab_wait(struct tab *t, const char *needle, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        if (strstr(t->buf, needle) != NULL) {
            return true;
        }
        struct pollfd p = {.fd = t->fd, .events = POLLIN};
        if (poll(&p, 1, 10) == 1) {
            ssize_t n =
                read(t->fd, t->buf + t->len, sizeof(t->buf) - t->len - 1);
            if (n <= 0) {
                break;
            }
            t->len += (size_t)n;
            t->buf[t->len] = '\0';
        }
    }
    return strstr(t->buf, needle) != NULL;
}

/* Opens a tab and reads the stream id it is told first. */
static void
tab_open_id(struct tab *t, char id[CTI_STREAM_ID_MAX])
{
    static const char key[] = "event: stream\ndata: {\"stream\":\"";

    tab_open(t, NULL);
    assert_true(tab_until(t, "event: agent"));
    const char *p = strstr(t->buf, key);
    assert_non_null(p);
    p += sizeof(key) - 1;
    size_t n = strcspn(p, "\"");
    assert_true(n > 0 && n < CTI_STREAM_ID_MAX);
    memcpy(id, p, n);
    id[n] = '\0';
}

static json_t *
pop_of(const char *dialog_id)
{
    return json_pack("{s:s, s:s, s:{s:s}}", "dialog_id", dialog_id, "type",
                     "SOBJECT", "params", "recordId", "003000000000001AAA");
}

static struct fin_dialog *
dialog(const char *id, const char *state, const char *var)
{
    struct fin_dialog *d = calloc(1, sizeof(*d));

    snprintf(d->id, sizeof(d->id), "%s", id);
    snprintf(d->state, sizeof(d->state), "%s", state);
    snprintf(d->from_address, sizeof(d->from_address), "+14155550100");
    if (var != NULL) {
        snprintf(d->vars[0].name, sizeof(d->vars[0].name), "callVariable1");
        snprintf(d->vars[0].value, sizeof(d->vars[0].value), "%s", var);
        snprintf(d->vars[1].name, sizeof(d->vars[1].name), "user.sf_id");
        snprintf(d->vars[1].value, sizeof(d->vars[1].value), "001xx");
        d->nvars = 2;
    }
    return d;
}

static int
setup(void **state)
{
    struct cmn_httpd_opts o = {.listen = "127.0.0.1:0", .threads = 1};
    struct cmn_err err;

    (void)state;
    agent = cti_agent_new("1001");
    server = cmn_httpd_start(&o, routes, 1, NULL, &err);
    return agent != NULL && server != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    cti_agent_detach_all(agent);
    cmn_httpd_stop(server, 500);
    cti_agent_unref(agent);
    return 0;
}

static void
test_cti_agent_snapshot_then_events(void **state)
{
    struct fin_user u = {0};
    struct tab t;
    (void)state;

    snprintf(u.login_id, sizeof(u.login_id), "1001");
    snprintf(u.state, sizeof(u.state), "READY");
    snprintf(u.extension, sizeof(u.extension), "1001");
    cti_agent_apply_user(agent, &u);
    struct fin_dialog *d = dialog("D1", "ALERTING", "4711");
    cti_agent_apply_dialog(agent, d, FIN_EVENT_POST);
    free(d);

    tab_open(&t, NULL);
    /* the snapshot: agent and the live dialog, not numbered */
    assert_true(tab_until(&t, "\"id\":\"D1\""));
    assert_non_null(strstr(t.buf, "retry: 3000"));
    assert_non_null(strstr(t.buf, "event: agent\ndata: {"));
    assert_non_null(strstr(t.buf, "\"state\":\"READY\""));
    assert_null(strstr(t.buf, "id: 1\n"));

    /* an update without call data keeps the cached variables */
    d = dialog("D1", "ACTIVE", NULL);
    cti_agent_apply_dialog(agent, d, FIN_EVENT_PUT);
    free(d);
    assert_true(tab_until(&t, "\"state\":\"ACTIVE\""));
    const char *active = strstr(t.buf, "\"state\":\"ACTIVE\"");
    assert_non_null(strstr(active, "\"callVariable1\":\"4711\""));
    assert_non_null(strstr(active, "\"ecc\":{\"user.sf_id\":\"001xx\"}"));

    /* the same user again emits nothing; a change emits one event */
    cti_agent_apply_user(agent, &u);
    snprintf(u.state, sizeof(u.state), "TALKING");
    cti_agent_apply_user(agent, &u);
    assert_true(tab_until(&t, "\"state\":\"TALKING\""));
    assert_int_equal(count(t.buf, "\"state\":\"READY\""), 1);
    tab_close(&t);
}

static void
test_cti_agent_dropped_once_and_replaced(void **state)
{
    struct tab t;
    struct fin_dialogs list = {0};
    (void)state;

    tab_open(&t, NULL);
    assert_true(tab_until(&t, "\"id\":\"D1\""));
    struct fin_dialog *d = dialog("D1", "ACTIVE", NULL);
    cti_agent_apply_dialog(agent, d, FIN_EVENT_DELETE);
    cti_agent_apply_dialog(agent, d, FIN_EVENT_DELETE); /* again: no event */
    free(d);
    assert_true(tab_until(&t, "\"state\":\"DROPPED\""));
    assert_int_equal(cti_agent_dialog_count(agent), 0);

    /* a re-read list: D2 and D3 appear, then a list with only D3 drops
     * D2 and keeps D3's cached variables */
    list.items = calloc(2, sizeof(*list.items));
    d = dialog("D2", "ACTIVE", "x");
    list.items[0] = *d;
    free(d);
    d = dialog("D3", "ALERTING", "kept");
    list.items[1] = *d;
    free(d);
    list.n = 2;
    cti_agent_replace_dialogs(agent, &list);
    assert_int_equal(cti_agent_dialog_count(agent), 2);
    d = dialog("D3", "ACTIVE", NULL);
    list.items[0] = *d;
    free(d);
    list.n = 1;
    cti_agent_replace_dialogs(agent, &list);
    free(list.items);
    assert_int_equal(cti_agent_dialog_count(agent), 1);
    struct fin_dialog *copy = malloc(sizeof(*copy));
    assert_true(cti_agent_dialog(agent, "D3", copy));
    assert_string_equal(fin_dialog_var(copy, "callVariable1"), "kept");
    assert_false(cti_agent_dialog(agent, "D2", copy));
    free(copy);
    assert_true(tab_until(&t, "\"id\":\"D2\",\"state\":\"DROPPED\""));
    assert_int_equal(count(t.buf, "\"state\":\"DROPPED\""), 2); /* D1, D2 */
    tab_close(&t);
}

static void
test_cti_agent_resume_replays_missed_events(void **state)
{
    struct tab t;
    (void)state;

    cti_agent_emit_error(agent, "rq-1", "finesse_error", "first");
    cti_agent_emit_error(agent, "rq-2", "finesse_error", "second");
    cti_agent_emit_error(agent, "rq-3", "finesse_error", "third");
    /* resuming from id 1 (still in the log) replays every later event in
     * order, without a snapshot */
    tab_open(&t, "1");
    assert_true(tab_until(&t, "third"));
    assert_null(strstr(t.buf, "event: snapshot")); /* no snapshot */
    assert_non_null(strstr(t.buf, "second"));
    const char *p2 = strstr(t.buf, "second"), *p3 = strstr(t.buf, "third");
    assert_true(p2 < p3);
    assert_non_null(strstr(t.buf, "\"request_id\":\"rq-3\""));
    tab_close(&t);

    /* an id the log no longer holds gets a snapshot instead */
    for (int i = 0; i < CTI_EVENT_RING + 5; i++) {
        cti_agent_emit_error(agent, NULL, "filler", "x");
    }
    tab_open(&t, "2");
    assert_true(tab_until(&t, "event: agent\ndata: {"));
    assert_null(strstr(t.buf, "filler"));
    tab_close(&t);
}

static void
ring(const char *id)
{
    struct fin_dialog *d = dialog(id, "ALERTING", NULL);

    cti_agent_apply_dialog(agent, d, FIN_EVENT_POST);
    free(d);
}

static void
hang_up(const char *id)
{
    struct fin_dialog *d = dialog(id, "ACTIVE", NULL);

    cti_agent_apply_dialog(agent, d, FIN_EVENT_DELETE);
    free(d);
}

/* A tab's POST /api/v1/calls/{id}/popped: a claim, or with done its
 * "popped it" (at ms). */
static enum cti_pop_claim
claim_at(const char *dialog_id, const char *stream, bool done, long long ms)
{
    return cti_agent_pop_claim(agent, dialog_id, stream, done, ms);
}

static enum cti_pop_claim
claim(const char *dialog_id, const char *stream)
{
    return claim_at(dialog_id, stream, false, cmn_now_ms());
}

/* Ticks at ms until a pop moves, for up to 2 s: the server notices a
 * closed tab on a write to it, a moment later. */
static size_t
tick_until_moved(long long ms)
{
    for (int i = 0; i < 200; i++) {
        size_t moved = cti_agent_pops_tick(agent, ms);
        if (moved > 0) {
            return moved;
        }
        usleep(10000);
    }
    return 0;
}

/* Heartbeats until the server counts n tabs (closed ones dropped). */
static void
until_tabs(size_t n)
{
    for (int i = 0; i < 200 && cti_agent_heartbeat(agent) != n; i++) {
        usleep(10000);
    }
    assert_int_equal(cti_agent_heartbeat(agent), n);
}

static void
test_cti_agent_pop_to_focused_tab_once(void **state)
{
    struct tab t1, t2;
    char id1[CTI_STREAM_ID_MAX], id2[CTI_STREAM_ID_MAX];
    long long now = cmn_now_ms();
    (void)state;

    cti_agent_detach_all(agent); /* tabs of earlier tests */
    tab_open_id(&t1, id1);
    tab_open_id(&t2, id2);
    assert_string_not_equal(id1, id2);
    /* the older tab is the one the agent is in */
    assert_int_equal(cti_agent_tab_focus(agent, id1, true, true, true, now),
                     CMN_OK);
    assert_int_equal(cti_agent_tab_focus(agent, id2, false, true, true, now),
                     CMN_OK);
    assert_int_equal(cti_agent_tab_focus(agent, "nope", true, true, true, now),
                     CMN_NOTFOUND);
    ring("P1");
    cti_agent_offer_pop(agent, "P1", pop_of("P1"), now);
    assert_true(tab_until(&t1, "event: pop\ndata: {\"dialog_id\":\"P1\""));
    assert_false(tab_wait(&t2, "event: pop", 300));
    /* a pop is not a numbered event: a resuming tab never gets it again */
    assert_null(strstr(strstr(t1.buf, "event: pop"), "id: "));
    /* only the tab it was offered to may claim it, once */
    assert_int_equal(claim("P1", id2), CTI_POP_NOT_OFFERED);
    assert_int_equal(claim("P1", id1), CTI_POP_CLAIMED);
    assert_int_equal(claim("P1", id1), CTI_POP_CLAIMED);
    assert_int_equal(claim("P2", id1), CTI_POP_NONE);
    /* claimed: time passing moves nothing; a second decision is ignored */
    assert_int_equal(cti_agent_pops_tick(agent, now + 5000), 0);
    cti_agent_offer_pop(agent, "P1", pop_of("P1"), now);
    assert_false(tab_wait(&t2, "event: pop", 300));
    assert_int_equal(count(t1.buf, "event: pop"), 1);
    /* the call ends: its pop is forgotten */
    hang_up("P1");
    assert_int_equal(claim("P1", id1), CTI_POP_NONE);
    /* a call that is not (or no longer) live gets no pop */
    cti_agent_offer_pop(agent, "P1", pop_of("P1"), now);
    assert_int_equal(claim("P1", id1), CTI_POP_NONE);
    tab_close(&t1);
    tab_close(&t2);
}

static void
test_cti_agent_pop_moves_on_when_unclaimed(void **state)
{
    struct tab t1, t2, t3;
    char id1[CTI_STREAM_ID_MAX], id2[CTI_STREAM_ID_MAX], id3[CTI_STREAM_ID_MAX];
    long long now = cmn_now_ms();
    (void)state;

    cti_agent_detach_all(agent);
    tab_open_id(&t1, id1);
    tab_open_id(&t2, id2);
    tab_open_id(&t3, id3);
    /* t1 in front, t2 was in front before it, t3 never shown; t3 is a
     * page outside Salesforce: never offered a pop */
    assert_int_equal(cti_agent_tab_focus(agent, id2, false, true, true, now),
                     CMN_OK);
    assert_int_equal(
        cti_agent_tab_focus(agent, id2, false, false, true, now + 10), CMN_OK);
    assert_int_equal(
        cti_agent_tab_focus(agent, id1, false, true, true, now + 20), CMN_OK);
    assert_int_equal(
        cti_agent_tab_focus(agent, id3, true, true, false, now + 30), CMN_OK);
    ring("P3");
    cti_agent_offer_pop(agent, "P3", pop_of("P3"), now + 100);
    assert_true(tab_until(&t1, "event: pop"));
    /* not yet CTI_POP_CONFIRM_MS: nothing moves */
    assert_int_equal(cti_agent_pops_tick(agent, now + 1100), 0);
    assert_false(tab_wait(&t2, "event: pop", 200));
    /* t1 did not claim in time: the most recently visible other tab */
    assert_int_equal(cti_agent_pops_tick(agent, now + 100 + CTI_POP_CONFIRM_MS),
                     1);
    assert_true(tab_until(&t2, "event: pop\ndata: {\"dialog_id\":\"P3\""));
    assert_int_equal(claim("P3", id2), CTI_POP_CLAIMED);
    /* t1 wakes up late: the pop is taken */
    assert_int_equal(claim("P3", id1), CTI_POP_TAKEN);
    assert_int_equal(claim("P3", id3), CTI_POP_TAKEN);
    assert_false(tab_wait(&t3, "event: pop", 200));
    hang_up("P3");

    /* a late claim by the first tab still wins while nobody else has
     * claimed: the pop happens once, in the tab that was slow */
    ring("P4");
    cti_agent_offer_pop(agent, "P4", pop_of("P4"), now + 200);
    assert_int_equal(cti_agent_pops_tick(agent, now + 200 + CTI_POP_CONFIRM_MS),
                     1);
    assert_int_equal(claim("P4", id1), CTI_POP_CLAIMED);
    assert_int_equal(claim("P4", id2), CTI_POP_TAKEN);
    hang_up("P4");
    tab_close(&t1);
    tab_close(&t2);
    tab_close(&t3);
}

static void
test_cti_agent_pop_waits_for_a_tab(void **state)
{
    struct tab t1, t2;
    char id1[CTI_STREAM_ID_MAX], id2[CTI_STREAM_ID_MAX];
    long long now = cmn_now_ms();
    (void)state;

    /* every tab is away (a refresh mid-ring): the pop waits */
    cti_agent_detach_all(agent);
    ring("P5");
    cti_agent_offer_pop(agent, "P5", pop_of("P5"), now);
    assert_int_equal(cti_agent_pops_tick(agent, now + 5000), 0);
    /* the refreshed tab attaches: the pop is offered to it at once */
    tab_open_id(&t1, id1);
    assert_true(tab_until(&t1, "event: pop\ndata: {\"dialog_id\":\"P5\""));
    /* it goes away again before claiming; the next tab gets the pop: at
     * once when the server saw the first one go, else when its time is up */
    tab_close(&t1);
    tab_open_id(&t2, id2);
    long long later = cmn_now_ms() + CTI_POP_CONFIRM_MS;
    assert_true(cti_agent_pops_tick(agent, later) <= 1);
    assert_true(tab_until(&t2, "event: pop\ndata: {\"dialog_id\":\"P5\""));
    assert_int_equal(count(t2.buf, "event: pop"), 1);
    assert_int_equal(claim("P5", id2), CTI_POP_CLAIMED);
    hang_up("P5");
    tab_close(&t2);
}

/* The stream's body without the HTTP/1.1 chunk framing. */
static void
dechunk(const struct tab *t, char *out, size_t size)
{
    const char *p = strstr(t->buf, "\r\n\r\n");
    size_t o = 0;

    assert_non_null(p);
    p += 4;
    for (;;) {
        char *end;
        unsigned long n = strtoul(p, &end, 16);
        if (end == p || strncmp(end, "\r\n", 2) != 0 || n == 0 ||
            strlen(end + 2) < n + 2) {
            break; /* the last, still incomplete chunk */
        }
        assert_true(o + n < size);
        memcpy(out + o, end + 2, n);
        o += n;
        p = end + 2 + n + 2;
    }
    out[o] = '\0';
}

static void
test_cti_agent_large_agent_event_whole(void **state)
{
    static char body[sizeof(((struct tab *)0)->buf)];
    struct fin_user u = {0};
    struct tab t;
    json_error_t jerr;
    json_t *j;
    (void)state;

    /* every control character is six bytes in JSON (\u0001): these
     * fields alone come to well over 2 KB once encoded */
    snprintf(u.login_id, sizeof(u.login_id), "1001");
    snprintf(u.state, sizeof(u.state), "NOT_READY");
    snprintf(u.reason_code_id, sizeof(u.reason_code_id), "7");
    memset(u.first_name, 1, sizeof(u.first_name) - 2);
    u.first_name[sizeof(u.first_name) - 2] = 'F';
    memset(u.last_name, 1, sizeof(u.last_name) - 2);
    u.last_name[sizeof(u.last_name) - 2] = 'L';
    memset(u.reason.label, 1, sizeof(u.reason.label) - 2);
    u.reason.label[sizeof(u.reason.label) - 2] = 'R';
    cti_agent_detach_all(agent);
    cti_agent_apply_user(agent, &u);

    tab_open(&t, NULL);
    assert_true(tab_until(&t, "event: agent\ndata: {"));
    assert_true(tab_until(&t, "R\"")); /* the label, near the end */
    /* the snapshot's agent event (what the buffer overflowed on) */
    dechunk(&t, body, sizeof(body));
    char *data = strstr(body, "event: agent\ndata: ");
    assert_non_null(data);
    data += strlen("event: agent\ndata: ");
    char *end = strstr(data, "\n\n");
    assert_non_null(end);
    *end = '\0';
    assert_true(strlen(data) > 2048);
    j = json_loads(data, 0, &jerr);
    assert_non_null(j);
    const char *last = json_string_value(json_object_get(j, "last_name"));
    const char *label = json_string_value(json_object_get(j, "reason_label"));
    assert_non_null(last);
    assert_non_null(label);
    assert_int_equal(strlen(last), sizeof(u.last_name) - 1);
    assert_int_equal(last[strlen(last) - 1], 'L');
    assert_int_equal(label[strlen(label) - 1], 'R');
    json_decref(j);
    tab_close(&t);
}

static void
test_cti_agent_pop_claimant_gone_before_done(void **state)
{
    struct tab t1, t2, t3;
    char id1[CTI_STREAM_ID_MAX], id2[CTI_STREAM_ID_MAX], id3[CTI_STREAM_ID_MAX];
    long long now = cmn_now_ms();
    (void)state;

    cti_agent_detach_all(agent);
    tab_open_id(&t1, id1);
    tab_open_id(&t2, id2);
    assert_int_equal(cti_agent_tab_focus(agent, id2, false, true, true, now),
                     CMN_OK);
    assert_int_equal(
        cti_agent_tab_focus(agent, id1, true, true, true, now + 10), CMN_OK);
    ring("P6");
    cti_agent_offer_pop(agent, "P6", pop_of("P6"), now + 100);
    assert_true(tab_until(&t1, "event: pop\ndata: {\"dialog_id\":\"P6\""));
    assert_int_equal(claim_at("P6", id1, false, now + 200), CTI_POP_CLAIMED);
    /* claimed, not done yet, its tab still there: nothing moves */
    assert_int_equal(cti_agent_pops_tick(agent, now + 1200), 0);
    assert_int_equal(cti_agent_pops_tick(agent, now + 2200), 0);
    assert_false(tab_wait(&t2, "event: pop", 200));
    /* t1 closes between its claim and its pop: the agent saw nothing, so
     * the next tab gets the pop, at once (not after CTI_POP_DONE_MS) */
    tab_close(&t1);
    assert_int_equal(tick_until_moved(now + 2300), 1);
    assert_true(tab_until(&t2, "event: pop\ndata: {\"dialog_id\":\"P6\""));
    assert_int_equal(claim_at("P6", id2, false, now + 2400), CTI_POP_CLAIMED);
    assert_int_equal(claim_at("P6", id2, true, now + 2500), CTI_POP_CLAIMED);
    assert_int_equal(claim_at("P6", id1, true, now + 2600), CTI_POP_TAKEN);
    /* done is final: t2 going (even at once) hands nothing on */
    tab_close(&t2);
    until_tabs(0);
    tab_open_id(&t3, id3);
    assert_int_equal(cti_agent_pops_tick(agent, now + 3000), 0);
    assert_int_equal(cti_agent_pops_tick(agent, now + 60000), 0);
    assert_false(tab_wait(&t3, "event: pop", 300));
    hang_up("P6");
    tab_close(&t3);
}

static void
test_cti_agent_pop_claim_from_closed_stream(void **state)
{
    struct tab t1, t2;
    char id1[CTI_STREAM_ID_MAX], id2[CTI_STREAM_ID_MAX];
    long long now = cmn_now_ms();
    (void)state;

    cti_agent_detach_all(agent);
    tab_open_id(&t1, id1);
    tab_open_id(&t2, id2);
    assert_int_equal(cti_agent_tab_focus(agent, id1, true, true, true, now),
                     CMN_OK);
    ring("P7");
    cti_agent_offer_pop(agent, "P7", pop_of("P7"), now);
    assert_true(tab_until(&t1, "event: pop\ndata: {\"dialog_id\":\"P7\""));
    /* t1 closes with its claim in flight; the server has seen it go */
    tab_close(&t1);
    until_tabs(1);
    assert_int_equal(claim_at("P7", id1, false, now + 100),
                     CTI_POP_STREAM_CLOSED);
    assert_int_equal(claim_at("P7", id1, true, now + 100),
                     CTI_POP_STREAM_CLOSED);
    /* nothing held: the next tick offers it to t2 */
    assert_int_equal(cti_agent_pops_tick(agent, now + 200), 1);
    assert_true(tab_until(&t2, "event: pop\ndata: {\"dialog_id\":\"P7\""));
    assert_int_equal(claim_at("P7", id2, true, now + 300), CTI_POP_CLAIMED);
    hang_up("P7");
    tab_close(&t2);
}

static void
test_cti_agent_pop_claim_without_done_is_kept(void **state)
{
    struct tab t1, t2, t3;
    char id1[CTI_STREAM_ID_MAX], id2[CTI_STREAM_ID_MAX], id3[CTI_STREAM_ID_MAX];
    long long now = cmn_now_ms();
    (void)state;

    /* a client that claims and never says done (the API before "done"):
     * after CTI_POP_DONE_MS its claim is final, its tab may go */
    cti_agent_detach_all(agent);
    tab_open_id(&t1, id1);
    tab_open_id(&t2, id2);
    assert_int_equal(cti_agent_tab_focus(agent, id1, true, true, true, now),
                     CMN_OK);
    ring("P8");
    cti_agent_offer_pop(agent, "P8", pop_of("P8"), now);
    assert_true(tab_until(&t1, "event: pop\ndata: {\"dialog_id\":\"P8\""));
    assert_int_equal(claim_at("P8", id1, false, now + 100), CTI_POP_CLAIMED);
    assert_int_equal(cti_agent_pops_tick(agent, now + 100 + CTI_POP_DONE_MS),
                     0);
    tab_close(&t1);
    until_tabs(1);
    assert_int_equal(cti_agent_pops_tick(agent, now + 1100 + CTI_POP_DONE_MS),
                     0);
    assert_false(tab_wait(&t2, "event: pop", 300));
    assert_int_equal(claim_at("P8", id2, true, now + 1200 + CTI_POP_DONE_MS),
                     CTI_POP_TAKEN);
    hang_up("P8");

    /* done without a claim first: the claim and its done at once */
    ring("P9");
    cti_agent_offer_pop(agent, "P9", pop_of("P9"), now);
    assert_true(tab_until(&t2, "event: pop\ndata: {\"dialog_id\":\"P9\""));
    assert_int_equal(claim_at("P9", id2, true, now + 100), CTI_POP_CLAIMED);
    tab_close(&t2);
    until_tabs(0);
    tab_open_id(&t3, id3);
    assert_int_equal(cti_agent_pops_tick(agent, now + 200), 0);
    assert_false(tab_wait(&t3, "event: pop", 300));
    assert_int_equal(claim_at("P9", id3, false, now + 300), CTI_POP_TAKEN);
    hang_up("P9");
    tab_close(&t3);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cti_agent_snapshot_then_events),
        cmocka_unit_test(test_cti_agent_dropped_once_and_replaced),
        cmocka_unit_test(test_cti_agent_resume_replays_missed_events),
        cmocka_unit_test(test_cti_agent_pop_to_focused_tab_once),
        cmocka_unit_test(test_cti_agent_pop_moves_on_when_unclaimed),
        cmocka_unit_test(test_cti_agent_pop_waits_for_a_tab),
        cmocka_unit_test(test_cti_agent_large_agent_event_whole),
        cmocka_unit_test(test_cti_agent_pop_claimant_gone_before_done),
        cmocka_unit_test(test_cti_agent_pop_claim_from_closed_stream),
        cmocka_unit_test(test_cti_agent_pop_claim_without_done_is_kept),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
