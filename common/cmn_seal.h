/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_seal.h - AES-256-GCM sealing of records kept in Redis, random ids
 * from the OS CSPRNG, SHA-256 helpers and constant-time comparison.
 *
 * Sealed layout: version byte 0x01 | 12-byte random nonce | ciphertext |
 * 16-byte tag. The additional data (aad) binds a record to where it is
 * stored (its Redis key), so a record copied under another key will not
 * open. */
#ifndef CMN_SEAL_H
#define CMN_SEAL_H

#include "cmn.h"

#define CMN_SEAL_KEY_LEN  32
#define CMN_SEAL_OVERHEAD (1 + 12 + 16)

struct cmn_seal;

/* Key must be exactly 32 bytes (it is copied, and wiped on free). */
struct cmn_seal *cmn_seal_new(const unsigned char *key, size_t key_len,
                              struct cmn_err *err);
/* Reads a 32-byte raw key file (cmn_secret_read_file rules). A file of 64
 * hex characters (optionally newline-terminated) is accepted too. */
struct cmn_seal *cmn_seal_load(const char *path, struct cmn_err *err);
void cmn_seal_free(struct cmn_seal *s);

/* A 32-byte key file's content (as cmn_seal_load reads it): 32 raw bytes,
 * or 64 hex characters optionally ending in a newline. CMN_INVALID for
 * anything else. */
struct cmn_secret;
int cmn_key32_decode(const struct cmn_secret *sec,
                     unsigned char out[32]) CMN_NODISCARD;

/* HMAC-SHA256 of data under key; CMN_ERR only if OpenSSL fails. */
int cmn_hmac_sha256(const void *key, size_t key_len, const void *data,
                    size_t len, unsigned char out[32]) CMN_NODISCARD;

/* *out (malloc'd, free with free()) gets ptlen + CMN_SEAL_OVERHEAD bytes. */
int cmn_seal_seal(const struct cmn_seal *s, const void *aad, size_t aad_len,
                  const void *pt, size_t pt_len, unsigned char **out,
                  size_t *out_len) CMN_NODISCARD;
/* CMN_INVALID when the record was tampered with, truncated or sealed under
 * another key or aad. *out is NUL-terminated (not counted in out_len);
 * free it with cmn_wipe + free (it holds secrets). */
int cmn_seal_open(const struct cmn_seal *s, const void *aad, size_t aad_len,
                  const unsigned char *in, size_t in_len, unsigned char **out,
                  size_t *out_len) CMN_NODISCARD;

/* n bytes from the OS CSPRNG (getrandom). */
int cmn_random_bytes(void *buf, size_t n) CMN_NODISCARD;
/* A random id of nbytes random bytes as base64url without padding. out
 * must hold 4 * nbytes / 3 + 2 bytes (e.g. 24 bytes -> 33). */
int cmn_random_id(char *out, size_t out_size, size_t nbytes) CMN_NODISCARD;

/* SHA-256 as 64 lowercase hex + NUL. */
void cmn_sha256_hex(const void *data, size_t len, char out[65]);
/* SHA-256 raw. */
void cmn_sha256(const void *data, size_t len, unsigned char out[32]);

/* base64url without padding; out_size >= 4*len/3+2. Returns length. */
size_t cmn_base64url_encode(const void *data, size_t len, char *out,
                            size_t out_size);
/* Accepts base64url with or without padding. *out malloc'd. */
int cmn_base64url_decode(const char *in, size_t in_len, unsigned char **out,
                         size_t *out_len) CMN_NODISCARD;

/* Constant-time equality of two buffers of the same length. */
bool cmn_ct_equal(const void *a, const void *b, size_t n);
/* Constant-time equality of two strings (length leak only). */
bool cmn_ct_streq(const char *a, const char *b);

#endif
