/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fin_parse.h - pure parsers for Finesse XML (REST bodies and the Update
 * documents carried by XMPP notifications) and builders for request
 * bodies. Bytes in, structs out: no I/O, no globals, fuzzed.
 *
 * Every parser goes through cmn_xml_parse (no DTD, no entities, size and
 * depth caps), matches elements by local name case-insensitively where
 * Finesse is inconsistent (<user> vs <User>), ignores unknown elements,
 * truncates nothing silently (a value longer than its field is an error)
 * and returns CMN_INVALID with err set for anything malformed. */
#ifndef FIN_PARSE_H
#define FIN_PARSE_H

#include "cmn.h"
#include "fin_model.h"

#define FIN_XML_MAX (1024 * 1024) /* largest document accepted */

int fin_parse_user(const char *xml, size_t len, struct fin_user *out,
                   struct cmn_err *err) CMN_NODISCARD;
int fin_parse_dialog(const char *xml, size_t len, struct fin_dialog *out,
                     struct cmn_err *err) CMN_NODISCARD;
/* <Dialogs><Dialog>..</Dialog>..</Dialogs>; out->items malloc'd. */
int fin_parse_dialogs(const char *xml, size_t len, struct fin_dialogs *out,
                      struct cmn_err *err) CMN_NODISCARD;
void fin_dialogs_free(struct fin_dialogs *d);
/* <ApiErrors> (REST, capitalised) or <apiErrors> (notifications). */
int fin_parse_api_errors(const char *xml, size_t len,
                         struct fin_api_errors *out,
                         struct cmn_err *err) CMN_NODISCARD;
int fin_parse_systeminfo(const char *xml, size_t len,
                         struct fin_systeminfo *out,
                         struct cmn_err *err) CMN_NODISCARD;
/* <ReasonCodes category=".."><ReasonCode>..</ReasonCode>..</ReasonCodes> */
int fin_parse_reason_codes(const char *xml, size_t len,
                           struct fin_reason_codes *out,
                           struct cmn_err *err) CMN_NODISCARD;
int fin_parse_wrapup_reasons(const char *xml, size_t len,
                             struct fin_wrapup_reasons *out,
                             struct cmn_err *err) CMN_NODISCARD;
/* An <Update> document (the unescaped text of a pubsub <notification>).
 * Returns a heap object (fin_update_free) or NULL with err. <event> (PUT,
 * POST or DELETE, any case) and <source> are required; <data> may be
 * absent or hold an object not modelled here (kind UNKNOWN), but not two
 * objects. A field present twice is refused in every parser. */
struct fin_update *fin_update_parse(const char *xml, size_t len,
                                    struct cmn_err *err);
void fin_update_free(struct fin_update *u);

/* Lookups on a parsed dialog. */
const char *fin_dialog_var(const struct fin_dialog *d, const char *name);
/* The participant whose mediaAddress is ext, or NULL. */
const struct fin_participant *fin_dialog_participant(const struct fin_dialog *d,
                                                     const char *ext);
/* The caller: first participant that is not ext (Finesse has no flag). */
const struct fin_participant *fin_dialog_other(const struct fin_dialog *d,
                                               const char *ext);
bool fin_participant_can(const struct fin_participant *p, const char *action);

/* --- request bodies (malloc'd XML; values escaped) ---
 * Each returns NULL when a required argument is NULL or "", when any
 * value is not UTF-8 XML text (C0 controls other than TAB/LF/CR,
 * surrogates, U+FFFE/U+FFFF, broken sequences), or on allocation failure.
 * An optional argument that is "" is left out, like NULL. */
/* <User><state>S</state>[<reasonCodeId>R</reasonCodeId>]
 *       [<extension>E</extension>]</User>; reason and ext may be NULL. */
char *fin_xml_user_state(const char *state, const char *reason_code_id,
                         const char *extension);
/* <Dialog><requestedAction>MAKE_CALL</requestedAction><toAddress>..
 * </toAddress><fromAddress>..</fromAddress></Dialog> */
char *fin_xml_make_call(const char *to, const char *from);
/* PUT Dialog: action with targetMediaAddress; to (CONSULT_CALL,
 * TRANSFER_SST) and dtmf (SEND_DTMF, as actionParams dtmfString) may be
 * NULL. */
char *fin_xml_dialog_action(const char *action, const char *target,
                            const char *to, const char *dtmf);
/* UPDATE_CALL_DATA with <mediaProperties><wrapUpReason>. */
char *fin_xml_wrapup(const char *reason);

#endif
