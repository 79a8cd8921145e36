/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* saml_keys.c - the SP's key pair ([saml] sp_key_file, sp_cert_file): the
 * private key signs AuthnRequests and logout messages (OpenSSL EVP) and
 * decrypts assertions (xmlsec1); the certificate goes into SP metadata. */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <xmlsec/crypto.h>
#include <xmlsec/keys.h>

#include "saml_int.h"

int
saml_sp_key_load(const char *key_pem, size_t key_len, const char *cert_pem,
                 size_t cert_len, struct saml_sp_key *out, struct cmn_err *err)
{
    BIO *b = NULL;
    X509 *x = NULL;
    unsigned char *der = NULL;
    int der_len;
    EVP_PKEY *certkey = NULL;
    int rc = CMN_INVALID;

    memset(out, 0, sizeof(*out));
    if (saml_init(err) != CMN_OK) {
        return CMN_ERR;
    }
    b = BIO_new_mem_buf(key_pem, (int)key_len);
    out->pkey = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (out->pkey == NULL || EVP_PKEY_get_base_id(out->pkey) != EVP_PKEY_RSA) {
        cmn_err_set(err, "expected an RSA private key in PEM");
        goto out;
    }
    b = BIO_new_mem_buf(cert_pem, (int)cert_len);
    x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (x == NULL) {
        cmn_err_set(err, "expected a PEM certificate");
        goto out;
    }
    certkey = X509_get_pubkey(x);
    if (certkey == NULL || EVP_PKEY_eq(certkey, out->pkey) != 1) {
        cmn_err_set(err, "the certificate is not for sp_key_file's key");
        goto out;
    }
    der_len = i2d_X509(x, &der);
    if (der_len <= 0 ||
        (out->cert_b64 = saml_b64_encode(der, (size_t)der_len)) == NULL) {
        cmn_err_set(err, "cannot encode the certificate");
        goto out;
    }
    out->key = xmlSecCryptoAppKeyLoadMemory(
        (const xmlSecByte *)key_pem, (xmlSecSize)key_len,
        xmlSecKeyDataFormatPem, NULL, NULL, NULL);
    if (out->key == NULL) {
        cmn_err_set(err, "xmlsec1 cannot load the private key");
        goto out;
    }
    rc = CMN_OK;
out:
    OPENSSL_free(der);
    EVP_PKEY_free(certkey);
    X509_free(x);
    if (rc != CMN_OK) {
        saml_sp_key_cleanup(out);
    }
    return rc;
}

void
saml_sp_key_cleanup(struct saml_sp_key *k)
{
    if (k->key != NULL) {
        xmlSecKeyDestroy(k->key);
    }
    EVP_PKEY_free(k->pkey);
    free(k->cert_b64);
    memset(k, 0, sizeof(*k));
}
