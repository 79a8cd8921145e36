/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_fin_update.c - the Finesse Update notification parser on arbitrary
 * bytes; an accepted update must be internally consistent (strings end
 * inside their fields, counts within caps, kind matches what is filled). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_xml.h"
#include "fin_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A field that is not terminated inside its array is a parser bug. */
#define CHECK_STR(s)                                \
    do {                                            \
        if (strnlen((s), sizeof(s)) == sizeof(s)) { \
            abort();                                \
        }                                           \
    } while (0)

static void
check_dialog(const struct fin_dialog *d)
{
    CHECK_STR(d->id);
    CHECK_STR(d->state);
    CHECK_STR(d->wrapup_reason);
    if (d->id[0] == '\0' || d->state[0] == '\0' || d->nvars > FIN_MAX_VARS ||
        d->nparts > FIN_MAX_PARTS) {
        abort();
    }
    for (size_t i = 0; i < d->nvars; i++) {
        CHECK_STR(d->vars[i].name);
        CHECK_STR(d->vars[i].value);
        if (fin_dialog_var(d, d->vars[i].name) == NULL) {
            abort();
        }
    }
    for (size_t i = 0; i < d->nparts; i++) {
        const struct fin_participant *p = &d->parts[i];

        CHECK_STR(p->media_address);
        if (p->nactions > FIN_MAX_ACTIONS) {
            abort();
        }
        for (size_t j = 0; j < p->nactions; j++) {
            CHECK_STR(p->actions[j]);
            if (!fin_participant_can(p, p->actions[j])) {
                abort();
            }
        }
        if (fin_dialog_participant(d, p->media_address) == NULL) {
            abort();
        }
        (void)fin_dialog_other(d, p->media_address);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    struct cmn_err err;
    struct fin_update *u;

    if (!init) {
        cmn_xml_init();
        init = 1;
    }
    u = fin_update_parse((const char *)data, size, &err);
    if (u == NULL) {
        return 0;
    }
    CHECK_STR(u->source);
    CHECK_STR(u->request_id);
    if (u->source[0] == '\0' || u->event == FIN_EVENT_UNKNOWN) {
        abort();
    }
    switch (u->kind) {
    case FIN_UPDATE_USER:
        CHECK_STR(u->user.login_id);
        CHECK_STR(u->user.state);
        if (u->user.login_id[0] == '\0' || u->user.state[0] == '\0') {
            abort();
        }
        break;
    case FIN_UPDATE_DIALOG:
        if (u->dialogs.n != 1) {
            abort();
        }
        break;
    case FIN_UPDATE_API_ERRORS:
        if (u->errors.n == 0 || u->errors.n > FIN_MAX_ERRORS) {
            abort();
        }
        break;
    default:
        break;
    }
    if (u->dialogs.n > FIN_MAX_DIALOGS ||
        (u->kind != FIN_UPDATE_DIALOG && u->kind != FIN_UPDATE_DIALOGS &&
         u->dialogs.items != NULL)) {
        abort();
    }
    for (size_t i = 0; i < u->dialogs.n; i++) {
        check_dialog(&u->dialogs.items[i]);
    }
    fin_update_free(u);
    return 0;
}
