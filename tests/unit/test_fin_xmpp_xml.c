/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_fin_xmpp_xml.c - the stanza parser in both framings: stanzas cut out
 * of a stream fed byte by byte, RFC 7395 messages, stream restarts, and
 * every refusal (DOCTYPE, entities, comments, PIs, text outside stanzas,
 * oversized and too deep stanzas, malformed XML). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cmn_xml.h"
#include "fin_xmpp_xml.h"

/* What the callbacks saw, as one line per event. */
struct seen {
    char log[8192];
    int opens;
    int stanzas;
    int closes;
    bool stop_on_stanza;
    struct fin_xmpp_parser *p;
};

static void
seen_add(struct seen *s, const char *fmt, ...)
{
    size_t n = strlen(s->log);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(s->log + n, sizeof(s->log) - n, fmt, ap);
    va_end(ap);
}

static void
on_open(void *cls, const struct fin_xmpp_el *root)
{
    struct seen *s = cls;
    const char *id = fin_xmpp_el_attr(root, "id");

    s->opens++;
    seen_add(s, "open(%s,id=%s);", root->name, id ? id : "-");
}

static void
on_stanza(void *cls, const struct fin_xmpp_el *st)
{
    struct seen *s = cls;
    const struct fin_xmpp_el *body = fin_xmpp_el_child(st, "body", NULL);

    s->stanzas++;
    seen_add(s, "%s{%s}", st->name, st->ns ? st->ns : "-");
    if (fin_xmpp_el_attr(st, "from") != NULL) {
        seen_add(s, "from=%s", fin_xmpp_el_attr(st, "from"));
    }
    if (body != NULL) {
        seen_add(s, "body=%s", body->text);
    }
    seen_add(s, ";");
    if (s->stop_on_stanza) {
        fin_xmpp_parser_stop(s->p);
    }
}

static void
on_close(void *cls)
{
    struct seen *s = cls;

    s->closes++;
    seen_add(s, "close;");
}

static const struct fin_xmpp_parser_cbs cbs = {on_open, on_stanza, on_close};

static struct fin_xmpp_parser *
new_parser(enum fin_xmpp_framing f, size_t max, struct seen *s)
{
    memset(s, 0, sizeof(*s));
    s->p = fin_xmpp_parser_new(f, max, &cbs, s);
    assert_non_null(s->p);
    return s->p;
}

#define STREAM_HEAD                                                            \
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "               \
    "xmlns:stream='http://etherx.jabber.org/streams' id='s1' version='1.0' "   \
    "from='finesse.test'>"

static void
test_stream_byte_by_byte(void **state)
{
    struct seen s;
    struct fin_xmpp_parser *p = new_parser(FIN_XMPP_FRAMING_STREAM, 65536, &s);
    const char *in =
        STREAM_HEAD
        "<stream:features><mechanisms "
        "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>"
        "</mechanisms></stream:features> \n"
        "<message from='a&amp;b@x'><body>1 &lt; 2 &amp; &#x263A;</body>"
        "</message><iq/></stream:stream>";

    (void)state;
    for (const char *c = in; *c != '\0'; c++) {
        assert_int_equal(fin_xmpp_parser_feed(p, c, 1), CMN_OK);
    }
    assert_string_equal(
        s.log, "open(stream,id=s1);"
               "features{http://etherx.jabber.org/streams};"
               "message{jabber:client}from=a&b@xbody=1 < 2 & \xe2\x98\xba;"
               "iq{jabber:client};close;");
    fin_xmpp_parser_free(p);
}

/* A stream restart: the old root is forgotten, the next bytes open a new
 * one (what happens after STARTTLS and after SASL success). */
static void
test_stream_stop_and_reset(void **state)
{
    struct seen s;
    struct fin_xmpp_parser *p = new_parser(FIN_XMPP_FRAMING_STREAM, 65536, &s);
    const char *first = STREAM_HEAD "<success xmlns='urn:ietf:params:xml:ns:"
                                    "xmpp-sasl'/><ignored-after-stop/>";

    (void)state;
    s.stop_on_stanza = true;
    assert_int_equal(fin_xmpp_parser_feed(p, first, strlen(first)), CMN_OK);
    assert_int_equal(s.stanzas, 1);
    /* stopped: more bytes are ignored until the reset */
    assert_int_equal(fin_xmpp_parser_feed(p, "<x/>", 4), CMN_OK);
    assert_int_equal(s.stanzas, 1);
    s.stop_on_stanza = false;
    assert_int_equal(fin_xmpp_parser_reset(p), CMN_OK);
    assert_int_equal(fin_xmpp_parser_feed(p, STREAM_HEAD "<iq/>",
                                          strlen(STREAM_HEAD "<iq/>")),
                     CMN_OK);
    assert_int_equal(s.opens, 2);
    assert_int_equal(s.stanzas, 2);
    fin_xmpp_parser_free(p);
}

static void
expect_stream_refusal(const char *body, size_t max, const char *why)
{
    struct seen s;
    struct fin_xmpp_parser *p = new_parser(FIN_XMPP_FRAMING_STREAM, max, &s);
    char buf[8192];

    snprintf(buf, sizeof(buf), "%s", body);
    assert_int_equal(fin_xmpp_parser_feed(p, buf, strlen(buf)), CMN_INVALID);
    if (strstr(fin_xmpp_parser_error(p), why) == NULL) {
        fail_msg("error \"%s\" does not say \"%s\"", fin_xmpp_parser_error(p),
                 why);
    }
    /* refused for good */
    assert_int_equal(fin_xmpp_parser_feed(p, "<iq/>", 5), CMN_INVALID);
    assert_int_equal(fin_xmpp_parser_reset(p), CMN_INVALID);
    fin_xmpp_parser_free(p);
}

static void
test_stream_refusals(void **state)
{
    (void)state;
    expect_stream_refusal("<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]>"
                          "<stream:stream xmlns:stream='"
                          "http://etherx.jabber.org/streams'>",
                          65536, "DOCTYPE");
    expect_stream_refusal(STREAM_HEAD "<message><body>&undeclared;</body>"
                                      "</message>",
                          65536, "malformed XML");
    expect_stream_refusal(STREAM_HEAD "<!-- hidden --><iq/>", 65536,
                          "comment");
    expect_stream_refusal(STREAM_HEAD "<?pi data?><iq/>", 65536,
                          "processing instruction");
    expect_stream_refusal(STREAM_HEAD "junk<iq/>", 65536, "text outside");
    expect_stream_refusal("<message xmlns='jabber:client'/>", 65536,
                          "expected <stream:stream>");
    expect_stream_refusal(STREAM_HEAD "<message><body>a</wrong></message>",
                          65536, "malformed XML");
    /* 300 bytes of text against a 256-byte cap */
    {
        char big[1024];
        snprintf(big, sizeof(big), STREAM_HEAD "<message><body>%0300d</body>"
                                               "</message>",
                 0);
        expect_stream_refusal(big, 256, "larger than 256");
    }
    /* nesting beyond the cap */
    {
        char deep[2048] = STREAM_HEAD;
        for (int i = 0; i < FIN_XMPP_XML_MAX_DEPTH + 1; i++) {
            strcat(deep, "<a>");
        }
        expect_stream_refusal(deep, 65536, "deeper than");
    }
}

static void
test_websocket_messages(void **state)
{
    struct seen s;
    struct fin_xmpp_parser *p =
        new_parser(FIN_XMPP_FRAMING_WEBSOCKET, 65536, &s);
    const char *msgs[] = {
        "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' id='w1' "
        "version='1.0' from='finesse.test'/>",
        "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"
        "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
        "<message xmlns='jabber:client' from='pubsub.finesse.test'><body>"
        "x</body></message>",
        "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
    };

    (void)state;
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(fin_xmpp_parser_message(p, msgs[i], strlen(msgs[i])),
                         CMN_OK);
    }
    assert_string_equal(s.log,
                        "open(open,id=w1);"
                        "features{http://etherx.jabber.org/streams};"
                        "message{jabber:client}from=pubsub.finesse.testbody=x;"
                        "close;");
    /* an empty or blank message is no element, and no error */
    assert_int_equal(fin_xmpp_parser_message(p, " \r\n", 3), CMN_OK);
    assert_int_equal(fin_xmpp_parser_message(p, "", 0), CMN_OK);
    assert_int_equal(s.stanzas, 2);
    /* bytes of a stream are not messages */
    assert_int_equal(fin_xmpp_parser_feed(p, "<a/>", 4), CMN_INVALID);
    fin_xmpp_parser_free(p);
}

static void
expect_ws_refusal(const char *msg, size_t max, const char *why)
{
    struct seen s;
    struct fin_xmpp_parser *p = new_parser(FIN_XMPP_FRAMING_WEBSOCKET, max, &s);

    assert_int_equal(fin_xmpp_parser_message(p, msg, strlen(msg)), CMN_INVALID);
    if (strstr(fin_xmpp_parser_error(p), why) == NULL) {
        fail_msg("error \"%s\" does not say \"%s\"", fin_xmpp_parser_error(p),
                 why);
    }
    assert_int_equal(s.stanzas, 0);
    fin_xmpp_parser_free(p);
}

static void
test_websocket_refusals(void **state)
{
    (void)state;
    /* RFC 7395: one complete element per message */
    expect_ws_refusal("<message xmlns='jabber:client'>", 65536, "malformed");
    expect_ws_refusal("<a xmlns='jabber:client'/><b xmlns='jabber:client'/>",
                      65536, "malformed");
    expect_ws_refusal("<iq xmlns='jabber:client'/>", 10, "larger than 10");
    expect_ws_refusal("<!DOCTYPE iq [<!ENTITY x 'y'>]><iq/>", 65536, "DOCTYPE");
    expect_ws_refusal("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'>"
                      "<x/></open>",
                      65536, "children in a framing element");
    expect_ws_refusal("<other xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
                      65536, "unknown framing element");
    expect_ws_refusal("\xff\xfe<iq/>", 65536, "malformed");
}

static void
test_out_escapes(void **state)
{
    struct fin_xmpp_out o = {0};

    (void)state;
    fin_xmpp_out_raw(&o, "<a b='");
    fin_xmpp_out_esc(&o, "x'\"<&>y");
    fin_xmpp_out_raw(&o, "'/>");
    assert_false(o.oom);
    assert_string_equal(o.data, "<a b='x&apos;&quot;&lt;&amp;&gt;y'/>");
    assert_int_equal(o.len, strlen(o.data));
    fin_xmpp_out_free(&o);
    assert_null(o.data);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_byte_by_byte),
        cmocka_unit_test(test_stream_stop_and_reset),
        cmocka_unit_test(test_stream_refusals),
        cmocka_unit_test(test_websocket_messages),
        cmocka_unit_test(test_websocket_refusals),
        cmocka_unit_test(test_out_escapes),
    };

    cmn_xml_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
