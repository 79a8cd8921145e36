/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_tab_rank.c - the order in which an agent's tabs are offered a
 * screen pop; see cti_tab_rank.h. */
#include <string.h>

#include "cti_tab_rank.h"

void
cti_tab_focus_init(struct cti_tab_focus *f, unsigned long long seq)
{
    memset(f, 0, sizeof(*f));
    f->can_pop = true;
    f->seq = seq;
}

void
cti_tab_focus_report(struct cti_tab_focus *f, bool focused, bool visible,
                     bool can_pop, long long now_ms)
{
    /* a hidden tab is not where the agent is, whatever else it says (a
     * browser may leave a background page its focus) */
    focused = focused && visible;
    if (focused) {
        f->focus_ms = now_ms;
    }
    if (visible && (!f->visible || f->shown_ms == 0)) {
        f->shown_ms = now_ms;
    }
    if (visible || f->visible) {
        /* still visible, or visible until this very report */
        f->seen_ms = now_ms;
    }
    f->focused = focused;
    f->visible = visible;
    f->can_pop = can_pop;
}

static int
later_first(long long a, long long b)
{
    return a > b ? -1 : a < b ? 1 : 0;
}

int
cti_tab_rank_cmp(const struct cti_tab_focus *a, const struct cti_tab_focus *b)
{
    int c;

    if (a->focused != b->focused) {
        return a->focused ? -1 : 1;
    }
    if (a->focused && (c = later_first(a->focus_ms, b->focus_ms)) != 0) {
        return c;
    }
    if (a->visible != b->visible) {
        return a->visible ? -1 : 1;
    }
    /* both visible: the one brought to front last; both hidden: the one
     * that was in front last (0 for a tab never seen: last) */
    c = a->visible ? later_first(a->shown_ms, b->shown_ms)
                   : later_first(a->seen_ms, b->seen_ms);
    if (c != 0) {
        return c;
    }
    return a->seq > b->seq ? -1 : a->seq < b->seq ? 1 : 0;
}
