/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_cti_tab_rank.c - the order in which an agent's tabs are offered a
 * screen pop (DESIGN.md §5): focused, else most recently visible, else
 * newest; and the times a stream of focus reports leaves behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cti_tab_rank.h"

static struct cti_tab_focus
tab(unsigned long long seq)
{
    struct cti_tab_focus f;

    cti_tab_focus_init(&f, seq);
    return f;
}

static void
test_cti_tab_rank_newest_when_nobody_reported(void **state)
{
    struct cti_tab_focus old = tab(1), young = tab(2);
    (void)state;

    assert_true(old.can_pop);
    assert_true(cti_tab_rank_cmp(&young, &old) < 0);
    assert_true(cti_tab_rank_cmp(&old, &young) > 0);
    assert_int_equal(cti_tab_rank_cmp(&old, &old), 0);
}

static void
test_cti_tab_rank_focused_beats_visible_beats_hidden(void **state)
{
    struct cti_tab_focus focused = tab(1), visible = tab(2), hidden = tab(3);
    (void)state;

    cti_tab_focus_report(&focused, true, true, true, 1000);
    cti_tab_focus_report(&visible, false, true, true, 2000);
    cti_tab_focus_report(&hidden, false, false, true, 3000);
    assert_true(cti_tab_rank_cmp(&focused, &visible) < 0);
    assert_true(cti_tab_rank_cmp(&visible, &hidden) < 0);
    assert_true(cti_tab_rank_cmp(&focused, &hidden) < 0);
    /* a hidden tab is not focused, whatever its report says (a browser
     * can leave a background page its focus) */
    struct cti_tab_focus odd = tab(4);
    cti_tab_focus_report(&odd, true, false, true, 4000);
    assert_false(odd.focused);
    assert_int_equal(odd.focus_ms, 0);
    assert_true(cti_tab_rank_cmp(&focused, &odd) < 0);
    /* two focused tabs (two windows): the latest focus report wins */
    cti_tab_focus_report(&odd, true, true, true, 4500);
    assert_true(cti_tab_rank_cmp(&odd, &focused) < 0);
    cti_tab_focus_report(&focused, true, true, true, 5000);
    assert_true(cti_tab_rank_cmp(&focused, &odd) < 0);
}

static void
test_cti_tab_rank_most_recently_visible(void **state)
{
    struct cti_tab_focus a = tab(1), b = tab(2), c = tab(3);
    (void)state;

    /* a shown at 1000 and still visible at 3000; b shown at 2000: among
     * visible tabs the one brought to front last */
    cti_tab_focus_report(&a, false, true, true, 1000);
    cti_tab_focus_report(&b, false, true, true, 2000);
    cti_tab_focus_report(&a, false, true, true, 3000);
    assert_int_equal(a.shown_ms, 1000);
    assert_int_equal(a.seen_ms, 3000);
    assert_true(cti_tab_rank_cmp(&b, &a) < 0);
    /* both hidden now: the one in front last (a went at 5000, b at 4000) */
    cti_tab_focus_report(&b, false, false, true, 4000);
    cti_tab_focus_report(&a, false, false, true, 5000);
    assert_int_equal(b.seen_ms, 4000);
    assert_true(cti_tab_rank_cmp(&a, &b) < 0);
    /* a tab never seen ranks after both, although it is the newest */
    cti_tab_focus_report(&c, false, false, true, 6000);
    assert_int_equal(c.seen_ms, 0);
    assert_true(cti_tab_rank_cmp(&b, &c) < 0);
    /* hidden again -> reports while hidden keep the time it went */
    cti_tab_focus_report(&a, false, false, true, 7000);
    assert_int_equal(a.seen_ms, 5000);
    /* shown again: visible beats every hidden tab */
    cti_tab_focus_report(&c, false, true, true, 8000);
    assert_int_equal(c.shown_ms, 8000);
    assert_true(cti_tab_rank_cmp(&c, &a) < 0);
}

static void
test_cti_tab_rank_report_keeps_can_pop(void **state)
{
    struct cti_tab_focus f = tab(1);
    (void)state;

    cti_tab_focus_report(&f, true, true, false, 10);
    assert_false(f.can_pop);
    assert_true(f.focused);
    assert_int_equal(f.focus_ms, 10);
    cti_tab_focus_report(&f, false, true, true, 20);
    assert_true(f.can_pop);
    assert_false(f.focused);
    assert_int_equal(f.focus_ms, 10); /* when it last had focus */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cti_tab_rank_newest_when_nobody_reported),
        cmocka_unit_test(test_cti_tab_rank_focused_beats_visible_beats_hidden),
        cmocka_unit_test(test_cti_tab_rank_most_recently_visible),
        cmocka_unit_test(test_cti_tab_rank_report_keeps_can_pop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
