/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* saml_decrypt.c - EncryptedAssertion (saml-core §2.3.4, XML Encryption):
 * RSA-OAEP key transport to the SP's key, then AES-GCM or AES-CBC, both
 * through xmlsec1 with the algorithms allow-listed. Every failure after
 * the algorithm check is the same SAML_R_DECRYPT, so that nothing about
 * padding or keys leaks (CBC padding oracles). */
#include <stdlib.h>
#include <string.h>

#include <libxml/xmlsave.h>
#include <xmlsec/buffer.h>
#include <xmlsec/crypto.h>
#include <xmlsec/keys.h>
#include <xmlsec/xmlenc.h>

#include "cmn_secret.h"
#include "cmn_xml.h"
#include "saml_int.h"

#define MAX_ENCRYPTED_KEYS 4
#define XENC11             "http://www.w3.org/2009/xmlenc11#"

/* xmlsec1 1.2.37 knows RSA-OAEP as xmlenc#rsa-oaep-mgf1p only (the
 * xmlenc11#rsa-oaep URI came in 1.3). */
/* clang-format off */
static const struct { const char *uri; size_t key_len; } data_algs[] = {
    {XENC11 "aes128-gcm", 16}, {XENC11 "aes192-gcm", 24},
    {XENC11 "aes256-gcm", 32},
    {SAML_NS_XENC "aes128-cbc", 16}, {SAML_NS_XENC "aes192-cbc", 24},
    {SAML_NS_XENC "aes256-cbc", 32},
};
static const char *const key_algs[] = {
    SAML_NS_XENC "rsa-oaep-mgf1p", NULL,
};
/* clang-format on */

static const char *
method(xmlNodePtr n, char *buf, size_t size)
{
    xmlNodePtr m = saml_child(n, SAML_NS_XENC, "EncryptionMethod");

    return m != NULL ? saml_attr(m, "Algorithm", buf, size) : NULL;
}

/* RSA-OAEP-decrypt one EncryptedKey with the SP key; *out the AES key. */
static int
unwrap_key(xmlNodePtr ek, const struct saml_sp_key *key, unsigned char *out,
           size_t want)
{
    xmlSecEncCtxPtr ctx = xmlSecEncCtxCreate(NULL);
    xmlSecBufferPtr buf;
    int rc = CMN_ERR;

    if (ctx == NULL) {
        return CMN_ERR;
    }
    ctx->mode = xmlEncCtxModeEncryptedKey;
    ctx->encKey = xmlSecKeyDuplicate(key->key);
    if (ctx->encKey != NULL &&
        xmlSecPtrListAdd(&ctx->transformCtx.enabledTransforms,
                         (void *)xmlSecTransformRsaOaepId) == 0) {
        buf = xmlSecEncCtxDecryptToBuffer(ctx, ek);
        if (buf != NULL && xmlSecBufferGetSize(buf) == want) {
            memcpy(out, xmlSecBufferGetData(buf), want);
            rc = CMN_OK;
        }
        if (buf != NULL) {
            cmn_wipe(xmlSecBufferGetData(buf), xmlSecBufferGetSize(buf));
        }
    }
    xmlSecEncCtxDestroy(ctx);
    return rc;
}

/* EncryptedData with the AES key; *pt malloc'd plaintext. */
static int
decrypt_data(xmlNodePtr ed, const unsigned char *aes, size_t aes_len, char **pt,
             size_t *pt_len)
{
    xmlSecEncCtxPtr ctx = xmlSecEncCtxCreate(NULL);
    xmlSecBufferPtr buf;
    int rc = CMN_ERR;

    if (ctx == NULL) {
        return CMN_ERR;
    }
    ctx->encKey =
        xmlSecKeyReadMemory(xmlSecKeyDataAesId, aes, (xmlSecSize)aes_len);
    if (ctx->encKey != NULL &&
        xmlSecPtrListAdd(&ctx->transformCtx.enabledTransforms,
                         (void *)xmlSecTransformAes128GcmId) == 0 &&
        xmlSecPtrListAdd(&ctx->transformCtx.enabledTransforms,
                         (void *)xmlSecTransformAes192GcmId) == 0 &&
        xmlSecPtrListAdd(&ctx->transformCtx.enabledTransforms,
                         (void *)xmlSecTransformAes256GcmId) == 0 &&
        xmlSecPtrListAdd(&ctx->transformCtx.enabledTransforms,
                         (void *)xmlSecTransformAes128CbcId) == 0 &&
        xmlSecPtrListAdd(&ctx->transformCtx.enabledTransforms,
                         (void *)xmlSecTransformAes192CbcId) == 0 &&
        xmlSecPtrListAdd(&ctx->transformCtx.enabledTransforms,
                         (void *)xmlSecTransformAes256CbcId) == 0) {
        buf = xmlSecEncCtxDecryptToBuffer(ctx, ed);
        if (buf != NULL && xmlSecBufferGetSize(buf) > 0 &&
            xmlSecBufferGetSize(buf) <= SAML_MAX_RESPONSE) {
            size_t n = xmlSecBufferGetSize(buf);
            *pt = malloc(n + 1);
            if (*pt != NULL) {
                memcpy(*pt, xmlSecBufferGetData(buf), n);
                (*pt)[n] = '\0';
                *pt_len = n;
                rc = CMN_OK;
            }
        }
    }
    xmlSecEncCtxDestroy(ctx);
    return rc;
}

/* The plaintext is the Assertion as serialised inside the Response: its
 * prefixes may be declared on the Response. Parse it inside a wrapper that
 * declares every namespace in scope at the EncryptedAssertion, with the
 * same hardened parser as the Response (no DTD, caps). */
static xmlDocPtr
parse_in_context(xmlNodePtr ctx_node, const char *pt, size_t pt_len,
                 struct cmn_err *why)
{
    xmlNsPtr *nss = xmlGetNsList(ctx_node->doc, ctx_node);
    size_t cap = pt_len + 64, n = 0;
    char *wrapped;
    xmlDocPtr doc = NULL;

    for (size_t i = 0; nss != NULL && nss[i] != NULL; i++) {
        cap += 16 +
               (nss[i]->prefix ? strlen((const char *)nss[i]->prefix) : 0) +
               strlen((const char *)nss[i]->href) * 6;
    }
    wrapped = malloc(cap);
    if (wrapped == NULL) {
        xmlFree(nss);
        return NULL;
    }
    n += (size_t)snprintf(wrapped, cap, "<fsc-wrapper");
    for (size_t i = 0; nss != NULL && nss[i] != NULL; i++) {
        const char *href = (const char *)nss[i]->href;
        if (strpbrk(href, "\"<&") != NULL) {
            continue; /* never seen in SAML; skip rather than escape */
        }
        if (nss[i]->prefix != NULL) {
            n += (size_t)snprintf(wrapped + n, cap - n, " xmlns:%s=\"%s\"",
                                  (const char *)nss[i]->prefix, href);
        } else {
            n += (size_t)snprintf(wrapped + n, cap - n, " xmlns=\"%s\"", href);
        }
    }
    xmlFree(nss);
    n += (size_t)snprintf(wrapped + n, cap - n, ">");
    memcpy(wrapped + n, pt, pt_len);
    n += pt_len;
    n += (size_t)snprintf(wrapped + n, cap - n, "</fsc-wrapper>");
    doc = cmn_xml_parse(wrapped, n, SAML_MAX_RESPONSE + 4096, why);
    cmn_wipe(wrapped, n);
    free(wrapped);
    return doc;
}

enum saml_reason
saml_decrypt_assertion(xmlNodePtr enc_assertion, const struct saml_sp_key *key,
                       xmlDocPtr *out, struct cmn_err *why)
{
    xmlNodePtr ed, eks[MAX_ENCRYPTED_KEYS], ki;
    size_t neks = 0, key_len = 0;
    unsigned char aes[32];
    char alg[256], *pt = NULL;
    size_t pt_len = 0;
    const char *a;
    bool unwrapped = false;

    *out = NULL;
    if (key == NULL || key->key == NULL) {
        cmn_err_set(why, "an encrypted assertion, but no sp_key_file");
        return SAML_R_NO_DECRYPTION_KEY;
    }
    if (saml_count_children(enc_assertion, SAML_NS_XENC, "EncryptedData") !=
        1) {
        cmn_err_set(why, "EncryptedAssertion without exactly one "
                         "EncryptedData");
        return SAML_R_DECRYPT;
    }
    ed = saml_child(enc_assertion, SAML_NS_XENC, "EncryptedData");
    a = method(ed, alg, sizeof(alg));
    for (size_t i = 0; a != NULL && i < CMN_ARRAY_LEN(data_algs); i++) {
        if (strcmp(a, data_algs[i].uri) == 0) {
            key_len = data_algs[i].key_len;
        }
    }
    if (key_len == 0) {
        cmn_err_set(why,
                    "data encryption %s is not allowed (AES-GCM or "
                    "AES-CBC)",
                    a ? a : "-");
        return SAML_R_ENCRYPTION_ALGORITHM;
    }
    /* the EncryptedKey: in EncryptedData's KeyInfo, or beside it */
    ki = saml_child(ed, SAML_NS_DSIG, "KeyInfo");
    for (xmlNodePtr c = ki ? ki->children : NULL; c; c = c->next) {
        if (saml_is(c, SAML_NS_XENC, "EncryptedKey") &&
            neks < MAX_ENCRYPTED_KEYS) {
            eks[neks++] = c;
        }
    }
    for (xmlNodePtr c = enc_assertion->children; c; c = c->next) {
        if (saml_is(c, SAML_NS_XENC, "EncryptedKey") &&
            neks < MAX_ENCRYPTED_KEYS) {
            eks[neks++] = c;
        }
    }
    if (neks == 0) {
        cmn_err_set(why, "no EncryptedKey for the assertion");
        return SAML_R_DECRYPT;
    }
    for (size_t i = 0; i < neks; i++) {
        a = method(eks[i], alg, sizeof(alg));
        if (a == NULL) {
            continue;
        }
        bool allowed = false;
        for (size_t j = 0; key_algs[j] != NULL; j++) {
            allowed |= strcmp(a, key_algs[j]) == 0;
        }
        if (!allowed) {
            cmn_err_set(why,
                        "key transport %s is not allowed (RSA-OAEP "
                        "only)",
                        a);
            return SAML_R_ENCRYPTION_ALGORITHM;
        }
        if (unwrap_key(eks[i], key, aes, key_len) == CMN_OK) {
            unwrapped = true;
            break;
        }
    }
    if (!unwrapped || decrypt_data(ed, aes, key_len, &pt, &pt_len) != CMN_OK) {
        cmn_wipe(aes, sizeof(aes));
        cmn_err_set(why, "the assertion cannot be decrypted with the SP key");
        return SAML_R_DECRYPT;
    }
    cmn_wipe(aes, sizeof(aes));
    *out = parse_in_context(enc_assertion, pt, pt_len, why);
    cmn_wipe(pt, pt_len);
    free(pt);
    if (*out == NULL) {
        return strstr(why->msg, "DOCTYPE") != NULL ? SAML_R_DOCTYPE
                                                   : SAML_R_MALFORMED;
    }
    return SAML_OK;
}
