/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* saml_redirect.c - the HTTP-Redirect binding (saml-bindings-2.0-os §3.4)
 * both ways: a message of ours DEFLATEd, base64'd and signed over the
 * query string (§3.4.4.1, RSA-SHA256) into a URL, our AuthnRequest being
 * one; and a message the IdP sent us the same way, its query parsed
 * strictly, its signature checked over the query exactly as received, and
 * inflated with a cap (a deflate bomb stops at SAML_MAX_INFLATED). What
 * the messages say is checked in saml_logout.c. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "saml_int.h"

#define SIGALG_RSA_SHA256 "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
#define SIGALG_RSA_SHA384 "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
#define SIGALG_RSA_SHA512 "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
#define SIGALG_RSA_SHA1   "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
/* §3.4.4: the only encoding defined; also the default when absent */
#define ENCODING_DEFLATE \
    "urn:oasis:names:tc:SAML:2.0:bindings:URL-Encoding:DEFLATE"

/* Percent-encode everything but RFC 3986 unreserved characters. */
static char *
url_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *p = out;

    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
            c == '~') {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    *p = '\0';
    return out;
}

static int
hexval(char c)
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

/* Form-style decode ('+' is a space); NULL on a bad escape or a NUL. */
static char *
url_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *p = out;

    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0) {
                free(out);
                return NULL;
            }
            *p = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
            if (*p++ == '\0') {
                free(out);
                return NULL;
            }
            i += 2;
        } else {
            *p++ = s[i] == '+' ? ' ' : s[i];
        }
    }
    *p = '\0';
    return out;
}

static char *
deflate_b64(const char *xml)
{
    z_stream z;
    size_t cap = compressBound((uLong)strlen(xml)) + 64;
    unsigned char *buf = malloc(cap);
    char *b64 = NULL;

    memset(&z, 0, sizeof(z));
    if (buf == NULL ||
        deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(buf);
        return NULL;
    }
    z.next_in = (Bytef *)xml;
    z.avail_in = (uInt)strlen(xml);
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) == Z_STREAM_END) {
        b64 = saml_b64_encode(buf, z.total_out);
    }
    deflateEnd(&z);
    free(buf);
    return b64;
}

static char *
rsa_sign_b64(EVP_PKEY *pkey, const char *data)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    char *out = NULL;

    if (md != NULL &&
        EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
        EVP_DigestSign(md, sig, &siglen, (const unsigned char *)data,
                       strlen(data)) == 1) {
        out = saml_b64_encode(sig, siglen);
    }
    EVP_MD_CTX_free(md);
    return out;
}

/* dest?<param>=...&RelayState=...[&SigAlg=...&Signature=...] */
char *
saml_redirect_url(const char *dest, const char *param, const char *xml,
                  const char *relay_state, const struct saml_sp_key *key)
{
    char *b64 = deflate_b64(xml), *msg = NULL, *rs = NULL, *alg = NULL;
    char *sig = NULL, *sig_enc = NULL, *signed_part = NULL, *url = NULL;
    size_t n;

    if (b64 == NULL || (msg = url_encode(b64)) == NULL ||
        (relay_state != NULL && (rs = url_encode(relay_state)) == NULL) ||
        (alg = url_encode(SIGALG_RSA_SHA256)) == NULL) {
        goto out;
    }
    n = strlen(param) + strlen(msg) + (rs ? strlen(rs) : 0) + strlen(alg) + 64;
    signed_part = malloc(n);
    if (signed_part == NULL) {
        goto out;
    }
    snprintf(signed_part, n, "%s=%s%s%s", param, msg, rs ? "&RelayState=" : "",
             rs ? rs : "");
    if (key != NULL && key->pkey != NULL) {
        size_t m = strlen(signed_part);
        snprintf(signed_part + m, n - m, "&SigAlg=%s", alg);
        sig = rsa_sign_b64(key->pkey, signed_part);
        if (sig == NULL || (sig_enc = url_encode(sig)) == NULL) {
            goto out;
        }
    }
    n = strlen(dest) + strlen(signed_part) + (sig_enc ? strlen(sig_enc) : 0) +
        16;
    url = malloc(n);
    if (url != NULL) {
        snprintf(url, n, "%s%c%s%s%s", dest, strchr(dest, '?') ? '&' : '?',
                 signed_part, sig_enc ? "&Signature=" : "",
                 sig_enc ? sig_enc : "");
    }
out:
    free(b64);
    free(msg);
    free(rs);
    free(alg);
    free(sig);
    free(sig_enc);
    free(signed_part);
    return url;
}

char *
saml_xml_escape(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(6 * n + 1), *p = out;

    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '&':
            p += sprintf(p, "&amp;");
            break;
        case '<':
            p += sprintf(p, "&lt;");
            break;
        case '>':
            p += sprintf(p, "&gt;");
            break;
        case '"':
            p += sprintf(p, "&quot;");
            break;
        default:
            *p++ = s[i];
            break;
        }
    }
    *p = '\0';
    return out;
}

/* Values we put into XML come from configuration or from a verified
 * assertion; escape them all the same. */
char *
saml_authn_request_url(const struct saml_idp *idp, const char *sp_entity_id,
                       const char *acs_url, const char *id,
                       const char *relay_state, long long now,
                       const struct saml_sp_key *key)
{
    char t[32], *xml, *url = NULL;
    char *e_dest = saml_xml_escape(idp->sso_url);
    char *e_acs = saml_xml_escape(acs_url);
    char *e_sp = saml_xml_escape(sp_entity_id);
    size_t n;

    saml_time_format(now, t);
    if (e_dest == NULL || e_acs == NULL || e_sp == NULL) {
        goto out;
    }
    n = strlen(e_dest) + strlen(e_acs) + strlen(e_sp) + 1024;
    xml = malloc(n);
    if (xml != NULL) {
        snprintf(xml, n,
                 "<samlp:AuthnRequest xmlns:samlp=\"" SAML_NS_PROTOCOL "\" "
                 "xmlns:saml=\"" SAML_NS_ASSERTION "\" ID=\"%s\" "
                 "Version=\"2.0\" IssueInstant=\"%s\" Destination=\"%s\" "
                 "AssertionConsumerServiceURL=\"%s\" "
                 "ProtocolBinding=\"" SAML_BINDING_POST "\">"
                 "<saml:Issuer>%s</saml:Issuer>"
                 "<samlp:NameIDPolicy AllowCreate=\"true\"/>"
                 "</samlp:AuthnRequest>",
                 id, t, e_dest, e_acs, e_sp);
        url = saml_redirect_url(idp->sso_url, "SAMLRequest", xml, relay_state,
                                key);
        free(xml);
    }
out:
    free(e_dest);
    free(e_acs);
    free(e_sp);
    return url;
}

/* --- what the IdP sends us --- */

struct param {
    const char *raw; /* encoded, as received */
    size_t len;
    bool present;
};

/* The parameters of the binding, each at most once. Others are ignored
 * (they are not signed, so nothing may depend on them). */
struct query {
    struct param request, response, relay_state, sig_alg, signature, encoding;
};

static enum saml_reason
parse_query(const char *q, struct query *out, struct cmn_err *why)
{
    static const struct {
        const char *name;
        size_t off;
    } known[] = {
        {"SAMLRequest", offsetof(struct query, request)},
        {"SAMLResponse", offsetof(struct query, response)},
        {"RelayState", offsetof(struct query, relay_state)},
        {"SigAlg", offsetof(struct query, sig_alg)},
        {"Signature", offsetof(struct query, signature)},
        {"SAMLEncoding", offsetof(struct query, encoding)},
    };

    memset(out, 0, sizeof(*out));
    for (const char *s = q; s != NULL && *s != '\0';) {
        const char *amp = strchr(s, '&');
        size_t len = amp ? (size_t)(amp - s) : strlen(s);
        const char *eq = memchr(s, '=', len);
        size_t nl = eq ? (size_t)(eq - s) : len;

        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
            struct param *p = (struct param *)((char *)out + known[i].off);
            if (nl != strlen(known[i].name) ||
                strncmp(s, known[i].name, nl) != 0) {
                continue;
            }
            if (p->present) {
                /* which copy would be verified, which one read? neither */
                cmn_err_set(why, "%s appears twice in the query",
                            known[i].name);
                return SAML_R_QUERY;
            }
            p->present = true;
            p->raw = eq ? eq + 1 : s + len;
            p->len = eq ? len - nl - 1 : 0;
        }
        s = amp ? amp + 1 : NULL;
    }
    if (out->request.present == out->response.present) {
        cmn_err_set(why, "%s",
                    out->request.present
                        ? "both SAMLRequest and SAMLResponse"
                        : "neither SAMLRequest nor SAMLResponse");
        return SAML_R_QUERY;
    }
    return SAML_OK;
}

static char *
inflate_capped(const unsigned char *in, size_t len, size_t *out_len,
               enum saml_reason *r)
{
    z_stream z;
    unsigned char *out = malloc(SAML_MAX_INFLATED + 1);
    int zrc;

    memset(&z, 0, sizeof(z));
    if (out == NULL || inflateInit2(&z, -15) != Z_OK) {
        free(out);
        *r = SAML_R_MALFORMED;
        return NULL;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = SAML_MAX_INFLATED;
    zrc = inflate(&z, Z_FINISH);
    inflateEnd(&z);
    if (zrc != Z_STREAM_END) {
        /* out of room: a bomb (or just too big); anything else: corrupt */
        *r = z.avail_out == 0 ? SAML_R_TOO_LARGE : SAML_R_MALFORMED;
        free(out);
        return NULL;
    }
    out[z.total_out] = '\0';
    *out_len = z.total_out;
    return (char *)out;
}

static const EVP_MD *
sigalg_md(const char *alg, bool allow_sha1)
{
    if (strcmp(alg, SIGALG_RSA_SHA256) == 0) {
        return EVP_sha256();
    }
    if (strcmp(alg, SIGALG_RSA_SHA384) == 0) {
        return EVP_sha384();
    }
    if (strcmp(alg, SIGALG_RSA_SHA512) == 0) {
        return EVP_sha512();
    }
    if (allow_sha1 && strcmp(alg, SIGALG_RSA_SHA1) == 0) {
        return EVP_sha1();
    }
    return NULL;
}

/* Only RSA SigAlgs are allowed, so only RSA keys are tried. (An ECDSA
 * query signature would be r||s, not DER: not supported here.) */
static bool
key_fits(EVP_PKEY *pkey)
{
    return EVP_PKEY_is_a(pkey, "RSA");
}

static enum saml_reason
verify_query_signature(const struct query *qp, const char *msg_param,
                       const struct param *m, const struct saml_idp *idp,
                       bool allow_sha1, struct cmn_err *why)
{
    char *signed_part = NULL, *alg_s = NULL, *sig_s = NULL;
    unsigned char *sigbin = NULL;
    size_t siglen = 0, n;
    const EVP_MD *md;
    const struct param *rs = &qp->relay_state;
    enum saml_reason r = SAML_R_SIGNATURE_INVALID;

    if (!qp->sig_alg.present || !qp->signature.present) {
        cmn_err_set(why, "the redirect message is not signed");
        return SAML_R_SIGNATURE_MISSING;
    }
    alg_s = url_decode(qp->sig_alg.raw, qp->sig_alg.len);
    md = alg_s ? sigalg_md(alg_s, allow_sha1) : NULL;
    if (md == NULL) {
        cmn_err_set(why, "SigAlg %.100s is not allowed",
                    alg_s ? alg_s : "(badly escaped)");
        free(alg_s);
        return SAML_R_SIGNATURE_ALGORITHM;
    }
    n = m->len + qp->sig_alg.len + rs->len + 64;
    signed_part = malloc(n);
    sig_s = url_decode(qp->signature.raw, qp->signature.len);
    if (signed_part == NULL || sig_s == NULL ||
        saml_b64_decode(sig_s, strlen(sig_s), &sigbin, &siglen) != CMN_OK) {
        cmn_err_set(why, "the Signature parameter is not base64");
        goto out;
    }
    /* §3.4.4.1: the parameters in this order, as received (encoded):
     * re-encoding them could differ from what the IdP signed */
    snprintf(signed_part, n, "%s=%.*s%s%.*s&SigAlg=%.*s", msg_param,
             (int)m->len, m->raw, rs->present ? "&RelayState=" : "",
             (int)rs->len, rs->present ? rs->raw : "", (int)qp->sig_alg.len,
             qp->sig_alg.raw);
    for (size_t i = 0; i < idp->nkeys; i++) {
        EVP_MD_CTX *ctx;
        bool ok;

        if (!key_fits(idp->pkeys[i])) {
            continue;
        }
        ctx = EVP_MD_CTX_new();
        ok = ctx != NULL &&
             EVP_DigestVerifyInit(ctx, NULL, md, NULL, idp->pkeys[i]) == 1 &&
             EVP_DigestVerify(ctx, sigbin, siglen,
                              (const unsigned char *)signed_part,
                              strlen(signed_part)) == 1;
        EVP_MD_CTX_free(ctx);
        if (ok) {
            r = SAML_OK;
            break;
        }
    }
    if (r != SAML_OK) {
        cmn_err_set(why, "the query signature does not verify with the "
                         "metadata keys");
    }
out:
    free(signed_part);
    free(alg_s);
    free(sig_s);
    free(sigbin);
    return r;
}

enum saml_reason
saml_redirect_unwrap(const char *q, const struct saml_idp *idp, bool allow_sha1,
                     struct saml_redirect_in *out, struct cmn_err *why)
{
    struct query qp;
    const struct param *m;
    const char *name;
    char *b64 = NULL;
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    enum saml_reason r;

    memset(out, 0, sizeof(*out));
    if (q == NULL || strlen(q) > 4 * SAML_MAX_INFLATED) {
        cmn_err_set(why, "the query is %s", q == NULL ? "empty" : "too long");
        return q == NULL ? SAML_R_QUERY : SAML_R_TOO_LARGE;
    }
    r = parse_query(q, &qp, why);
    if (r != SAML_OK) {
        return r;
    }
    out->is_request = qp.request.present;
    m = out->is_request ? &qp.request : &qp.response;
    name = out->is_request ? "SAMLRequest" : "SAMLResponse";
    if (qp.encoding.present) {
        char *enc = url_decode(qp.encoding.raw, qp.encoding.len);
        bool deflate = enc != NULL && strcmp(enc, ENCODING_DEFLATE) == 0;
        free(enc);
        if (!deflate) {
            cmn_err_set(why, "SAMLEncoding is not DEFLATE");
            return SAML_R_QUERY;
        }
    }
    if (qp.relay_state.present) {
        out->relay_state = url_decode(qp.relay_state.raw, qp.relay_state.len);
        if (out->relay_state == NULL ||
            strlen(out->relay_state) > SAML_MAX_RELAY_STATE) {
            cmn_err_set(why, "RelayState is badly escaped or over %d bytes",
                        SAML_MAX_RELAY_STATE);
            r = SAML_R_QUERY;
            goto out;
        }
    }
    r = verify_query_signature(&qp, name, m, idp, allow_sha1, why);
    if (r != SAML_OK) {
        goto out;
    }
    b64 = url_decode(m->raw, m->len);
    if (b64 == NULL ||
        saml_b64_decode(b64, strlen(b64), &raw, &raw_len) != CMN_OK) {
        cmn_err_set(why, "the message is not base64");
        r = SAML_R_BASE64;
        goto out;
    }
    out->xml = inflate_capped(raw, raw_len, &out->xml_len, &r);
    if (out->xml == NULL) {
        cmn_err_set(why, "%s",
                    r == SAML_R_TOO_LARGE
                        ? "the message inflates beyond the cap"
                        : "the message is not DEFLATE data");
        goto out;
    }
    r = SAML_OK;
out:
    free(b64);
    free(raw);
    if (r != SAML_OK) {
        saml_redirect_in_cleanup(out);
    }
    return r;
}

void
saml_redirect_in_cleanup(struct saml_redirect_in *in)
{
    free(in->xml);
    free(in->relay_state);
    memset(in, 0, sizeof(*in));
}
