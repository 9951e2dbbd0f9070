/* tokenizer: Hugging Face `tokenizers` 0.23 in C. Loads a tokenizer.json (and the
 * tokenizer_config.json beside it), encodes text or text pairs to ids, token strings,
 * type ids, masks and code-point offsets exactly as HF does, and decodes ids back.
 * A directory with only slow-tokenizer files (vocab.txt, vocab.json + merges.txt) is
 * converted the way transformers converts it (slow.c).
 * A loaded tokenizer is immutable: encode and decode may run from many threads.
 *
 *     struct tokenizer *tk;
 *     struct err e;
 *     if (tokenizer_load("models/bert", &tk, &e)) { puts(e.msg); return; }
 *     struct encodings out = {0};
 *     struct tokenizer_params p = tokenizer_params_default();
 *     tokenizer_encode(tk, "Hello world!", 12, NULL, 0, &p, &out, &e);
 *     // out.v[0].ids = [101, 7592, 2088, 999, 102], offsets [0,0] [0,5] [6,11] ...
 *     encodings_fini(&out);
 *     tokenizer_free(tk);
 */
#ifndef INFERD_TOKENIZER_H
#define INFERD_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "nstr.h"

/* One encoded sequence (HF Encoding). Offsets are code-point offsets into the
 * input text, as Python reports them. Token strings live in a pool it owns. */
struct encoding {
    size_t n, cap;
    int32_t *ids;
    uint32_t *type_ids;
    int32_t *words;     /* word index, -1 for none */
    int8_t *seq;        /* sequence index 0 or 1, -1 for added special tokens */
    uint8_t *special;   /* special_tokens_mask */
    uint8_t *attention; /* attention_mask */
    struct nspan *offsets;
    uint32_t *tok_at; /* token i = pool + tok_at[i], NUL-terminated */
    char *pool;
    size_t pool_len, pool_cap;
};

static inline const char *encoding_token(const struct encoding *enc, size_t i)
{
    return enc->pool + enc->tok_at[i];
}

/* The result of one encode call: v[0] is the encoding, v[1..] the overflowing
 * windows produced by truncation with a stride (HF Encoding.overflowing, flattened
 * in the order transformers returns them). */
struct encodings {
    struct encoding *v;
    size_t n, cap;
};
void encodings_fini(struct encodings *e);

enum trunc_strategy { TRUNC_LONGEST_FIRST, TRUNC_ONLY_FIRST, TRUNC_ONLY_SECOND };
enum side { SIDE_RIGHT, SIDE_LEFT };
enum pad_strategy { PAD_NONE, PAD_LONGEST, PAD_FIXED };

struct tokenizer_params {
    bool add_special_tokens;      /* default true */
    bool truncation;              /* default false unless tokenizer.json enables it */
    size_t max_length;            /* with truncation: total length incl. special tokens */
    size_t stride;                /* overlap of overflowing windows */
    enum trunc_strategy strategy; /* longest_first */
    enum side trunc_side;         /* right */
    /* tokenizers 0.23 tokenizes only about max_length tokens' worth of words before
     * truncating (tokenize_with_limit), so overflow windows stop there. true (the
     * default) reproduces it exactly; false windows the whole text, as tokenizers
     * did before 0.23 and as the question-answering pipeline needs. */
    bool truncate_early;
    enum pad_strategy padding; /* none */
    size_t pad_length;         /* PAD_FIXED length */
    size_t pad_to_multiple_of; /* 0: off */
    enum side pad_side;        /* right */
};

struct tokenizer;

/* Loads DIR/tokenizer.json and DIR/tokenizer_config.json (optional). Without
 * tokenizer.json, converts DIR's slow-tokenizer files as transformers does (slow.h);
 * with neither, ERR_NOT_FOUND naming the files looked for. */
int tokenizer_load(const char *dir, struct tokenizer **out, struct err *e);
/* Builds a tokenizer from tokenizer.json text; config_json may be NULL. */
int tokenizer_from_json(const char *json, size_t len, const char *config_json, size_t config_len,
                        struct tokenizer **out, struct err *e);
void tokenizer_free(struct tokenizer *tk);

/* Default parameters of this tokenizer (truncation/padding from tokenizer.json). */
struct tokenizer_params tokenizer_params_default(const struct tokenizer *tk);

/* Encodes text (and pair when not NULL). Text must be valid UTF-8 (else ERR_INPUT
 * naming the byte offset). out is reset and filled; the caller frees it. */
int tokenizer_encode(const struct tokenizer *tk, const char *text, size_t len, const char *pair,
                     size_t pair_len, const struct tokenizer_params *p, struct encodings *out,
                     struct err *e);

/* Decodes ids to text (transformers' decode): *out is malloc'ed, NUL-terminated.
 * Unknown ids are skipped, as HF does. */
int tokenizer_decode(const struct tokenizer *tk, const int32_t *ids, size_t n,
                     bool skip_special_tokens, char **out, size_t *out_len, struct err *e);

/* transformers' convert_tokens_to_string: runs the decoder over token strings (which need
 * not be vocabulary entries), or joins them with spaces without a decoder. */
int tokenizer_tokens_to_string(const struct tokenizer *tk, const char *const *tokens, size_t n,
                               char **out, size_t *out_len, struct err *e);
/* Whether the model has a non-empty continuing_subword_prefix (WordPiece "##"): the
 * token-classification pipeline's test for word-aware tokenizers. */
bool tokenizer_has_subword_prefix(const struct tokenizer *tk);

/* Vocabulary queries (added tokens first, then the model), -1 / NULL if unknown. */
int32_t tokenizer_token_to_id(const struct tokenizer *tk, const char *token);
const char *tokenizer_id_to_token(const struct tokenizer *tk, int32_t id);
size_t tokenizer_vocab_size(const struct tokenizer *tk); /* 1 + highest id */
/* Whether id is a special token, i.e. one decode skips with skip_special_tokens (an added
 * token marked special, matched by content as HF does); false for unknown ids. */
bool tokenizer_is_special(const struct tokenizer *tk, int32_t id);
/* Number of special tokens the post-processor adds to one sequence or a pair. */
size_t tokenizer_num_special_tokens(const struct tokenizer *tk, bool pair);
/* tokenizer_config.json values used by pipelines (NULL / 0 when absent). */
const char *tokenizer_config_str(const struct tokenizer *tk, const char *key);
size_t tokenizer_model_max_length(const struct tokenizer *tk);
bool tokenizer_config_bool(const struct tokenizer *tk, const char *key, bool dflt);

/* langcodes.c: whether the tokenizer's class builds translation inputs from language codes
 * (NLLB, M2M100, mBART, mBART-50), and those inputs: text's ids (cut to max_length with the
 * codes when max_length > 2) with src_lang's code and </s> placed as the class places them,
 * and *forced_bos the id of tgt_lang's code (*ids malloc'ed). ERR_INVALID names the
 * parameter: a missing or unknown code, a tokenizer without codes. */
bool tokenizer_has_language_codes(const struct tokenizer *tk);
int tokenizer_translation_encode(const struct tokenizer *tk, const char *text, size_t len,
                                 const char *src_lang, const char *tgt_lang, size_t max_length,
                                 int32_t **ids, size_t *n, int32_t *forced_bos, struct err *e);

#endif
