/* slow_int: what slow.c shares with the converters kept in their own files (slow_spm.c,
 * sentencepiece models): the conversion state, the families and converters, and the helpers
 * that build the tokenizer.json document. Internal to engine/tokenizer. */
#ifndef INFERD_TOKENIZER_SLOW_INT_H
#define INFERD_TOKENIZER_SLOW_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum special { SP_UNK, SP_BOS, SP_EOS, SP_SEP, SP_PAD, SP_CLS, SP_MASK, N_SPECIAL };

struct family;
struct spm_model;

struct slow {
    const char *dir;
    const char *file;          /* the converter's first file */
    const struct family *family;
    json_t *config;  /* tokenizer_config.json with the special tokens resolved */
    json_t *doc;     /* the tokenizer.json being built */
    json_t *vocab;   /* token -> id: doc.model.vocab, or lookup */
    json_t *lookup;  /* owned token -> id index when the model's vocab is a list (Unigram) */
    json_t *added;   /* owned set of the added tokens' contents (doc.added_tokens) */
    struct spm_model *spm; /* owned: the parsed sentencepiece model */
    int32_t next_id; /* 1 + the highest id so far */
};

/* A family: the tokenizer classes it covers (NULL-terminated; NULL list = the default of
 * its converter), the default special tokens, the model it builds from the converter's
 * parsed files (NULL: the converter's model function does it all) and the components it
 * sets once the special tokens are added. */
struct family {
    const char *const *classes;
    const char *defaults[N_SPECIAL];
    int (*model)(struct slow *s, struct err *e);
    int (*components)(struct slow *s, struct err *e);
};

/* A converter: the files it needs, how it reads them, its families and the class to use
 * when tokenizer_config.json names none (NULL: the last family). */
struct converter {
    const char *files[2];
    const char *what; /* for the not-found message */
    int (*model)(struct slow *s, struct err *e);
    const struct family *families;
    size_t n_families;
    const char *default_class;
};

/* slow_spm.c: the sentencepiece converter's model function and its families. */
int slow_spm_model(struct slow *s, struct err *e);
#define SLOW_SPM_N_FAMILIES 5
extern const struct family slow_spm_families[SLOW_SPM_N_FAMILIES];
/* slow_spm.c: MarianTokenizer (source.spm + vocab.json), one family. */
int slow_marian_model(struct slow *s, struct err *e);
extern const struct family slow_marian_families[1];
/* slow_spm.c: M2M100Tokenizer (sentencepiece.bpe.model + vocab.json), one family. */
int slow_m2m100_model(struct slow *s, struct err *e);
extern const struct family slow_m2m100_families[1];

/* dir/name into *out (malloc'ed, NUL-terminated); the file error names the path. */
int slow_slurp(const char *dir, const char *name, char **out, size_t *len, struct err *e);
int slow_set_new(json_t *o, const char *key, json_t *v, struct err *e);
int32_t slow_vocab_id(const struct slow *s, const char *tok);
int slow_add_vocab(struct slow *s, const char *tok, int32_t id, struct err *e);
/* Adds tok to added_tokens (created when missing) unless there: the flags (single_word,
 * lstrip, rstrip, normalized) from the object flags (or none), special as given. */
int slow_add_token(struct slow *s, const char *tok, const json_t *flags, bool special,
                   struct err *e);
const char *slow_special(const struct slow *s, enum special k);
bool slow_config_bool(const struct slow *s, const char *key, bool dflt);
json_t *slow_piece_special(const char *tok, int type);
json_t *slow_piece_seq(const char *seq, int type);
json_t *slow_special_entry(const struct slow *s, const char *tok, int32_t dflt_id);
int slow_post_bos_eos(struct slow *s, bool dflt_bos, bool dflt_eos, struct err *e);

#endif
