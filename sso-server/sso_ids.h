/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_ids.h - calls to the Cisco IdS token endpoint: code exchange,
 * refresh and revocation (client_secret_basic, blocking, with timeout). */
#ifndef SSO_IDS_H
#define SSO_IDS_H

#include "sso_config.h"
#include "sso_token_response.h"

/* authorization_code grant with the PKCE verifier. out->outcome tells what
 * happened; a transport failure (timeout, refused) is
 * SSO_TOKEN_UNAVAILABLE with error "timeout" or "unreachable". */
void sso_ids_exchange_code(const struct sso_config *cfg, const char *code,
                           const char *code_verifier,
                           struct sso_token_response *out);

/* refresh_token grant. */
void sso_ids_refresh(const struct sso_config *cfg, const char *refresh_token,
                     struct sso_token_response *out);

/* RFC 7009 revocation of a refresh token; best effort (logged). */
void sso_ids_revoke(const struct sso_config *cfg, const char *refresh_token);

#endif
