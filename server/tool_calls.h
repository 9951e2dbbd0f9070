/* tool_calls: OpenAI tool calling on /v1/chat/completions, as vLLM serves it: the request's
 * `tools` (function definitions whose `parameters` are JSON Schema objects) and `tool_choice`
 * (none / auto / required / {"type": "function", "function": {"name": ...}}) checked; the
 * messages' assistant `tool_calls` and `tool` role messages checked and shaped for the chat
 * template (each call's `arguments` JSON string decoded to the object the templates print, as
 * vLLM does before transformers' apply_chat_template); and the answer: the generated text read
 * by the model's tool parser (tool_parse.h) into `message.tool_calls` with finish_reason
 * "tool_calls", or, streaming, into `delta.tool_calls` chunks. With tool_choice required or
 * named, a grammar forces the call (tool_grammar.h); a text without it (cut by max_tokens) is
 * still answered as an error. */
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
    json_t *tools; /* the request's `tools` (a reference; the chat route drops it once the
                      template is rendered), NULL without */
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

/* Streaming one choice: the text so far, what of it is answered. */
struct tool_stream {
    char *buf; /* malloc'ed */
    size_t len, cap;
    size_t sent;    /* bytes of buf answered: sent as content, or read as calls */
    size_t n_calls; /* calls sent so far (the next one's index) */
    bool in_calls;  /* the calls started at buf[sent] */
};

/* Appends delta; returns the chunks' `delta` objects that may go out now (a new JSON array,
 * maybe empty; NULL when out of memory): the content that cannot be part of a call, and with
 * a parser whose calls have a closing marker (hermes) each call as soon as it is closed, as
 * two deltas: {"tool_calls": [{"index", "id", "type", "function": {"name", "arguments": ""}}]}
 * and {"tool_calls": [{"index", "function": {"arguments"}}]}. With tool_choice required or
 * named, nothing goes out before the end. */
json_t *tool_stream_push(const struct tool_req *r, struct tool_stream *s, const char *delta,
                         size_t len);
/* The end of the choice's text: the deltas still to send (the text not answered yet read as
 * tool_answer reads a text: its calls, or, malformed, all of it as content), *called when the
 * choice made calls (finish_reason "tool_calls"). NULL with e as tool_answer (tool_choice
 * required or named not met), or ERR_NOMEM. A call already sent stays sent: a stream is
 * all-or-nothing per call, a whole answer per text. */
json_t *tool_stream_end(const struct tool_req *r, struct tool_stream *s, bool *called,
                        struct err *e);
void tool_stream_fini(struct tool_stream *s);

#endif
