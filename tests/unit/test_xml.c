/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_xml.c - cmn_xml: DTD/XXE/billion-laughs refused, size and depth
 * caps, comment and CDATA injection in text, quiet errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cmn_xml.h"

#define MAX_LEN (256 * 1024)

static xmlDocPtr
parse(const char *s, struct cmn_err *err)
{
    return cmn_xml_parse(s, strlen(s), MAX_LEN, err);
}

static void
refused(const char *s, const char *why)
{
    struct cmn_err err = {{0}};

    assert_null(parse(s, &err));
    if (strstr(err.msg, why) == NULL) {
        fail_msg("want \"%s\" in \"%s\"", why, err.msg);
    }
}

static void
test_xml_plain_text(void **state)
{
    struct cmn_err err = {{0}};
    xmlDocPtr doc;
    xmlNodePtr root;

    (void)state;
    doc = parse("<?xml version=\"1.0\"?>"
                "<samlp:Response xmlns:samlp=\"urn:p\" xmlns:saml=\"urn:a\">"
                "<saml:Issuer>https://idp</saml:Issuer>"
                "<saml:Assertion><saml:Subject>"
                "<saml:NameID>user@victim.com</saml:NameID>"
                "</saml:Subject></saml:Assertion>"
                "<saml:Empty/><saml:Amp>a&amp;b&lt;c</saml:Amp>"
                "<saml:Cdata><![CDATA[x<y]]></saml:Cdata>"
                "<saml:Issuer>second</saml:Issuer>"
                "</samlp:Response>",
                &err);
    assert_non_null(doc);
    root = xmlDocGetRootElement(doc);
    /* Namespace prefixes are ignored when matching. */
    assert_string_equal(cmn_xml_child_text(root, "Issuer"), "https://idp");
    assert_string_equal(
        cmn_xml_text(cmn_xml_next(cmn_xml_child(root, "Issuer"), "Issuer")),
        "second");
    assert_null(cmn_xml_next(
        cmn_xml_next(cmn_xml_child(root, "Issuer"), "Issuer"), "Issuer"));
    xmlNodePtr subj =
        cmn_xml_child(cmn_xml_child(root, "Assertion"), "Subject");
    assert_string_equal(cmn_xml_child_text(subj, "NameID"), "user@victim.com");
    assert_string_equal(cmn_xml_child_text(root, "Empty"), "");
    assert_string_equal(cmn_xml_child_text(root, "Amp"), "a&b<c");
    assert_string_equal(cmn_xml_child_text(root, "Cdata"), "x<y");
    assert_null(cmn_xml_child_text(root, "Missing"));
    assert_null(cmn_xml_child(NULL, "x"));
    assert_null(cmn_xml_next(NULL, "x"));
    assert_null(cmn_xml_text(NULL));
    /* An element holding elements has no text. */
    assert_null(cmn_xml_child_text(root, "Assertion"));
    xmlFreeDoc(doc);
}

static void
test_xml_comment_injection(void **state)
{
    struct cmn_err err = {{0}};
    xmlDocPtr doc;
    xmlNodePtr root;

    (void)state;
    doc = parse("<r><NameID>user@evil.com<!---->.victim.com</NameID>"
                "<A>support<!-- attack! -->@onelogin.com</A>"
                "<B><!-- only a comment --></B>"
                "<C>text<?pi x?></C>"
                "<D>test@onelogin.com<![CDATA[.evil.com]]></D>"
                "<E><![CDATA[a]]><![CDATA[b]]></E>"
                "<F>a<b/>c</F></r>",
                &err);
    assert_non_null(doc);
    root = xmlDocGetRootElement(doc);
    assert_null(cmn_xml_child_text(root, "NameID"));
    assert_null(cmn_xml_child_text(root, "A"));
    assert_null(cmn_xml_child_text(root, "B"));
    assert_null(cmn_xml_child_text(root, "C"));
    assert_null(cmn_xml_child_text(root, "D"));
    /* libxml2 merges adjacent CDATA sections into one node; the whole
     * value is returned, so nothing is hidden. */
    assert_string_equal(cmn_xml_child_text(root, "E"), "ab");
    assert_null(cmn_xml_child_text(root, "F"));
    xmlFreeDoc(doc);
}

static void
test_xml_doctype_refused(void **state)
{
    (void)state;
    refused("<!DOCTYPE r><r/>", "DOCTYPE refused");
    refused("<?xml version=\"1.0\"?>\n<!DOCTYPE r [ <!ELEMENT r ANY> ]><r/>",
            "DOCTYPE refused");
    refused("<!DOCTYPE r SYSTEM \"http://127.0.0.1:1/x.dtd\"><r/>",
            "DOCTYPE refused");
}

static void
test_xml_xxe_refused(void **state)
{
    (void)state;
    refused("<?xml version=\"1.0\"?>"
            "<!DOCTYPE r [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>"
            "<r>&xxe;</r>",
            "DOCTYPE refused");
    refused("<!DOCTYPE r [<!ENTITY % p SYSTEM \"http://127.0.0.1:1/e\"> %p;]>"
            "<r/>",
            "DOCTYPE refused");
}

static void
test_xml_billion_laughs_refused(void **state)
{
    (void)state;
    refused("<?xml version=\"1.0\"?>\n"
            "<!DOCTYPE lolz [\n"
            " <!ENTITY lol \"lol\">\n"
            " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
            " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
            " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
            " <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
            " <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n"
            " <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n"
            " <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n"
            " <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n"
            " <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n"
            "]>\n<lolz>&lol9;</lolz>",
            "DOCTYPE refused");
}

static void
test_xml_undefined_entity_refused(void **state)
{
    (void)state;
    /* Without a DTD only the five predefined entities exist. */
    refused("<r>&foo;</r>", "xml: line 1:");
    refused("<r a=\"&foo;\"/>", "xml: line 1:");
}

static void
test_xml_oversized_refused(void **state)
{
    struct cmn_err err = {{0}};
    const char *doc = "<r>0123456789</r>";

    (void)state;
    assert_null(cmn_xml_parse(doc, strlen(doc), strlen(doc) - 1, &err));
    assert_string_equal(err.msg, "xml: document larger than 16 bytes");
    xmlDocPtr d = cmn_xml_parse(doc, strlen(doc), strlen(doc), &err);
    assert_non_null(d);
    xmlFreeDoc(d);
    assert_null(cmn_xml_parse(NULL, 0, 10, &err));
}

/* <a><a>...</a></a> nested depth deep (one spare byte for a test). */
static char *
nested(int depth)
{
    char *s = malloc((size_t)depth * 7 + 2);
    char *p = s;

    assert_non_null(s);
    for (int i = 0; i < depth; i++) {
        memcpy(p, "<a>", 3);
        p += 3;
    }
    for (int i = 0; i < depth; i++) {
        memcpy(p, "</a>", 4);
        p += 4;
    }
    *p = '\0';
    return s;
}

static void
test_xml_depth(void **state)
{
    struct cmn_err err = {{0}};
    char *s;
    xmlDocPtr doc;

    (void)state;
    s = nested(CMN_XML_MAX_DEPTH);
    doc = parse(s, &err);
    assert_non_null(doc);
    xmlFreeDoc(doc);
    free(s);

    /* Text inside the deepest allowed element is fine: depth counts
     * elements. */
    s = nested(CMN_XML_MAX_DEPTH);
    memmove(s + 3 * CMN_XML_MAX_DEPTH + 1, s + 3 * CMN_XML_MAX_DEPTH,
            strlen(s + 3 * CMN_XML_MAX_DEPTH) + 1);
    s[3 * CMN_XML_MAX_DEPTH] = 'x';
    doc = parse(s, &err);
    assert_non_null(doc);
    xmlFreeDoc(doc);
    free(s);

    s = nested(CMN_XML_MAX_DEPTH + 1);
    assert_null(parse(s, &err));
    assert_string_equal(err.msg, "xml: nesting deeper than 64");
    free(s);

    /* Far past libxml2's own limit (256): still a clean refusal. */
    s = nested(5000);
    assert_null(parse(s, &err));
    free(s);
}

static void
test_xml_malformed(void **state)
{
    (void)state;
    refused("<r><a></r>", "xml: line 1: ");
    refused("", "xml:");
    refused("not xml", "xml:");
    refused("<r/><r/>", "xml:");
    refused("<r>\xff\xfe</r>", "xml:");
    /* Undefined namespace prefix. */
    refused("<p:r/>", "xml: line 1: ");
    refused("<r><q:a>x</q:a></r>", "xml: line 1: ");
}

static void
test_xml_errors_not_on_stderr(void **state)
{
    struct cmn_err err = {{0}};
    FILE *tmp = tmpfile();
    int saved;
    long n;

    (void)state;
    assert_non_null(tmp);
    fflush(stderr);
    saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fileno(tmp), STDERR_FILENO), STDERR_FILENO);
    assert_null(parse("<r><a></r>", &err));
    assert_null(parse("<!DOCTYPE r [<!ENTITY e \"x\">]><r>&e;</r>", &err));
    assert_null(parse("<r>&undefined;</r>", &err));
    fflush(stderr);
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    fseek(tmp, 0, SEEK_END);
    n = ftell(tmp);
    fclose(tmp);
    assert_int_equal(n, 0);
}

static int
setup(void **state)
{
    (void)state;
    cmn_xml_init();
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xml_plain_text),
        cmocka_unit_test(test_xml_comment_injection),
        cmocka_unit_test(test_xml_doctype_refused),
        cmocka_unit_test(test_xml_xxe_refused),
        cmocka_unit_test(test_xml_billion_laughs_refused),
        cmocka_unit_test(test_xml_undefined_entity_refused),
        cmocka_unit_test(test_xml_oversized_refused),
        cmocka_unit_test(test_xml_depth),
        cmocka_unit_test(test_xml_malformed),
        cmocka_unit_test(test_xml_errors_not_on_stderr),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
