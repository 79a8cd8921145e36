/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_tab_rank.h - which of an agent's tabs screen-pops a call (DESIGN.md
 * §5): the focused tab, else the most recently visible one, else the
 * newest. Each tab reports its focus and visibility (POST
 * /api/v1/tabs/{stream}/focus); this file keeps the times those reports
 * imply and orders tabs by them. Pure: no locks, no I/O, the clock is an
 * argument. */
#ifndef CTI_TAB_RANK_H
#define CTI_TAB_RANK_H

#include <stdbool.h>

struct cti_tab_focus {
    bool focused;           /* the agent is in this tab (last report) */
    bool visible;           /* the tab is in front (last report) */
    bool can_pop;           /* false: a page outside Salesforce, never
                               offered a pop */
    long long focus_ms;     /* last report saying focused */
    long long shown_ms;     /* last hidden -> visible change (or the
                               first report saying visible) */
    long long seen_ms;      /* last moment known visible: a report saying
                               visible, or the one saying hidden */
    unsigned long long seq; /* attach order: higher is newer */
};

/* A fresh tab that has not reported yet: can pop, neither focused nor
 * visible, so it ranks by seq only (newest first). */
void cti_tab_focus_init(struct cti_tab_focus *f, unsigned long long seq);

/* A report from the tab at now_ms. A tab that says it is hidden is not
 * focused. */
void cti_tab_focus_report(struct cti_tab_focus *f, bool focused, bool visible,
                          bool can_pop, long long now_ms);

/* < 0 when a pops before b, > 0 when b before a, 0 never for two tabs
 * (seq breaks every tie). Order: focused (most recent focus report
 * first), then visible (most recently shown first), then hidden ones by
 * when they were last visible, then never-visible ones; newest first
 * within each. */
int cti_tab_rank_cmp(const struct cti_tab_focus *a,
                     const struct cti_tab_focus *b);

#endif
