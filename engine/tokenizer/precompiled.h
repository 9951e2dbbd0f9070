/* precompiled: the SentencePiece "precompiled_charsmap" normalizer (HF Precompiled, from
 * the spm_precompiled crate) used by XLM-R, ALBERT, T5 and other Unigram tokenizers.
 * Owns the decoded charsmap (a double-array trie over UTF-8 plus a blob of replacement
 * strings); the normalizer row itself is listed in normalize.c's table. */
#ifndef INFERD_PRECOMPILED_H
#define INFERD_PRECOMPILED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tok.h"

struct precompiled;

/* Builds from the raw (base64-decoded) charsmap; ERR_FORMAT when it is truncated or its
 * replacement blob is not UTF-8. */
int precompiled_new(const unsigned char *map, size_t len, struct precompiled **out, struct err *e);
void precompiled_free(struct precompiled *p);

/* spm_precompiled transform(): the replacement of the SHORTEST prefix of s[0..len) that is
 * a key of the trie (the crate takes the first common-prefix result). Returns false when
 * no prefix matches; otherwise *repl borrows the replacement (repl_len bytes, may be 0). */
bool precompiled_transform(const struct precompiled *p, const char *s, size_t len,
                           const char **repl, size_t *repl_len);

/* Strict RFC 4648 base64 (with padding, as Rust's BASE64_STANDARD); *out is malloc'ed.
 * Returns 0, ERR_NOMEM, or ERR_FORMAT with *bad_at set to the offending offset. */
int precompiled_base64_decode(const char *s, size_t len, unsigned char **out, size_t *out_len,
                              size_t *bad_at);

extern const struct normalizer_ops normalizer_precompiled_ops;

#endif
