/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* saml_redirect.c - the HTTP-Redirect binding (saml-bindings-2.0-os §3.4):
 * our AuthnRequest, LogoutRequest and LogoutResponse, DEFLATEd, base64'd
 * and signed over the query string (§3.4.4.1, RSA-SHA256); and the
 * LogoutRequest/LogoutResponse an IdP sends us the same way, inflated with
 * a cap (a deflate bomb stops at SAML_MAX_INFLATED) and checked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "cmn_xml.h"
#include "saml_int.h"

#define SIGALG_RSA_SHA256 "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
#define SIGALG_RSA_SHA384 "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
#define SIGALG_RSA_SHA512 "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
#define SIGALG_RSA_SHA1   "http://www.w3.org/2000/09/xmldsig#rsa-sha1"

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

/* Form-style decode ('+' is a space); NULL on a bad escape. */
static char *
url_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *p = out;

    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n || hexval(s[i + 1]) < 0 ||
                hexval(s[i + 2]) < 0) {
                free(out);
                return NULL;
            }
            *p++ = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
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
static char *
redirect_url(const char *dest, const char *param, const char *xml,
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

/* Values we put into XML attributes and text come from configuration or
 * from a verified assertion; escape them all the same. */
static char *
xml_escape(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(6 * n + 1), *p = out;

    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '&': p += sprintf(p, "&amp;"); break;
        case '<': p += sprintf(p, "&lt;"); break;
        case '>': p += sprintf(p, "&gt;"); break;
        case '"': p += sprintf(p, "&quot;"); break;
        default: *p++ = s[i]; break;
        }
    }
    *p = '\0';
    return out;
}

char *
saml_authn_request_url(const struct saml_idp *idp, const char *sp_entity_id,
                       const char *acs_url, const char *id,
                       const char *relay_state, long long now,
                       const struct saml_sp_key *key)
{
    char t[32], *xml, *url = NULL;
    char *e_dest = xml_escape(idp->sso_url), *e_acs = xml_escape(acs_url);
    char *e_sp = xml_escape(sp_entity_id);
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
        url = redirect_url(idp->sso_url, "SAMLRequest", xml, relay_state, key);
        free(xml);
    }
out:
    free(e_dest);
    free(e_acs);
    free(e_sp);
    return url;
}

char *
saml_logout_request_url(const struct saml_idp *idp, const char *sp_entity_id,
                        const char *id, const char *name_id,
                        const char *name_id_format, const char *session_index,
                        const char *relay_state, long long now,
                        const struct saml_sp_key *key)
{
    char t[32], *xml = NULL, *url = NULL;
    char *e_dest = NULL, *e_sp = NULL, *e_nid = NULL, *e_fmt = NULL,
         *e_si = NULL;
    size_t n;

    if (idp->slo_url == NULL) {
        return NULL;
    }
    saml_time_format(now, t);
    e_dest = xml_escape(idp->slo_url);
    e_sp = xml_escape(sp_entity_id);
    e_nid = xml_escape(name_id);
    e_fmt = xml_escape(name_id_format ? name_id_format : "");
    e_si = xml_escape(session_index ? session_index : "");
    if (e_dest && e_sp && e_nid && e_fmt && e_si) {
        n = strlen(e_dest) + strlen(e_sp) + strlen(e_nid) + strlen(e_fmt) +
            strlen(e_si) + 1024;
        xml = malloc(n);
    }
    if (xml != NULL) {
        int k = snprintf(
            xml, n,
            "<samlp:LogoutRequest xmlns:samlp=\"" SAML_NS_PROTOCOL "\" "
            "xmlns:saml=\"" SAML_NS_ASSERTION "\" ID=\"%s\" Version=\"2.0\" "
            "IssueInstant=\"%s\" Destination=\"%s\">"
            "<saml:Issuer>%s</saml:Issuer><saml:NameID%s%s%s>%s</saml:NameID>",
            id, t, e_dest, e_sp, e_fmt[0] ? " Format=\"" : "", e_fmt,
            e_fmt[0] ? "\"" : "", e_nid);
        if (e_si[0] != '\0') {
            k += snprintf(xml + k, n - (size_t)k,
                          "<samlp:SessionIndex>%s</samlp:SessionIndex>", e_si);
        }
        snprintf(xml + k, n - (size_t)k, "</samlp:LogoutRequest>");
        url = redirect_url(idp->slo_url, "SAMLRequest", xml, relay_state, key);
    }
    free(xml);
    free(e_dest);
    free(e_sp);
    free(e_nid);
    free(e_fmt);
    free(e_si);
    return url;
}

char *
saml_logout_response_url(const struct saml_idp *idp, const char *sp_entity_id,
                         const char *id, const char *in_response_to,
                         const char *relay_state, long long now,
                         const struct saml_sp_key *key)
{
    char t[32], *xml = NULL, *url = NULL;
    char *e_dest, *e_sp, *e_irt;
    size_t n;

    if (idp->slo_url == NULL) {
        return NULL;
    }
    saml_time_format(now, t);
    e_dest = xml_escape(idp->slo_url);
    e_sp = xml_escape(sp_entity_id);
    e_irt = xml_escape(in_response_to);
    if (e_dest && e_sp && e_irt) {
        n = strlen(e_dest) + strlen(e_sp) + strlen(e_irt) + 1024;
        xml = malloc(n);
    }
    if (xml != NULL) {
        snprintf(xml, n,
                 "<samlp:LogoutResponse xmlns:samlp=\"" SAML_NS_PROTOCOL "\" "
                 "xmlns:saml=\"" SAML_NS_ASSERTION "\" ID=\"%s\" "
                 "Version=\"2.0\" IssueInstant=\"%s\" Destination=\"%s\" "
                 "InResponseTo=\"%s\"><saml:Issuer>%s</saml:Issuer>"
                 "<samlp:Status><samlp:StatusCode Value=\"" SAML_STATUS_SUCCESS
                 "\"/></samlp:Status></samlp:LogoutResponse>",
                 id, t, e_dest, e_irt, e_sp);
        url = redirect_url(idp->slo_url, "SAMLResponse", xml, relay_state,
                           key);
    }
    free(xml);
    free(e_dest);
    free(e_sp);
    free(e_irt);
    return url;
}

/* --- what the IdP sends us --- */

struct param {
    const char *raw; /* encoded, as received */
    size_t len;
};

static bool
query_param(const char *q, const char *name, struct param *p)
{
    size_t nl = strlen(name);

    for (const char *s = q; s != NULL && *s != '\0';) {
        const char *amp = strchr(s, '&');
        size_t len = amp ? (size_t)(amp - s) : strlen(s);
        if (len > nl && strncmp(s, name, nl) == 0 && s[nl] == '=') {
            p->raw = s + nl + 1;
            p->len = len - nl - 1;
            return true;
        }
        s = amp ? amp + 1 : NULL;
    }
    return false;
}

static char *
inflate_capped(const unsigned char *in, size_t len, size_t *out_len)
{
    z_stream z;
    unsigned char *out = malloc(SAML_MAX_INFLATED + 1);
    int zrc;

    memset(&z, 0, sizeof(z));
    if (out == NULL || inflateInit2(&z, -15) != Z_OK) {
        free(out);
        return NULL;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = SAML_MAX_INFLATED;
    zrc = inflate(&z, Z_FINISH);
    inflateEnd(&z);
    if (zrc != Z_STREAM_END) { /* corrupt, or over the cap */
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

static enum saml_reason
verify_query_signature(const char *q, const char *msg_param,
                       const struct saml_idp *idp, bool allow_sha1,
                       struct cmn_err *why)
{
    struct param m, rs, alg, sig;
    char *signed_part, *alg_s = NULL, *sig_s = NULL;
    unsigned char *sigbin = NULL;
    size_t siglen = 0, n;
    const EVP_MD *md;
    bool has_rs = query_param(q, "RelayState", &rs);
    enum saml_reason r = SAML_R_SIGNATURE_INVALID;

    if (!query_param(q, msg_param, &m) || !query_param(q, "SigAlg", &alg) ||
        !query_param(q, "Signature", &sig)) {
        cmn_err_set(why, "the redirect message is not signed");
        return SAML_R_SIGNATURE_MISSING;
    }
    alg_s = url_decode(alg.raw, alg.len);
    md = alg_s ? sigalg_md(alg_s, allow_sha1) : NULL;
    if (md == NULL) {
        free(alg_s);
        cmn_err_set(why, "SigAlg is not allowed");
        return SAML_R_SIGNATURE_ALGORITHM;
    }
    n = m.len + alg.len + (has_rs ? rs.len : 0) + 64;
    signed_part = malloc(n);
    sig_s = url_decode(sig.raw, sig.len);
    if (signed_part == NULL || sig_s == NULL ||
        saml_b64_decode(sig_s, strlen(sig_s), &sigbin, &siglen) != CMN_OK) {
        cmn_err_set(why, "the Signature parameter is not base64");
        goto out;
    }
    /* §3.4.4.1: the parameters in this order, as received (encoded) */
    snprintf(signed_part, n, "%s=%.*s%s%.*s&SigAlg=%.*s", msg_param,
             (int)m.len, m.raw, has_rs ? "&RelayState=" : "",
             has_rs ? (int)rs.len : 0, has_rs ? rs.raw : "", (int)alg.len,
             alg.raw);
    for (size_t i = 0; i < idp->nkeys; i++) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        bool ok = ctx != NULL &&
                  EVP_DigestVerifyInit(ctx, NULL, md, NULL, idp->pkeys[i]) ==
                      1 &&
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
saml_redirect_decode(const char *q, const struct saml_idp *idp,
                     const char *expected_destination, bool allow_sha1,
                     long long now, long skew_s,
                     struct saml_redirect_msg *out, struct cmn_err *why)
{
    struct param m, rs;
    const char *name;
    char *b64 = NULL, *xml = NULL, buf[1024];
    unsigned char *raw = NULL;
    size_t raw_len = 0, xml_len = 0;
    xmlDocPtr doc = NULL;
    xmlNodePtr root, issuer;
    enum saml_reason r;
    struct cmn_err perr = {{0}};

    memset(out, 0, sizeof(*out));
    if (saml_init(why) != CMN_OK) {
        return SAML_R_MALFORMED;
    }
    if (q == NULL || strlen(q) > 4 * SAML_MAX_INFLATED) {
        cmn_err_set(why, "the query is too long");
        return SAML_R_TOO_LARGE;
    }
    out->is_request = query_param(q, "SAMLRequest", &m);
    name = out->is_request ? "SAMLRequest" : "SAMLResponse";
    if (!out->is_request && !query_param(q, name, &m)) {
        cmn_err_set(why, "neither SAMLRequest nor SAMLResponse");
        return SAML_R_MALFORMED;
    }
    r = verify_query_signature(q, name, idp, allow_sha1, why);
    if (r != SAML_OK) {
        return r;
    }
    r = SAML_R_MALFORMED;
    b64 = url_decode(m.raw, m.len);
    if (b64 == NULL ||
        saml_b64_decode(b64, strlen(b64), &raw, &raw_len) != CMN_OK) {
        cmn_err_set(why, "the message is not base64");
        r = SAML_R_BASE64;
        goto out;
    }
    xml = inflate_capped(raw, raw_len, &xml_len);
    if (xml == NULL) {
        cmn_err_set(why, "the message does not inflate within %d bytes",
                    SAML_MAX_INFLATED);
        r = SAML_R_TOO_LARGE;
        goto out;
    }
    doc = cmn_xml_parse(xml, xml_len, SAML_MAX_INFLATED, &perr);
    if (doc == NULL) {
        cmn_err_set(why, "%s", perr.msg);
        r = strstr(perr.msg, "DOCTYPE") ? SAML_R_DOCTYPE : SAML_R_MALFORMED;
        goto out;
    }
    root = xmlDocGetRootElement(doc);
    if (!saml_is(root, SAML_NS_PROTOCOL,
                 out->is_request ? "LogoutRequest" : "LogoutResponse") ||
        saml_attr(root, "ID", buf, sizeof(buf)) == NULL) {
        cmn_err_set(why, "not a LogoutRequest/LogoutResponse with an ID");
        r = SAML_R_NOT_RESPONSE;
        goto out;
    }
    out->id = strdup(buf);
    issuer = saml_child(root, SAML_NS_ASSERTION, "Issuer");
    if (issuer == NULL || cmn_xml_text(issuer) == NULL ||
        strcmp(cmn_xml_text(issuer), idp->entity_id) != 0) {
        cmn_err_set(why, "Issuer is not the IdP's entityID");
        r = SAML_R_ISSUER;
        goto out;
    }
    out->issuer = strdup(idp->entity_id);
    if (saml_attr(root, "Destination", buf, sizeof(buf)) != NULL &&
        strcmp(buf, expected_destination) != 0) {
        cmn_err_set(why, "Destination is not this SLO endpoint");
        r = SAML_R_DESTINATION;
        goto out;
    }
    if (out->is_request) {
        const char *nid = cmn_xml_text(
            saml_child(root, SAML_NS_ASSERTION, "NameID"));
        if (nid == NULL || nid[0] == '\0') {
            cmn_err_set(why, "LogoutRequest without a plain NameID");
            r = SAML_R_NAMEID;
            goto out;
        }
        out->name_id = strdup(nid);
        out->session_index = saml_strdup(cmn_xml_text(
            saml_child(root, SAML_NS_PROTOCOL, "SessionIndex")));
        if (saml_attr(root, "NotOnOrAfter", buf, sizeof(buf)) != NULL &&
            now >= saml_time_parse(buf) + skew_s) {
            cmn_err_set(why, "the LogoutRequest has expired");
            r = SAML_R_EXPIRED;
            goto out;
        }
    } else {
        xmlNodePtr st = saml_child(root, SAML_NS_PROTOCOL, "Status");
        xmlNodePtr code = saml_child(st, SAML_NS_PROTOCOL, "StatusCode");
        out->success = code != NULL &&
                       saml_attr(code, "Value", buf, sizeof(buf)) != NULL &&
                       strcmp(buf, SAML_STATUS_SUCCESS) == 0;
        out->in_response_to =
            saml_strdup(saml_attr(root, "InResponseTo", buf, sizeof(buf)));
    }
    if (query_param(q, "RelayState", &rs)) {
        out->relay_state = url_decode(rs.raw, rs.len);
    }
    r = SAML_OK;
out:
    if (doc != NULL) {
        xmlFreeDoc(doc);
    }
    free(b64);
    free(raw);
    free(xml);
    if (r != SAML_OK) {
        saml_redirect_msg_cleanup(out);
    }
    return r;
}

void
saml_redirect_msg_cleanup(struct saml_redirect_msg *m)
{
    free(m->id);
    free(m->issuer);
    free(m->in_response_to);
    free(m->name_id);
    free(m->session_index);
    free(m->relay_state);
    memset(m, 0, sizeof(*m));
}
