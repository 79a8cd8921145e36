/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_api_pops.h - the HTTP side of server-chosen screen pops: a tab
 * reports its focus (POST /api/v1/tabs/{stream}/focus), claims the pop it
 * was offered and, once it popped it, says so (POST
 * /api/v1/calls/{id}/popped, then again with "done": true). Both answer at
 * once; neither talks to Finesse. */
#ifndef CTI_API_POPS_H
#define CTI_API_POPS_H

#include "cti_api.h"

/* Route for POST /api/v1/tabs/ ... */
int cti_api_tab_sub(struct cmn_http_req *req, void *appv);
/* POST /api/v1/calls/{id}/popped {"stream", "done"?}; rest starts with
 * the id (idlen bytes). */
int cti_api_call_popped(struct cmn_http_req *req, struct cti_app *app,
                        const char *rest, size_t idlen);

#endif
