/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* saml_sp_metadata.c - our own metadata (saml-metadata-2.0-os §2.4.4
 * SPSSODescriptor), served at GET /sso/saml/metadata for the IdP admin:
 * entityID, the certificate (signing and encryption), the ACS (HTTP-POST)
 * and SLO (HTTP-Redirect) endpoints, and that we want signed assertions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saml_int.h"

static void
put_escaped(char **p, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&':
            *p += sprintf(*p, "&amp;");
            break;
        case '<':
            *p += sprintf(*p, "&lt;");
            break;
        case '>':
            *p += sprintf(*p, "&gt;");
            break;
        case '"':
            *p += sprintf(*p, "&quot;");
            break;
        default:
            *(*p)++ = *s;
            break;
        }
    }
}

char *
saml_sp_metadata(const char *entity_id, const char *acs_url,
                 const char *slo_url, const struct saml_sp_key *key)
{
    size_t n = 6 * (strlen(entity_id) + strlen(acs_url) +
                    (slo_url ? strlen(slo_url) : 0)) +
               (key && key->cert_b64 ? 2 * strlen(key->cert_b64) : 0) + 2048;
    char *out = malloc(n), *p = out;

    if (out == NULL) {
        return NULL;
    }
    p += sprintf(p, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                    "<md:EntityDescriptor xmlns:md=\"" SAML_NS_METADATA "\" "
                    "xmlns:ds=\"" SAML_NS_DSIG "\" entityID=\"");
    put_escaped(&p, entity_id);
    p += sprintf(p,
                 "\">\n  <md:SPSSODescriptor AuthnRequestsSigned=\"%s\" "
                 "WantAssertionsSigned=\"true\" protocolSupportEnumeration="
                 "\"" SAML_NS_PROTOCOL "\">\n",
                 key && key->cert_b64 ? "true" : "false");
    if (key != NULL && key->cert_b64 != NULL) {
        static const char *const uses[] = {"signing", "encryption"};
        for (int i = 0; i < 2; i++) {
            p += sprintf(p,
                         "    <md:KeyDescriptor use=\"%s\"><ds:KeyInfo>"
                         "<ds:X509Data><ds:X509Certificate>%s"
                         "</ds:X509Certificate></ds:X509Data></ds:KeyInfo>",
                         uses[i], key->cert_b64);
            if (i == 1) {
                p += sprintf(p, "<md:EncryptionMethod Algorithm=\"http://"
                                "www.w3.org/2009/xmlenc11#aes256-gcm\"/>"
                                "<md:EncryptionMethod Algorithm=\"http://"
                                "www.w3.org/2001/04/xmlenc#aes256-cbc\"/>"
                                "<md:EncryptionMethod Algorithm=\"http://"
                                "www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p\"/>");
            }
            p += sprintf(p, "</md:KeyDescriptor>\n");
        }
    }
    if (slo_url != NULL) {
        p += sprintf(
            p, "    <md:SingleLogoutService Binding=\"" SAML_BINDING_REDIRECT
               "\" Location=\"");
        put_escaped(&p, slo_url);
        p += sprintf(p, "\"/>\n");
    }
    p += sprintf(p,
                 "    <md:AssertionConsumerService Binding=\"" SAML_BINDING_POST
                 "\" Location=\"");
    put_escaped(&p, acs_url);
    p += sprintf(p, "\" index=\"0\" isDefault=\"true\"/>\n"
                    "  </md:SPSSODescriptor>\n</md:EntityDescriptor>\n");
    return out;
}
