/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_cti_ticket.c - event-stream tickets: one use, a lifetime, bound to
 * the token they were issued for, a cap per token (the oldest goes), a
 * table that never grows (full: refused), nothing for malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/cti_ticket.h"

static const char tok_a[] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
static const char tok_b[] = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

static void
test_cti_ticket_once_within_its_life(void **state)
{
    struct cti_tickets *t = cti_tickets_new(30000);
    char ticket[CTI_TICKET_LEN], ticket2[CTI_TICKET_LEN];
    char token[CTI_TOKEN_LEN];
    (void)state;

    assert_int_equal(cti_tickets_issue(t, tok_a, 1000, ticket), CMN_OK);
    assert_int_equal(strlen(ticket), CTI_TICKET_LEN - 1);
    assert_int_equal(cti_tickets_issue(t, tok_b, 1000, ticket2), CMN_OK);
    assert_string_not_equal(ticket, ticket2);
    assert_int_equal(cti_tickets_redeem(t, ticket, 2000, token), CMN_OK);
    assert_string_equal(token, tok_a);
    /* spent */
    assert_int_equal(cti_tickets_redeem(t, ticket, 2001, token), CMN_NOTFOUND);
    /* expired: good until issued + 30 s, not at it */
    assert_int_equal(cti_tickets_redeem(t, ticket2, 31000, token),
                     CMN_NOTFOUND);
    assert_int_equal(cti_tickets_issue(t, tok_b, 1000, ticket2), CMN_OK);
    assert_int_equal(cti_tickets_redeem(t, ticket2, 30999, token), CMN_OK);
    assert_string_equal(token, tok_b);
    /* malformed or unknown */
    assert_int_equal(cti_tickets_redeem(t, NULL, 1, token), CMN_NOTFOUND);
    assert_int_equal(cti_tickets_redeem(t, "", 1, token), CMN_NOTFOUND);
    assert_int_equal(cti_tickets_redeem(t, tok_a, 1, token), CMN_NOTFOUND);
    ticket[5] ^= 1;
    assert_int_equal(cti_tickets_redeem(t, ticket, 1, token), CMN_NOTFOUND);
    cti_tickets_free(t);
}

static void
test_cti_ticket_cap_per_token(void **state)
{
    struct cti_tickets *t = cti_tickets_new(30000);
    char tickets[CTI_TICKETS_PER_TOKEN + 1][CTI_TICKET_LEN];
    char token[CTI_TOKEN_LEN];
    (void)state;

    for (int i = 0; i <= CTI_TICKETS_PER_TOKEN; i++) {
        assert_int_equal(cti_tickets_issue(t, tok_a, 1000 + i, tickets[i]),
                         CMN_OK);
    }
    /* one too many: the oldest went */
    assert_int_equal(cti_tickets_redeem(t, tickets[0], 2000, token),
                     CMN_NOTFOUND);
    for (int i = 1; i <= CTI_TICKETS_PER_TOKEN; i++) {
        assert_int_equal(cti_tickets_redeem(t, tickets[i], 2000, token),
                         CMN_OK);
    }
    cti_tickets_free(t);
}

static void
test_cti_ticket_table_full(void **state)
{
    struct cti_tickets *t = cti_tickets_new(30000);
    char ticket[CTI_TICKET_LEN], token[CTI_TOKEN_LEN];
    char tok[CTI_TOKEN_LEN];
    int issued = 0, refused = 0;
    (void)state;

    /* many tokens, each at its cap: the table fills and then refuses */
    for (int i = 0; i < 2 * CTI_TICKETS_MAX / CTI_TICKETS_PER_TOKEN; i++) {
        snprintf(tok, sizeof(tok), "%043d", i);
        for (int k = 0; k < CTI_TICKETS_PER_TOKEN; k++) {
            if (cti_tickets_issue(t, tok, 1000, ticket) == CMN_OK) {
                issued++;
            } else {
                refused++;
            }
        }
    }
    assert_true(issued <= CTI_TICKETS_MAX);
    assert_true(refused > 0);
    /* when they expire the room is there again */
    assert_int_equal(cti_tickets_issue(t, tok_a, 40000, ticket), CMN_OK);
    assert_int_equal(cti_tickets_redeem(t, ticket, 40001, token), CMN_OK);
    cti_tickets_free(t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cti_ticket_once_within_its_life),
        cmocka_unit_test(test_cti_ticket_cap_per_token),
        cmocka_unit_test(test_cti_ticket_table_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
