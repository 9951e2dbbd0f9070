/* vocab: token string <-> id map used by the tokenizer models and added tokens.
 * Owns copies of every string. Lookups are read-only and thread-safe. */
#ifndef INFERD_VOCAB_H
#define INFERD_VOCAB_H

#include <stddef.h>
#include <stdint.h>

struct vocab {
    char **tokens;   /* tokens[id], NULL for ids with no string */
    uint32_t *lens;  /* byte length of tokens[id] */
    size_t n_ids;    /* 1 + highest id */
    uint32_t *slots; /* open-addressing table of id+1 (0 = empty) */
    size_t n_slots;  /* power of two */
    size_t n_entries;
};

/* Ids are indices into tokens[], so a vocabulary's ids must be dense-ish: any id at or above
 * this (4M; real vocabularies have at most a few hundred thousand) is refused, so that a small
 * hostile tokenizer.json cannot size the table to gigabytes. */
#define VOCAB_MAX_ID 4194304

void vocab_init(struct vocab *v);
void vocab_fini(struct vocab *v);
/* Adds s -> id. A second string for the same id, the same string twice (HF vocabularies are
 * bijective) or an id outside [0, VOCAB_MAX_ID) is ERR_FORMAT. */
int vocab_add(struct vocab *v, const char *s, size_t len, int32_t id);
/* Returns the id of s[0..len) or -1. */
int32_t vocab_find(const struct vocab *v, const char *s, size_t len);
/* Returns the string of id or NULL. */
static inline const char *vocab_token(const struct vocab *v, int32_t id)
{
    return (id >= 0 && (size_t)id < v->n_ids) ? v->tokens[id] : NULL;
}

#endif
