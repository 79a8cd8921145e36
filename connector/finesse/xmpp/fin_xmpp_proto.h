/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fin_xmpp_proto.h - the framed protocol between the XMPP pool (parent) and
 * its worker processes: pure encode/decode, no I/O, so it can be fuzzed.
 *
 * Wire: every frame is a 4-byte big-endian length followed by that many
 * bytes of one JSON object. Frames larger than FIN_XMPP_PROTO_MAX_FRAME are
 * a protocol error; the reader then drops the peer.
 *   parent -> worker: {"op":"config", "ping_interval_s", "ping_timeout_s",
 *                      "connects_per_100ms", "transport"}  (first frame)
 *                     {"op":"connect", "agent", "jid", "password", "host",
 *                      "port", "url", "resource", "tls_required", "ca_file",
 *                      "gen"}   (host+port for tls/starttls, url for
 *                                websocket)
 *                     {"op":"disconnect", "agent"}
 *                     {"op":"shutdown"}
 *   worker -> parent: {"ev":"online"|"offline"|"auth_failed"|"update"|
 *                      "presence", "agent", "node", "payload", "from",
 *                      "available", "detail", "fatal", "gen"}
 *                     (absent = NULL/false/0)
 */
#ifndef FIN_XMPP_PROTO_H
#define FIN_XMPP_PROTO_H

#include <jansson.h>
#include <stdint.h>

#include "cmn.h"
#include "fin_xmpp.h"

#define FIN_XMPP_PROTO_MAX_FRAME ((size_t)4 << 20) /* 4 MiB */
#define FIN_XMPP_PROTO_HDR       4u

enum fin_xmpp_op {
    FIN_XMPP_OP_CONFIG,
    FIN_XMPP_OP_CONNECT,
    FIN_XMPP_OP_DISCONNECT,
    FIN_XMPP_OP_SHUTDOWN,
};

/* A decoded or to-be-encoded command. After decode, the strings point into
 * root and live until fin_xmpp_proto_cmd_cleanup(). */
struct fin_xmpp_cmd {
    enum fin_xmpp_op op;
    struct fin_xmpp_login login; /* CONNECT; DISCONNECT uses login.agent */
    int ping_interval_s;         /* CONFIG */
    int ping_timeout_s;          /* CONFIG */
    int connects_per_100ms;      /* CONFIG */
    enum fin_xmpp_transport transport; /* CONFIG */
    long long gen;               /* CONNECT: session number, echoed in the
                                    session's events so the pool can drop
                                    late events of a replaced session */
    json_t *root;                /* owned after decode, NULL otherwise */
};

/* Streaming frame splitter: feed bytes as they arrive, then take frames
 * with _next until it returns CMN_AGAIN. The buffer never holds more than
 * one partial frame plus the last chunk fed. */
struct fin_xmpp_framer {
    unsigned char *buf;
    size_t len; /* bytes held */
    size_t off; /* bytes already handed out by _next */
    size_t cap;
};

void fin_xmpp_framer_init(struct fin_xmpp_framer *f);
/* Frees the buffer (wiped: command frames carry passwords). */
void fin_xmpp_framer_cleanup(struct fin_xmpp_framer *f);
/* Appends len bytes. CMN_NOMEM, or CMN_INVALID when the pending frame
 * header announces more than FIN_XMPP_PROTO_MAX_FRAME. */
int fin_xmpp_framer_feed(struct fin_xmpp_framer *f, const void *data,
                         size_t len) CMN_NODISCARD;
/* Next complete frame: CMN_OK with *payload and *len pointing into the framer
 * (valid until the next _feed or _cleanup), CMN_AGAIN when no complete
 * frame is buffered, CMN_INVALID when the stream is corrupt (oversized). */
int fin_xmpp_framer_next(struct fin_xmpp_framer *f, const char **payload,
                         size_t *len) CMN_NODISCARD;

/* Encoders: *out is malloc'd (header + JSON), caller frees it (use
 * fin_xmpp_proto_wipe_free for commands, which may hold a password).
 * CMN_INVALID if a string is not UTF-8 or the frame would be too big. */
int fin_xmpp_proto_encode_cmd(const struct fin_xmpp_cmd *c, char **out,
                              size_t *outlen) CMN_NODISCARD;
int fin_xmpp_proto_encode_event(const struct fin_xmpp_event *ev, long long gen,
                                char **out, size_t *outlen) CMN_NODISCARD;

/* Decoders take one frame payload (without the header). On CMN_OK the
 * caller owns *root (cmd->root) and must release it with json_decref /
 * fin_xmpp_proto_cmd_cleanup; on error nothing is held. Required fields:
 * connect needs agent, jid, password, and host or url (port 1..65535 when
 * given); config's transport, when given, must be a known name; disconnect
 * needs agent; events need agent (UPDATE also node and payload, PRESENCE
 * from). Strings with embedded NUL are rejected (payload excepted). */
int fin_xmpp_proto_decode_cmd(const char *buf, size_t len,
                              struct fin_xmpp_cmd *c) CMN_NODISCARD;
void fin_xmpp_proto_cmd_cleanup(struct fin_xmpp_cmd *c);
int fin_xmpp_proto_decode_event(const char *buf, size_t len,
                                struct fin_xmpp_event *ev, long long *gen,
                                json_t **root) CMN_NODISCARD;

/* Short wire names ("online", ...), NULL for an unknown kind. */
const char *fin_xmpp_proto_event_name(enum fin_xmpp_event_kind k);

/* explicit_bzero + free; NULL is fine. */
void fin_xmpp_proto_wipe_free(char *p, size_t len);

#endif
