/* tool_parse: a chat model's tool calls read back from its generated text, one parser per
 * family of chat templates (the conventions of vLLM's tool parsers of the same names):
 *   hermes       Qwen2.5 / Qwen3 / Hermes: <tool_call>\n{"name": ..., "arguments": {...}}\n
 *                </tool_call>, repeated; text before the first one is the message's content;
 *   llama3_json  Llama 3.1+: the whole message is [<|python_tag|>]{"name": ..., "parameters":
 *                {...}} (or "arguments"), several separated by ";";
 *   mistral      Mistral: [TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]; the marker is a
 *                special token, skipped in the decoded text, so a message that is such a JSON
 *                list is read as calls too.
 * Text that does not hold calls in the parser's shape, or holds them malformed (not JSON, no
 * "name", arguments not an object), is no call at all: the caller answers it as plain content,
 * whole. Dialect-side text processing: knows nothing of HTTP, models or tokens. */
#ifndef INFERD_TOOL_PARSE_H
#define INFERD_TOOL_PARSE_H

#include <stdbool.h>
#include <stddef.h>

/* One call read from the text. */
struct tool_call {
    char *name;      /* malloc'ed */
    char *arguments; /* the arguments object as JSON text (json.dumps' separators), malloc'ed */
};

/* What a text holds: content before the calls, then the calls. */
struct tool_parse {
    char *content; /* malloc'ed; NULL when there is none (only whitespace) */
    size_t content_len;
    struct tool_call *calls; /* malloc'ed */
    size_t n_calls;
};

struct tool_parser {
    const char *name;            /* the config's tool_parser value */
    const char *template_marker; /* a chat template mentioning it defaults to this parser */
    const char *close; /* a call ends with this marker, and a stream reads each call (calls())
                          as soon as it arrives; NULL: the calls are read at the end */
    /* The call syntax tool_choice "required" / a named function forces (tool_grammar.c), as
     * decoded text: force_open + {"name": ..., "<args_key>": {...}} + force_close (regexes,
     * grammar.h's syntax: hermes' newlines around the JSON are optional, as its parser
     * reads them). A marker
     * that is a special token (mistral's [TOOL_CALLS], llama's <|python_tag|>) has no decoded
     * text and is left out: the parser reads the message without it. */
    const char *force_open, *force_close, *args_key;
    unsigned id_len; /* tool-call ids: 0 = "call_" + 24 letters and digits (OpenAI's shape);
                        else exactly that many letters and digits (Mistral's templates
                        refuse other ids) */
    /* Where calls start in text[0..len): an offset < len, or len when there are none so far;
     * *held: how many bytes at the end (before len) could still turn into the start as more
     * text comes (a streamed message holds them back). No start lies before from (a stream's
     * text released so far: each token's call scans only the new bytes). */
    size_t (*start)(const char *text, size_t len, size_t from, size_t *held);
    /* The calls of text[0..len), which starts where start() said: 0, or -1 when malformed
     * (out's calls may be partly filled: the caller frees them). */
    int (*calls)(const char *text, size_t len, struct tool_parse *out);
};

/* The parser called name; NULL when there is none. */
const struct tool_parser *tool_parser_by_name(const char *name);
/* The first parser (in the table's order) whose template_marker mentions(ctx, marker) says
 * the model's chat template holds; NULL when none. */
const struct tool_parser *tool_parser_guess(bool (*mentions)(const void *ctx, const char *marker),
                                            const void *ctx);

/* Reads text[0..len): true when it holds one or more well-formed calls (out filled: content
 * before them, the calls); false when it holds none or malformed ones (out left empty: the
 * whole text is content). Out of memory is false too. */
bool tool_parse_text(const struct tool_parser *p, const char *text, size_t len,
                     struct tool_parse *out);
void tool_parse_fini(struct tool_parse *t);

/* A fresh tool-call id in buf (at least 32 bytes): p's shape, random letters and digits. */
void tool_call_id(const struct tool_parser *p, char *buf, size_t size);

#endif
