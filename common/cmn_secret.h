/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_secret.h - secret bytes (keys, tokens, passwords) that are wiped on
 * free and read from files that only their owner may read. */
#ifndef CMN_SECRET_H
#define CMN_SECRET_H

#include "cmn.h"

struct cmn_secret {
    unsigned char *data; /* NUL-terminated for convenience; len excludes it */
    size_t len;
};

/* Copy len bytes into a new secret. Free with cmn_secret_free(). */
struct cmn_secret *cmn_secret_new(const void *data, size_t len);

/* Read a secret file. Refuses a file readable or writable by group or
 * others, an empty file and one over max_len bytes. When trim is true a
 * trailing "\n" or "\r\n" is removed (text secrets such as passwords); key
 * files are read raw. On failure returns NULL and fills err. */
struct cmn_secret *cmn_secret_read_file(const char *path, size_t max_len,
                                        bool trim, struct cmn_err *err);

/* Read a public file that is trusted but not secret (a TLS certificate):
 * any mode is fine except writable by group or others (someone else could
 * swap it), and a symbolic link is followed (certificate tooling such as
 * certbot links them). Empty files and files over max_len are refused.
 * Returned as a cmn_secret (NUL-terminated bytes) so that callers handle
 * both kinds alike. NULL with err on failure. */
struct cmn_secret *cmn_public_read_file(const char *path, size_t max_len,
                                        struct cmn_err *err);

/* Wipes then frees; NULL is fine. */
void cmn_secret_free(struct cmn_secret *s);

/* explicit_bzero, spelled once. */
void cmn_wipe(void *p, size_t n);

#endif
