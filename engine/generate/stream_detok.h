/* stream_detok: incremental detokenization for streaming. Given the ids generated so far, one at
 * a time, returns the text each new token makes final, so that a stream can send text as soon
 * as it exists without ever sending half a character. Owns a copy of the ids; borrows the
 * tokenizer. Knows nothing of stop strings (stop.h holds those back).
 *
 * The method is TGI's decode_token (and transformers' TextStreamer's): two offsets into the ids,
 * prefix <= read. For a new token, decode ids[prefix:read] (already sent) and ids[prefix:]; when
 * the second is longer and does not end in U+FFFD, the difference is new text and the offsets
 * move to (read, n); otherwise nothing is sent yet. Decoding from a token of left context keeps
 * what depends on neighbours right (Metaspace's leading space, which the decoder drops at the
 * start of a text). A U+FFFD at the end is what a byte-fallback piece (Llama <0xE6>) or a
 * byte-level one (GPT-2) decodes to while its character is incomplete: that text waits for the
 * next token. detok_flush releases whatever still waits (at the end of the stream an incomplete
 * character stays U+FFFD, as a full decode gives it).
 *
 * Without context, the concatenation of every delta and the flush equals
 * tokenizer_decode(ids, skip_special_tokens); with context (the last prompt ids; TGI uses 5),
 * it is the text those ids add after the context, with the leading space a full decode has. */
#ifndef INFERD_GEN_STREAM_DETOK_H
#define INFERD_GEN_STREAM_DETOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "tokenizer/tokenizer.h"

struct detok;

/* tk must outlive the detok. context (may be NULL) is copied. */
int detok_new(const struct tokenizer *tk, bool skip_special_tokens, const int32_t *context,
              size_t n_context, struct detok **out, struct err *e);
void detok_free(struct detok *d);

/* Appends one id. *text, *len: the text it makes final, possibly empty; the pointer stays valid
 * until the next call on d. */
int detok_push(struct detok *d, int32_t id, const char **text, size_t *len, struct err *e);

/* Releases what is still held back (same contract as detok_push); call once, at the end. */
int detok_flush(struct detok *d, const char **text, size_t *len, struct err *e);

/* Number of ids pushed (context not counted). */
size_t detok_n_tokens(const struct detok *d);

#endif
