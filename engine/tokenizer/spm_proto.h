/* spm_proto: reads a sentencepiece model file (the ModelProto of sentencepiece_model.proto:
 * spiece.model, sentencepiece.bpe.model, spm.model, tokenizer.model) with a small
 * bounds-checked protobuf wire-format reader: the pieces (text, score, type) and the few
 * trainer and normalizer fields a tokenizer needs; every other field is skipped. Untrusted
 * input: a truncated or malformed file, a piece that is not UTF-8 or is repeated, a
 * non-finite score, an unknown piece type or model type gives ERR_FORMAT naming the field. */
#ifndef INFERD_TOKENIZER_SPM_PROTO_H
#define INFERD_TOKENIZER_SPM_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* SentencePiece.Type */
enum spm_type {
    SPM_NORMAL = 1,
    SPM_UNKNOWN = 2,
    SPM_CONTROL = 3,
    SPM_USER_DEFINED = 4,
    SPM_UNUSED = 5,
    SPM_BYTE = 6,
};

/* TrainerSpec.ModelType (only these two are accepted) */
enum spm_model_type { SPM_UNIGRAM = 1, SPM_BPE = 2 };

struct spm_piece {
    const char *text; /* NUL-terminated UTF-8, non-empty, no NUL inside */
    size_t len;
    float score;
    enum spm_type type;
};

struct spm_model {
    struct spm_piece *pieces;
    size_t n_pieces;
    char *pool; /* owns every piece's text */
    enum spm_model_type model_type;
    bool byte_fallback;
    int32_t unk_id, bos_id, eos_id, pad_id; /* proto defaults 0, 1, 2, -1 */
    unsigned char *charsmap; /* NormalizerSpec.precompiled_charsmap, NULL when absent */
    size_t charsmap_len;
    bool add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
};

/* The most pieces a model may have (the largest Hub vocabularies are ~256k). */
#define SPM_MAX_PIECES (1u << 22)

/* Parses buf[0..len); on success *m owns its memory (spm_model_free). On error *m is empty. */
int spm_model_parse(const uint8_t *buf, size_t len, struct spm_model *m, struct err *e);

void spm_model_free(struct spm_model *m);

#endif
