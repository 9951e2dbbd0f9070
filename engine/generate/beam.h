/* beam: beam search as transformers 4.57 implements it (GenerationMixin._beam_search, the
 * vectorized rewrite of BeamSearchScorer / BeamHypotheses), for one request, on logits rows;
 * knows nothing of models or caches (gen_beam.c runs it over a generator's sequences).
 *
 * Each step, for every running beam b: log_softmax of its logits, then the processors in
 * _get_logits_processor's order on those log-probabilities with the beam's input_ids (the
 * prompt for a decoder-only model, the decoder start token for an encoder-decoder, then the
 * generated ids): repetition_penalty, no_repeat_ngram_size, bad_words_ids, min_length,
 * min_new_tokens, forced_bos (at length 1), forced_eos (at max_length - 1); plus the beam's running score. The
 * top K = max(2, 1 + n_eos) * num_beams of the num_beams * vocab candidates (ties: the lower
 * flat index first) are split: those that hit eos or max_length among the first num_beams
 * are finished hypotheses, scored sum / new_length^length_penalty, kept when among the
 * num_beams best finished; the best num_beams that did not hit continue. The search ends
 * when early_stopping's heuristic says no running beam can beat the worst finished one
 * (false: at the current length; "never" with a positive penalty: at max_length), when
 * num_beams hypotheses are finished and early_stopping is true, or when every candidate hit.
 * The first step sees one distinct row (every beam holds the same input; beams 1.. start at
 * -1e9). Arithmetic as torch's: float32 sums, log_softmax in double rounded to float. */
#ifndef INFERD_GEN_BEAM_H
#define INFERD_GEN_BEAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "generate/params.h"

struct beam_search;

/* A search for p's beam settings (num_beams > 1, num_return_sequences <= num_beams, eos ids,
 * penalties, lengths: max_length = n_prefix + p->max_new_tokens) over vocab ids, starting from
 * prefix (copied). ERR_INVALID for bad settings, ERR_NOMEM. */
int beam_search_new(const struct gen_params *p, size_t vocab, const int32_t *prefix,
                    size_t n_prefix, struct beam_search **out, struct err *e);
void beam_search_free(struct beam_search *bs);

/* One step: rows[b] the logits of running beam b (num_beams pointers, read only; they may be
 * the same row). Fills parent[b] (which old beam new beam b continues) and token[b] (its new
 * token); returns true when the search is over (parent/token then unused). */
bool beam_search_step(struct beam_search *bs, const float *const *rows, int *parent,
                      int32_t *token);

/* The finished hypotheses returned (at most num_return_sequences, best first). */
size_t beam_search_n_results(const struct beam_search *bs);
/* Result i: its generated ids (after the prefix; an encoder-decoder's start token is the
 * prefix), their number and its sequence score. Valid until beam_search_free. */
void beam_search_result(const struct beam_search *bs, size_t i, const int32_t **ids, size_t *n,
                        float *score);

#endif
