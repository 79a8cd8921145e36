/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_agent.c - an agent's model, event log and attached tabs.
 *
 * Lock order: the agent's lock, then (inside cmn_http_stream_write) the
 * stream's own lock. A stream's on_close callback runs with the stream
 * locked, so it never takes the agent lock: it only flags the tab, which
 * the next write or heartbeat removes. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_log.h"
#include "cmn_seal.h"
#include "cti_agent_int.h"
#include "fin_parse.h"

struct cti_agent *
cti_agent_new(const char *id)
{
    struct cti_agent *a = calloc(1, sizeof(*a));

    if (a == NULL) {
        return NULL;
    }
    pthread_mutex_init(&a->lock, NULL);
    atomic_init(&a->refs, 1);
    snprintf(a->id, sizeof(a->id), "%s", id);
    snprintf(a->user.login_id, sizeof(a->user.login_id), "%s", id);
    snprintf(a->user.state, sizeof(a->user.state), "LOGOUT");
    a->next_id = 1;
    return a;
}

void
cti_agent_ref(struct cti_agent *a)
{
    atomic_fetch_add(&a->refs, 1);
}

static void tab_unref(struct tab *t);

void
cti_agent_unref(struct cti_agent *a)
{
    if (a == NULL || atomic_fetch_sub(&a->refs, 1) != 1) {
        return;
    }
    cti_agent_detach_all(a);
    agent_pops_forget(a, NULL);
    for (size_t i = 0; i < a->ndialogs; i++) {
        free(a->dialogs[i]);
    }
    for (size_t i = 0; i < CTI_EVENT_RING; i++) {
        free(a->ring[i].frame);
    }
    pthread_mutex_destroy(&a->lock);
    free(a);
}

const char *
cti_agent_id(const struct cti_agent *a)
{
    return a->id;
}

/* --- JSON --- */

static json_t *
user_json(const struct cti_agent *a)
{
    const struct fin_user *u = &a->user;

    return json_pack(
        "{s:s, s:s, s:s?, s:s?, s:s, s:s, s:s, s:s}", "id", a->id, "state",
        u->state, "reason_code_id",
        u->reason_code_id[0] ? u->reason_code_id : NULL, "reason_label",
        u->reason.label[0] ? u->reason.label : NULL, "pending_state",
        u->pending_state, "extension", u->extension, "first_name",
        u->first_name, "last_name", u->last_name);
}

json_t *
cti_dialog_json(const struct fin_dialog *d)
{
    json_t *vars = json_object(), *ecc = json_object(), *parts = json_array();

    for (size_t i = 0; i < d->nvars; i++) {
        /* ECC variables are named "user.*" (reference/finesse.md §1.4) */
        json_object_set_new(strncmp(d->vars[i].name, "user.", 5) == 0 ? ecc
                                                                      : vars,
                            d->vars[i].name, json_string(d->vars[i].value));
    }
    for (size_t i = 0; i < d->nparts; i++) {
        json_t *actions = json_array();
        for (size_t k = 0; k < d->parts[i].nactions; k++) {
            json_array_append_new(actions, json_string(d->parts[i].actions[k]));
        }
        json_array_append_new(parts,
                              json_pack("{s:s, s:s, s:o}", "address",
                                        d->parts[i].media_address, "state",
                                        d->parts[i].state, "actions", actions));
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, "
                     "s:o}",
                     "id", d->id, "state", d->state, "from", d->from_address,
                     "to", d->to_address, "call_type", d->call_type, "queue",
                     d->queue_name, "dnis", d->dnis, "wrapup_reason",
                     d->wrapup_reason, "callvariables", vars, "ecc", ecc,
                     "participants", parts);
}

json_t *
cti_agent_json(struct cti_agent *a)
{
    json_t *j;

    pthread_mutex_lock(&a->lock);
    j = user_json(a);
    pthread_mutex_unlock(&a->lock);
    return j;
}

/* --- tabs and events (agent lock held) --- */

static void
on_tab_close(void *cls)
{
    struct tab *t = cls;

    atomic_store(&t->closed, true);
    tab_unref(t);
}

static void
tab_unref(struct tab *t)
{
    if (atomic_fetch_sub(&t->refs, 1) == 1) {
        free(t);
    }
}

static void
tab_drop(struct tab *t)
{
    cmn_http_stream_end(t->stream);
    cmn_http_stream_release(t->stream);
    tab_unref(t);
}

/* Write to every tab; a tab that is gone or too slow is dropped (its
 * browser reconnects with Last-Event-ID and catches up from the log). */
static size_t
broadcast(struct cti_agent *a, const char *frame, size_t len)
{
    struct tab **pp = &a->tabs;
    size_t n = 0;

    while (*pp != NULL) {
        struct tab *t = *pp;
        if (atomic_load(&t->closed) ||
            (frame != NULL &&
             cmn_http_stream_write(t->stream, frame, len) != CMN_OK)) {
            *pp = t->next;
            tab_drop(t);
            continue;
        }
        n++;
        pp = &t->next;
    }
    return n;
}

static void
emit_locked(struct cti_agent *a, const char *type, json_t *data)
{
    char *text = json_dumps(data, JSON_COMPACT);
    struct event *ev;
    int n;

    json_decref(data);
    if (text == NULL) {
        return;
    }
    ev = &a->ring[a->next_id % CTI_EVENT_RING];
    free(ev->frame);
    ev->id = a->next_id++;
    ev->len = strlen(text) + strlen(type) + 64;
    ev->frame = malloc(ev->len);
    if (ev->frame == NULL) {
        free(text);
        ev->len = 0;
        return;
    }
    n = snprintf(ev->frame, ev->len, "id: %llu\nevent: %s\ndata: %s\n\n",
                 ev->id, type, text);
    ev->len = (size_t)n;
    free(text);
    broadcast(a, ev->frame, ev->len);
}

void
cti_agent_emit(struct cti_agent *a, const char *type, json_t *data)
{
    pthread_mutex_lock(&a->lock);
    emit_locked(a, type, data);
    pthread_mutex_unlock(&a->lock);
}

void
cti_agent_emit_error(struct cti_agent *a, const char *request_id,
                     const char *error, const char *detail)
{
    cti_agent_emit(a, "error",
                   json_pack("{s:s, s:s, s:s?}", "error", error, "detail",
                             detail, "request_id",
                             request_id && request_id[0] ? request_id : NULL));
}

/* --- model --- */

static bool
user_changed(const struct fin_user *a, const struct fin_user *b)
{
    return strcmp(a->state, b->state) != 0 ||
           strcmp(a->pending_state, b->pending_state) != 0 ||
           strcmp(a->reason_code_id, b->reason_code_id) != 0 ||
           strcmp(a->extension, b->extension) != 0;
}

void
cti_agent_apply_user(struct cti_agent *a, const struct fin_user *u)
{
    pthread_mutex_lock(&a->lock);
    bool changed = user_changed(&a->user, u);
    a->user = *u;
    if (changed) {
        emit_locked(a, "agent", user_json(a));
    }
    pthread_mutex_unlock(&a->lock);
}

void
cti_agent_user(struct cti_agent *a, struct fin_user *out)
{
    pthread_mutex_lock(&a->lock);
    *out = a->user;
    pthread_mutex_unlock(&a->lock);
}

ssize_t
agent_find_dialog(const struct cti_agent *a, const char *id)
{
    for (size_t i = 0; i < a->ndialogs; i++) {
        if (strcmp(a->dialogs[i]->id, id) == 0) {
            return (ssize_t)i;
        }
    }
    return -1;
}

/* Keep variables the new copy lacks: some events (and a node that just
 * took over) carry a dialog without its call data. */
static void
merge_vars(struct fin_dialog *fresh, const struct fin_dialog *old)
{
    for (size_t i = 0; i < old->nvars && fresh->nvars < FIN_MAX_VARS; i++) {
        if (fin_dialog_var(fresh, old->vars[i].name) == NULL) {
            fresh->vars[fresh->nvars++] = old->vars[i];
        }
    }
    if (fresh->queue_name[0] == '\0') {
        memcpy(fresh->queue_name, old->queue_name, sizeof(old->queue_name));
    }
    if (fresh->dnis[0] == '\0') {
        memcpy(fresh->dnis, old->dnis, sizeof(old->dnis));
    }
    if (fresh->call_type[0] == '\0') {
        memcpy(fresh->call_type, old->call_type, sizeof(old->call_type));
    }
}

void
cti_agent_set_dialog_hook(struct cti_agent *a, cti_dialog_hook hook, void *cls)
{
    pthread_mutex_lock(&a->lock);
    a->hook = hook;
    a->hook_cls = cls;
    pthread_mutex_unlock(&a->lock);
}

static void
drop_at(struct cti_agent *a, size_t i)
{
    struct fin_dialog *d = a->dialogs[i];

    snprintf(d->state, sizeof(d->state), "DROPPED");
    agent_pops_forget(a, d->id);
    if (a->hook != NULL) {
        a->hook(a, CTI_DIALOG_ENDED, d, a->hook_cls);
    }
    emit_locked(a, "dialog", cti_dialog_json(d));
    free(d);
    a->dialogs[i] = a->dialogs[--a->ndialogs];
}

static void
upsert_locked(struct cti_agent *a, const struct fin_dialog *d)
{
    ssize_t i = agent_find_dialog(a, d->id);
    struct fin_dialog *copy;

    if (strcmp(d->state, "DROPPED") == 0) {
        if (i >= 0) {
            drop_at(a, (size_t)i);
        }
        return;
    }
    copy = malloc(sizeof(*copy));
    if (copy == NULL) {
        return;
    }
    *copy = *d;
    if (i >= 0) {
        merge_vars(copy, a->dialogs[i]);
        free(a->dialogs[i]);
        a->dialogs[i] = copy;
    } else if (a->ndialogs < FIN_MAX_DIALOGS) {
        a->dialogs[a->ndialogs++] = copy;
    } else {
        cmn_log_warn("event=dialog_ignored agent=%s reason=too_many", a->id);
        free(copy);
        return;
    }
    if (a->hook != NULL) {
        a->hook(a, i >= 0 ? CTI_DIALOG_UPDATED : CTI_DIALOG_NEW, copy,
                a->hook_cls);
    }
    emit_locked(a, "dialog", cti_dialog_json(copy));
}

void
cti_agent_apply_dialog(struct cti_agent *a, const struct fin_dialog *d,
                       enum fin_update_event ev)
{
    pthread_mutex_lock(&a->lock);
    if (ev == FIN_EVENT_DELETE) {
        ssize_t i = agent_find_dialog(a, d->id);
        if (i >= 0) {
            drop_at(a, (size_t)i);
        }
    } else {
        upsert_locked(a, d);
    }
    pthread_mutex_unlock(&a->lock);
}

void
cti_agent_replace_dialogs(struct cti_agent *a, const struct fin_dialogs *list)
{
    pthread_mutex_lock(&a->lock);
    for (size_t i = a->ndialogs; i-- > 0;) {
        bool listed = false;
        for (size_t k = 0; k < list->n && !listed; k++) {
            listed = strcmp(list->items[k].id, a->dialogs[i]->id) == 0;
        }
        if (!listed) {
            drop_at(a, i);
        }
    }
    for (size_t k = 0; k < list->n; k++) {
        upsert_locked(a, &list->items[k]);
    }
    pthread_mutex_unlock(&a->lock);
}

bool
cti_agent_dialog(struct cti_agent *a, const char *id, struct fin_dialog *out)
{
    bool found;

    pthread_mutex_lock(&a->lock);
    ssize_t i = agent_find_dialog(a, id);
    found = i >= 0;
    if (found) {
        *out = *a->dialogs[i];
    }
    pthread_mutex_unlock(&a->lock);
    return found;
}

bool
cti_agent_has_dialog(struct cti_agent *a, const char *id)
{
    bool found;

    pthread_mutex_lock(&a->lock);
    found = agent_find_dialog(a, id) >= 0;
    pthread_mutex_unlock(&a->lock);
    return found;
}

size_t
cti_agent_dialog_count(struct cti_agent *a)
{
    size_t n;

    pthread_mutex_lock(&a->lock);
    n = a->ndialogs;
    pthread_mutex_unlock(&a->lock);
    return n;
}

/* --- tabs --- */

/* "event: <type>\ndata: <text>\n\n" (unnumbered) to one stream, in a
 * buffer sized for it: an agent or a dialog has no fixed size once JSON
 * has escaped it. */
static int
write_event(struct cmn_http_stream *s, const char *type, const char *text)
{
    size_t len = strlen(type) + strlen(text) + sizeof("event: \ndata: \n\n");
    char *frame = malloc(len);
    int n, rc;

    if (frame == NULL) {
        return CMN_NOMEM;
    }
    n = snprintf(frame, len, "event: %s\ndata: %s\n\n", type, text);
    rc = n > 0 && (size_t)n < len ? cmn_http_stream_write(s, frame, (size_t)n)
                                  : CMN_ERR;
    free(frame);
    return rc;
}

static int
send_snapshot(struct cti_agent *a, struct cmn_http_stream *s)
{
    /* the snapshot is not numbered: a tab that resumes later gets what
     * follows the last numbered event it saw. It opens with a `snapshot`
     * event naming the live dialogs, so that a tab that was away drops
     * the calls that ended meanwhile (their DROPPED event is not in what
     * follows). */
    char *text = NULL;
    json_t *ids = json_array();
    json_t *j;
    int rc = CMN_OK;

    for (size_t i = 0; i < a->ndialogs && ids != NULL; i++) {
        json_array_append_new(ids, json_string(a->dialogs[i]->id));
    }
    j = json_pack("{s:o}", "dialogs", ids != NULL ? ids : json_array());
    text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (text != NULL) {
        rc = write_event(s, "snapshot", text);
        free(text);
    }
    j = user_json(a);
    text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (text != NULL && rc == CMN_OK) {
        rc = write_event(s, "agent", text);
    }
    free(text);
    for (size_t i = 0; i < a->ndialogs && rc == CMN_OK; i++) {
        j = cti_dialog_json(a->dialogs[i]);
        text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (text == NULL) {
            continue;
        }
        rc = write_event(s, "dialog", text);
        free(text);
    }
    return rc;
}

struct tab *
agent_find_tab(const struct cti_agent *a, const char *stream)
{
    for (struct tab *t = a->tabs; t != NULL; t = t->next) {
        if (!atomic_load(&t->closed) && strcmp(t->id, stream) == 0) {
            return t;
        }
    }
    return NULL;
}

int
cti_agent_attach(struct cti_agent *a, struct cmn_http_req *req,
                 unsigned long long last_id)
{
    struct tab *t = calloc(1, sizeof(*t));
    char hello[96];
    int rc = CMN_OK, n;

    if (t == NULL) {
        return CMN_NOMEM;
    }
    /* the tab's name for itself in focus reports and pop claims: random,
     * so one tab cannot speak for another it does not know */
    if (cmn_random_id(t->id, sizeof(t->id), 16) != CMN_OK) {
        free(t);
        return CMN_ERR;
    }
    atomic_init(&t->closed, false);
    atomic_init(&t->refs, 2);
    t->stream =
        cmn_http_reply_stream(req, 200, "text/event-stream", on_tab_close, t);
    if (t->stream == NULL) {
        free(t);
        return CMN_ERR;
    }
    /* not numbered: every connection gets its own, before anything else */
    n = snprintf(hello, sizeof(hello),
                 "retry: 3000\n\nevent: stream\ndata: {\"stream\":\"%s\"}\n\n",
                 t->id);
    pthread_mutex_lock(&a->lock);
    cti_tab_focus_init(&t->focus, ++a->tab_seq);
    rc = cmn_http_stream_write(t->stream, hello, (size_t)n);
    /* replay from the log when it still holds everything after last_id */
    unsigned long long oldest =
        a->next_id > CTI_EVENT_RING ? a->next_id - CTI_EVENT_RING : 1;
    if (rc == CMN_OK && last_id > 0 && last_id + 1 >= oldest &&
        last_id < a->next_id) {
        for (unsigned long long id = last_id + 1;
             id < a->next_id && rc == CMN_OK; id++) {
            struct event *ev = &a->ring[id % CTI_EVENT_RING];
            rc = cmn_http_stream_write(t->stream, ev->frame, ev->len);
        }
    } else if (rc == CMN_OK) {
        rc = send_snapshot(a, t->stream);
    }
    t->next = a->tabs;
    a->tabs = t;
    if (rc == CMN_OK) {
        agent_pops_on_attach(a, cmn_now_ms());
    }
    pthread_mutex_unlock(&a->lock);
    return CMN_OK;
}

size_t
cti_agent_heartbeat(struct cti_agent *a)
{
    static const char ping[] = ": ping\n\n";
    size_t n;

    pthread_mutex_lock(&a->lock);
    n = broadcast(a, ping, sizeof(ping) - 1);
    pthread_mutex_unlock(&a->lock);
    return n;
}

void
cti_agent_detach_all(struct cti_agent *a)
{
    pthread_mutex_lock(&a->lock);
    while (a->tabs != NULL) {
        struct tab *t = a->tabs;
        a->tabs = t->next;
        tab_drop(t);
    }
    pthread_mutex_unlock(&a->lock);
}
