/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* saml.h - fsc-sso's SAML 2.0 service provider core: IdP metadata, the
 * Response verifier, AuthnRequest building, Single Logout messages
 * (LogoutRequest/LogoutResponse both ways) and the HTTP-Redirect binding. Pure
 * functions of their inputs (bytes in, structs out, no network, no Redis, no
 * clock of their own), so that the daemon, `fscctl saml-verify`, the unit tests
 * and the fuzzer run the same code.
 *
 * Built as the small library fsc_saml (libxml2 + xmlsec1-openssl + zlib),
 * linked by fsc-sso and by fscctl: the connector daemon never links it.
 * The checks follow /work/shared/reference/sso.md §3 (xmlsec1 1.2.37,
 * libxml2 2.9.14). */
#ifndef SAML_H
#define SAML_H

#include <stdbool.h>
#include <stddef.h>

#include "cmn.h"

/* Sizes: a Response over the HTTP-POST binding is capped before base64
 * decoding; an HTTP-Redirect message after inflating (deflate bombs). */
#define SAML_MAX_RESPONSE   (256 * 1024)
#define SAML_MAX_INFLATED   (64 * 1024)
#define SAML_MAX_IDP_KEYS   8
#define SAML_MAX_GROUPS     64
#define SAML_MAX_VALUE      1024
#define SAML_DEFAULT_SKEW_S 120
/* HTTP-Redirect messages (SLO): how old an IssueInstant may be (plus the
 * skew) before the message counts as expired, however far its optional
 * NotOnOrAfter; how many SessionIndex elements a LogoutRequest may name;
 * how long a RelayState may be (the binding says 80 bytes; IdPs exceed
 * it). */
#define SAML_REDIRECT_MAX_AGE_S  300
#define SAML_MAX_SESSION_INDEXES 16
#define SAML_MAX_RELAY_STATE     1024

/* Why a message was refused. Each has a stable snake_case name (the log
 * reason= and the /metrics label). Keep saml_reason_str in step. */
enum saml_reason {
    SAML_OK = 0,
    SAML_R_TOO_LARGE,            /* over SAML_MAX_RESPONSE */
    SAML_R_BASE64,               /* the POST parameter is not base64 */
    SAML_R_DOCTYPE,              /* a DTD: XXE, billion laughs */
    SAML_R_MALFORMED,            /* not well-formed XML, bad namespaces */
    SAML_R_NOT_RESPONSE,         /* the root is not samlp:Response 2.0 */
    SAML_R_DUPLICATE_ID,         /* an ID attribute value twice (or xml:id) */
    SAML_R_ASSERTION_COUNT,      /* not exactly one Assertion in the message */
    SAML_R_SCHEMA,               /* elements out of place for the schema */
    SAML_R_SIGNATURE_MISSING,    /* nothing signed, or an encrypted
                                    Assertion not signed itself */
    SAML_R_SIGNATURE_PLACEMENT,  /* a Signature anywhere but directly in
                                    the Response or the Assertion, or two */
    SAML_R_SIGNATURE_REFERENCE,  /* Reference not exactly one "#ID" of the
                                    Signature's parent, odd transforms */
    SAML_R_SIGNATURE_ALGORITHM,  /* not allow-listed (SHA-1 without
                                    allow_sha1) */
    SAML_R_SIGNATURE_INVALID,    /* does not verify with any metadata key */
    SAML_R_ENCRYPTION_ALGORITHM, /* not RSA-OAEP + AES-GCM/CBC */
    SAML_R_DECRYPT,              /* cannot be decrypted (one uniform reason,
                                    no padding oracle) */
    SAML_R_NO_DECRYPTION_KEY,    /* encrypted, but no sp_key_file */
    SAML_R_STATUS,               /* Status is not Success */
    SAML_R_DESTINATION,          /* Response Destination is not the ACS */
    SAML_R_ISSUER,               /* Issuer is not the IdP's entityID */
    SAML_R_IN_RESPONSE_TO,       /* Response and SubjectConfirmationData
                                    InResponseTo disagree */
    SAML_R_SUBJECT_CONFIRMATION, /* no usable bearer SubjectConfirmation */
    SAML_R_RECIPIENT,            /* Recipient is not the ACS */
    SAML_R_NOT_YET_VALID,        /* NotBefore beyond now + skew */
    SAML_R_EXPIRED,              /* NotOnOrAfter at or before now - skew */
    SAML_R_AUDIENCE,             /* our entityID is not an Audience */
    SAML_R_AUTHN_STATEMENT,      /* no AuthnStatement */
    SAML_R_NAMEID,               /* NameID absent, empty, encrypted, or not
                                    one plain text node (comment injection) */
    SAML_R_ATTRIBUTE,            /* user/groups attribute missing or not
                                    plain text */
    SAML_R_QUERY,                /* HTTP-Redirect query: a parameter twice,
                                    SAMLRequest and SAMLResponse both or
                                    neither, a bad escape, an encoding other
                                    than DEFLATE, RelayState too long */
    SAML_R_NOT_LOGOUT,           /* not a SAML 2.0 LogoutRequest (or
                                    LogoutResponse) with ID, IssueInstant */
    /* decided by the daemon, not by the pure verifier */
    SAML_R_UNSOLICITED,       /* no InResponseTo, IdP-initiated off */
    SAML_R_UNKNOWN_REQUEST,   /* InResponseTo unknown, expired or used */
    SAML_R_RELAY_STATE,       /* RelayState is not the request's */
    SAML_R_REPLAY,            /* this Assertion was already consumed */
    SAML_R_GROUP,             /* not in an allowed group */
    SAML_R_STORE,             /* Redis unreachable: fail closed */
    SAML_R_IDS_USER_MISMATCH, /* IdS token names another user */
    SAML_R_IDS_USER_UNKNOWN,  /* IdS token names nobody we can read */
    SAML_R_BROWSER,           /* posted by another browser than the one
                                 that started the sign-in (login CSRF) */
    SAML_R_LOGOUT_CODE,       /* SP-initiated logout: the browser's
                                 logout code is unknown, expired or used */
    SAML_R_LOGGED_OUT,        /* the IdP's LogoutRequest ended this
                                 authentication before the sign-in
                                 completed */
    SAML_R_COUNT
};

const char *saml_reason_str(enum saml_reason r);

/* One check and its verdict, for `fscctl saml-verify` (in order). */
struct saml_check {
    const char *name; /* static */
    enum { SAML_PASS, SAML_FAIL, SAML_SKIP } verdict;
    char detail[200];
};
#define SAML_MAX_CHECKS 40
struct saml_report {
    struct saml_check checks[SAML_MAX_CHECKS];
    size_t n;
};

/* Process-wide set-up of libxml2 and xmlsec1 (idempotent, thread-safe).
 * CMN_ERR when xmlsec1 or its OpenSSL engine cannot start. */
int saml_init(struct cmn_err *err) CMN_NODISCARD;

/* ------------------------------------------------------------------ */
/* IdP metadata (saml_metadata.c) */

struct saml_idp {
    char *entity_id;
    char *sso_url; /* SingleSignOnService, HTTP-Redirect */
    char *slo_url; /* SingleLogoutService, HTTP-Redirect; NULL if none */
    void *keys[SAML_MAX_IDP_KEYS];  /* xmlSecKeyPtr: the signing
                                       certificates (several in a rollover) */
    void *pkeys[SAML_MAX_IDP_KEYS]; /* the same as EVP_PKEY, for
                                       HTTP-Redirect query signatures */
    size_t nkeys;
};

/* Parse an EntityDescriptor (or an EntitiesDescriptor holding exactly one
 * IdP) with the hardened parser: entityID, the HTTP-Redirect SSO and SLO
 * locations, and every KeyDescriptor without use or with use="signing".
 * CMN_INVALID with err saying what is missing. saml_idp_cleanup frees. */
int saml_metadata_parse(const char *buf, size_t len, struct saml_idp *idp,
                        struct cmn_err *err) CMN_NODISCARD;
void saml_idp_cleanup(struct saml_idp *idp);

/* ------------------------------------------------------------------ */
/* The SP's own key pair (saml_keys.c) */

struct saml_sp_key {
    void *key;      /* xmlSecKeyPtr (private): decrypts assertions */
    void *pkey;     /* EVP_PKEY (private): signs redirect queries */
    char *cert_b64; /* the certificate's DER as base64, for metadata */
};
/* PEM private key and PEM certificate (as read from the key files). */
int saml_sp_key_load(const char *key_pem, size_t key_len, const char *cert_pem,
                     size_t cert_len, struct saml_sp_key *out,
                     struct cmn_err *err) CMN_NODISCARD;
void saml_sp_key_cleanup(struct saml_sp_key *k);

/* ------------------------------------------------------------------ */
/* The Response verifier (saml_response.c) */

struct saml_sp {
    const char *entity_id; /* NULL (fscctl only): Audience not compared */
    const char *acs_url;   /* NULL (fscctl only): Destination and
                              Recipient not compared */
    const struct saml_sp_key *key; /* NULL: encrypted assertions refused */
    const char *user_attribute;    /* NULL: the NameID is the user */
    const char *groups_attribute;  /* NULL: no groups read */
    bool allow_sha1;
    long clock_skew_s;
};

/* What a verified Response vouches for. Strings are malloc'd
 * (saml_assertion_cleanup). */
struct saml_assertion {
    char *response_id;
    char *assertion_id;
    char *issuer;
    char *in_response_to; /* NULL: unsolicited (IdP-initiated) */
    char *name_id;
    char *name_id_format;    /* may be NULL */
    char *name_qualifier;    /* may be NULL */
    char *sp_name_qualifier; /* may be NULL */
    char *session_index;     /* may be NULL */
    char *user;              /* user_attribute's value, or the NameID */
    char *groups[SAML_MAX_GROUPS];
    size_t ngroups;
    long long not_on_or_after;         /* earliest validity end (unix s):
                                          how long the replay cache keeps
                                          this assertion */
    long long session_not_on_or_after; /* 0 when not given */
    long long authn_instant;           /* AuthnStatement's AuthnInstant
                                          (IdP clock, unix s) */
    bool response_signed;
    bool assertion_signed;
    bool encrypted;
};

/* Check a Response (XML text, already base64-decoded) against the IdP's
 * metadata and the SP's settings at time now (unix s). SAML_OK fills *out;
 * any other reason leaves *out empty. report (may be NULL) receives every
 * check with its verdict; detail (may be NULL) one sentence on the first
 * failure. Never logs, never allocates anything kept on failure.
 * Thread-safe. */
enum saml_reason saml_response_verify(const char *xml, size_t len,
                                      const struct saml_idp *idp,
                                      const struct saml_sp *sp, long long now,
                                      struct saml_assertion *out,
                                      struct saml_report *report,
                                      struct cmn_err *detail);
void saml_assertion_cleanup(struct saml_assertion *a);

/* Decode the HTTP-POST binding's SAMLResponse (base64, whitespace
 * allowed) into *xml (malloc'd, NUL-terminated). SAML_R_TOO_LARGE or
 * SAML_R_BASE64. */
enum saml_reason saml_post_decode(const char *b64, size_t len, char **xml,
                                  size_t *xml_len);

/* ------------------------------------------------------------------ */
/* Requests and the HTTP-Redirect binding (saml_redirect.c) */

/* xs:dateTime in UTC ("2026-01-02T03:04:05Z"), and back. A fraction of a
 * second is dropped; an offset other than Z is applied. -1 if malformed. */
long long saml_time_parse(const char *s);
void saml_time_format(long long t, char out[32]);

/* A new message ID: "_" + 32 hex digits from the CSPRNG (an xs:ID must
 * not start with a digit). out holds 34 bytes. */
int saml_new_id(char out[34]) CMN_NODISCARD;

/* The AuthnRequest for an HTTP-Redirect to the IdP, as a full URL:
 * idp->sso_url?SAMLRequest=...&RelayState=...[&SigAlg=...&Signature=...]
 * (signed with RSA-SHA256 when key is not NULL). malloc'd. */
char *saml_authn_request_url(const struct saml_idp *idp,
                             const char *sp_entity_id, const char *acs_url,
                             const char *id, const char *relay_state,
                             long long now, const struct saml_sp_key *key);

/* ------------------------------------------------------------------ */
/* Single Logout (saml_logout.c), HTTP-Redirect binding only */

/* The principal a LogoutRequest names, as the assertion named it
 * (saml-core-2.0-os §3.7.1: "as currently recognized by the identity and
 * service providers"): empty or NULL attributes are left out. */
struct saml_logout_subject {
    const char *name_id;
    const char *format;
    const char *name_qualifier;
    const char *sp_name_qualifier;
    const char *session_index;
};

/* saml-core-2.0-os §3.2.2.2: top-level and second-level status codes. */
#define SAML_STATUS_SUCCESS   "urn:oasis:names:tc:SAML:2.0:status:Success"
#define SAML_STATUS_REQUESTER "urn:oasis:names:tc:SAML:2.0:status:Requester"
#define SAML_STATUS_RESPONDER "urn:oasis:names:tc:SAML:2.0:status:Responder"
#define SAML_STATUS_PARTIAL_LOGOUT \
    "urn:oasis:names:tc:SAML:2.0:status:PartialLogout"

/* Our LogoutRequest (SP-initiated SLO) to the IdP's SLO URL, as a full
 * HTTP-Redirect URL signed with RSA-SHA256 (saml-profiles-2.0-os §4.4.4.1:
 * it MUST be signed on this binding). malloc'd; NULL without an IdP SLO
 * URL, without a key, or out of memory. */
char *saml_logout_request_url(const struct saml_idp *idp,
                              const char *sp_entity_id, const char *id,
                              const struct saml_logout_subject *who,
                              const char *relay_state, long long now,
                              const struct saml_sp_key *key);
/* Our LogoutResponse to the IdP's LogoutRequest in_response_to: status
 * (NULL: Success) with an optional second-level code (e.g. Responder +
 * PartialLogout), relay_state echoed as received (saml-bindings-2.0-os
 * §3.4.3). Signed like the request; NULL in the same cases. */
char *saml_logout_response_url(const struct saml_idp *idp,
                               const char *sp_entity_id, const char *id,
                               const char *in_response_to, const char *status,
                               const char *sub_status, const char *relay_state,
                               long long now, const struct saml_sp_key *key);

/* A LogoutRequest or LogoutResponse the IdP sent over HTTP-Redirect. */
struct saml_redirect_msg {
    bool is_request; /* LogoutRequest, else LogoutResponse */
    char *id;
    char *issuer;
    long long issue_instant;
    char *relay_state; /* decoded; NULL when absent */
    /* LogoutRequest */
    char *name_id;
    char *name_id_format; /* NULL when absent, and the next two */
    char *name_qualifier;
    char *sp_name_qualifier;
    char *session_indexes[SAML_MAX_SESSION_INDEXES]; /* none: every
                                                         session */
    size_t nsession_indexes;
    long long not_on_or_after; /* 0 when absent */
    /* LogoutResponse */
    char *in_response_to; /* NULL when absent */
    char *status;         /* the top-level StatusCode Value */
    char *sub_status;     /* second-level, NULL when absent */
    bool success;         /* status is Success */
};
/* Decode and check, in this order: the query (each parameter once), the
 * signature over the query as received (saml-bindings-2.0-os §3.4.4.1,
 * RSA/ECDSA with SHA-256 and up, SHA-1 only with allow_sha1, a metadata
 * key; unsigned messages refused), base64, inflating within
 * SAML_MAX_INFLATED, the hardened parser (no DTD), the root element and
 * Version, Issuer = the IdP's entityID, Destination present and equal to
 * expected_destination (§3.4.5.2), IssueInstant within
 * [now - SAML_REDIRECT_MAX_AGE_S - skew, now + skew], NotOnOrAfter
 * (requests) not passed; a request's NameID one plain text node (no
 * EncryptedID or BaseID), its SessionIndexes plain text; a response's
 * Status. The caller checks replay, InResponseTo and RelayState. */
enum saml_reason
saml_redirect_decode(const char *raw_query, const struct saml_idp *idp,
                     const char *expected_destination, bool allow_sha1,
                     long long now, long skew_s, struct saml_redirect_msg *out,
                     struct cmn_err *detail);
void saml_redirect_msg_cleanup(struct saml_redirect_msg *m);
/* The content checks alone, on an inflated message (after the binding's
 * signature check): for the fuzzer, which cannot forge signatures.
 * *out must start zeroed; on failure the caller cleans it up. */
enum saml_reason saml_logout_parse(const char *xml, size_t len, bool is_request,
                                   const struct saml_idp *idp,
                                   const char *expected_destination,
                                   long long now, long skew_s,
                                   struct saml_redirect_msg *out,
                                   struct cmn_err *why);

/* ------------------------------------------------------------------ */
/* SP metadata (saml_sp_metadata.c): EntityDescriptor with the signing and
 * encryption certificate (when a key is set), the ACS (HTTP-POST) and SLO
 * (HTTP-Redirect) endpoints. malloc'd. */
char *saml_sp_metadata(const char *entity_id, const char *acs_url,
                       const char *slo_url, const struct saml_sp_key *key);

#endif
