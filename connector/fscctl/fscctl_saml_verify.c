/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fscctl_saml_verify.c - "fscctl saml-verify": check a SAML Response
 * offline with fsc-sso's own verifier (fsc_saml) and print every check
 * with its verdict, for admins debugging an IdP integration.
 *
 *   fscctl saml-verify --metadata FILE [--at TIME]
 *          [--sp-entity-id ID] [--acs-url URL]
 *          [--sp-key FILE --sp-cert FILE] [--allow-sha1]
 *          [--user-attribute NAME] [--groups-attribute NAME]
 *          [--clock-skew-s N] RESPONSE
 *
 * RESPONSE is a file holding the Response as XML or as the base64 of the
 * HTTP-POST binding's SAMLResponse ("-" reads standard input). TIME is
 * unix seconds or an xs:dateTime ("2026-01-02T03:04:05Z"); default now.
 * Without --sp-entity-id / --acs-url the Audience, Destination and
 * Recipient are shown but not compared. InResponseTo and the replay cache
 * live in fsc-sso's Redis and are not checked here.
 *
 * Exit status: 0 the Response would be accepted, 1 refused (the reason is
 * printed), 2 usage or unreadable files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fscctl.h"
#include "saml.h"

static int
usage(void)
{
    fprintf(stderr, "usage: fscctl saml-verify --metadata FILE [--at TIME] "
                    "[--sp-entity-id ID] [--acs-url URL]\n"
                    "         [--sp-key FILE --sp-cert FILE] [--allow-sha1] "
                    "[--user-attribute NAME]\n"
                    "         [--groups-attribute NAME] [--clock-skew-s N] "
                    "RESPONSE\n");
    return 2;
}

/* Whole file (or stdin for "-"), NUL-terminated, at most max bytes. */
static char *
slurp(const char *path, size_t max, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *buf;
    size_t n = 0;

    if (f == NULL) {
        return NULL;
    }
    buf = malloc(max + 1);
    if (buf != NULL) {
        n = fread(buf, 1, max + 1, f);
        if (n > max || ferror(f)) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
            *len = n;
        }
    }
    if (f != stdin) {
        fclose(f);
    }
    return buf;
}

static long long
parse_at(const char *s)
{
    char *end;
    long long t = strtoll(s, &end, 10);

    if (*s != '\0' && *end == '\0') {
        return t;
    }
    return saml_time_parse(s);
}

static const char *
verdict_str(int v)
{
    return v == SAML_PASS ? "PASS" : v == SAML_FAIL ? "FAIL" : "SKIP";
}

int
fscctl_saml_verify(int argc, char **argv)
{
    const char *metadata = NULL, *at = NULL, *key_file = NULL,
               *cert_file = NULL, *response = NULL;
    struct saml_sp sp = {.clock_skew_s = SAML_DEFAULT_SKEW_S};
    struct saml_sp_key key = {0};
    struct saml_idp idp = {0};
    struct saml_assertion a = {0};
    struct saml_report report = {0};
    struct cmn_err err = {{0}};
    char *md = NULL, *in = NULL, *xml = NULL, when[32];
    size_t md_len = 0, in_len = 0, xml_len = 0;
    long long now = (long long)time(NULL);
    enum saml_reason r;
    int rc = 2;

    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(o, "--metadata") == 0 && has) {
            metadata = argv[++i];
        } else if (strcmp(o, "--at") == 0 && has) {
            at = argv[++i];
        } else if (strcmp(o, "--sp-entity-id") == 0 && has) {
            sp.entity_id = argv[++i];
        } else if (strcmp(o, "--acs-url") == 0 && has) {
            sp.acs_url = argv[++i];
        } else if (strcmp(o, "--sp-key") == 0 && has) {
            key_file = argv[++i];
        } else if (strcmp(o, "--sp-cert") == 0 && has) {
            cert_file = argv[++i];
        } else if (strcmp(o, "--allow-sha1") == 0) {
            sp.allow_sha1 = true;
        } else if (strcmp(o, "--user-attribute") == 0 && has) {
            sp.user_attribute = argv[++i];
        } else if (strcmp(o, "--groups-attribute") == 0 && has) {
            sp.groups_attribute = argv[++i];
        } else if (strcmp(o, "--clock-skew-s") == 0 && has) {
            sp.clock_skew_s = strtol(argv[++i], NULL, 10);
        } else if (o[0] != '-' || strcmp(o, "-") == 0) {
            if (response != NULL) {
                return usage();
            }
            response = o;
        } else {
            return usage();
        }
    }
    if (metadata == NULL || response == NULL ||
        (key_file == NULL) != (cert_file == NULL) || sp.clock_skew_s < 0) {
        return usage();
    }
    if (at != NULL && (now = parse_at(at)) < 0) {
        fprintf(stderr, "fscctl: --at: expected unix seconds or "
                        "YYYY-MM-DDThh:mm:ssZ\n");
        return 2;
    }
    md = slurp(metadata, 1024 * 1024, &md_len);
    if (md == NULL) {
        fprintf(stderr, "fscctl: %s: cannot read (or over 1 MiB)\n", metadata);
        goto out;
    }
    if (saml_metadata_parse(md, md_len, &idp, &err) != CMN_OK) {
        fprintf(stderr, "fscctl: %s: %s\n", metadata, err.msg);
        goto out;
    }
    printf("IdP      %s (%zu signing key(s))\n", idp.entity_id, idp.nkeys);
    if (key_file != NULL) {
        size_t kl = 0, cl = 0;
        char *k = slurp(key_file, 64 * 1024, &kl);
        char *c = slurp(cert_file, 64 * 1024, &cl);
        int krc =
            k && c ? saml_sp_key_load(k, kl, c, cl, &key, &err) : CMN_INVALID;
        if (k != NULL) {
            memset(k, 0, kl);
        }
        free(k);
        free(c);
        if (krc != CMN_OK) {
            fprintf(stderr, "fscctl: --sp-key/--sp-cert: %s\n",
                    k && c ? err.msg : "cannot read");
            goto out;
        }
        sp.key = &key;
    }
    in = slurp(response, 2 * SAML_MAX_RESPONSE, &in_len);
    if (in == NULL) {
        fprintf(stderr, "fscctl: %s: cannot read (or too large)\n", response);
        goto out;
    }
    saml_time_format(now, when);
    printf("checked  at %s (skew %lds)\n", when, sp.clock_skew_s);
    /* XML as is, or the base64 of the POST binding */
    size_t lead = strspn(in, " \t\r\n");
    if (in[lead] == '<') {
        xml = in;
        xml_len = in_len;
        in = NULL;
        printf("%-22s SKIP  the file is XML\n", "base64");
    } else if ((r = saml_post_decode(in, in_len, &xml, &xml_len)) != SAML_OK) {
        printf("%-22s FAIL  not base64 XML\n", "base64");
        printf("\nREFUSED  reason=%s\n", saml_reason_str(r));
        rc = 1;
        goto out;
    } else {
        printf("%-22s PASS  decoded %zu bytes\n", "base64", xml_len);
    }
    r = saml_response_verify(xml, xml_len, &idp, &sp, now, &a, &report, &err);
    for (size_t i = 0; i < report.n; i++) {
        printf("%-22s %s  %s\n", report.checks[i].name,
               verdict_str(report.checks[i].verdict), report.checks[i].detail);
    }
    if (r != SAML_OK) {
        printf("\nREFUSED  reason=%s\n         %s\n", saml_reason_str(r),
               err.msg);
        rc = 1;
        goto out;
    }
    printf("\nACCEPTED user=%s nameid=%s assertion=%s signed=%s%s%s\n", a.user,
           a.name_id, a.assertion_id,
           a.response_signed && a.assertion_signed ? "response+assertion"
           : a.response_signed                     ? "response"
                                                   : "assertion",
           a.encrypted ? " encrypted" : "",
           a.in_response_to ? "" : " idp-initiated");
    for (size_t i = 0; i < a.ngroups; i++) {
        printf("         group=%s\n", a.groups[i]);
    }
    printf("         (InResponseTo and the replay cache are checked by "
           "fsc-sso in Redis)\n");
    rc = 0;
out:
    saml_assertion_cleanup(&a);
    saml_idp_cleanup(&idp);
    saml_sp_key_cleanup(&key);
    free(md);
    free(in);
    free(xml);
    return rc;
}
