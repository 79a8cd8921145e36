/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_seal.c - AES-256-GCM records (OpenSSL EVP), getrandom() ids,
 * SHA-256, base64url and constant-time comparison. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cmn_seal.h"
#include "cmn_secret.h"

#define SEAL_VERSION   0x01
#define SEAL_NONCE_LEN 12
#define SEAL_TAG_LEN   16
/* Largest id cmn_random_id makes; far above any use (24 bytes). */
#define RANDOM_ID_MAX 256

struct cmn_seal {
    unsigned char key[CMN_SEAL_KEY_LEN];
};

struct cmn_seal *
cmn_seal_new(const unsigned char *key, size_t key_len, struct cmn_err *err)
{
    struct cmn_seal *s;

    if (key == NULL || key_len != CMN_SEAL_KEY_LEN) {
        cmn_err_set(err, "seal key must be %d bytes, got %zu", CMN_SEAL_KEY_LEN,
                    key_len);
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    memcpy(s->key, key, CMN_SEAL_KEY_LEN);
    return s;
}

void
cmn_seal_free(struct cmn_seal *s)
{
    if (s == NULL) {
        return;
    }
    cmn_wipe(s->key, sizeof(s->key));
    free(s);
}

static int
hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int
cmn_key32_decode(const struct cmn_secret *sec, unsigned char out[32])
{
    size_t len = sec->len;

    /* A raw key is taken as is, even if its last byte happens to be '\n'. */
    if (len == 32) {
        memcpy(out, sec->data, 32);
        return CMN_OK;
    }
    if (len > 0 && sec->data[len - 1] == '\n') {
        len--;
        if (len > 0 && sec->data[len - 1] == '\r') {
            len--;
        }
    }
    if (len != 64) {
        return CMN_INVALID;
    }
    for (size_t i = 0; i < 32; i++) {
        int hi = hex_val(sec->data[2 * i]);
        int lo = hex_val(sec->data[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            cmn_wipe(out, 32);
            return CMN_INVALID;
        }
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return CMN_OK;
}

struct cmn_seal *
cmn_seal_load(const char *path, struct cmn_err *err)
{
    unsigned char key[CMN_SEAL_KEY_LEN];
    struct cmn_seal *s = NULL;
    struct cmn_secret *sec;

    /* 64 hex digits plus "\r\n" is the longest accepted form. */
    sec = cmn_secret_read_file(path, 2 * CMN_SEAL_KEY_LEN + 2, false, err);
    if (sec == NULL) {
        return NULL;
    }
    if (cmn_key32_decode(sec, key) != CMN_OK) {
        cmn_err_set(err, "%s: expected 32 raw bytes or 64 hex characters",
                    path);
    } else {
        s = cmn_seal_new(key, sizeof(key), err);
    }
    cmn_wipe(key, sizeof(key));
    cmn_secret_free(sec);
    return s;
}

int
cmn_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                unsigned char out[32])
{
    size_t out_len = 0;

    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, key_len, data, len,
                  out, 32, &out_len) == NULL ||
        out_len != 32) {
        return CMN_ERR;
    }
    return CMN_OK;
}

int
cmn_seal_seal(const struct cmn_seal *s, const void *aad, size_t aad_len,
              const void *pt, size_t pt_len, unsigned char **out,
              size_t *out_len)
{
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *buf = NULL;
    unsigned char *nonce;
    unsigned char *ct;
    size_t total;
    int n;
    int rc = CMN_ERR;

    *out = NULL;
    *out_len = 0;
    /* EVP takes int lengths. */
    if (aad_len > INT_MAX || pt_len > INT_MAX - CMN_SEAL_OVERHEAD) {
        return CMN_INVALID;
    }
    total = pt_len + CMN_SEAL_OVERHEAD;
    buf = malloc(total);
    if (buf == NULL) {
        return CMN_NOMEM;
    }
    buf[0] = SEAL_VERSION;
    nonce = buf + 1;
    ct = nonce + SEAL_NONCE_LEN;
    /* A random 96-bit nonce per record: safe for far more records than one
     * key will ever seal (the key is rotated by redeploying). */
    if (cmn_random_bytes(nonce, SEAL_NONCE_LEN) != CMN_OK) {
        goto out;
    }
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        rc = CMN_NOMEM;
        goto out;
    }
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE_LEN,
                            NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, s->key, nonce) != 1) {
        goto out;
    }
    if (aad_len > 0 &&
        EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1) {
        goto out;
    }
    if (pt_len > 0 && EVP_EncryptUpdate(ctx, ct, &n, pt, (int)pt_len) != 1) {
        goto out;
    }
    if (EVP_EncryptFinal_ex(ctx, ct + pt_len, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_LEN,
                            ct + pt_len) != 1) {
        goto out;
    }
    *out = buf;
    *out_len = total;
    buf = NULL;
    rc = CMN_OK;
out:
    EVP_CIPHER_CTX_free(ctx);
    free(buf);
    return rc;
}

int
cmn_seal_open(const struct cmn_seal *s, const void *aad, size_t aad_len,
              const unsigned char *in, size_t in_len, unsigned char **out,
              size_t *out_len)
{
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *buf = NULL;
    const unsigned char *nonce;
    const unsigned char *ct;
    unsigned char tag[SEAL_TAG_LEN];
    size_t ct_len = 0;
    int n;
    int rc = CMN_ERR;

    *out = NULL;
    *out_len = 0;
    if (in == NULL || in_len < CMN_SEAL_OVERHEAD || in[0] != SEAL_VERSION ||
        in_len - CMN_SEAL_OVERHEAD > INT_MAX || aad_len > INT_MAX) {
        return CMN_INVALID;
    }
    nonce = in + 1;
    ct = nonce + SEAL_NONCE_LEN;
    ct_len = in_len - CMN_SEAL_OVERHEAD;
    /* EVP wants a writable tag buffer. */
    memcpy(tag, ct + ct_len, SEAL_TAG_LEN);
    buf = malloc(ct_len + 1);
    if (buf == NULL) {
        return CMN_NOMEM;
    }
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        rc = CMN_NOMEM;
        goto out;
    }
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE_LEN,
                            NULL) != 1 ||
        EVP_DecryptInit_ex(ctx, NULL, NULL, s->key, nonce) != 1) {
        goto out;
    }
    if (aad_len > 0 &&
        EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1) {
        goto out;
    }
    if (ct_len > 0 && EVP_DecryptUpdate(ctx, buf, &n, ct, (int)ct_len) != 1) {
        goto out;
    }
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_LEN, tag) !=
        1) {
        goto out;
    }
    /* The tag check (constant time inside OpenSSL) happens here; any
     * tampering, wrong key or wrong aad ends up as the same answer. */
    if (EVP_DecryptFinal_ex(ctx, buf + ct_len, &n) != 1) {
        rc = CMN_INVALID;
        goto out;
    }
    buf[ct_len] = '\0';
    *out = buf;
    *out_len = ct_len;
    buf = NULL;
    rc = CMN_OK;
out:
    EVP_CIPHER_CTX_free(ctx);
    if (buf != NULL) {
        /* Unauthenticated plaintext must not linger. */
        cmn_wipe(buf, ct_len + 1);
        free(buf);
    }
    return rc;
}

int
cmn_random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    size_t done = 0;

    while (done < n) {
        /* Requests over 256 bytes may return short; loop until full. */
        ssize_t r = getrandom(p + done, n - done, 0);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return CMN_ERR;
        }
        done += (size_t)r;
    }
    return CMN_OK;
}

int
cmn_random_id(char *out, size_t out_size, size_t nbytes)
{
    unsigned char raw[RANDOM_ID_MAX];
    int rc;

    if (nbytes == 0 || nbytes > sizeof(raw) ||
        out_size < (4 * nbytes + 2) / 3 + 1) {
        return CMN_INVALID;
    }
    rc = cmn_random_bytes(raw, nbytes);
    if (rc == CMN_OK) {
        cmn_base64url_encode(raw, nbytes, out, out_size);
    }
    cmn_wipe(raw, nbytes);
    return rc;
}

void
cmn_sha256(const void *data, size_t len, unsigned char out[32])
{
    unsigned int md_len = 0;

    /* EVP_Digest only fails on allocation failure inside OpenSSL; a zero
     * digest then at least never matches a real one by accident. */
    if (EVP_Digest(data, len, out, &md_len, EVP_sha256(), NULL) != 1) {
        memset(out, 0, 32);
    }
}

void
cmn_sha256_hex(const void *data, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[32];

    cmn_sha256(data, len, md);
    for (size_t i = 0; i < sizeof(md); i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0xf];
    }
    out[64] = '\0';
}

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t
cmn_base64url_encode(const void *data, size_t len, char *out, size_t out_size)
{
    const unsigned char *p = data;
    size_t need;
    size_t o = 0;
    size_t i = 0;

    if (len > (SIZE_MAX - 3) / 4) {
        need = SIZE_MAX;
    } else {
        need = (4 * len + 2) / 3 + 1;
    }
    if (out == NULL || out_size < need) {
        if (out != NULL && out_size > 0) {
            out[0] = '\0';
        }
        return 0;
    }
    for (; i + 3 <= len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64url[v >> 18 & 63];
        out[o++] = b64url[v >> 12 & 63];
        out[o++] = b64url[v >> 6 & 63];
        out[o++] = b64url[v & 63];
    }
    if (len - i == 1) {
        unsigned v = (unsigned)p[i] << 16;
        out[o++] = b64url[v >> 18 & 63];
        out[o++] = b64url[v >> 12 & 63];
    } else if (len - i == 2) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
        out[o++] = b64url[v >> 18 & 63];
        out[o++] = b64url[v >> 12 & 63];
        out[o++] = b64url[v >> 6 & 63];
    }
    out[o] = '\0';
    return o;
}

static int
b64url_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    return -1;
}

int
cmn_base64url_decode(const char *in, size_t in_len, unsigned char **out,
                     size_t *out_len)
{
    unsigned char *buf;
    size_t n = in_len;
    size_t pad = 0;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;

    *out = NULL;
    *out_len = 0;
    if (in == NULL && in_len > 0) {
        return CMN_INVALID;
    }
    while (n > 0 && in[n - 1] == '=') {
        n--;
        pad++;
    }
    /* Padding, when present, must complete a 4-character group. */
    if (pad > 2 || (pad > 0 && in_len % 4 != 0)) {
        return CMN_INVALID;
    }
    if (n % 4 == 1) {
        return CMN_INVALID;
    }
    buf = malloc(n / 4 * 3 + 3);
    if (buf == NULL) {
        return CMN_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        int v = b64url_val((unsigned char)in[i]);
        if (v < 0) {
            goto bad;
        }
        acc = (acc << 6 | (unsigned)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* Leftover bits must be zero: only one spelling per byte string, so
     * ids and tokens compare as strings without surprises. */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
        goto bad;
    }
    buf[o] = '\0';
    *out = buf;
    *out_len = o;
    return CMN_OK;
bad:
    cmn_wipe(buf, n / 4 * 3 + 3);
    free(buf);
    return CMN_INVALID;
}

bool
cmn_ct_equal(const void *a, const void *b, size_t n)
{
    if (n == 0) {
        return true;
    }
    return CRYPTO_memcmp(a, b, n) == 0;
}

bool
cmn_ct_streq(const char *a, const char *b)
{
    size_t la;
    size_t lb;

    if (a == NULL || b == NULL) {
        return false;
    }
    la = strlen(a);
    lb = strlen(b);
    if (la != lb) {
        return false;
    }
    return cmn_ct_equal(a, b, la);
}
