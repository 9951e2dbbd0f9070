/* slow: tokenizers for model directories without tokenizer.json. transformers builds a
 * fast tokenizer from a repo's slow-tokenizer files (convert_slow_tokenizer, and in v5 the
 * tokenizer classes themselves); this does the same conversion, producing the
 * tokenizer.json document those converters would write, which tokenizer.c then loads like
 * any other. Supported: vocab.txt (BERT family: WordPiece), vocab.json + merges.txt
 * (GPT-2 and RoBERTa families: byte-level BPE) and sentencepiece models (spiece.model,
 * sentencepiece.bpe.model, spm.model, tokenizer.model: T5, ALBERT, XLM-R, DeBERTa-v2 and Llama,
 * slow_spm.c). Options and special tokens come from
 * tokenizer_config.json, then special_tokens_map.json, then the family's defaults. */
#ifndef INFERD_TOKENIZER_SLOW_H
#define INFERD_TOKENIZER_SLOW_H

#include "err.h"

struct json_t; /* jansson's json_t */

/* Converts the slow-tokenizer files of dir. On success *doc is a new tokenizer.json
 * document and *config the tokenizer_config.json to use with it (the file's, with the
 * special tokens filled in from special_tokens_map.json and the family's defaults); the
 * caller owns both. ERR_NOT_FOUND naming every file looked for when dir has none of
 * them; ERR_FORMAT for a malformed file. */
int slow_tokenizer_convert(const char *dir, struct json_t **doc, struct json_t **config,
                           struct err *e);

#endif
