/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_fin_xmlgen.c - Finesse request bodies: exact shapes from
 * finesse.md §1.3/1.4, escaping, refusal of NULL or non-XML values, and
 * every body read back by a generic parser to the value that went in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cmn_xml.h"
#include "fin_parse.h"

static void
want_body(char *got, const char *want)
{
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

/* Parses body with the same hardened parser the connector uses for what
 * Finesse sends, and returns the document (xmlFreeDoc). */
static xmlDocPtr
reparse(const char *body)
{
    struct cmn_err err = {{0}};
    xmlDocPtr doc = cmn_xml_parse(body, strlen(body), 65536, &err);

    if (doc == NULL) {
        fail_msg("not parseable: %s: %s", err.msg, body);
    }
    return doc;
}

static void
test_fin_xmlgen_user_state(void **state)
{
    (void)state;
    want_body(fin_xml_user_state("READY", NULL, NULL),
              "<User><state>READY</state></User>");
    want_body(fin_xml_user_state("NOT_READY", "16", NULL),
              "<User><state>NOT_READY</state>"
              "<reasonCodeId>16</reasonCodeId></User>");
    want_body(fin_xml_user_state("LOGIN", NULL, "1001001"),
              "<User><state>LOGIN</state>"
              "<extension>1001001</extension></User>");
    want_body(fin_xml_user_state("LOGOUT", "255", "1001001"),
              "<User><state>LOGOUT</state><reasonCodeId>255</reasonCodeId>"
              "<extension>1001001</extension></User>");
    /* "" is "none", as in the parsed model. */
    want_body(fin_xml_user_state("READY", "", ""),
              "<User><state>READY</state></User>");
    assert_null(fin_xml_user_state(NULL, "16", "1001"));
    assert_null(fin_xml_user_state("", NULL, NULL));
}

static void
test_fin_xmlgen_make_call(void **state)
{
    (void)state;
    want_body(fin_xml_make_call("5551234", "1001001"),
              "<Dialog><requestedAction>MAKE_CALL</requestedAction>"
              "<toAddress>5551234</toAddress>"
              "<fromAddress>1001001</fromAddress></Dialog>");
    assert_null(fin_xml_make_call(NULL, "1001001"));
    assert_null(fin_xml_make_call("5551234", NULL));
    assert_null(fin_xml_make_call("", "1001001"));
}

static void
test_fin_xmlgen_dialog_action(void **state)
{
    (void)state;
    want_body(fin_xml_dialog_action("ANSWER", "1001001", NULL, NULL),
              "<Dialog><targetMediaAddress>1001001</targetMediaAddress>"
              "<requestedAction>ANSWER</requestedAction></Dialog>");
    want_body(fin_xml_dialog_action("CONSULT_CALL", "1001001", "2000", NULL),
              "<Dialog><targetMediaAddress>1001001</targetMediaAddress>"
              "<toAddress>2000</toAddress>"
              "<requestedAction>CONSULT_CALL</requestedAction></Dialog>");
    want_body(fin_xml_dialog_action("TRANSFER_SST", "1001001", "2000", ""),
              "<Dialog><targetMediaAddress>1001001</targetMediaAddress>"
              "<toAddress>2000</toAddress>"
              "<requestedAction>TRANSFER_SST</requestedAction></Dialog>");
    want_body(fin_xml_dialog_action("SEND_DTMF", "1001001", NULL, "123#"),
              "<Dialog><targetMediaAddress>1001001</targetMediaAddress>"
              "<requestedAction>SEND_DTMF</requestedAction>"
              "<actionParams><ActionParam><name>dtmfString</name>"
              "<value>123#</value></ActionParam></actionParams></Dialog>");
    assert_null(fin_xml_dialog_action(NULL, "1001001", NULL, NULL));
    assert_null(fin_xml_dialog_action("DROP", NULL, NULL, NULL));
    assert_null(fin_xml_dialog_action("DROP", "", NULL, NULL));
}

static void
test_fin_xmlgen_wrapup(void **state)
{
    (void)state;
    want_body(fin_xml_wrapup("Sales Call"),
              "<Dialog><requestedAction>UPDATE_CALL_DATA</requestedAction>"
              "<mediaProperties><wrapUpReason>Sales Call</wrapUpReason>"
              "</mediaProperties></Dialog>");
    assert_null(fin_xml_wrapup(NULL));
    assert_null(fin_xml_wrapup(""));
}

static void
test_fin_xmlgen_escaping(void **state)
{
    (void)state;
    want_body(fin_xml_wrapup("A&B <x> \"q\" 'a'"),
              "<Dialog><requestedAction>UPDATE_CALL_DATA</requestedAction>"
              "<mediaProperties><wrapUpReason>A&amp;B &lt;x&gt; "
              "&quot;q&quot; &apos;a&apos;</wrapUpReason>"
              "</mediaProperties></Dialog>");
    /* Markup in a value stays a value: no injected <requestedAction>. */
    want_body(fin_xml_make_call("1</toAddress><requestedAction>DROP"
                                "</requestedAction><toAddress>2",
                                "1001"),
              "<Dialog><requestedAction>MAKE_CALL</requestedAction>"
              "<toAddress>1&lt;/toAddress&gt;&lt;requestedAction&gt;DROP"
              "&lt;/requestedAction&gt;&lt;toAddress&gt;2</toAddress>"
              "<fromAddress>1001</fromAddress></Dialog>");
    want_body(fin_xml_user_state("READY", "a&b", "<1>"),
              "<User><state>READY</state><reasonCodeId>a&amp;b</reasonCodeId>"
              "<extension>&lt;1&gt;</extension></User>");
    want_body(fin_xml_dialog_action("SEND_DTMF", "1&1", NULL, "1'2"),
              "<Dialog><targetMediaAddress>1&amp;1</targetMediaAddress>"
              "<requestedAction>SEND_DTMF</requestedAction>"
              "<actionParams><ActionParam><name>dtmfString</name>"
              "<value>1&apos;2</value></ActionParam></actionParams>"
              "</Dialog>");
    /* CR survives a parser only as a character reference. */
    want_body(fin_xml_wrapup("a\r\nb"),
              "<Dialog><requestedAction>UPDATE_CALL_DATA</requestedAction>"
              "<mediaProperties><wrapUpReason>a&#13;\nb</wrapUpReason>"
              "</mediaProperties></Dialog>");
}

/* Text no escaping can make legal XML is refused, in any argument. */
static void
test_fin_xmlgen_refuses_non_xml(void **state)
{
    static const char *bad[] = {
        "a\001b",           /* C0 control */
        "\x1b[31m",         /* ESC */
        "\xff",             /* not UTF-8 */
        "\xc3",             /* truncated sequence */
        "\xc0\xaf",         /* overlong '/' */
        "\xe0\x80\xaf",     /* overlong, 3 bytes */
        "\xed\xa0\x80",     /* UTF-16 surrogate */
        "\xef\xbf\xbe",     /* U+FFFE */
        "\xf4\x90\x80\x80", /* > U+10FFFF */
        "\x80",             /* lone continuation */
    };

    (void)state;
    for (size_t i = 0; i < CMN_ARRAY_LEN(bad); i++) {
        assert_null(fin_xml_wrapup(bad[i]));
        assert_null(fin_xml_user_state("READY", bad[i], NULL));
        assert_null(fin_xml_user_state("READY", NULL, bad[i]));
        assert_null(fin_xml_make_call(bad[i], "1"));
        assert_null(fin_xml_make_call("1", bad[i]));
        assert_null(fin_xml_dialog_action(bad[i], "1", NULL, NULL));
        assert_null(fin_xml_dialog_action("X", bad[i], NULL, NULL));
        assert_null(fin_xml_dialog_action("X", "1", bad[i], NULL));
        assert_null(fin_xml_dialog_action("X", "1", NULL, bad[i]));
    }
    /* Tab, LF and real multibyte text are fine. */
    want_body(fin_xml_wrapup("Caf\xc3\xa9\t\xe2\x82\xac\n\xf0\x9f\x93\x9e"),
              "<Dialog><requestedAction>UPDATE_CALL_DATA</requestedAction>"
              "<mediaProperties><wrapUpReason>Caf\xc3\xa9\t\xe2\x82\xac\n"
              "\xf0\x9f\x93\x9e</wrapUpReason></mediaProperties></Dialog>");
}

/* Bodies parse back (generic parser) to the exact values put in. */
static void
test_fin_xmlgen_round_trip(void **state)
{
    static const char *values[] = {
        "plain",      "A&B <x> \"q\" 'a'", "]]>",
        "&amp;",      "a\r\nb\tc",         "Caf\xc3\xa9 \xf0\x9f\x93\x9e",
        "<!-- c -->", "<![CDATA[x]]>",
    };

    (void)state;
    for (size_t i = 0; i < CMN_ARRAY_LEN(values); i++) {
        const char *v = values[i];
        char *body;
        xmlDocPtr doc;
        xmlNodePtr root, n;

        body = fin_xml_wrapup(v);
        assert_non_null(body);
        doc = reparse(body);
        root = xmlDocGetRootElement(doc);
        assert_string_equal((const char *)root->name, "Dialog");
        assert_string_equal(cmn_xml_child_text(root, "requestedAction"),
                            "UPDATE_CALL_DATA");
        assert_string_equal(
            cmn_xml_child_text(cmn_xml_child(root, "mediaProperties"),
                               "wrapUpReason"),
            v);
        xmlFreeDoc(doc);
        free(body);

        body = fin_xml_dialog_action("SEND_DTMF", v, v, v);
        assert_non_null(body);
        doc = reparse(body);
        root = xmlDocGetRootElement(doc);
        assert_string_equal(cmn_xml_child_text(root, "targetMediaAddress"), v);
        assert_string_equal(cmn_xml_child_text(root, "toAddress"), v);
        n = cmn_xml_child(cmn_xml_child(root, "actionParams"), "ActionParam");
        assert_string_equal(cmn_xml_child_text(n, "name"), "dtmfString");
        assert_string_equal(cmn_xml_child_text(n, "value"), v);
        xmlFreeDoc(doc);
        free(body);

        body = fin_xml_user_state(v, v, v);
        assert_non_null(body);
        doc = reparse(body);
        root = xmlDocGetRootElement(doc);
        assert_string_equal((const char *)root->name, "User");
        assert_string_equal(cmn_xml_child_text(root, "state"), v);
        assert_string_equal(cmn_xml_child_text(root, "reasonCodeId"), v);
        assert_string_equal(cmn_xml_child_text(root, "extension"), v);
        xmlFreeDoc(doc);
        free(body);

        body = fin_xml_make_call(v, v);
        assert_non_null(body);
        doc = reparse(body);
        root = xmlDocGetRootElement(doc);
        assert_string_equal(cmn_xml_child_text(root, "toAddress"), v);
        assert_string_equal(cmn_xml_child_text(root, "fromAddress"), v);
        xmlFreeDoc(doc);
        free(body);
    }
}

/* A long value grows the buffer past its first allocation. */
static void
test_fin_xmlgen_long_value(void **state)
{
    size_t n = 10000;
    char *v = malloc(n + 1);
    char *body;
    xmlDocPtr doc;

    (void)state;
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) {
        v[i] = "a&<"[i % 3];
    }
    v[n] = '\0';
    body = fin_xml_wrapup(v);
    assert_non_null(body);
    doc = reparse(body);
    assert_string_equal(
        cmn_xml_child_text(
            cmn_xml_child(xmlDocGetRootElement(doc), "mediaProperties"),
            "wrapUpReason"),
        v);
    xmlFreeDoc(doc);
    free(body);
    free(v);
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
        cmocka_unit_test(test_fin_xmlgen_user_state),
        cmocka_unit_test(test_fin_xmlgen_make_call),
        cmocka_unit_test(test_fin_xmlgen_dialog_action),
        cmocka_unit_test(test_fin_xmlgen_wrapup),
        cmocka_unit_test(test_fin_xmlgen_escaping),
        cmocka_unit_test(test_fin_xmlgen_refuses_non_xml),
        cmocka_unit_test(test_fin_xmlgen_round_trip),
        cmocka_unit_test(test_fin_xmlgen_long_value),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
