/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_ticket.h - event-stream tickets. EventSource cannot send headers,
 * so a stream URL has to carry its credential, and any proxy that logs
 * request lines logs it. The API token (good for the agent's whole
 * session) therefore never goes in a URL: an authenticated
 * POST /api/v1/events/ticket gets a random ticket that opens one stream,
 * once, within a few seconds; a logged ticket is spent or expired.
 *
 * In memory, per connector process: the page asks the host that holds
 * the agent (the one its other calls reach) and opens the stream there.
 * A fixed table: a token holds at most CTI_TICKETS_PER_TOKEN tickets (a
 * new one replaces its oldest), and the table never grows. */
#ifndef CTI_TICKET_H
#define CTI_TICKET_H

#include "cmn.h"
#include "cti_engine.h"

#define CTI_TICKET_LEN        44 /* base64url of 32 random bytes + NUL */
#define CTI_TICKETS_PER_TOKEN 8
#define CTI_TICKETS_MAX       8192

struct cti_tickets;

/* Tickets good for ttl_ms. NULL when out of memory. */
struct cti_tickets *cti_tickets_new(long ttl_ms);
void cti_tickets_free(struct cti_tickets *t);

/* A new ticket for token. CMN_AGAIN when the table is full of live
 * tickets (the caller answers 503), CMN_ERR without randomness. Any
 * thread. */
int cti_tickets_issue(struct cti_tickets *t, const char *token,
                      long long now_ms,
                      char ticket[CTI_TICKET_LEN]) CMN_NODISCARD;

/* Spend a ticket: CMN_OK with the token it was issued for; CMN_NOTFOUND
 * when it is unknown, already spent or expired (nothing is told apart). */
int cti_tickets_redeem(struct cti_tickets *t, const char *ticket,
                       long long now_ms,
                       char token[CTI_TOKEN_LEN]) CMN_NODISCARD;

#endif
