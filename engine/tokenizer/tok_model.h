/* tok_model: what the tokenizer model files (tok_model.c, wordpiece.c, bpe.c, unigram.c) share
 * privately: their ops rows for the table in tok_model.c and the vocab parser.
 * Nothing outside these files includes this header; the interface is tok.h. */
#ifndef INFERD_TOK_MODEL_H
#define INFERD_TOK_MODEL_H

#include "tok.h"

extern const struct tok_model_ops tok_model_bpe_ops;
extern const struct tok_model_ops tok_model_wordpiece_ops;
extern const struct tok_model_ops tok_model_wordlevel_ops;
extern const struct tok_model_ops tok_model_unigram_ops;

/* Fills v from the JSON object {"token": id, ...} found at o[key]; `where` names
 * the model for messages ("model BPE"). Ids must be in [0, 2^31 - 1). */
int tok_model_vocab_parse(const json_t *o, const char *key, struct vocab *v, const char *where,
                      struct err *e);

#endif
