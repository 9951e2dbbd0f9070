/* stop: when one sequence's generation ends, and the text it produces. Feeds each generated id
 * to a stream detokenizer (stream_detok.h), checks end-of-sequence ids, max_new_tokens and stop
 * strings matched on the decoded text (a stop string may span several tokens), and releases the
 * output text step by step, holding back what could still turn out to be the start of a stop
 * string. Owns its detokenizer and the text; borrows the tokenizer.
 *
 *     stopper_new(&params, tk, prompt_tail, n_tail, &st, &e);
 *     for (;;) {
 *         int32_t id = sampler_sample(sp, logits, &choice);
 *         stopper_push(st, id, &step, &e);
 *         send(step.text, step.text_len);             // OpenAI delta.content
 *         if (step.finish != GEN_FINISH_NONE) break;  // the dialect names step.finish
 *     }
 *
 * Order of the checks after each token, as the reference servers do them:
 *   TGI (StoppingCriteria): max_new_tokens reached -> "length", an eos id -> "eos_token", the
 *   text so far ends with a stop string -> "stop_sequence"; the text keeps the stop string and
 *   nothing is held back (GEN_STOP_SUFFIX_KEEP).
 *   OpenAI and the pipeline (vLLM's check_stop): an eos id -> "stop", a stop string found
 *   anywhere in the new text -> "stop", max_new_tokens -> "length". With GEN_STOP_CUT the text
 *   ends just before the stop string (GEN_STOP_CUT_AFTER: just after it), and anything decoded
 *   beyond it is dropped; until then, the longest tail of the text that is a prefix of a stop
 *   string is held back. The earliest match wins; at the same position, the first in the list.
 * ignore_eos turns the eos check off. An eos token's own text is not part of the output when
 * special tokens are skipped (they are here, as transformers' and vLLM's outputs do). */
#ifndef INFERD_GEN_STOP_H
#define INFERD_GEN_STOP_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "generate/params.h"
#include "tokenizer/tokenizer.h"

/* Why a sequence ended; each dialect names them (TGI "length" | "eos_token" | "stop_sequence",
 * OpenAI "length" | "stop" | "stop": server/gen_api.h). */
enum gen_finish {
    GEN_FINISH_NONE = 0, /* not finished */
    GEN_FINISH_LENGTH,   /* max_new_tokens, or stopped from outside (stopper_finish) */
    GEN_FINISH_EOS,      /* an end-of-sequence id */
    GEN_FINISH_STOP,     /* a stop string */
};

struct gen_step {
    /* this token's text from the detokenizer (TGI's token.text), before any stop handling;
     * empty while its character is incomplete */
    const char *token_text;
    size_t token_text_len;
    /* output text this step releases (OpenAI delta.content): all of it concatenated over the
     * steps is the final output text */
    const char *text;
    size_t text_len;
    enum gen_finish finish;
    /* index of the stop string that matched (GEN_FINISH_STOP), else -1 */
    int stop_index;
};

struct stopper;

/* p (copied: the stop strings too) and tk (borrowed; must outlive the stopper). context: the
 * last prompt ids, so that the first token's text is what follows the prompt (see
 * stream_detok.h); may be NULL. */
int stopper_new(const struct gen_params *p, const struct tokenizer *tk, const int32_t *context,
                size_t n_context, struct stopper **out, struct err *e);
void stopper_free(struct stopper *st);

/* Feeds the token just generated. step's pointers stay valid until the next call. After a
 * finish, further pushes are ERR_INTERNAL. */
int stopper_push(struct stopper *st, int32_t id, struct gen_step *step, struct err *e);

/* stopper_push of the last token (a grammar's output is complete): when no check ends the
 * generation first, it ends with why (GEN_FINISH_LENGTH or GEN_FINISH_EOS), the held-back text
 * released with this step. */
int stopper_push_last(struct stopper *st, int32_t id, enum gen_finish why, struct gen_step *step,
                      struct err *e);

/* Ends the generation from outside (a budget, a cancel) with reason `why` (not NONE), releasing
 * the text still held back. A no-op (empty step with the earlier reason) once finished. */
int stopper_finish(struct stopper *st, enum gen_finish why, struct gen_step *step, struct err *e);

/* The output text released so far (all of it once finished); valid until the next call. */
const char *stopper_text(const struct stopper *st, size_t *len);
/* Tokens pushed (TGI generated_tokens, OpenAI completion_tokens). */
size_t stopper_n_tokens(const struct stopper *st);
enum gen_finish stopper_finish_reason(const struct stopper *st);

#endif
