/* grammar_impl: the inside of struct grammar, shared by grammar.c (the automaton) and
 * gram_vocab.c (the vocabulary and the per-state token masks); nothing else includes it. */
#ifndef INFERD_GEN_GRAMMAR_IMPL_H
#define INFERD_GEN_GRAMMAR_IMPL_H

#include <pthread.h>

#include "generate/grammar.h"

struct nfa_state {
    uint64_t set[4]; /* the bytes of the edge to next */
    int32_t next;    /* -1: epsilon edges only */
};

struct nfa_eps {
    int32_t from, to;
};

/* The masks of one vocabulary (by serial number): masks[state] NULL until made. */
struct gram_bind {
    uint64_t vocab_serial;
    uint64_t **masks;
    struct gram_bind *next;
};

struct grammar {
    int refs;
    uint8_t cls[256]; /* byte -> class */
    int n_classes;
    size_t n_states;
    int32_t *trans; /* (n_states, n_classes): next state or -1 */
    uint8_t *accept, *complete;
    pthread_mutex_t mu; /* the binds and their masks */
    struct gram_bind *binds;
    size_t mask_bytes; /* cached so far (bounded by GRAMMAR_MASK_BUDGET) */
    bool mu_ready;
};

/* gram_vocab.c */
int grammar_init_cache(struct grammar *g, struct err *e);
void grammar_free(struct grammar *g);

#endif
