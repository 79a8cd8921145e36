/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_hash.h - a keyed hash for in-memory tables whose keys come from the
 * network (client addresses, agent IDs). With a plain hash (FNV, djb) an
 * outsider computes offline which keys share a bucket and fills the one
 * they target; SipHash-2-4 under a secret key drawn at start makes that a
 * guess. */
#ifndef CMN_HASH_H
#define CMN_HASH_H

#include <stdint.h>

#include "cmn.h"

#define CMN_HASH_KEY_LEN 16

struct cmn_hash_key {
    unsigned char k[CMN_HASH_KEY_LEN];
};

/* A fresh random key (OS CSPRNG). CMN_ERR when there is no randomness. */
int cmn_hash_key_init(struct cmn_hash_key *key) CMN_NODISCARD;

/* SipHash-2-4 (Aumasson and Bernstein, 2012) of len bytes under key. */
uint64_t cmn_siphash(const struct cmn_hash_key *key, const void *data,
                     size_t len);

#endif
