/* tool_calls: OpenAI tool calling on /v1/chat/completions, as vLLM serves it: the request's
 * `tools` (function definitions whose `parameters` are JSON Schema objects) and `tool_choice`
 * (none / auto / required / {"type": "function", "function": {"name": ...}}) checked; the
 * messages' assistant `tool_calls` and `tool` role messages checked and shaped for the chat
 * template (each call's `arguments` JSON string decoded to the object the templates print, as
 * vLLM does before transformers' apply_chat_template); and the answer: the generated text read
 * by the model's tool parser (tool_parse.h) into `message.tool_calls` with finish_reason
 * "tool_calls", or, streaming, into `delta.tool_calls` chunks. No constraint steers the model
 * (docs/DECISIONS.md: where constrained decoding plugs in): with tool_choice required or named,
 * a text without the call is answered as an error. */
#ifndef INFERD_TOOL_CALLS_H
#define INFERD_TOOL_CALLS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "handler.h"
#include "tool_parse.h"

enum tool_choice { TOOL_CHOICE_NONE, TOOL_CHOICE_AUTO, TOOL_CHOICE_REQUIRED, TOOL_CHOICE_NAMED };

/* A request's tools. */
struct tool_req {
    json_t *tools; /* the request's `tools` (a reference), NULL without */
    enum tool_choice choice;
    char name[72];                    /* TOOL_CHOICE_NAMED: the function */
    const struct tool_parser *parser; /* reads the text; NULL: it is plain content */
};

/* Reads body's `tools` and `tool_choice` into r (zeroed first; tool_req_fini it in any case).
 * Errors name the field in *param: ERR_INVALID (422) for a definition that is not a function
 * with a JSON Schema object as `parameters` ("tools[0].function.parameters: `type` must be
 * \"object\", not \"string\""), ERR_GEN_INVALID (400) for a tool_choice that is not one of the
 * four forms or names no defined function. The parser is left NULL (the caller picks it). */
int tool_req_read(const json_t *body, struct tool_req *r, const char **param, struct err *e);
void tool_req_fini(struct tool_req *r);

/* The request's `messages` checked and shaped as they go to the chat template (vLLM's
 * shaping; new reference): content a string (text parts joined by newlines; none or null is
 * ""), an assistant's tool_calls checked with each function.arguments JSON string decoded to
 * its object, a tool message's tool_call_id required. NULL with e set: ERR_GEN_INVALID
 * ("messages[2].tool_calls[0].function.arguments must be a JSON object in a string"),
 * ERR_NOMEM. */
json_t *tool_messages(const json_t *messages, struct err *e);

/* A finished choice's answer: the chat message object {"role": "assistant", "content",
 * "tool_calls"?} from text, with *called set when it holds calls (finish_reason
 * "tool_calls"). NULL with e set (ERR_GEN_FAILED) when tool_choice required or named asked
 * for a call the text does not make. */
json_t *tool_answer(const struct tool_req *r, const char *text, size_t len, bool *called,
                    struct err *e);

/* Streaming one choice: the text so far, what of it went out as content. */
struct tool_stream {
    char *buf; /* malloc'ed */
    size_t len, cap;
    size_t sent; /* bytes of buf sent as content */
};

/* Appends delta; *out and *n: the content that may go out now (a view into s->buf: what cannot be
 * part of a tool call; with tool_choice required or named, nothing). ERR_NOMEM. */
int tool_stream_push(const struct tool_req *r, struct tool_stream *s, const char *delta,
                     size_t len, const char **out, size_t *n);
/* The end of the choice's text: the chunks' `delta` objects still to send, in order (a JSON
 * array: content not sent yet, then per call {"tool_calls": [{"index", "id", "type",
 * "function": {"name", "arguments": ""}}]} and {"tool_calls": [{"index", "function":
 * {"arguments"}}]}), *called as tool_answer. NULL with e as tool_answer. */
json_t *tool_stream_end(const struct tool_req *r, struct tool_stream *s, bool *called,
                        struct err *e);
void tool_stream_fini(struct tool_stream *s);

#endif
