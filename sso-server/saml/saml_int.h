/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* saml_int.h - helpers shared by the saml_*.c files (not for callers). */
#ifndef SAML_INT_H
#define SAML_INT_H

#include <libxml/tree.h>

#include "saml.h"

#define SAML_NS_PROTOCOL  "urn:oasis:names:tc:SAML:2.0:protocol"
#define SAML_NS_ASSERTION "urn:oasis:names:tc:SAML:2.0:assertion"
#define SAML_NS_METADATA  "urn:oasis:names:tc:SAML:2.0:metadata"
#define SAML_NS_DSIG      "http://www.w3.org/2000/09/xmldsig#"
#define SAML_NS_XENC      "http://www.w3.org/2001/04/xmlenc#"
#define SAML_BINDING_REDIRECT \
    "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
#define SAML_BINDING_POST "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
#define SAML_CM_BEARER    "urn:oasis:names:tc:SAML:2.0:cm:bearer"

/* Record a check (report may be NULL). Returns verdict == SAML_PASS. */
bool saml_check(struct saml_report *report, const char *name, int verdict,
                const char *fmt, ...) CMN_PRINTF(4, 5);

/* Element in namespace ns with local name name? */
bool saml_is(const xmlNode *n, const char *ns, const char *name);
/* First / next element child in ns with this name. */
xmlNodePtr saml_child(const xmlNode *parent, const char *ns, const char *name);
/* Count the element children of parent in ns named name. */
size_t saml_count_children(const xmlNode *parent, const char *ns,
                           const char *name);
/* Attribute without namespace, borrowed copy in buf ("" when absent is
 * told apart by the return: NULL). */
const char *saml_attr(const xmlNode *n, const char *name, char *buf,
                      size_t size);
/* malloc'd copy or NULL */
char *saml_strdup(const char *s);

/* A value read from a message is usable: 1..SAML_MAX_VALUE bytes, no
 * control characters. */
bool saml_value_ok(const char *s);

/* Escaped for an XML attribute or text node; malloc'd. */
char *saml_xml_escape(const char *s);

/* The HTTP-Redirect binding (saml_redirect.c). A URL to dest carrying
 * xml DEFLATEd and base64'd as param ("SAMLRequest"/"SAMLResponse"), with
 * RelayState, signed over the query with RSA-SHA256 when key is set
 * (saml-bindings-2.0-os §3.4.4.1). malloc'd. */
char *saml_redirect_url(const char *dest, const char *param, const char *xml,
                        const char *relay_state, const struct saml_sp_key *key);
/* A message received on the binding, before its content is checked. */
struct saml_redirect_in {
    bool is_request; /* SAMLRequest, else SAMLResponse */
    char *xml;       /* inflated, NUL-terminated */
    size_t xml_len;
    char *relay_state; /* decoded; NULL when absent */
};
/* Parse the raw query (each known parameter at most once), verify its
 * signature with the metadata keys, base64-decode and inflate the message
 * with a cap. saml_redirect_in_cleanup frees. */
enum saml_reason saml_redirect_unwrap(const char *raw_query,
                                      const struct saml_idp *idp,
                                      bool allow_sha1,
                                      struct saml_redirect_in *out,
                                      struct cmn_err *why);
void saml_redirect_in_cleanup(struct saml_redirect_in *in);

/* Base64 (standard alphabet, whitespace skipped, padding optional at the
 * end only). *out malloc'd. CMN_INVALID on any other character. */
int saml_b64_decode(const char *in, size_t len, unsigned char **out,
                    size_t *out_len) CMN_NODISCARD;
/* One line, malloc'd. */
char *saml_b64_encode(const unsigned char *in, size_t len);

/* xmlSecKeyPtr from DER/PEM certificate bytes; EVP_PKEY alongside. */
void *saml_key_from_cert_der(const unsigned char *der, size_t len, void **pkey);

/* Signatures (saml_sig.c). sig is a ds:Signature whose parent is the
 * element it must sign (parent_id its ID): exactly one Reference to
 * "#parent_id", allow-listed transforms and algorithms. */
enum saml_reason saml_sig_check(xmlNodePtr sig, const char *parent_id,
                                bool allow_sha1, struct cmn_err *why);
/* xmlsec1 verification with each metadata key in turn (KeyInfo in the
 * message is never read: the key is set first). The document's IDs must
 * be registered (xmlSecAddIDs) and unique. */
enum saml_reason saml_sig_verify(xmlNodePtr sig, const struct saml_idp *idp,
                                 bool allow_sha1, struct cmn_err *why);

/* Decryption (saml_decrypt.c): the EncryptedAssertion's content as a new
 * document (*out, xmlFreeDoc) whose root is a wrapper carrying the
 * namespaces in scope and whose only element child is the Assertion. */
enum saml_reason saml_decrypt_assertion(xmlNodePtr enc_assertion,
                                        const struct saml_sp_key *key,
                                        xmlDocPtr *out, struct cmn_err *why);

#endif
