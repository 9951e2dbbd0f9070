/* chat/template: Hugging Face chat templates in C. A chat template is the Jinja2 template in a
 * tokenizer's `chat_template`; rendering it with the conversation gives the prompt text, byte
 * for byte what transformers' tokenizer.apply_chat_template(messages, tokenize=False, ...)
 * returns. Owns compiled templates; knows nothing of tokens, HTTP or models.
 *
 *     struct chat_template_set ts;
 *     if (chat_template_load_from_tokenizer_dir("models/llama", &ts, &e) != 0)
 *         fail with e.msg;
 *     json_t *extra = json_pack("{s:b}", "add_generation_prompt", 1);   // + tools, kwargs
 *     char *prompt; size_t len;
 *     if (chat_template_set_render(&ts, messages, extra, &prompt, &len, &e) != 0)
 *         reply 422 with e.msg;          // a template's raise_exception("...") message as is
 *                                        // (ERR_INVALID); a broken budget is ERR_TOO_LARGE
 *     ... tokenize prompt (without adding special tokens again), free(prompt) ...
 *     chat_template_set_fini(&ts);
 *
 * The language is the Jinja2 subset chat templates use, with transformers' environment
 * (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols): {{ }}, {% %},
 * {# #}, whitespace control with "-" and "+", for/else with `loop`, if/elif/else, set (also
 * namespace attributes and block sets), macros, with, filter blocks, break/continue,
 * {% generation %}; Python's expressions, str/dict/list methods and Jinja's filters and tests;
 * transformers' tojson (json.dumps, ensure_ascii=False), raise_exception and strftime_now.
 * Undefined variables are Jinja's default Undefined: falsy, printed as "", `is defined` false.
 * Compiled templates are immutable: any number of threads may render one at once. */
#ifndef INFERD_CHAT_TEMPLATE_H
#define INFERD_CHAT_TEMPLATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct chat_template;

/* What one compile or render of a template may cost. A template is code that comes with a
 * model directory: whatever it does, it fails with an error instead of crashing or hanging
 * the process. A field left 0 takes its default (docs/DECISIONS.md has the measurements). */
struct chat_template_budget {
    unsigned max_depth;       /* nesting of the syntax (refused at compile) and of evaluation
                                 (expressions, blocks, macro calls): 256 */
    unsigned max_value_depth; /* nesting of values printed, compared or dumped as JSON: 64 */
    unsigned long long max_steps; /* statements, loop iterations, repetitions and items visited
                                     by filters and comparisons in one render: 10M */
    size_t max_output_bytes;      /* the rendered text and any one string or list: 8 MiB */
    size_t max_memory_bytes;      /* everything one render allocates: 128 MiB */
    unsigned max_time_ms;         /* wall time of one render: 2000 */
};

/* The defaults. */
struct chat_template_budget chat_template_budget_default(void);

/* Compiles a template (UTF-8, NUL-terminated). Syntax errors are ERR_FORMAT with the position:
 * "chat template: line 3:15: syntax error: unexpected '}'"; syntax nested deeper than the
 * budget is ERR_FORMAT "... nests too deeply". */
int chat_template_compile(const char *source, struct chat_template **out, struct err *e);
/* The same with a budget (NULL: the defaults), which every render of the template uses. */
int chat_template_compile_budget(const char *source, const struct chat_template_budget *budget,
                                 struct chat_template **out, struct err *e);
void chat_template_free(struct chat_template *t);
/* Whether the template's text holds needle (t NULL: false): what a caller that must guess a
 * model's conventions from its template (the tool-call markers it teaches) may ask. */
bool chat_template_mentions(const struct chat_template *t, const char *needle);

/* Renders with the variables transformers passes: `messages` (a JSON array of message
 * objects), `tools` and `documents` (none unless extra sets them), `add_generation_prompt`
 * (false unless extra sets it), and every member of `extra` (a JSON object or NULL), e.g.
 * bos_token, eos_token, tools, enable_thinking or any custom keyword. *out is a malloc'ed
 * NUL-terminated string of *len bytes (the caller frees it). Errors: ERR_INVALID with the
 * exact message of a template's raise_exception(...), or "chat template: line L:C: ..." for a
 * template that fails on this input (an undefined value used, a type error, an integer
 * overflow); ERR_TOO_LARGE when a render breaks its budget: "chat template: exceeded the step
 * budget (10000000 steps)", "... the output budget ...", "... the time budget ...", "... nests
 * too deeply ...", "... needs more than 128 MiB of memory". */
int chat_template_render(const struct chat_template *t, const json_t *messages, const json_t *extra,
                         char **out, size_t *len, struct err *e);

/* What a tokenizer directory provides for chat. */
struct chat_template_set {
    struct chat_template *main;     /* the default template; NULL when there is none */
    struct chat_template *tool_use; /* the template named "tool_use", or NULL */
    char *bos_token, *eos_token;    /* NULL when unset */
    json_t *special_tokens;         /* {"bos_token": ..., "eos_token": ..., ...}: the special
                                       tokens transformers passes to every template */
};

/* Reads DIR's chat template as transformers does: chat_template.jinja if present, else
 * chat_template.json, else tokenizer_config.json's `chat_template` (a string, or a list of
 * {"name", "template"} where "default" is the main one and "tool_use" the one used when tools
 * are given); additional_chat_templates/tool_use.jinja too. Special tokens come from
 * tokenizer_config.json, as strings or AddedToken objects {"content": ...}. A directory
 * without a chat template is not an error: main is NULL. */
int chat_template_load_from_tokenizer_dir(const char *dir, struct chat_template_set *out,
                                          struct err *e);
void chat_template_set_fini(struct chat_template_set *ts);

/* Renders with the set's special tokens as variables (extra's members override them); uses
 * tool_use when extra has non-null tools and the set has that template, else main
 * (ERR_INVALID when there is none). */
int chat_template_set_render(const struct chat_template_set *ts, const json_t *messages,
                             const json_t *extra, char **out, size_t *len, struct err *e);

#endif
