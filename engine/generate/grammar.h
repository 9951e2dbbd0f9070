/* grammar: constrained decoding. A regular expression is compiled once into a deterministic
 * automaton over bytes (struct grammar: immutable, reference counted, shared by every request
 * and thread that uses the same constraint); a model's vocabulary (struct gram_vocab: each
 * token's text as it appears in generated text, in a byte trie) is built once per model; and
 * for each automaton state a generation reaches, the set of tokens whose whole text keeps the
 * automaton alive is computed once (walking the trie through the automaton, pruning at the
 * first dead byte) and cached in the grammar, per vocabulary. The generator then masks the
 * logits before sampling (generator.c), allows the end-of-sequence ids only in accepting
 * states, and ends the sequence as soon as the automaton is in an accepting state with no way
 * on. The engine knows regular expressions only: what a JSON schema means (and the API keys
 * that carry one) is the server's, which turns a schema into a regex (server/schema_regex.c).
 *
 * The regex syntax (matched against the whole output, never searched): literals (UTF-8 too),
 * `.` (any character but \n), classes `[a-z_]`, `[^"\\]` with ASCII members (a negated class
 * and `.` also match every non-ASCII character), escapes \d \w \s \D \W \S \n \r \t \f \v
 * \xHH \uHHHH and escaped punctuation, groups `( )` and `(?: )`, `|`, quantifiers * + ? {n}
 * {n,} {n,m} (a trailing `?` making one lazy is accepted and changes nothing: the automaton has
 * no preference), `^` at the very start and `$` at the very end (no-ops). Anything else
 * (backreferences, lookaround, a non-ASCII class member) is ERR_INVALID naming it.
 *
 *     struct grammar *gr;
 *     grammar_compile("[0-9]{3}-[a-z]+", n, &gr, &e);
 *     p.grammar = gr;                             // params own the reference (params_fini)
 *     ... generator.c: gram_vocab_get(model), grammar_bind, gram_mask per step ...
 *
 * Threads: a grammar is shared; its mask cache is behind its own mutex (a mask, once made,
 * never changes or moves until the grammar is freed). */
#ifndef INFERD_GEN_GRAMMAR_H
#define INFERD_GEN_GRAMMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define GRAMMAR_MAX_REGEX ((size_t)512 << 10) /* bytes of regex text */
#define GRAMMAR_MAX_NFA 400000  /* NFA states a regex may expand to (counted repetitions) */
#define GRAMMAR_MAX_WORK 50000000 /* NFA states visited by the subset construction */
#define GRAMMAR_MAX_STATES 20000 /* automaton states; more is "too complex" */
#define GRAMMAR_MASK_BUDGET ((size_t)256 << 20) /* cached mask bytes per grammar */

struct grammar;
struct gram_vocab;
struct tokenizer;

/* Compiles re (len bytes, need not be NUL-terminated). ERR_INVALID with a message naming the
 * position or the construct for a bad or unsupported regex, or one over the bounds above (its
 * text, its NFA, its automaton, or the work of building it: a request cannot make the compiler
 * run long or grow large); ERR_NOMEM. *out has one reference. */
int grammar_compile(const char *re, size_t len, struct grammar **out, struct err *e);
struct grammar *grammar_ref(struct grammar *g);
void grammar_unref(struct grammar *g); /* NULL passes */

size_t grammar_n_states(const struct grammar *g);
/* Whether s is in the language (the whole of s). */
bool grammar_matches(const struct grammar *g, const char *s, size_t len);

/* ---- walking: states are ints, 0 the start, -1 dead ---- */
int32_t grammar_step(const struct grammar *g, int32_t state, const char *bytes, size_t len);
bool grammar_accepting(const struct grammar *g, int32_t state);
/* Accepting and no byte leads on: the output is complete. */
bool grammar_complete(const struct grammar *g, int32_t state);

/* ---- a model's vocabulary ---- */

/* Each token's text as generation appends it (decoded after an anchor token, so a
 * leading-space marker reads as the space it becomes mid-text); special tokens, tokens with no
 * text, and tokens whose text is not whole UTF-8 (byte pieces) are never allowed. n_logits: the
 * model's logits row (ids past the tokenizer's vocabulary are never allowed). */
int gram_vocab_new(const struct tokenizer *tk, size_t n_logits, struct gram_vocab **out,
                   struct err *e);
void gram_vocab_free(struct gram_vocab *v);
/* Token id's text (NULL when never allowed). */
const char *gram_vocab_text(const struct gram_vocab *v, int32_t id, size_t *len);

/* The tokens allowed in state (bit id of the returned words, n_logits bits), made on first use
 * and cached in g for v (v's identity is a serial number, so masks never outlive their meaning
 * when a model is unloaded and another loaded at the same address). scratch: (n_logits + 63)
 * / 64 words the caller owns, used when the cache is over GRAMMAR_MASK_BUDGET. NULL on ERR_NOMEM. */
const uint64_t *grammar_mask(struct grammar *g, const struct gram_vocab *v, int32_t state,
                             uint64_t *scratch);

#endif
