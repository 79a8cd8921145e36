/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* saml_util.c - xmlsec1 start-up, reason names, xs:dateTime, message ids,
 * base64 and the small DOM helpers every saml_*.c file uses. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <xmlsec/crypto.h>
#include <xmlsec/errors.h>
#include <xmlsec/xmlsec.h>

#include "cmn_seal.h"
#include "cmn_xml.h"
#include "saml_int.h"

/* clang-format off */
static const char *const reason_names[SAML_R_COUNT] = {
    [SAML_OK] = "ok",
    [SAML_R_TOO_LARGE] = "too_large",
    [SAML_R_BASE64] = "not_base64",
    [SAML_R_DOCTYPE] = "doctype",
    [SAML_R_MALFORMED] = "malformed_xml",
    [SAML_R_NOT_RESPONSE] = "not_a_response",
    [SAML_R_DUPLICATE_ID] = "duplicate_id",
    [SAML_R_ASSERTION_COUNT] = "assertion_count",
    [SAML_R_SCHEMA] = "schema",
    [SAML_R_SIGNATURE_MISSING] = "signature_missing",
    [SAML_R_SIGNATURE_PLACEMENT] = "signature_placement",
    [SAML_R_SIGNATURE_REFERENCE] = "signature_reference",
    [SAML_R_SIGNATURE_ALGORITHM] = "signature_algorithm",
    [SAML_R_SIGNATURE_INVALID] = "signature_invalid",
    [SAML_R_ENCRYPTION_ALGORITHM] = "encryption_algorithm",
    [SAML_R_DECRYPT] = "decryption_failed",
    [SAML_R_NO_DECRYPTION_KEY] = "no_decryption_key",
    [SAML_R_STATUS] = "status_not_success",
    [SAML_R_DESTINATION] = "destination",
    [SAML_R_ISSUER] = "issuer",
    [SAML_R_IN_RESPONSE_TO] = "in_response_to_mismatch",
    [SAML_R_SUBJECT_CONFIRMATION] = "subject_confirmation",
    [SAML_R_RECIPIENT] = "recipient",
    [SAML_R_NOT_YET_VALID] = "not_yet_valid",
    [SAML_R_EXPIRED] = "expired",
    [SAML_R_AUDIENCE] = "audience",
    [SAML_R_AUTHN_STATEMENT] = "no_authn_statement",
    [SAML_R_NAMEID] = "nameid",
    [SAML_R_ATTRIBUTE] = "attribute",
    [SAML_R_QUERY] = "bad_query",
    [SAML_R_NOT_LOGOUT] = "not_a_logout_message",
    [SAML_R_UNSOLICITED] = "unsolicited",
    [SAML_R_UNKNOWN_REQUEST] = "unknown_in_response_to",
    [SAML_R_RELAY_STATE] = "relay_state",
    [SAML_R_REPLAY] = "replay",
    [SAML_R_GROUP] = "group_not_allowed",
    [SAML_R_STORE] = "store_unavailable",
    [SAML_R_IDS_USER_MISMATCH] = "ids_user_mismatch",
    [SAML_R_IDS_USER_UNKNOWN] = "ids_user_unknown",
    [SAML_R_BROWSER] = "browser_mismatch",
    [SAML_R_LOGOUT_CODE] = "unknown_logout_code",
    [SAML_R_LOGGED_OUT] = "logged_out",
};
/* clang-format on */

const char *
saml_reason_str(enum saml_reason r)
{
    if ((int)r < 0 || r >= SAML_R_COUNT || reason_names[r] == NULL) {
        return "unknown";
    }
    return reason_names[r];
}

/* xmlsec1 reports through a callback; its messages go nowhere (the
 * verifier returns its own reasons), never to stderr where they would
 * carry document content into logs. */
static void
xmlsec_silent(const char *file, int line, const char *func, const char *object,
              const char *subject, int reason, const char *msg)
{
    (void)file;
    (void)line;
    (void)func;
    (void)object;
    (void)subject;
    (void)reason;
    (void)msg;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc = CMN_ERR;

static void
init_xmlsec(void)
{
    cmn_xml_init();
    if (xmlSecInit() < 0) {
        return;
    }
    if (xmlSecCheckVersion() != 1) {
        return;
    }
    /* Debian's xmlsec1 is built with the OpenSSL engine linked in
     * (XMLSEC_NO_CRYPTO_DYNAMIC_LOADING): no dlopen, no config file. */
    if (xmlSecCryptoAppInit(NULL) < 0 || xmlSecCryptoInit() < 0) {
        return;
    }
    xmlSecErrorsSetCallback(xmlsec_silent);
    init_rc = CMN_OK;
}

int
saml_init(struct cmn_err *err)
{
    pthread_once(&init_once, init_xmlsec);
    if (init_rc != CMN_OK) {
        cmn_err_set(err, "saml: xmlsec1 (OpenSSL) failed to start");
    }
    return init_rc;
}

bool
saml_value_ok(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > SAML_MAX_VALUE) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            return false;
        }
    }
    return true;
}

bool
saml_check(struct saml_report *report, const char *name, int verdict,
           const char *fmt, ...)
{
    if (report != NULL && report->n < SAML_MAX_CHECKS) {
        struct saml_check *c = &report->checks[report->n++];
        va_list ap;
        c->name = name;
        c->verdict = verdict;
        va_start(ap, fmt);
        vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
        va_end(ap);
    }
    return verdict == SAML_PASS;
}

bool
saml_is(const xmlNode *n, const char *ns, const char *name)
{
    return n != NULL && n->type == XML_ELEMENT_NODE && n->ns != NULL &&
           n->ns->href != NULL && strcmp((const char *)n->ns->href, ns) == 0 &&
           strcmp((const char *)n->name, name) == 0;
}

xmlNodePtr
saml_child(const xmlNode *parent, const char *ns, const char *name)
{
    if (parent == NULL) {
        return NULL;
    }
    for (xmlNodePtr c = parent->children; c != NULL; c = c->next) {
        if (saml_is(c, ns, name)) {
            return c;
        }
    }
    return NULL;
}

size_t
saml_count_children(const xmlNode *parent, const char *ns, const char *name)
{
    size_t n = 0;

    for (xmlNodePtr c = parent ? parent->children : NULL; c; c = c->next) {
        n += saml_is(c, ns, name);
    }
    return n;
}

const char *
saml_attr(const xmlNode *n, const char *name, char *buf, size_t size)
{
    for (xmlAttrPtr a = n ? n->properties : NULL; a != NULL; a = a->next) {
        if (a->ns == NULL && strcmp((const char *)a->name, name) == 0) {
            const xmlNode *t = a->children;
            snprintf(buf, size, "%s",
                     t != NULL && t->type == XML_TEXT_NODE && t->content
                         ? (const char *)t->content
                         : "");
            return buf;
        }
    }
    return NULL;
}

char *
saml_strdup(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

/* --- time --- */

static int
digits(const char *s, int n)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

long long
saml_time_parse(const char *s)
{
    struct tm tm;
    long long t;
    const char *p;

    /* YYYY-MM-DDThh:mm:ss[.fff][Z|(+|-)hh:mm] */
    if (s == NULL || strlen(s) < 19 || s[4] != '-' || s[7] != '-' ||
        s[10] != 'T' || s[13] != ':' || s[16] != ':') {
        return -1;
    }
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = digits(s, 4) - 1900;
    tm.tm_mon = digits(s + 5, 2) - 1;
    tm.tm_mday = digits(s + 8, 2);
    tm.tm_hour = digits(s + 11, 2);
    tm.tm_min = digits(s + 14, 2);
    tm.tm_sec = digits(s + 17, 2);
    if (tm.tm_year < 70 || tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 ||
        tm.tm_mday > 31 || tm.tm_hour < 0 || tm.tm_hour > 23 || tm.tm_min < 0 ||
        tm.tm_min > 59 || tm.tm_sec < 0 || tm.tm_sec > 60) {
        return -1;
    }
    p = s + 19;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') {
            return -1;
        }
        while (*p >= '0' && *p <= '9') {
            p++;
        }
    }
    t = (long long)timegm(&tm);
    if (*p == 'Z' && p[1] == '\0') {
        return t;
    }
    if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int h = digits(p + 1, 2), m = digits(p + 4, 2);
        if (h < 0 || h > 14 || m < 0 || m > 59) {
            return -1;
        }
        return *p == '+' ? t - (h * 3600 + m * 60) : t + (h * 3600 + m * 60);
    }
    return -1; /* no zone: SAML says UTC "Z" (core §1.3.3) */
}

void
saml_time_format(long long t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int
saml_new_id(char out[34])
{
    unsigned char raw[16];

    if (cmn_random_bytes(raw, sizeof(raw)) != CMN_OK) {
        return CMN_ERR;
    }
    out[0] = '_';
    for (size_t i = 0; i < sizeof(raw); i++) {
        snprintf(out + 1 + 2 * i, 3, "%02x", raw[i]);
    }
    return CMN_OK;
}

/* --- base64 --- */

static int
b64_value(unsigned char c)
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
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

int
saml_b64_decode(const char *in, size_t len, unsigned char **out,
                size_t *out_len)
{
    unsigned char *buf = malloc(len / 4 * 3 + 4);
    unsigned acc = 0;
    int bits = 0, pad = 0;
    size_t n = 0;

    if (buf == NULL) {
        return CMN_NOMEM;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        int v;
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            continue;
        }
        if (c == '=') {
            pad++;
            continue;
        }
        v = b64_value(c);
        if (v < 0 || pad > 0) { /* data after padding */
            free(buf);
            return CMN_INVALID;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (pad > 2 || bits >= 6) {
        free(buf);
        return CMN_INVALID;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return CMN_OK;
}

char *
saml_b64_encode(const unsigned char *in, size_t len)
{
    size_t n = 4 * ((len + 2) / 3) + 1;
    char *out = malloc(n);

    if (out != NULL) {
        EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    }
    return out;
}

enum saml_reason
saml_post_decode(const char *b64, size_t len, char **xml, size_t *xml_len)
{
    unsigned char *buf = NULL;
    size_t n = 0;

    *xml = NULL;
    *xml_len = 0;
    if (len > SAML_MAX_RESPONSE / 3 * 4 + 1024) {
        return SAML_R_TOO_LARGE;
    }
    if (saml_b64_decode(b64, len, &buf, &n) != CMN_OK) {
        return SAML_R_BASE64;
    }
    if (n > SAML_MAX_RESPONSE) {
        free(buf);
        return SAML_R_TOO_LARGE;
    }
    *xml = (char *)buf;
    *xml_len = n;
    return SAML_OK;
}

/* --- keys --- */

void *
saml_key_from_cert_der(const unsigned char *der, size_t len, void **pkey)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    xmlSecKeyPtr key;

    *pkey = NULL;
    if (x == NULL || p != der + len) {
        X509_free(x);
        return NULL;
    }
    *pkey = X509_get_pubkey(x); /* a reference: EVP_PKEY_free */
    X509_free(x);
    if (*pkey == NULL) {
        return NULL;
    }
    key = xmlSecCryptoAppKeyLoadMemory(
        der, (xmlSecSize)len, xmlSecKeyDataFormatCertDer, NULL, NULL, NULL);
    if (key == NULL) {
        EVP_PKEY_free(*pkey);
        *pkey = NULL;
    }
    return key;
}
