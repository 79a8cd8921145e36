/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_fin_parse.c - Finesse XML parsers: every fixture in
 * tests/fixtures/finesse reads to the values it holds, and every way a
 * document can be wrong (root, size, injection, DOCTYPE, caps, syntax,
 * truncation, duplicates) is refused. */
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

/* --- helpers --- */

static char *
load_fixture(const char *name, size_t *len)
{
    const char *src = getenv("FSC_SOURCE_DIR");
    char path[1024];
    FILE *f;
    long n;
    char *buf;

    snprintf(path, sizeof(path), "%s/tests/fixtures/finesse/%s",
             src != NULL ? src : ".", name);
    f = fopen(path, "rb");
    if (f == NULL) {
        fail_msg("cannot open %s", path);
    }
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n > 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void
want_err(const struct cmn_err *err, const char *why)
{
    if (strstr(err->msg, why) == NULL) {
        fail_msg("want \"%s\" in \"%s\"", why, err->msg);
    }
}

/* Which parser reads a document, so failure tests can run any of them. */
enum doc_kind {
    DOC_USER,
    DOC_DIALOG,
    DOC_DIALOGS,
    DOC_ERRORS,
    DOC_SYSINFO,
    DOC_REASONS,
    DOC_WRAPUPS,
    DOC_UPDATE,
};

static int
parse_as(enum doc_kind kind, const char *xml, size_t len, struct cmn_err *err)
{
    static struct fin_user user;
    static struct fin_dialog dialog;
    static struct fin_api_errors errors;
    static struct fin_systeminfo si;
    static struct fin_reason_codes reasons;
    static struct fin_wrapup_reasons wrapups;
    struct fin_dialogs dialogs;
    struct fin_update *u;
    int rc;

    switch (kind) {
    case DOC_USER:
        return fin_parse_user(xml, len, &user, err);
    case DOC_DIALOG:
        return fin_parse_dialog(xml, len, &dialog, err);
    case DOC_DIALOGS:
        rc = fin_parse_dialogs(xml, len, &dialogs, err);
        fin_dialogs_free(&dialogs);
        return rc;
    case DOC_ERRORS:
        return fin_parse_api_errors(xml, len, &errors, err);
    case DOC_SYSINFO:
        return fin_parse_systeminfo(xml, len, &si, err);
    case DOC_REASONS:
        return fin_parse_reason_codes(xml, len, &reasons, err);
    case DOC_WRAPUPS:
        return fin_parse_wrapup_reasons(xml, len, &wrapups, err);
    case DOC_UPDATE:
        u = fin_update_parse(xml, len, err);
        rc = u != NULL ? CMN_OK : CMN_INVALID;
        fin_update_free(u);
        return rc;
    }
    return CMN_ERR;
}

static void
refused_as(enum doc_kind kind, const char *xml, const char *why)
{
    struct cmn_err err = {{0}};

    assert_int_equal(parse_as(kind, xml, strlen(xml), &err), CMN_INVALID);
    want_err(&err, why);
}

static void
accepted_as(enum doc_kind kind, const char *xml)
{
    struct cmn_err err = {{0}};

    if (parse_as(kind, xml, strlen(xml), &err) != CMN_OK) {
        fail_msg("refused: %s", err.msg);
    }
}

static const struct {
    const char *file;
    enum doc_kind kind;
} fixtures[] = {
    {"user_full.xml", DOC_USER},
    {"dialog_two_parties.xml", DOC_DIALOG},
    {"dialogs_list.xml", DOC_DIALOGS},
    {"api_errors_503.xml", DOC_ERRORS},
    {"systeminfo_two_nodes.xml", DOC_SYSINFO},
    {"reason_codes_not_ready.xml", DOC_REASONS},
    {"wrapup_reasons.xml", DOC_WRAPUPS},
    {"update_user_put.xml", DOC_UPDATE},
    {"update_dialog_put.xml", DOC_UPDATE},
    {"update_dialogs_post.xml", DOC_UPDATE},
    {"update_dialogs_delete.xml", DOC_UPDATE},
    {"update_api_errors_cti.xml", DOC_UPDATE},
    {"update_systeminfo_out_of_service.xml", DOC_UPDATE},
    {"update_team_unmodelled.xml", DOC_UPDATE},
};

/* A string of n copies of c, for oversized values. */
static char *
repeat(char c, size_t n)
{
    char *s = malloc(n + 1);

    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static char *fmt(const char *f, ...) CMN_PRINTF(1, 2);

static char *
fmt(const char *f, ...)
{
    va_list ap;
    char *s = NULL;
    int n;

    va_start(ap, f);
    n = vasprintf(&s, f, ap);
    va_end(ap);
    assert_true(n >= 0);
    return s;
}

/* --- fixtures parse to what they hold --- */

static void
test_fin_parse_user_full(void **state)
{
    struct cmn_err err = {{0}};
    struct fin_user u;
    size_t len;
    char *xml = load_fixture("user_full.xml", &len);

    (void)state;
    assert_int_equal(fin_parse_user(xml, len, &u, &err), CMN_OK);
    assert_string_equal(u.login_id, "1001001");
    assert_string_equal(u.login_name, "csmith");
    assert_string_equal(u.state, "NOT_READY");
    assert_string_equal(u.pending_state, "NOT_READY");
    assert_string_equal(u.reason_code_id, "16");
    assert_string_equal(u.reason.id, "16");
    assert_string_equal(u.reason.category, "NOT_READY");
    assert_string_equal(u.reason.code, "10");
    assert_string_equal(u.reason.label, "Team Meeting");
    assert_true(u.reason.for_all);
    assert_false(u.reason.system_code);
    assert_string_equal(u.state_change_time, "2012-03-01T17:58:21.234Z");
    assert_string_equal(u.extension, "1001001");
    assert_string_equal(u.first_name, "Chris");
    assert_string_equal(u.last_name, "Smith");
    assert_string_equal(u.team_id, "500");
    assert_string_equal(u.team_name, "Sales");
    assert_string_equal(u.wrapup_on_incoming, "OPTIONAL");
    assert_string_equal(u.wrapup_on_outgoing, "NOT_ALLOWED");
    assert_true(u.supervisor);
    free(xml);
}

static void
test_fin_parse_user_minimal(void **state)
{
    struct cmn_err err = {{0}};
    struct fin_user u;
    const char *xml = "<User><loginId>42</loginId><state>LOGOUT</state>"
                      "</User>";

    (void)state;
    assert_int_equal(fin_parse_user(xml, strlen(xml), &u, &err), CMN_OK);
    assert_string_equal(u.login_id, "42");
    /* Missing optional elements read as empty. */
    assert_string_equal(u.pending_state, "");
    assert_string_equal(u.reason_code_id, "");
    assert_string_equal(u.reason.id, "");
    assert_string_equal(u.extension, "");
    assert_string_equal(u.wrapup_on_incoming, "");
    assert_false(u.supervisor);
}

static void
check_dialog_two_parties(const struct fin_dialog *d)
{
    const struct fin_participant *p;

    assert_string_equal(d->id, "12345678");
    assert_string_equal(d->secondary_id, "12345679");
    assert_string_equal(d->associated_uri, "/finesse/api/Dialog/321654");
    assert_string_equal(d->media_type, "Voice");
    assert_string_equal(d->state, "ACTIVE");
    assert_string_equal(d->from_address, "2002");
    assert_string_equal(d->to_address, "2000");
    assert_string_equal(d->call_type, "AGENT_INSIDE");
    assert_string_equal(d->dialed_number, "2000");
    assert_string_equal(d->dnis, "2000");
    assert_string_equal(d->queue_name, "UCM_PIM.Func.Agents.SG");
    assert_string_equal(d->queue_number, "5022");
    assert_string_equal(d->wrapup_reason, "Sales Call");
    /* Call variables and ECC variables in document order. */
    assert_int_equal(d->nvars, 5);
    assert_string_equal(d->vars[0].name, "callVariable1");
    assert_string_equal(d->vars[0].value, "Chuck Smith");
    assert_string_equal(d->vars[2].name, "user.sfdc.caseId");
    assert_string_equal(fin_dialog_var(d, "callVariable2"),
                        "Cisco Systems, Inc.");
    assert_string_equal(fin_dialog_var(d, "user.sfdc.caseId"),
                        "5003000000D8cuI");
    assert_string_equal(fin_dialog_var(d, "user.arr[0]"), "first & only");
    assert_string_equal(fin_dialog_var(d, "callVariable10"), "");
    assert_null(fin_dialog_var(d, "callVariable3"));
    /* Participants and their actions. */
    assert_int_equal(d->nparts, 2);
    assert_string_equal(d->parts[0].media_address, "2002");
    assert_string_equal(d->parts[0].media_address_type, "AGENT_DEVICE");
    assert_string_equal(d->parts[0].state, "ACTIVE");
    assert_int_equal(d->parts[0].nactions, 2);
    assert_string_equal(d->parts[1].state, "HELD");
    assert_string_equal(d->parts[1].state_cause, "");
    assert_string_equal(d->parts[1].actions[0], "RETRIEVE");
    assert_true(fin_participant_can(&d->parts[1], "RETRIEVE"));
    assert_false(fin_participant_can(&d->parts[1], "HOLD"));
    assert_true(fin_participant_can(&d->parts[0], "HOLD"));
    p = fin_dialog_participant(d, "2000");
    assert_ptr_equal(p, &d->parts[1]);
    assert_null(fin_dialog_participant(d, "9999"));
    /* The other party of agent 2000 is 2002, and vice versa. */
    assert_ptr_equal(fin_dialog_other(d, "2000"), &d->parts[0]);
    assert_ptr_equal(fin_dialog_other(d, "2002"), &d->parts[1]);
}

static void
test_fin_parse_dialog_two_parties(void **state)
{
    struct cmn_err err = {{0}};
    struct fin_dialog d;
    size_t len;
    char *xml = load_fixture("dialog_two_parties.xml", &len);

    (void)state;
    assert_int_equal(fin_parse_dialog(xml, len, &d, &err), CMN_OK);
    check_dialog_two_parties(&d);
    free(xml);
}

static void
test_fin_parse_dialogs_list(void **state)
{
    struct cmn_err err = {{0}};
    struct fin_dialogs ds;
    const struct fin_participant *caller;
    size_t len;
    char *xml = load_fixture("dialogs_list.xml", &len);

    (void)state;
    assert_int_equal(fin_parse_dialogs(xml, len, &ds, &err), CMN_OK);
    assert_int_equal(ds.n, 2);
    assert_string_equal(ds.items[0].id, "16804377");
    assert_string_equal(ds.items[0].state, "ALERTING");
    assert_string_equal(ds.items[0].call_type, "ACD_IN");
    assert_string_equal(fin_dialog_var(&ds.items[0], "callVariable1"), "ACME");
    caller = fin_dialog_other(&ds.items[0], "1001001");
    assert_non_null(caller);
    assert_string_equal(caller->media_address, "4155550100");
    assert_true(fin_participant_can(
        fin_dialog_participant(&ds.items[0], "1001001"), "ANSWER"));
    assert_string_equal(ds.items[1].id, "16804380");
    assert_string_equal(ds.items[1].secondary_id, "16804377");
    assert_int_equal(ds.items[1].nvars, 0);
    /* Only the agent on the line: no other party. */
    assert_null(fin_dialog_other(&ds.items[1], "1001001"));
    fin_dialogs_free(&ds);
    assert_null(ds.items);
    assert_int_equal(ds.n, 0);
    fin_dialogs_free(&ds); /* twice is harmless */
    fin_dialogs_free(NULL);
    free(xml);
}

static void
test_fin_parse_dialogs_empty(void **state)
{
    struct cmn_err err = {{0}};
    struct fin_dialogs ds;

    (void)state;
    assert_int_equal(fin_parse_dialogs("<Dialogs/>", 10, &ds, &err), CMN_OK);
    assert_int_equal(ds.n, 0);
    assert_null(ds.items);
    fin_dialogs_free(&ds);
}

static void
test_fin_parse_api_errors_503(void **state)
{
    struct cmn_err err = {{0}};
    struct fin_api_errors e;
    size_t len;
    char *xml = load_fixture("api_errors_503.xml", &len);
    const char *lower =
        "<apiErrors><apiError><errorType>Invalid State</errorType>"
        "<errorMessage>CF_INVALID_OBJECT_STATE</errorMessage>"
        "<errorData>22</errorData></apiError></apiErrors>";

    (void)state;
    assert_int_equal(fin_parse_api_errors(xml, len, &e, &err), CMN_OK);
    assert_int_equal(e.n, 1);
    assert_string_equal(e.items[0].type, "Service Unavailable");
    assert_string_equal(e.items[0].message, "SERVER_OUT_OF_SERVICE");
    assert_string_equal(e.items[0].data, "");
    /* The notification spelling goes through the same function. */
    assert_int_equal(fin_parse_api_errors(lower, strlen(lower), &e, &err),
                     CMN_OK);
    assert_int_equal(e.n, 1);
    assert_string_equal(e.items[0].type, "Invalid State");
    assert_string_equal(e.items[0].message, "CF_INVALID_OBJECT_STATE");
    assert_string_equal(e.items[0].data, "22");
    free(xml);
}

static void
test_fin_parse_systeminfo_two_nodes(void **state)
{
    struct cmn_err err = {{0}};
    struct fin_systeminfo si;
    size_t len;
    char *xml = load_fixture("systeminfo_two_nodes.xml", &len);
    const char *single = "<SystemInfo><status>IN_SERVICE</status>"
                         "<xmppDomain>x.example</xmppDomain></SystemInfo>";

    (void)state;
    assert_int_equal(fin_parse_systeminfo(xml, len, &si, &err), CMN_OK);
    assert_string_equal(si.status, "IN_SERVICE");
    assert_string_equal(si.xmpp_domain, "fin-a.example.com");
    assert_string_equal(si.xmpp_pubsub_domain, "pubsub.fin-a.example.com");
    assert_string_equal(si.deployment_type, "UCCE");
    assert_string_equal(si.system_auth_mode, "HYBRID");
    assert_string_equal(si.primary.host, "fin-a.example.com");
    assert_int_equal(si.primary.https_port, 8445);
    assert_int_equal(si.primary.xmpp_port, 5222);
    assert_string_equal(si.secondary.host, "fin-b.example.com");
    assert_int_equal(si.secondary.https_port, 8445);
    assert_int_equal(fin_parse_systeminfo(single, strlen(single), &si, &err),
                     CMN_OK);
    assert_string_equal(si.secondary.host, "");
    assert_int_equal(si.primary.https_port, 0);
    free(xml);
}

static void
test_fin_parse_reason_codes(void **state)
{
    struct cmn_err err = {{0}};
    struct fin_reason_codes *rc = malloc(sizeof(*rc));
    size_t len;
    char *xml = load_fixture("reason_codes_not_ready.xml", &len);

    (void)state;
    assert_non_null(rc);
    assert_int_equal(fin_parse_reason_codes(xml, len, rc, &err), CMN_OK);
    assert_int_equal(rc->n, 2);
    /* No <id> in the list: taken from the uri. */
    assert_string_equal(rc->items[0].id, "1");
    assert_string_equal(rc->items[0].code, "12");
    assert_string_equal(rc->items[0].label, "Lunch");
    assert_string_equal(rc->items[0].category, "NOT_READY");
    assert_true(rc->items[0].for_all);
    assert_string_equal(rc->items[1].id, "16");
    assert_false(rc->items[1].for_all);
    free(rc);
    free(xml);
}

static void
test_fin_parse_wrapup_reasons(void **state)
{
    struct cmn_err err = {{0}};
    struct fin_wrapup_reasons *w = malloc(sizeof(*w));
    size_t len;
    char *xml = load_fixture("wrapup_reasons.xml", &len);

    (void)state;
    assert_non_null(w);
    assert_int_equal(fin_parse_wrapup_reasons(xml, len, w, &err), CMN_OK);
    assert_int_equal(w->n, 2);
    assert_string_equal(w->items[0].id, "205");
    assert_string_equal(w->items[0].label, "Product Question");
    assert_true(w->items[0].for_all);
    /* A trailing slash does not make the id empty. */
    assert_string_equal(w->items[1].id, "206");
    assert_string_equal(w->items[1].label, "Billing & Payments");
    assert_false(w->items[1].for_all);
    free(w);
    free(xml);
}

/* --- Update --- */

static struct fin_update *
update_fixture(const char *name)
{
    struct cmn_err err = {{0}};
    struct fin_update *u;
    size_t len;
    char *xml = load_fixture(name, &len);

    u = fin_update_parse(xml, len, &err);
    if (u == NULL) {
        fail_msg("%s: %s", name, err.msg);
    }
    free(xml);
    return u;
}

static void
test_fin_update_user(void **state)
{
    struct fin_update *u = update_fixture("update_user_put.xml");

    (void)state;
    assert_int_equal(u->kind, FIN_UPDATE_USER);
    assert_int_equal(u->event, FIN_EVENT_PUT);
    assert_string_equal(u->request_id, "7f3c2a10-5b1e-4e2a-9d77-0a1b2c3d4e5f");
    assert_string_equal(u->source, "/finesse/api/User/1001001");
    assert_string_equal(u->user.login_id, "1001001");
    assert_string_equal(u->user.state, "READY");
    assert_string_equal(u->user.reason_code_id, "-1");
    assert_string_equal(u->user.wrapup_on_incoming, "REQUIRED");
    assert_false(u->user.supervisor);
    assert_null(u->dialogs.items);
    fin_update_free(u);
}

static void
test_fin_update_dialog(void **state)
{
    struct fin_update *u = update_fixture("update_dialog_put.xml");

    (void)state;
    assert_int_equal(u->kind, FIN_UPDATE_DIALOG);
    /* "put" in lower case, data after event and source. */
    assert_int_equal(u->event, FIN_EVENT_PUT);
    assert_string_equal(u->request_id, "");
    assert_string_equal(u->source, "/finesse/api/Dialog/12345678");
    assert_int_equal(u->dialogs.n, 1);
    check_dialog_two_parties(&u->dialogs.items[0]);
    fin_update_free(u);
}

static void
test_fin_update_dialogs_post_delete(void **state)
{
    struct fin_update *u = update_fixture("update_dialogs_post.xml");
    const struct fin_dialog *d;

    (void)state;
    assert_int_equal(u->kind, FIN_UPDATE_DIALOGS);
    assert_int_equal(u->event, FIN_EVENT_POST);
    assert_string_equal(u->source, "/finesse/api/User/1001001/Dialogs");
    assert_int_equal(u->dialogs.n, 1);
    d = &u->dialogs.items[0];
    assert_string_equal(d->id, "16804377");
    assert_string_equal(fin_dialog_var(d, "user.sfdc.accountId"),
                        "0013000000ABCDE");
    assert_string_equal(fin_dialog_other(d, "1001001")->media_address,
                        "4155550100");
    assert_int_equal(fin_dialog_other(d, "1001001")->nactions, 0);
    fin_update_free(u);

    u = update_fixture("update_dialogs_delete.xml");
    assert_int_equal(u->kind, FIN_UPDATE_DIALOGS);
    assert_int_equal(u->event, FIN_EVENT_DELETE);
    assert_int_equal(u->dialogs.n, 1);
    assert_string_equal(u->dialogs.items[0].state, "DROPPED");
    fin_update_free(u);
}

static void
test_fin_update_api_errors(void **state)
{
    struct fin_update *u = update_fixture("update_api_errors_cti.xml");

    (void)state;
    assert_int_equal(u->kind, FIN_UPDATE_API_ERRORS);
    assert_int_equal(u->event, FIN_EVENT_PUT);
    assert_string_equal(u->request_id, "req-42");
    assert_string_equal(u->source, "/finesse/api/Dialog/12345");
    assert_int_equal(u->errors.n, 1);
    assert_string_equal(u->errors.items[0].type, "Call Operation Failure");
    assert_string_equal(u->errors.items[0].message,
                        "CF_RESOURCE_OUT_OF_SERVICE");
    assert_string_equal(u->errors.items[0].data, "34");
    fin_update_free(u);
}

static void
test_fin_update_systeminfo(void **state)
{
    struct fin_update *u =
        update_fixture("update_systeminfo_out_of_service.xml");

    (void)state;
    assert_int_equal(u->kind, FIN_UPDATE_SYSTEMINFO);
    assert_string_equal(u->systeminfo.status, "OUT_OF_SERVICE");
    assert_string_equal(u->systeminfo.system_auth_mode, "SSO");
    assert_string_equal(u->systeminfo.secondary.host, "fin-b.example.com");
    assert_int_equal(u->systeminfo.secondary.xmpp_port, 5222);
    fin_update_free(u);
}

static void
test_fin_update_unmodelled_and_no_data(void **state)
{
    struct cmn_err err = {{0}};
    struct fin_update *u = update_fixture("update_team_unmodelled.xml");
    const char *nodata = "<Update><event>DELETE</event>"
                         "<source>/finesse/api/User/1</source></Update>";
    const char *empty = "<Update><data> </data><event>Post</event>"
                        "<source>/finesse/api/User/1</source></Update>";

    (void)state;
    assert_int_equal(u->kind, FIN_UPDATE_UNKNOWN);
    assert_int_equal(u->event, FIN_EVENT_PUT);
    assert_string_equal(u->source, "/finesse/api/Team/34/Users");
    fin_update_free(u);

    u = fin_update_parse(nodata, strlen(nodata), &err);
    assert_non_null(u);
    assert_int_equal(u->kind, FIN_UPDATE_UNKNOWN);
    assert_int_equal(u->event, FIN_EVENT_DELETE);
    fin_update_free(u);

    u = fin_update_parse(empty, strlen(empty), &err);
    assert_non_null(u);
    assert_int_equal(u->kind, FIN_UPDATE_UNKNOWN);
    assert_int_equal(u->event, FIN_EVENT_POST);
    fin_update_free(u);
    fin_update_free(NULL);
}

static void
test_fin_update_capitalised_user(void **state)
{
    struct cmn_err err = {{0}};
    struct fin_update *u;
    const char *xml = "<Update><data><User><loginId>7</loginId>"
                      "<state>TALKING</state></User></data>"
                      "<event>put</event><requestId>r</requestId>"
                      "<source>/finesse/api/User/7</source></Update>";

    (void)state;
    u = fin_update_parse(xml, strlen(xml), &err);
    assert_non_null(u);
    assert_int_equal(u->kind, FIN_UPDATE_USER);
    assert_int_equal(u->event, FIN_EVENT_PUT);
    assert_string_equal(u->user.state, "TALKING");
    fin_update_free(u);
}

static void
test_fin_update_refused(void **state)
{
    (void)state;
    refused_as(DOC_UPDATE,
               "<Update><source>/finesse/api/User/1</source></Update>",
               "<event> missing");
    refused_as(DOC_UPDATE, "<Update><event>PUT</event></Update>",
               "<source> missing");
    refused_as(DOC_UPDATE,
               "<Update><event>PATCH</event>"
               "<source>/finesse/api/User/1</source></Update>",
               "not PUT, POST or DELETE");
    refused_as(DOC_UPDATE,
               "<Update><event>PUT</event><event>DELETE</event>"
               "<source>/finesse/api/User/1</source></Update>",
               "<event> appears twice");
    refused_as(DOC_UPDATE,
               "<Update><data><user><loginId>1</loginId><state>READY</state>"
               "</user><dialog><id>2</id><state>ACTIVE</state></dialog>"
               "</data><event>PUT</event>"
               "<source>/finesse/api/User/1</source></Update>",
               "more than one object");
    refused_as(DOC_UPDATE,
               "<Update><data/><data/><event>PUT</event>"
               "<source>/s</source></Update>",
               "<data> appears twice");
    /* The inner object is held to the REST rules. */
    refused_as(DOC_UPDATE,
               "<Update><data><user><loginId>1</loginId></user></data>"
               "<event>PUT</event><source>/s</source></Update>",
               "update: user: <state> missing");
    refused_as(DOC_UPDATE,
               "<Update><data><dialog><id>1</id><state>A<!---->B</state>"
               "</dialog></data><event>PUT</event><source>/s</source>"
               "</Update>",
               "update: dialog: <state> must hold only text");
    refused_as(DOC_UPDATE,
               "<Update><data><apiErrors/></data>"
               "<event>PUT</event><source>/s</source></Update>",
               "no ApiError");
    refused_as(DOC_UPDATE,
               "<Update><data><systemInfo><primaryNode><httpsPort>x"
               "</httpsPort></primaryNode></systemInfo></data>"
               "<event>PUT</event><source>/s</source></Update>",
               "not a port number");
    refused_as(DOC_UPDATE,
               "<update><event>PUT</event><source>/s</source></update>",
               "root element is not <Update>");
}

/* --- failure paths common to every parser --- */

static void
test_fin_parse_wrong_root(void **state)
{
    (void)state;
    refused_as(DOC_USER, "<Dialog><id>1</id><state>A</state></Dialog>",
               "root element is not <User>");
    refused_as(DOC_DIALOG, "<User><loginId>1</loginId></User>",
               "root element is not <Dialog>");
    refused_as(DOC_DIALOG, "<dialog><id>1</id><state>A</state></dialog>",
               "root element is not <Dialog>");
    refused_as(DOC_DIALOGS, "<Dialog><id>1</id><state>A</state></Dialog>",
               "root element is not <Dialogs>");
    refused_as(DOC_ERRORS, "<Errors><ApiError/></Errors>",
               "root element is not <ApiErrors>");
    refused_as(DOC_SYSINFO, "<ApiErrors/>", "root element is not");
    refused_as(DOC_REASONS, "<ReasonCode/>", "root element is not");
    refused_as(DOC_WRAPUPS, "<ReasonCodes/>", "root element is not");
    refused_as(DOC_UPDATE, "<User/>", "root element is not <Update>");
}

static void
test_fin_parse_oversized_value(void **state)
{
    char *big63 = repeat('1', FIN_ID_MAX - 1);
    char *big64 = repeat('1', FIN_ID_MAX);
    char *val255 = repeat('v', FIN_VALUE_MAX - 1);
    char *val256 = repeat('v', FIN_VALUE_MAX);
    char *src = repeat('s', FIN_URI_MAX);
    char *xml;

    (void)state;
    /* The largest value that fits is kept whole... */
    xml = fmt("<User><loginId>%s</loginId><state>READY</state></User>", big63);
    accepted_as(DOC_USER, xml);
    free(xml);
    /* ...one byte more is an error, not a cut value. */
    xml = fmt("<User><loginId>%s</loginId><state>READY</state></User>", big64);
    refused_as(DOC_USER, xml, "<loginId> longer than 63 bytes");
    free(xml);
    xml = fmt("<Dialog><id>1</id><state>ACTIVE</state><mediaProperties>"
              "<callvariables><CallVariable><name>user.x</name>"
              "<value>%s</value></CallVariable></callvariables>"
              "</mediaProperties></Dialog>",
              val255);
    accepted_as(DOC_DIALOG, xml);
    free(xml);
    xml = fmt("<Dialog><id>1</id><state>ACTIVE</state><mediaProperties>"
              "<callvariables><CallVariable><name>user.x</name>"
              "<value>%s</value></CallVariable></callvariables>"
              "</mediaProperties></Dialog>",
              val256);
    refused_as(DOC_DIALOG, xml, "<value> longer than 255 bytes");
    free(xml);
    xml = fmt("<Update><event>PUT</event><source>%s</source></Update>", src);
    refused_as(DOC_UPDATE, xml, "<source> longer than");
    free(xml);
    xml = fmt("<ReasonCodes><ReasonCode><uri>/r/%s</uri></ReasonCode>"
              "</ReasonCodes>",
              big64);
    refused_as(DOC_REASONS, xml, "id longer than 63 bytes");
    free(xml);
    xml = fmt("<Dialog><id>1</id><state>A</state><participants>"
              "<Participant><actions><action>%s</action></actions>"
              "</Participant></participants></Dialog>",
              big64);
    refused_as(DOC_DIALOG, xml, "<action> longer than 31 bytes");
    free(xml);
    free(big63);
    free(big64);
    free(val255);
    free(val256);
    free(src);
}

static void
test_fin_parse_comment_injection(void **state)
{
    (void)state;
    /* "1001<!---->001" would read as "1001" to a first-text-node reader. */
    refused_as(DOC_USER,
               "<User><loginId>1001<!---->001</loginId><state>READY</state>"
               "</User>",
               "<loginId> must hold only text");
    refused_as(DOC_USER,
               "<User><loginId>1</loginId><state><b>READY</b></state></User>",
               "<state> must hold only text");
    refused_as(DOC_DIALOG,
               "<Dialog><id>1</id><state>ACTIVE</state><mediaProperties>"
               "<callvariables><CallVariable><name>user.x</name>"
               "<value>a<!-- -->b</value></CallVariable></callvariables>"
               "</mediaProperties></Dialog>",
               "<value> must hold only text");
    refused_as(DOC_DIALOG,
               "<Dialog><id>1</id><state>ACTIVE</state><participants>"
               "<Participant><actions><action>HOLD<?pi x?></action>"
               "</actions></Participant></participants></Dialog>",
               "<action> must hold only text");
    refused_as(DOC_ERRORS,
               "<ApiErrors><ApiError><ErrorMessage>A<![CDATA[B]]>"
               "</ErrorMessage></ApiError></ApiErrors>",
               "<ErrorMessage> must hold only text");
    refused_as(DOC_USER,
               "<User><loginId>1</loginId><state>READY</state>"
               "<roles><role>Agent<!---->Supervisor</role></roles></User>",
               "<role> must hold only text");
}

static void
test_fin_parse_doctype_refused(void **state)
{
    (void)state;
    refused_as(DOC_USER,
               "<!DOCTYPE User [<!ENTITY x \"READY\">]>"
               "<User><loginId>1</loginId><state>&x;</state></User>",
               "DOCTYPE");
    refused_as(DOC_UPDATE,
               "<!DOCTYPE Update SYSTEM \"file:///etc/passwd\">"
               "<Update><event>PUT</event><source>/s</source></Update>",
               "DOCTYPE");
}

static void
test_fin_parse_caps(void **state)
{
    char *xml = NULL;
    size_t len = 0;
    FILE *m;

    (void)state;
    /* FIN_MAX_VARS fit; one more does not. */
    for (int extra = 0; extra <= 1; extra++) {
        m = open_memstream(&xml, &len);
        assert_non_null(m);
        fputs("<Dialog><id>1</id><state>ACTIVE</state><mediaProperties>"
              "<callvariables>",
              m);
        for (int i = 0; i < FIN_MAX_VARS + extra; i++) {
            fprintf(m,
                    "<CallVariable><name>user.v%d</name><value>%d</value>"
                    "</CallVariable>",
                    i, i);
        }
        fputs("</callvariables></mediaProperties></Dialog>", m);
        fclose(m);
        if (extra == 0) {
            accepted_as(DOC_DIALOG, xml);
        } else {
            char want[64];
            snprintf(want, sizeof(want), "more than %d call variables",
                     FIN_MAX_VARS);
            refused_as(DOC_DIALOG, xml, want);
        }
        free(xml);
    }

    m = open_memstream(&xml, &len);
    fputs("<Dialog><id>1</id><state>ACTIVE</state><participants>", m);
    for (int i = 0; i <= FIN_MAX_PARTS; i++) {
        fprintf(m,
                "<Participant><mediaAddress>%d</mediaAddress>"
                "</Participant>",
                i);
    }
    fputs("</participants></Dialog>", m);
    fclose(m);
    refused_as(DOC_DIALOG, xml, "more than 8 participants");
    free(xml);

    m = open_memstream(&xml, &len);
    fputs("<Dialog><id>1</id><state>ACTIVE</state><participants>"
          "<Participant><actions>",
          m);
    for (int i = 0; i <= FIN_MAX_ACTIONS; i++) {
        fputs("<action>DROP</action>", m);
    }
    fputs("</actions></Participant></participants></Dialog>", m);
    fclose(m);
    refused_as(DOC_DIALOG, xml, "more than 12 actions");
    free(xml);

    m = open_memstream(&xml, &len);
    fputs("<Dialogs>", m);
    for (int i = 0; i <= FIN_MAX_DIALOGS; i++) {
        fprintf(m, "<Dialog><id>%d</id><state>ACTIVE</state></Dialog>", i);
    }
    fputs("</Dialogs>", m);
    fclose(m);
    refused_as(DOC_DIALOGS, xml, "more than 16 dialogs");
    free(xml);

    m = open_memstream(&xml, &len);
    fputs("<ApiErrors>", m);
    for (int i = 0; i <= FIN_MAX_ERRORS; i++) {
        fputs("<ApiError><ErrorType>t</ErrorType></ApiError>", m);
    }
    fputs("</ApiErrors>", m);
    fclose(m);
    refused_as(DOC_ERRORS, xml, "more than 4 errors");
    free(xml);

    m = open_memstream(&xml, &len);
    fputs("<ReasonCodes>", m);
    for (int i = 0; i <= FIN_MAX_REASONS; i++) {
        fprintf(m, "<ReasonCode><uri>/r/%d</uri></ReasonCode>", i);
    }
    fputs("</ReasonCodes>", m);
    fclose(m);
    refused_as(DOC_REASONS, xml, "more than 128 reason codes");
    free(xml);

    m = open_memstream(&xml, &len);
    fputs("<WrapUpReasons>", m);
    for (int i = 0; i <= FIN_MAX_REASONS; i++) {
        fprintf(m, "<WrapUpReason><uri>/w/%d</uri></WrapUpReason>", i);
    }
    fputs("</WrapUpReasons>", m);
    fclose(m);
    refused_as(DOC_WRAPUPS, xml, "more than 128 reasons");
    free(xml);
}

static void
test_fin_parse_malformed(void **state)
{
    struct cmn_err err = {{0}};
    struct fin_user u;

    (void)state;
    refused_as(DOC_USER, "<User><loginId>1</loginId><state>READY</User>",
               "xml:");
    refused_as(DOC_DIALOG, "<Dialog><id>1</id>", "xml:");
    refused_as(DOC_UPDATE, "not xml at all", "xml:");
    refused_as(DOC_UPDATE, "", "xml:");
    refused_as(DOC_SYSINFO, "<SystemInfo><x:status/></SystemInfo>", "xml:");
    refused_as(DOC_USER,
               "<User><loginId>1</loginId><state>R&bogus;</state>"
               "</User>",
               "xml:");
    /* NULL document and NULL output. */
    assert_int_equal(fin_parse_user(NULL, 0, &u, &err), CMN_INVALID);
    assert_int_equal(fin_parse_user("<User/>", 7, NULL, &err), CMN_INVALID);
    assert_null(fin_update_parse(NULL, 5, &err));
    /* err may be NULL. */
    assert_int_equal(fin_parse_user("<x/>", 4, &u, NULL), CMN_INVALID);
}

static void
test_fin_parse_too_large(void **state)
{
    struct cmn_err err = {{0}};
    struct fin_user u;
    char *big = repeat(' ', FIN_XML_MAX + 1);

    (void)state;
    memcpy(big, "<User>", 6);
    assert_int_equal(fin_parse_user(big, FIN_XML_MAX + 1, &u, &err),
                     CMN_INVALID);
    want_err(&err, "larger than");
    free(big);
}

/* Every strict prefix of every fixture (up to its closing tag) is
 * refused: a short read never yields a half object. */
static void
test_fin_parse_truncated(void **state)
{
    (void)state;
    for (size_t i = 0; i < CMN_ARRAY_LEN(fixtures); i++) {
        struct cmn_err err = {{0}};
        size_t len, end;
        char *xml = load_fixture(fixtures[i].file, &len);

        if (parse_as(fixtures[i].kind, xml, len, &err) != CMN_OK) {
            fail_msg("%s: %s", fixtures[i].file, err.msg);
        }
        end = len;
        while (end > 0 && xml[end - 1] != '>') {
            end--;
        }
        for (size_t cut = 0; cut < end; cut++) {
            if (parse_as(fixtures[i].kind, xml, cut, &err) == CMN_OK) {
                fail_msg("%s accepted cut at %zu", fixtures[i].file, cut);
            }
        }
        free(xml);
    }
}

static void
test_fin_parse_required_and_values(void **state)
{
    (void)state;
    refused_as(DOC_USER, "<User><state>READY</state></User>",
               "user: <loginId> missing");
    refused_as(DOC_USER, "<User><loginId>1</loginId><state/></User>",
               "user: <state> missing");
    refused_as(DOC_DIALOG, "<Dialog><state>ACTIVE</state></Dialog>",
               "dialog: <id> missing");
    refused_as(DOC_DIALOG, "<Dialog><id>1</id></Dialog>",
               "dialog: <state> missing");
    refused_as(DOC_DIALOG,
               "<Dialog><id>1</id><state>A</state><mediaProperties>"
               "<callvariables><CallVariable><value>v</value></CallVariable>"
               "</callvariables></mediaProperties></Dialog>",
               "CallVariable: <name> missing");
    /* Two values for one field: neither is picked. */
    refused_as(DOC_USER,
               "<User><loginId>1</loginId><loginId>2</loginId>"
               "<state>READY</state></User>",
               "<loginId> appears twice");
    refused_as(DOC_DIALOG,
               "<Dialog><id>1</id><state>A</state><participants/>"
               "<participants/></Dialog>",
               "<participants> appears twice");
    refused_as(DOC_ERRORS,
               "<ApiErrors><ApiError><ErrorType>a</ErrorType>"
               "<errorType>b</errorType></ApiError></ApiErrors>",
               "<ErrorType> appears twice");
    refused_as(DOC_ERRORS, "<ApiErrors/>", "no ApiError");
    refused_as(DOC_USER,
               "<User><loginId>1</loginId><state>R</state><ReasonCode>"
               "<forAll>yes</forAll></ReasonCode></User>",
               "user: ReasonCode: <forAll> is not true or false");
    refused_as(DOC_SYSINFO,
               "<SystemInfo><primaryNode><httpsPort>65536</httpsPort>"
               "</primaryNode></SystemInfo>",
               "systemInfo: primaryNode: <httpsPort> is not a port number");
    refused_as(DOC_SYSINFO,
               "<SystemInfo><secondaryNode><xmppPort>-1</xmppPort>"
               "</secondaryNode></SystemInfo>",
               "not a port number");
    refused_as(DOC_DIALOGS,
               "<Dialogs><Dialog><id>1</id><state>A</state></Dialog>"
               "<Dialog><id>2</id></Dialog></Dialogs>",
               "dialogs: item 2: dialog: <state> missing");
    /* Unknown elements are ignored, namespaces too. */
    accepted_as(DOC_USER, "<User xmlns=\"urn:x\"><loginId>1</loginId>"
                          "<state>READY</state><future><a/></future></User>");
}

/* --- lookups on odd input --- */

static void
test_fin_lookups_null(void **state)
{
    struct fin_dialog d;

    (void)state;
    memset(&d, 0, sizeof(d));
    assert_null(fin_dialog_var(NULL, "x"));
    assert_null(fin_dialog_var(&d, NULL));
    assert_null(fin_dialog_participant(NULL, "1"));
    assert_null(fin_dialog_participant(&d, "1"));
    assert_null(fin_dialog_other(NULL, "1"));
    assert_null(fin_dialog_other(&d, "1"));
    assert_false(fin_participant_can(NULL, "DROP"));
    d.nparts = 1;
    snprintf(d.parts[0].media_address, sizeof(d.parts[0].media_address),
             "2000");
    assert_ptr_equal(fin_dialog_other(&d, NULL), &d.parts[0]);
    assert_false(fin_participant_can(&d.parts[0], NULL));
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
        cmocka_unit_test(test_fin_parse_user_full),
        cmocka_unit_test(test_fin_parse_user_minimal),
        cmocka_unit_test(test_fin_parse_dialog_two_parties),
        cmocka_unit_test(test_fin_parse_dialogs_list),
        cmocka_unit_test(test_fin_parse_dialogs_empty),
        cmocka_unit_test(test_fin_parse_api_errors_503),
        cmocka_unit_test(test_fin_parse_systeminfo_two_nodes),
        cmocka_unit_test(test_fin_parse_reason_codes),
        cmocka_unit_test(test_fin_parse_wrapup_reasons),
        cmocka_unit_test(test_fin_update_user),
        cmocka_unit_test(test_fin_update_dialog),
        cmocka_unit_test(test_fin_update_dialogs_post_delete),
        cmocka_unit_test(test_fin_update_api_errors),
        cmocka_unit_test(test_fin_update_systeminfo),
        cmocka_unit_test(test_fin_update_unmodelled_and_no_data),
        cmocka_unit_test(test_fin_update_capitalised_user),
        cmocka_unit_test(test_fin_update_refused),
        cmocka_unit_test(test_fin_parse_wrong_root),
        cmocka_unit_test(test_fin_parse_oversized_value),
        cmocka_unit_test(test_fin_parse_comment_injection),
        cmocka_unit_test(test_fin_parse_doctype_refused),
        cmocka_unit_test(test_fin_parse_caps),
        cmocka_unit_test(test_fin_parse_malformed),
        cmocka_unit_test(test_fin_parse_too_large),
        cmocka_unit_test(test_fin_parse_truncated),
        cmocka_unit_test(test_fin_parse_required_and_values),
        cmocka_unit_test(test_fin_lookups_null),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
