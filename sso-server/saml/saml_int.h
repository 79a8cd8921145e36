/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* saml_int.h - helpers shared by the saml_*.c files (not for callers). */
#ifndef SAML_INT_H
#define SAML_INT_H

#include <libxml/tree.h>

#include "saml.h"

#define SAML_NS_PROTOCOL "urn:oasis:names:tc:SAML:2.0:protocol"
#define SAML_NS_ASSERTION "urn:oasis:names:tc:SAML:2.0:assertion"
#define SAML_NS_METADATA "urn:oasis:names:tc:SAML:2.0:metadata"
#define SAML_NS_DSIG "http://www.w3.org/2000/09/xmldsig#"
#define SAML_NS_XENC "http://www.w3.org/2001/04/xmlenc#"
#define SAML_BINDING_REDIRECT \
    "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
#define SAML_BINDING_POST "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
#define SAML_STATUS_SUCCESS "urn:oasis:names:tc:SAML:2.0:status:Success"
#define SAML_CM_BEARER "urn:oasis:names:tc:SAML:2.0:cm:bearer"

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

/* Base64 (standard alphabet, whitespace skipped, padding optional at the
 * end only). *out malloc'd. CMN_INVALID on any other character. */
int saml_b64_decode(const char *in, size_t len, unsigned char **out,
                    size_t *out_len) CMN_NODISCARD;
/* One line, malloc'd. */
char *saml_b64_encode(const unsigned char *in, size_t len);

/* xmlSecKeyPtr from DER/PEM certificate bytes; EVP_PKEY alongside. */
void *saml_key_from_cert_der(const unsigned char *der, size_t len,
                             void **pkey);

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
