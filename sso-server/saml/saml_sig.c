/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* saml_sig.c - XML signatures on a Response or an Assertion: the shape a
 * signature must have before it is worth verifying (one Reference, to its
 * own parent, allow-listed transforms and algorithms), then xmlsec1 with
 * the metadata keys only and the same allow-lists
 * (reference/sso.md §3.2). */
#include <stdio.h>
#include <string.h>

#include <xmlsec/crypto.h>
#include <xmlsec/keys.h>
#include <xmlsec/transforms.h>
#include <xmlsec/xmldsig.h>

#include "saml_int.h"

#define ALG_EXC_C14N     "http://www.w3.org/2001/10/xml-exc-c14n#"
#define ALG_EXC_C14N_CMT "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
#define ALG_C14N         "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
#define ALG_ENVELOPED    "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

/* clang-format off */
static const char *const c14n_algs[] = {
    ALG_EXC_C14N, ALG_EXC_C14N_CMT, ALG_C14N, NULL,
};
static const char *const sig_algs[] = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
    NULL,
};
static const char *const digest_algs[] = {
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
    NULL,
};
/* clang-format on */
#define SIG_SHA1    "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
#define DIGEST_SHA1 "http://www.w3.org/2000/09/xmldsig#sha1"

static bool
in_list(const char *s, const char *const *list)
{
    for (size_t i = 0; list[i] != NULL; i++) {
        if (strcmp(s, list[i]) == 0) {
            return true;
        }
    }
    return false;
}

static const char *
algorithm(xmlNodePtr parent, const char *name, char *buf, size_t size)
{
    xmlNodePtr n = saml_child(parent, SAML_NS_DSIG, name);

    return n != NULL ? saml_attr(n, "Algorithm", buf, size) : NULL;
}

enum saml_reason
saml_sig_check(xmlNodePtr sig, const char *parent_id, bool allow_sha1,
               struct cmn_err *why)
{
    xmlNodePtr si = saml_child(sig, SAML_NS_DSIG, "SignedInfo");
    xmlNodePtr ref, tr;
    char alg[256], uri[512];
    const char *a;

    if (si == NULL ||
        saml_count_children(sig, SAML_NS_DSIG, "SignedInfo") != 1) {
        cmn_err_set(why, "Signature without exactly one SignedInfo");
        return SAML_R_SIGNATURE_REFERENCE;
    }
    a = algorithm(si, "CanonicalizationMethod", alg, sizeof(alg));
    if (a == NULL || !in_list(a, c14n_algs)) {
        cmn_err_set(why, "canonicalization %s is not allowed", a ? a : "-");
        return SAML_R_SIGNATURE_ALGORITHM;
    }
    a = algorithm(si, "SignatureMethod", alg, sizeof(alg));
    if (a == NULL ||
        !(in_list(a, sig_algs) || (allow_sha1 && strcmp(a, SIG_SHA1) == 0))) {
        cmn_err_set(why, "signature method %s is not allowed%s", a ? a : "-",
                    a != NULL && strcmp(a, SIG_SHA1) == 0
                        ? " (SHA-1: only with [saml] allow_sha1)"
                        : "");
        return SAML_R_SIGNATURE_ALGORITHM;
    }
    if (saml_count_children(si, SAML_NS_DSIG, "Reference") != 1) {
        cmn_err_set(why, "SignedInfo must hold exactly one Reference");
        return SAML_R_SIGNATURE_REFERENCE;
    }
    ref = saml_child(si, SAML_NS_DSIG, "Reference");
    if (saml_attr(ref, "URI", uri, sizeof(uri)) == NULL || uri[0] != '#' ||
        strcmp(uri + 1, parent_id) != 0) {
        cmn_err_set(why, "the Reference does not point at the signed "
                         "element's own ID");
        return SAML_R_SIGNATURE_REFERENCE;
    }
    tr = saml_child(ref, SAML_NS_DSIG, "Transforms");
    for (xmlNodePtr t = tr ? tr->children : NULL; t != NULL; t = t->next) {
        if (t->type != XML_ELEMENT_NODE) {
            continue;
        }
        if (!saml_is(t, SAML_NS_DSIG, "Transform") ||
            saml_attr(t, "Algorithm", alg, sizeof(alg)) == NULL ||
            !(strcmp(alg, ALG_ENVELOPED) == 0 || in_list(alg, c14n_algs))) {
            cmn_err_set(why, "transform %s is not allowed",
                        saml_attr(t, "Algorithm", alg, sizeof(alg)) ? alg
                                                                    : "-");
            return SAML_R_SIGNATURE_REFERENCE;
        }
    }
    a = algorithm(ref, "DigestMethod", alg, sizeof(alg));
    if (a == NULL || !(in_list(a, digest_algs) ||
                       (allow_sha1 && strcmp(a, DIGEST_SHA1) == 0))) {
        cmn_err_set(why, "digest %s is not allowed%s", a ? a : "-",
                    a != NULL && strcmp(a, DIGEST_SHA1) == 0
                        ? " (SHA-1: only with [saml] allow_sha1)"
                        : "");
        return SAML_R_SIGNATURE_ALGORITHM;
    }
    return SAML_OK;
}

static int
enable(xmlSecDSigCtxPtr ctx, bool allow_sha1)
{
    int rc = 0;

    /* c14n of SignedInfo and the signature method */
    rc |= xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformExclC14NId);
    rc |= xmlSecDSigCtxEnableSignatureTransform(
        ctx, xmlSecTransformExclC14NWithCommentsId);
    rc |= xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformInclC14NId);
    rc |=
        xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformRsaSha256Id);
    rc |=
        xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformRsaSha384Id);
    rc |=
        xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformRsaSha512Id);
    rc |= xmlSecDSigCtxEnableSignatureTransform(ctx,
                                                xmlSecTransformEcdsaSha256Id);
    rc |= xmlSecDSigCtxEnableSignatureTransform(ctx,
                                                xmlSecTransformEcdsaSha384Id);
    rc |= xmlSecDSigCtxEnableSignatureTransform(ctx,
                                                xmlSecTransformEcdsaSha512Id);
    /* the Reference's transforms and digest */
    rc |=
        xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformEnvelopedId);
    rc |= xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformExclC14NId);
    rc |= xmlSecDSigCtxEnableReferenceTransform(
        ctx, xmlSecTransformExclC14NWithCommentsId);
    rc |= xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformInclC14NId);
    rc |= xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha256Id);
    rc |= xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha384Id);
    rc |= xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha512Id);
    if (allow_sha1) {
        rc |= xmlSecDSigCtxEnableSignatureTransform(ctx,
                                                    xmlSecTransformRsaSha1Id);
        rc |= xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha1Id);
    }
    return rc;
}

enum saml_reason
saml_sig_verify(xmlNodePtr sig, const struct saml_idp *idp, bool allow_sha1,
                struct cmn_err *why)
{
    for (size_t i = 0; i < idp->nkeys; i++) {
        xmlSecDSigCtxPtr ctx = xmlSecDSigCtxCreate(NULL);
        bool ok;

        if (ctx == NULL) {
            break;
        }
        /* Same-document references only: no file, no URL, no "". */
        ctx->enabledReferenceUris = xmlSecTransformUriTypeSameDocument;
        /* The key comes from metadata. With signKey set, xmlsec1 1.2.37
         * never consults the message's KeyInfo (xmldsig.c:793). */
        ctx->signKey = xmlSecKeyDuplicate(idp->keys[i]);
        ok = ctx->signKey != NULL && enable(ctx, allow_sha1) == 0 &&
             xmlSecDSigCtxVerify(ctx, sig) == 0 &&
             ctx->status == xmlSecDSigStatusSucceeded;
        xmlSecDSigCtxDestroy(ctx);
        if (ok) {
            return SAML_OK;
        }
    }
    cmn_err_set(why,
                "the signature does not verify with any of the %zu "
                "metadata key(s)",
                idp->nkeys);
    return SAML_R_SIGNATURE_INVALID;
}
