/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* saml_metadata.c - the IdP's metadata file (SAML 2.0 Metadata,
 * saml-metadata-2.0-os §2.4.3 IDPSSODescriptor, §2.4.1.1 KeyDescriptor):
 * entityID, where to send AuthnRequests and LogoutRequests
 * (HTTP-Redirect), and the signing certificates. Those certificates are
 * the only keys a Response is ever checked with. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <xmlsec/keys.h>

#include "cmn_xml.h"
#include "saml_int.h"

#define MAX_METADATA (1024 * 1024)

static xmlNodePtr
find_idp_entity(xmlNodePtr root, struct cmn_err *err)
{
    xmlNodePtr found = NULL;

    if (saml_is(root, SAML_NS_METADATA, "EntityDescriptor")) {
        return root;
    }
    if (!saml_is(root, SAML_NS_METADATA, "EntitiesDescriptor")) {
        cmn_err_set(err, "metadata: the root is not md:EntityDescriptor");
        return NULL;
    }
    for (xmlNodePtr c = root->children; c != NULL; c = c->next) {
        if (saml_is(c, SAML_NS_METADATA, "EntityDescriptor") &&
            saml_child(c, SAML_NS_METADATA, "IDPSSODescriptor") != NULL) {
            if (found != NULL) {
                cmn_err_set(err, "metadata: several IdPs; keep only ours");
                return NULL;
            }
            found = c;
        }
    }
    if (found == NULL) {
        cmn_err_set(err, "metadata: no EntityDescriptor with an "
                         "IDPSSODescriptor");
    }
    return found;
}

static char *
redirect_location(xmlNodePtr sso, const char *name)
{
    char b[2048], l[2048];

    for (xmlNodePtr c = sso->children; c != NULL; c = c->next) {
        if (saml_is(c, SAML_NS_METADATA, name) &&
            saml_attr(c, "Binding", b, sizeof(b)) != NULL &&
            strcmp(b, SAML_BINDING_REDIRECT) == 0 &&
            saml_attr(c, "Location", l, sizeof(l)) != NULL && l[0] != '\0') {
            return strdup(l);
        }
    }
    return NULL;
}

static int
add_certificate(struct saml_idp *idp, xmlNodePtr certnode, struct cmn_err *err)
{
    const char *text = cmn_xml_text(certnode);
    unsigned char *der = NULL;
    size_t len = 0;
    void *pkey = NULL;
    void *key;

    if (text == NULL ||
        saml_b64_decode(text, strlen(text), &der, &len) != CMN_OK) {
        cmn_err_set(err, "metadata: X509Certificate is not base64");
        return CMN_INVALID;
    }
    if (idp->nkeys == SAML_MAX_IDP_KEYS) {
        free(der);
        cmn_err_set(err, "metadata: more than %d signing certificates",
                    SAML_MAX_IDP_KEYS);
        return CMN_INVALID;
    }
    key = saml_key_from_cert_der(der, len, &pkey);
    free(der);
    if (key == NULL) {
        cmn_err_set(err, "metadata: a signing certificate does not load");
        return CMN_INVALID;
    }
    idp->keys[idp->nkeys] = key;
    idp->pkeys[idp->nkeys] = pkey;
    idp->nkeys++;
    return CMN_OK;
}

/* KeyDescriptor use="signing" or without use (both uses). */
static int
load_keys(struct saml_idp *idp, xmlNodePtr sso, struct cmn_err *err)
{
    char use[32];

    for (xmlNodePtr kd = sso->children; kd != NULL; kd = kd->next) {
        if (!saml_is(kd, SAML_NS_METADATA, "KeyDescriptor")) {
            continue;
        }
        if (saml_attr(kd, "use", use, sizeof(use)) != NULL &&
            strcmp(use, "signing") != 0) {
            continue;
        }
        xmlNodePtr ki = saml_child(kd, SAML_NS_DSIG, "KeyInfo");
        for (xmlNodePtr xd = ki ? ki->children : NULL; xd; xd = xd->next) {
            if (!saml_is(xd, SAML_NS_DSIG, "X509Data")) {
                continue;
            }
            for (xmlNodePtr c = xd->children; c != NULL; c = c->next) {
                if (saml_is(c, SAML_NS_DSIG, "X509Certificate") &&
                    add_certificate(idp, c, err) != CMN_OK) {
                    return CMN_INVALID;
                }
            }
        }
    }
    if (idp->nkeys == 0) {
        cmn_err_set(err, "metadata: no signing certificate "
                         "(KeyDescriptor/KeyInfo/X509Data)");
        return CMN_INVALID;
    }
    return CMN_OK;
}

int
saml_metadata_parse(const char *buf, size_t len, struct saml_idp *idp,
                    struct cmn_err *err)
{
    xmlDocPtr doc;
    xmlNodePtr ent, sso;
    char id[2048];
    int rc = CMN_INVALID;

    memset(idp, 0, sizeof(*idp));
    if (saml_init(err) != CMN_OK) {
        return CMN_ERR;
    }
    doc = cmn_xml_parse(buf, len, MAX_METADATA, err);
    if (doc == NULL) {
        return CMN_INVALID;
    }
    ent = find_idp_entity(xmlDocGetRootElement(doc), err);
    if (ent == NULL) {
        goto out;
    }
    if (saml_attr(ent, "entityID", id, sizeof(id)) == NULL || id[0] == '\0') {
        cmn_err_set(err, "metadata: no entityID");
        goto out;
    }
    sso = saml_child(ent, SAML_NS_METADATA, "IDPSSODescriptor");
    if (sso == NULL) {
        cmn_err_set(err, "metadata: no IDPSSODescriptor (is this an "
                         "SP's metadata?)");
        goto out;
    }
    idp->entity_id = strdup(id);
    idp->sso_url = redirect_location(sso, "SingleSignOnService");
    idp->slo_url = redirect_location(sso, "SingleLogoutService");
    if (idp->sso_url == NULL) {
        cmn_err_set(err, "metadata: no SingleSignOnService with the "
                         "HTTP-Redirect binding");
        goto out;
    }
    if (load_keys(idp, sso, err) != CMN_OK) {
        goto out;
    }
    rc = CMN_OK;
out:
    xmlFreeDoc(doc);
    if (rc != CMN_OK) {
        saml_idp_cleanup(idp);
    }
    return rc;
}

void
saml_idp_cleanup(struct saml_idp *idp)
{
    for (size_t i = 0; i < idp->nkeys; i++) {
        xmlSecKeyDestroy(idp->keys[i]);
        EVP_PKEY_free(idp->pkeys[i]);
    }
    free(idp->entity_id);
    free(idp->sso_url);
    free(idp->slo_url);
    memset(idp, 0, sizeof(*idp));
}
