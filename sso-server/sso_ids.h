/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_ids.h - calls to Cisco IdS: code exchange, refresh, revocation and
 * its token-signing key (client_secret_basic, blocking, with timeout). */
#ifndef SSO_IDS_H
#define SSO_IDS_H

#include <openssl/evp.h>

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

/* IdS 12.6(2)+'s token-signing public key: GET [ids] public_key_url with
 * the client credentials (Finesse developer guide, "Client-side token
 * validation": "admin or client credentials"). The key (EVP_PKEY_free), or
 * NULL with why saying what IdS answered (404: no such endpoint, IdS
 * before 12.6(2)). */
EVP_PKEY *sso_ids_fetch_key(const struct sso_config *cfg, char *why,
                            size_t why_size);

#endif
