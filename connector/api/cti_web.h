/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_web.h - the softphone page and its settings endpoint. */
#ifndef CTI_WEB_H
#define CTI_WEB_H

#include "cmn_httpd.h"
#include "cti_config.h"

/* GET /softphone/ and /softphone/<asset> */
int cti_web_softphone(struct cmn_http_req *req, void *app);
/* GET /api/v1/config: what the page needs before sign-in (no secrets) */
int cti_web_config(struct cmn_http_req *req, void *app);
/* sfdcIFrameOrigin check against [salesforce] org_origins */
bool cti_web_origin_allowed(const struct cti_config *cfg, const char *origin);

#endif
