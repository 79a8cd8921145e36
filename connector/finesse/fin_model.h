/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fin_model.h - Cisco Finesse objects as the connector keeps them: User,
 * Dialog (with participants, call variables and ECC variables), the
 * Update notification envelope, ApiErrors, SystemInfo, reason codes and
 * wrap-up reasons. Plain structs of fixed-size strings so a whole model
 * can be copied, compared and freed without surprises.
 * Facts: ../shared/reference/finesse.md §1-2. */
#ifndef FIN_MODEL_H
#define FIN_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#define FIN_ID_MAX      64 /* loginId, dialog id, reason code id */
#define FIN_ADDR_MAX    64 /* extensions, phone numbers */
#define FIN_STATE_MAX   32 /* READY, NOT_READY, ALERTING, ... */
#define FIN_LABEL_MAX   128
#define FIN_NAME_MAX    128
#define FIN_VALUE_MAX   256 /* a call variable's value (Finesse: 40..210) */
#define FIN_URI_MAX     160
#define FIN_MAX_VARS    64 /* callVariable1..10 + ECC variables */
#define FIN_MAX_PARTS   8  /* participants of one dialog */
#define FIN_MAX_ACTIONS 12
#define FIN_MAX_DIALOGS                   \
    16 /* dialogs of one agent at once (a \
           consult leg, a conference...) */
#define FIN_MAX_REASONS 128
#define FIN_MAX_ERRORS  4

struct fin_reason_code {
    char id[FIN_ID_MAX];          /* Finesse DB id (what PUT User takes) */
    char category[FIN_STATE_MAX]; /* NOT_READY | LOGOUT */
    char code[FIN_ID_MAX];        /* the code reported to the ACD */
    char label[FIN_LABEL_MAX];
    bool for_all;
    bool system_code;
};

struct fin_user {
    char login_id[FIN_ID_MAX];
    char login_name[FIN_NAME_MAX];
    char state[FIN_STATE_MAX];         /* LOGOUT, NOT_READY, READY, TALKING,
                                          HOLD, WORK, WORK_READY, RESERVED.. */
    char pending_state[FIN_STATE_MAX]; /* "" when none */
    char reason_code_id[FIN_ID_MAX];   /* "" when none */
    struct fin_reason_code reason;     /* when the User embeds ReasonCode */
    char state_change_time[40];
    char extension[FIN_ADDR_MAX];
    char first_name[FIN_NAME_MAX];
    char last_name[FIN_NAME_MAX];
    char team_id[FIN_ID_MAX];
    char team_name[FIN_NAME_MAX];
    char wrapup_on_incoming[32]; /* REQUIRED, OPTIONAL, NOT_ALLOWED.. */
    char wrapup_on_outgoing[32];
    bool supervisor;
};

struct fin_var {
    char name[FIN_NAME_MAX]; /* callVariable1.., or ECC "user.xxx" */
    char value[FIN_VALUE_MAX];
};

struct fin_participant {
    char media_address[FIN_ADDR_MAX];
    char media_address_type[32]; /* AGENT_DEVICE or other */
    char state[FIN_STATE_MAX];   /* ALERTING, ACTIVE, HELD, DROPPED, ... */
    char state_cause[FIN_STATE_MAX];
    char actions[FIN_MAX_ACTIONS][FIN_STATE_MAX];
    size_t nactions;
};

struct fin_dialog {
    char id[FIN_ID_MAX];
    char secondary_id[FIN_ID_MAX];
    char associated_uri[FIN_URI_MAX];
    char media_type[16];
    char state[FIN_STATE_MAX]; /* ALERTING, INITIATING, INITIATED, ACTIVE,
                                  DROPPED, FAILED, ACCEPTED */
    char from_address[FIN_ADDR_MAX];
    char to_address[FIN_ADDR_MAX];
    char call_type[FIN_STATE_MAX];
    char dialed_number[FIN_ADDR_MAX];
    char dnis[FIN_ADDR_MAX];
    char queue_name[FIN_NAME_MAX];
    char queue_number[FIN_ID_MAX];
    char wrapup_reason[FIN_LABEL_MAX];
    struct fin_var vars[FIN_MAX_VARS]; /* call variables then ECC */
    size_t nvars;
    struct fin_participant parts[FIN_MAX_PARTS];
    size_t nparts;
};

/* A dialog is ~16 KB; lists are heap arrays (fin_dialogs_free) so an
 * agent with no call costs nothing. */
struct fin_dialogs {
    struct fin_dialog *items; /* n entries, at most FIN_MAX_DIALOGS */
    size_t n;
};

struct fin_api_error {
    char type[FIN_LABEL_MAX];    /* ErrorType: "Invalid State", ... */
    char message[FIN_LABEL_MAX]; /* ErrorMessage: CF_INVALID_OBJECT_STATE */
    char data[FIN_LABEL_MAX];    /* ErrorData: "22" */
};

struct fin_api_errors {
    struct fin_api_error items[FIN_MAX_ERRORS];
    size_t n;
};

struct fin_node_info {
    char host[FIN_NAME_MAX];
    int https_port;
    int xmpp_port;
};

struct fin_systeminfo {
    char status[FIN_STATE_MAX]; /* IN_SERVICE | OUT_OF_SERVICE |
                                   PARTIAL_SERVICE */
    char xmpp_domain[FIN_NAME_MAX];
    char xmpp_pubsub_domain[FIN_NAME_MAX];
    char deployment_type[16];  /* UCCE | UCCX */
    char system_auth_mode[16]; /* SSO | NON_SSO | HYBRID */
    struct fin_node_info primary;
    struct fin_node_info secondary; /* host "" when single node */
};

/* What an Update notification carries in <data>. */
enum fin_update_kind {
    FIN_UPDATE_UNKNOWN = 0,
    FIN_UPDATE_USER,       /* <user> */
    FIN_UPDATE_DIALOGS,    /* <dialogs> (POST added / DELETE removed) */
    FIN_UPDATE_DIALOG,     /* <dialog> (PUT changed) */
    FIN_UPDATE_API_ERRORS, /* <apiErrors>: an asynchronous CTI error */
    FIN_UPDATE_SYSTEMINFO, /* <systemInfo> */
};

enum fin_update_event {
    FIN_EVENT_UNKNOWN = 0,
    FIN_EVENT_PUT,
    FIN_EVENT_POST,
    FIN_EVENT_DELETE,
};

struct fin_update {
    enum fin_update_kind kind;
    enum fin_update_event event;
    char request_id[FIN_ID_MAX];
    char source[FIN_URI_MAX];
    /* filled according to kind (fin_update_free releases them) */
    struct fin_user user;
    struct fin_dialogs dialogs; /* DIALOGS: the list; DIALOG: one item */
    struct fin_api_errors errors;
    struct fin_systeminfo systeminfo;
};

struct fin_reason_codes {
    struct fin_reason_code items[FIN_MAX_REASONS];
    size_t n;
};

struct fin_wrapup_reason {
    char id[FIN_ID_MAX]; /* from the uri's last segment */
    char label[FIN_LABEL_MAX];
    bool for_all;
};

struct fin_wrapup_reasons {
    struct fin_wrapup_reason items[FIN_MAX_REASONS];
    size_t n;
};

#endif
