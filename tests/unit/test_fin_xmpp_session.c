/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_fin_xmpp_session.c - the XMPP session as a server would drive it:
 * each case plays a server's side line by line (RFC 6120 streams and RFC
 * 7395 messages) and checks what the session writes, which transport calls
 * it makes and which events it reports. No sockets: the session is pure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cmn_xml.h"
#include "fin_xmpp_session.h"

/* The fake transport: everything the session does, in order. */
struct fake {
    char sent[16384]; /* stanzas written, "|" between them */
    int nsent;
    int start_tls;
    int closes;
    char events[4096]; /* "kind(detail)" per event */
    int online;
    int updates;
    int finals;
    bool last_fatal;
    char last_payload[512];
};

static struct fake F;

static int
fake_send(void *io, const char *data, size_t len)
{
    size_t n = strlen(F.sent);

    (void)io;
    snprintf(F.sent + n, sizeof(F.sent) - n, "%.*s|", (int)len, data);
    F.nsent++;
    return CMN_OK;
}

static int
fake_start_tls(void *io)
{
    (void)io;
    F.start_tls++;
    return CMN_OK;
}

static void
fake_close(void *io)
{
    (void)io;
    F.closes++;
}

static void
fake_event(void *cls, const struct fin_xmpp_event *ev)
{
    static const char *const names[] = {"ONLINE", "OFFLINE", "AUTH_FAILED",
                                        "UPDATE", "PRESENCE"};
    size_t n = strlen(F.events);

    (void)cls;
    snprintf(F.events + n, sizeof(F.events) - n, "%s(%s)", names[ev->kind],
             ev->kind == FIN_XMPP_UPDATE     ? ev->node
             : ev->kind == FIN_XMPP_PRESENCE ? ev->from
             : ev->detail                    ? ev->detail
                                             : "");
    if (ev->kind == FIN_XMPP_PRESENCE) {
        n = strlen(F.events);
        snprintf(F.events + n, sizeof(F.events) - n, "%s",
                 ev->available ? "+" : "-");
    }
    if (ev->kind == FIN_XMPP_ONLINE) {
        F.online++;
    }
    if (ev->kind == FIN_XMPP_UPDATE) {
        F.updates++;
        snprintf(F.last_payload, sizeof(F.last_payload), "%.*s",
                 (int)ev->payload_len, ev->payload);
    }
    if (ev->kind == FIN_XMPP_OFFLINE || ev->kind == FIN_XMPP_AUTH_FAILED) {
        F.finals++;
        F.last_fatal = ev->fatal;
    }
}

static const struct fin_xmpp_session_io fake_io = {
    .send = fake_send,
    .start_tls = fake_start_tls,
    .close = fake_close,
    .event = fake_event,
};

static struct fin_xmpp_session *
new_session(enum fin_xmpp_framing framing, bool starttls, bool tls_required,
            const char *password)
{
    struct cmn_err err = {{0}};
    struct fin_xmpp_session_opts o = {
        .agent = "1001",
        .jid = "1001@finesse.test",
        .resource = "fsc",
        .password = password,
        .framing = framing,
        .starttls = starttls,
        .tls_required = tls_required,
        .ping_interval_ms = 10000,
        .ping_timeout_ms = 20000,
        .negotiation_timeout_ms = 15000,
    };
    struct fin_xmpp_session *s;

    memset(&F, 0, sizeof(F));
    s = fin_xmpp_session_new(&o, &fake_io, 1000, &err);
    assert_non_null(s);
    return s;
}

static void
feed(struct fin_xmpp_session *s, const char *text)
{
    fin_xmpp_session_data(s, text, strlen(text));
}

static void
msg(struct fin_xmpp_session *s, const char *text)
{
    fin_xmpp_session_message(s, text, strlen(text));
}

/* The last stanza written. */
static const char *
last_sent(void)
{
    static char buf[4096];
    size_t n = strlen(F.sent);
    const char *end = F.sent + n - 1; /* the trailing | */
    const char *p = end;

    while (p > F.sent && p[-1] != '|') {
        p--;
    }
    snprintf(buf, sizeof(buf), "%.*s", (int)(end - p), p);
    return buf;
}

#define HEAD                                                                   \
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "               \
    "xmlns:stream='http://etherx.jabber.org/streams' id='s%d' version='1.0' "  \
    "from='finesse.test'>"
#define SASL_NS  "urn:ietf:params:xml:ns:xmpp-sasl"
#define FEATURES_PLAIN                                                         \
    "<stream:features><mechanisms xmlns='" SASL_NS "'>"                        \
    "<mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism>"           \
    "</mechanisms></stream:features>"
#define FEATURES_BIND                                                          \
    "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"        \
    "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'>"                    \
    "<optional/></session></stream:features>"

static void
head(struct fin_xmpp_session *s, int n)
{
    char buf[256];

    snprintf(buf, sizeof(buf), HEAD, n);
    feed(s, buf);
}

/* SASL PLAIN of "\0 1001 \0 pw1001" */
#define AUTH_PW1001 "ADEwMDEAcHcxMDAx"

/* STARTTLS, SASL, bind, required session, presence: a whole sign-in over
 * TCP, as Openfire on Finesse's 5222 would run it. */
static void
test_starttls_to_online(void **state)
{
    struct fin_xmpp_session *s =
        new_session(FIN_XMPP_FRAMING_STREAM, true, true, "pw1001");

    (void)state;
    fin_xmpp_session_transport_up(s, false);
    assert_non_null(strstr(last_sent(), "<stream:stream to='finesse.test' "
                                        "version='1.0'"));
    head(s, 1);
    feed(s, "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:"
            "xmpp-tls'><required/></starttls>"
            "<mechanisms xmlns='" SASL_NS "'><mechanism>PLAIN</mechanism>"
            "</mechanisms></stream:features>");
    assert_string_equal(last_sent(),
                        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    /* the proceed, and bytes after it that are TLS, not XML */
    feed(s, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\x16\x03\x01");
    assert_int_equal(F.start_tls, 1);
    assert_int_equal(F.finals, 0);
    fin_xmpp_session_secured(s);
    assert_true(fin_xmpp_session_secured_now(s));
    assert_non_null(strstr(last_sent(), "<stream:stream"));
    head(s, 2);
    feed(s, FEATURES_PLAIN);
    /* PLAIN even though SCRAM is offered: the SSO token is a password */
    assert_string_equal(last_sent(), "<auth xmlns='" SASL_NS
                                     "' mechanism='PLAIN'>" AUTH_PW1001
                                     "</auth>");
    feed(s, "<success xmlns='" SASL_NS "'/>");
    assert_non_null(strstr(last_sent(), "<stream:stream"));
    head(s, 3);
    feed(s, "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
            "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>"
            "</stream:features>");
    assert_non_null(strstr(last_sent(), "<resource>fsc</resource>"));
    feed(s, "<iq type='result' id='fscbind'><bind xmlns='urn:ietf:params:xml:"
            "ns:xmpp-bind'><jid>1001@finesse.test/fsc</jid></bind></iq>");
    /* a session without <optional/> is established (old Openfire) */
    assert_non_null(strstr(last_sent(), "<session xmlns="));
    feed(s, "<iq type='result' id='fscsess'/>");
    assert_non_null(strstr(F.sent, "<priority>0</priority>"));
    assert_non_null(strstr(last_sent(), "id='fscready'"));
    assert_int_equal(F.online, 0); /* not before the server processed it */
    feed(s, "<iq type='result' id='fscready' from='finesse.test'/>");
    assert_int_equal(F.online, 1);
    assert_true(fin_xmpp_session_online(s));
    assert_string_equal(F.events, "ONLINE()");
    fin_xmpp_session_free(s);
}

/* Signs a session in over one stream without STARTTLS. */
static struct fin_xmpp_session *
online_stream_session(void)
{
    struct fin_xmpp_session *s =
        new_session(FIN_XMPP_FRAMING_STREAM, false, false, "pw1001");

    fin_xmpp_session_transport_up(s, true);
    head(s, 1);
    feed(s, FEATURES_PLAIN);
    feed(s, "<success xmlns='" SASL_NS "'/>");
    head(s, 2);
    feed(s, FEATURES_BIND);
    feed(s, "<iq type='result' id='fscbind'/>");
    feed(s, "<iq type='result' id='fscready'/>");
    assert_int_equal(F.online, 1);
    F.sent[0] = '\0';
    F.nsent = 0;
    F.events[0] = '\0';
    return s;
}

static void
test_online_stanzas(void **state)
{
    struct fin_xmpp_session *s = online_stream_session();

    (void)state;
    /* a Finesse notification: escaped <Update> inside <notification> */
    feed(s, "<message from='pubsub.finesse.test' to='1001@finesse.test/fsc'>"
            "<event xmlns='http://jabber.org/protocol/pubsub#event'>"
            "<items node='/finesse/api/User/1001'><item id='x'>"
            "<notification xmlns='http://jabber.org/protocol/pubsub'>"
            "&lt;Update&gt;&lt;event&gt;PUT&lt;/event&gt;&lt;/Update&gt;"
            "</notification></item></items></event></message>");
    assert_int_equal(F.updates, 1);
    assert_string_equal(F.last_payload, "<Update><event>PUT</event></Update>");
    /* the same from anybody else in the domain is ignored */
    feed(s, "<message from='1002@finesse.test/x'><event xmlns='http://jabber."
            "org/protocol/pubsub#event'><items node='/finesse/api/User/1001'>"
            "<item><notification>&lt;Update/&gt;</notification></item></items>"
            "</event></message>");
    feed(s, "<message from='pubsub.finesse.test.evil.example'><event xmlns='"
            "http://jabber.org/protocol/pubsub#event'><items node='n'><item>"
            "<notification>&lt;Update/&gt;</notification></item></items>"
            "</event></message>");
    assert_int_equal(F.updates, 1);
    /* presence of others is reported, our own is not */
    feed(s, "<presence from='finesse@finesse.test/srv'/>");
    feed(s, "<presence from='finesse@finesse.test/srv' type='unavailable'/>");
    feed(s, "<presence from='1001@finesse.test/desktop'/>");
    feed(s, "<presence from='x@finesse.test' type='subscribe'/>");
    assert_string_equal(F.events, "UPDATE(/finesse/api/User/1001)"
                                  "PRESENCE(finesse@finesse.test/srv)+"
                                  "PRESENCE(finesse@finesse.test/srv)-");
    /* the server's ping is answered; any other request is refused */
    feed(s, "<iq type='get' id='p1' from='finesse.test'><ping xmlns='urn:xmpp:"
            "ping'/></iq>");
    assert_string_equal(last_sent(), "<iq xmlns='jabber:client' type='result' "
                                     "id='p1' to='finesse.test'/>");
    feed(s, "<iq type='set' id='q&amp;1' from='x@finesse.test'><query xmlns='"
            "jabber:iq:roster'/></iq>");
    assert_non_null(strstr(last_sent(), "type='error' id='q&amp;1'"));
    assert_non_null(strstr(last_sent(), "<service-unavailable"));
    fin_xmpp_session_free(s);
}

static void
test_pings_and_timeout(void **state)
{
    struct fin_xmpp_session *s = online_stream_session();

    (void)state;
    fin_xmpp_session_tick(s, 5000);
    assert_int_equal(F.nsent, 0);
    fin_xmpp_session_tick(s, 11000); /* interval since ONLINE at 1000 */
    assert_non_null(strstr(last_sent(), "id='fscping1'"));
    feed(s, "<iq type='result' id='fscping1'/>");
    fin_xmpp_session_tick(s, 21000);
    assert_non_null(strstr(last_sent(), "id='fscping2'"));
    /* unanswered: the next ping goes out, the timeout counts from the
     * oldest unanswered one */
    fin_xmpp_session_tick(s, 31000);
    assert_non_null(strstr(last_sent(), "id='fscping3'"));
    assert_int_equal(F.finals, 0);
    fin_xmpp_session_tick(s, 41000);
    assert_string_equal(F.events, "OFFLINE(ping timeout)");
    assert_false(F.last_fatal);
    assert_string_equal(last_sent(), "</stream:stream>");
    assert_int_equal(F.closes, 1);
    assert_false(fin_xmpp_session_done(s));
    fin_xmpp_session_transport_down(s, FIN_XMPP_DOWN_CLOSED, "closed");
    assert_true(fin_xmpp_session_done(s));
    assert_int_equal(F.finals, 1); /* one final event, not two */
    fin_xmpp_session_free(s);
}

static void
expect_final_after_features(const char *features, bool starttls_allowed,
                            bool tls_required, const char *event, bool fatal)
{
    struct fin_xmpp_session *s = new_session(
        FIN_XMPP_FRAMING_STREAM, starttls_allowed, tls_required, "pw");

    fin_xmpp_session_transport_up(s, false);
    head(s, 1);
    feed(s, features);
    assert_string_equal(F.events, event);
    assert_int_equal(F.last_fatal, fatal);
    assert_int_equal(F.closes, 1);
    /* nothing secret went out */
    assert_null(strstr(F.sent, "<auth"));
    fin_xmpp_session_free(s);
}

static void
test_negotiation_refusals(void **state)
{
    (void)state;
    /* TLS required, the server offers no STARTTLS: never authenticate */
    expect_final_after_features(
        FEATURES_PLAIN, true, true,
        "OFFLINE(tls required but the server offers no STARTTLS "
        "(offers: SCRAM-SHA-1,PLAIN))",
        true);
    /* no PLAIN: the token cannot be presented */
    expect_final_after_features(
        "<stream:features><mechanisms xmlns='" SASL_NS "'><mechanism>"
        "SCRAM-SHA-1</mechanism></mechanisms></stream:features>",
        false, false,
        "OFFLINE(server offers no SASL PLAIN (offers: SCRAM-SHA-1))", true);
}

static void
test_sasl_failures(void **state)
{
    struct fin_xmpp_session *s;

    (void)state;
    s = new_session(FIN_XMPP_FRAMING_STREAM, false, false, "wrong");
    fin_xmpp_session_transport_up(s, false);
    head(s, 1);
    feed(s, FEATURES_PLAIN);
    feed(s, "<failure xmlns='" SASL_NS "'><not-authorized/><text>bad"
            "</text></failure>");
    assert_string_equal(F.events,
                        "AUTH_FAILED(sasl authentication failed: not-authorized)");
    fin_xmpp_session_free(s);

    /* a server-side problem is not the agent's password */
    s = new_session(FIN_XMPP_FRAMING_STREAM, false, false, "pw");
    fin_xmpp_session_transport_up(s, false);
    head(s, 1);
    feed(s, FEATURES_PLAIN);
    feed(s, "<failure xmlns='" SASL_NS "'><temporary-auth-failure/></failure>");
    assert_string_equal(
        F.events, "OFFLINE(sasl authentication failed: temporary-auth-failure)");
    fin_xmpp_session_free(s);
}

/* RFC 7395: <open/> instead of the stream header, one element per message,
 * <close/> from the server ends the session. */
static void
test_websocket_framing(void **state)
{
    struct fin_xmpp_session *s =
        new_session(FIN_XMPP_FRAMING_WEBSOCKET, false, true, "pw1001");
    const char *open = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' "
                       "from='finesse.test' id='w' version='1.0'/>";

    (void)state;
    fin_xmpp_session_transport_up(s, true); /* wss */
    assert_string_equal(last_sent(),
                        "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' "
                        "to='finesse.test' version='1.0'/>");
    msg(s, open);
    msg(s, "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"
           "<mechanisms xmlns='" SASL_NS "'><mechanism>PLAIN</mechanism>"
           "</mechanisms></stream:features>");
    assert_string_equal(last_sent(), "<auth xmlns='" SASL_NS
                                     "' mechanism='PLAIN'>" AUTH_PW1001
                                     "</auth>");
    msg(s, "<success xmlns='" SASL_NS "'/>");
    assert_non_null(strstr(last_sent(), "<open xmlns="));
    msg(s, open);
    msg(s, "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"
           "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>");
    /* every stanza carries its namespace (a message is a document) */
    assert_non_null(strstr(last_sent(), "<iq xmlns='jabber:client' type='set'"));
    msg(s, "<iq xmlns='jabber:client' type='result' id='fscbind'/>");
    msg(s, "<iq xmlns='jabber:client' type='result' id='fscready'/>");
    assert_int_equal(F.online, 1);
    msg(s, "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
    assert_string_equal(F.events, "ONLINE()OFFLINE(closed by the server)");
    assert_string_equal(last_sent(),
                        "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
    assert_int_equal(F.closes, 1);
    fin_xmpp_session_free(s);
}

static void
test_stream_error_and_bad_xml(void **state)
{
    struct fin_xmpp_session *s = online_stream_session();

    (void)state;
    feed(s, "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-"
            "streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>"
            "Replaced by new connection</text></stream:error>");
    assert_string_equal(F.events, "OFFLINE(stream error: conflict: Replaced by "
                                  "new connection)");
    fin_xmpp_session_free(s);

    s = online_stream_session();
    feed(s, "<message><body>x</wrong>");
    assert_non_null(strstr(F.events, "OFFLINE(bad XML from the server: "));
    /* a broken stream is not closed with </stream:stream> */
    assert_null(strstr(F.sent, "</stream:stream>"));
    assert_int_equal(F.closes, 1);
    fin_xmpp_session_free(s);
}

static void
test_timeouts_downs_and_close(void **state)
{
    struct fin_xmpp_session *s;

    (void)state;
    /* a server that opens but never offers features */
    s = new_session(FIN_XMPP_FRAMING_STREAM, false, false, "pw");
    fin_xmpp_session_transport_up(s, false);
    head(s, 1);
    fin_xmpp_session_tick(s, 15999);
    assert_int_equal(F.finals, 0);
    fin_xmpp_session_tick(s, 16000);
    assert_string_equal(F.events, "OFFLINE(stream negotiation timed out "
                                  "waiting for stream features)");
    fin_xmpp_session_free(s);

    /* transport failures, and which are configuration problems */
    struct {
        enum fin_xmpp_down why;
        const char *event;
        bool fatal;
    } cases[] = {
        {FIN_XMPP_DOWN_CONNECT, "OFFLINE(connect failed: refused)", false},
        {FIN_XMPP_DOWN_TLS_CERT, "OFFLINE(tls certificate rejected: refused)",
         true},
        {FIN_XMPP_DOWN_WS_REFUSED, "OFFLINE(websocket upgrade refused: refused)",
         true},
        {FIN_XMPP_DOWN_WS_SUBPROTOCOL,
         "OFFLINE(websocket: the server did not accept the xmpp subprotocol "
         "(RFC 7395): refused)",
         true},
        {FIN_XMPP_DOWN_PROTOCOL, "OFFLINE(bad frame from the server: refused)",
         false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        s = new_session(FIN_XMPP_FRAMING_WEBSOCKET, false, false, "pw");
        fin_xmpp_session_transport_down(s, cases[i].why, "refused");
        assert_string_equal(F.events, cases[i].event);
        assert_int_equal(F.last_fatal, cases[i].fatal);
        assert_true(fin_xmpp_session_done(s));
        fin_xmpp_session_free(s);
    }

    /* our own close: unavailable presence, stream end, no event when
     * quiet */
    s = online_stream_session();
    fin_xmpp_session_close(s, true);
    assert_non_null(strstr(F.sent, "type='unavailable'"));
    assert_string_equal(last_sent(), "</stream:stream>");
    assert_int_equal(F.closes, 1);
    fin_xmpp_session_transport_down(s, FIN_XMPP_DOWN_LOST, "gone");
    assert_string_equal(F.events, "");
    fin_xmpp_session_free(s);

    /* bad options */
    {
        struct cmn_err err = {{0}};
        struct fin_xmpp_session_opts o = {.jid = "1001@finesse.test",
                                          .resource = "desktop"};
        assert_null(fin_xmpp_session_new(&o, &fake_io, 0, &err));
        assert_non_null(strstr(err.msg, "desktop"));
        o.resource = "fsc";
        o.jid = "no-domain";
        assert_null(fin_xmpp_session_new(&o, &fake_io, 0, &err));
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_starttls_to_online),
        cmocka_unit_test(test_online_stanzas),
        cmocka_unit_test(test_pings_and_timeout),
        cmocka_unit_test(test_negotiation_refusals),
        cmocka_unit_test(test_sasl_failures),
        cmocka_unit_test(test_websocket_framing),
        cmocka_unit_test(test_stream_error_and_bad_xml),
        cmocka_unit_test(test_timeouts_downs_and_close),
    };

    cmn_xml_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
