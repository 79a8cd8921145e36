/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_admin.h - admin endpoints: the outbox and its dead letters. */
#ifndef CTI_ADMIN_H
#define CTI_ADMIN_H

#include "cti_api.h"

/* GET /admin/v1/outbox: pending count, dead letters (newest first), this
 * host's counters. */
int cti_admin_outbox(struct cmn_http_req *req, void *app);
/* POST /admin/v1/outbox/replay: dead letters back into the stream. */
int cti_admin_replay(struct cmn_http_req *req, void *app);

#endif
