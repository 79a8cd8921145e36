/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_hash.c - SipHash-2-4, written from the paper's specification
 * ("SipHash: a fast short-input PRF", section 2); the unit test checks it
 * against the paper's test vector (appendix A). */
#include <string.h>

#include "cmn_hash.h"
#include "cmn_seal.h"

int
cmn_hash_key_init(struct cmn_hash_key *key)
{
    return cmn_random_bytes(key->k, sizeof(key->k)) == CMN_OK ? CMN_OK
                                                              : CMN_ERR;
}

static uint64_t
rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static uint64_t
load64_le(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

#define SIPROUND           \
    do {                   \
        v0 += v1;          \
        v1 = rotl(v1, 13); \
        v1 ^= v0;          \
        v0 = rotl(v0, 32); \
        v2 += v3;          \
        v3 = rotl(v3, 16); \
        v3 ^= v2;          \
        v0 += v3;          \
        v3 = rotl(v3, 21); \
        v3 ^= v0;          \
        v2 += v1;          \
        v1 = rotl(v1, 17); \
        v1 ^= v2;          \
        v2 = rotl(v2, 32); \
    } while (0)

uint64_t
cmn_siphash(const struct cmn_hash_key *key, const void *data, size_t len)
{
    const unsigned char *in = data;
    uint64_t k0 = load64_le(key->k), k1 = load64_le(key->k + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
    uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
    uint64_t v3 = 0x7465646279746573ULL ^ k1;
    uint64_t b = (uint64_t)len << 56;
    size_t full = len - len % 8;
    unsigned char last[8] = {0};

    for (size_t i = 0; i < full; i += 8) {
        uint64_t m = load64_le(in + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    memcpy(last, in + full, len - full);
    b |= load64_le(last);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}
