/* tok: the plug-in interfaces of the tokenizer, shared by the component files.
 * A tokenizer.json is a chain of five component kinds (normalizer, pre-tokenizer,
 * model, post-processor, decoder). Each kind is a table of `*_ops` rows keyed by the
 * JSON "type" string; tokenizer.c only assembles the chain and never switches on a
 * type. Component states are immutable after parse, so encode/decode may run from
 * many threads at once. Nothing here is part of the public engine API. */
#ifndef INFERD_TOK_H
#define INFERD_TOK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "nstr.h"
#include "tokenizer.h"
#include "vocab.h"

/* ---- JSON helpers for parse functions (messages name the field) ---- */
/* Each returns 0 or ERR_FORMAT; a missing optional field leaves *out unchanged.
 * `where` names the component ("normalizer BertNormalizer") for the message. */
int tokj_bool(const json_t *o, const char *key, bool required, bool *out, const char *where,
              struct err *e);
int tokj_int(const json_t *o, const char *key, bool required, long long *out, const char *where,
             struct err *e);
int tokj_double(const json_t *o, const char *key, bool required, double *out, const char *where,
                struct err *e);
/* *out borrows the JSON string (lives as long as the json_t); NULL stays when null/missing. */
int tokj_str(const json_t *o, const char *key, bool required, const char **out, const char *where,
             struct err *e);

/* ---- regexes (regex.c) ---- */
/* Compiles a tokenizer.json (Oniguruma) pattern for PCRE2 with UTF, UCP, MULTILINE and
 * JIT; `where` and `key` name the field in error messages (ERR_FORMAT). */
struct pcre2_real_code_8;
int tok_regex_compile(const char *pattern, size_t len, struct pcre2_real_code_8 **out,
                      const char *where, const char *key, struct err *e);

/* A tokenizer.json pattern object {"String": "..."} or {"Regex": "..."} (Replace
 * normalizer and decoder, Split pre-tokenizer). */
struct tok_pattern {
    char *literal; /* the String pattern, or NULL for a Regex */
    size_t literal_len;
    struct pcre2_real_code_8 *re;
};
/* Parses o[key] (`where` names the component for messages). */
int tok_pattern_parse(const json_t *o, const char *key, const char *where, struct tok_pattern *p,
                      struct err *e);
void tok_pattern_fini(struct tok_pattern *p);

/* The state of a Replace row (normalizer and decoder): {"pattern": ..., "content": ...}. */
struct tok_replace {
    struct tok_pattern pat;
    char *content;
};
int tok_replace_parse(const json_t *j, void **state, const char *where, struct err *e);
void tok_replace_free(void *state);

/* ---- normalizers (normalize.c, precompiled.c) ---- */
struct normalizer_ops {
    const char *type; /* tokenizer.json "type" */
    int (*parse)(const json_t *j, void **state, struct err *e);
    int (*apply)(const void *state, struct nstr *ns, struct err *e);
    void (*free)(void *state);
};
struct normalizer {
    const struct normalizer_ops *ops;
    void *state;
};
/* Builds any normalizer from its JSON object (Sequence recurses through this). */
int normalizer_new(const json_t *j, struct normalizer **out, struct err *e);
int normalizer_apply(const struct normalizer *n, struct nstr *ns, struct err *e);
void normalizer_free(struct normalizer *n);
extern const struct normalizer_ops *const normalizer_table[]; /* NULL-terminated */

/* ---- pre-tokenizers (pretokenize.c) ---- */
/* The pre-tokenized string: a list of splits. Splits with added_id >= 0 are added
 * tokens already decided (HF Split with tokens = Some) and are never touched. */
struct pretok_split {
    struct nstr ns;
    int32_t added_id; /* -1: still to be tokenized by the model */
};
struct pretok {
    struct pretok_split *v;
    size_t n, cap;
};
/* Called once per not-yet-tokenized split; fn appends the pieces it makes to out
 * (it may nstr_move *piece into out). Empty pieces are dropped afterwards (as HF). */
typedef int (*pretok_split_fn)(void *ctx, struct nstr *piece, struct nstr_vec *out, struct err *e);
int pretok_split(struct pretok *pt, pretok_split_fn fn, void *ctx, struct err *e);
int pretok_push(struct pretok *pt, struct nstr *ns, int32_t added_id); /* moves *ns */
void pretok_fini(struct pretok *pt);

struct pretokenizer_ops {
    const char *type;
    int (*parse)(const json_t *j, void **state, struct err *e);
    int (*apply)(const void *state, struct pretok *pt, struct err *e);
    void (*free)(void *state);
};
struct pretokenizer {
    const struct pretokenizer_ops *ops;
    void *state;
};
int pretokenizer_new(const json_t *j, struct pretokenizer **out, struct err *e);
int pretokenizer_apply(const struct pretokenizer *p, struct pretok *pt, struct err *e);
void pretokenizer_free(struct pretokenizer *p);
extern const struct pretokenizer_ops *const pretokenizer_table[];

/* ---- models (wordpiece.c, bpe.c, unigram.c) ---- */
struct token {
    int32_t id;
    uint32_t start, end; /* byte offsets into the piece given to tokenize */
};
struct token_vec {
    struct token *v;
    size_t n, cap;
};
int token_push(struct token_vec *v, int32_t id, uint32_t start, uint32_t end);
void token_vec_fini(struct token_vec *v);

struct tok_model_ops {
    const char *type;
    int (*parse)(const json_t *j, void **state, struct err *e);
    /* Appends the tokens of s[0..len) (one pre-tokenized piece, valid UTF-8). */
    int (*tokenize)(const void *state, const char *s, size_t len, struct token_vec *out,
                    struct err *e);
    const char *(*id_to_token)(const void *state, int32_t id);            /* NULL if unknown */
    int32_t (*token_to_id)(const void *state, const char *s, size_t len); /* -1 if unknown */
    size_t (*vocab_size)(const void *state);
    void (*free)(void *state);
};
struct tok_model {
    const struct tok_model_ops *ops;
    void *state;
};
int tok_model_new(const json_t *j, struct tok_model **out, struct err *e);
void tok_model_free(struct tok_model *m);
extern const struct tok_model_ops *const tok_model_table[];

/* ---- encodings (encoding.c): struct encoding is public, see tokenizer.h ---- */
void encoding_init(struct encoding *enc);
void encoding_fini(struct encoding *enc);
void encoding_clear(struct encoding *enc);
int encoding_push(struct encoding *enc, int32_t id, const char *tok, size_t tok_len,
                  uint32_t type_id, int32_t word, int seq, bool special, struct nspan offsets);
/* Appends tokens [start, stop) of src to dst. */
int encoding_append(struct encoding *dst, const struct encoding *src, size_t start, size_t stop);

/* ---- post-processors (postprocess.c) ---- */
struct postprocessor_ops {
    const char *type;
    int (*parse)(const json_t *j, void **state, struct err *e);
    /* Number of special tokens added for one sequence or a pair. */
    size_t (*added_tokens)(const void *state, bool is_pair);
    /* out = a (+ b when not NULL) with special tokens when add_special, type ids set.
     * a and b are one window each (truncation and overflow are handled by the caller);
     * they may be modified (offset trimming). out is empty on entry. */
    int (*process)(const void *state, struct encoding *a, struct encoding *b, bool add_special,
                   struct encoding *out, struct err *e);
    void (*free)(void *state);
};
struct postprocessor {
    const struct postprocessor_ops *ops;
    void *state;
};
/* Special tokens of a template are resolved to ids when parsed, so no vocab is needed. */
int postprocessor_new(const json_t *j, struct postprocessor **out, struct err *e);
void postprocessor_free(struct postprocessor *p);
/* HF's behaviour without a post-processor: concatenate, type ids 0 and 1 kept as given. */
int postprocess_default(struct encoding *a, struct encoding *b, struct encoding *out,
                        struct err *e);
extern const struct postprocessor_ops *const postprocessor_table[];

/* ---- decoders (decode.c) ---- */
/* Token strings may hold NUL bytes ("<0x00>" decodes to one): each string carries
 * its length in a hidden header before its first byte, so create and free them only
 * through strvec_push / strvec_fini (decode.c), never free(v[i]) or assign v[i]. */
struct strvec {
    char **v; /* owned, NUL-terminated */
    size_t n, cap;
};
int strvec_push(struct strvec *v, const char *s, size_t len); /* copies */
void strvec_fini(struct strvec *v);

struct decoder_ops {
    const char *type;
    int (*parse)(const json_t *j, void **state, struct err *e);
    /* HF decode_chain: rewrites the token strings in place (the count may change). */
    int (*decode_chain)(const void *state, struct strvec *tokens, struct err *e);
    void (*free)(void *state);
};
struct decoder {
    const struct decoder_ops *ops;
    void *state;
};
int decoder_new(const json_t *j, struct decoder **out, struct err *e);
/* Runs the chain and joins the pieces: *out is malloc'ed, NUL-terminated. */
int decoder_decode(const struct decoder *d, struct strvec *tokens, char **out, size_t *out_len,
                   struct err *e);
void decoder_free(struct decoder *d);
extern const struct decoder_ops *const decoder_table[];

/* Looks up a row by JSON "type" in any of the NULL-terminated tables above. */
#define TOK_TABLE_FIND(table, type_name, result)                                                   \
    do {                                                                                           \
        (result) = NULL;                                                                           \
        for (size_t tok_i_ = 0; (table)[tok_i_]; tok_i_++)                                         \
            if (strcmp((table)[tok_i_]->type, (type_name)) == 0) {                                 \
                (result) = (table)[tok_i_];                                                        \
                break;                                                                             \
            }                                                                                      \
    } while (0)

#endif
