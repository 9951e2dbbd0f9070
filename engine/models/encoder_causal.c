/* encoder_causal: a decoder (LLaMA, Mistral, Qwen2, Qwen3) run as an encoder family
 * (encoder_family.h), for the sentence embeddings of e5-mistral or Qwen3-Embedding: the
 * encoder pipelines' batches go through the decoder's own forward (models/decoder.h) and
 * come back as the final hidden states (after the final norm), HEAD_NONE, as transformers'
 * MistralModel / Qwen3Model give them to sentence-transformers' Pooling.
 *
 * The decoder is loaded as a backbone (decoder_load_backbone: no lm_head). A pass runs each
 * row of the padded batch as a fresh sequence over its attended tokens only (mask 1, in
 * order), all rows of a step in one decoder_forward (every linear once over their tokens,
 * attention per row), and puts each token's hidden state back at its position in the batch
 * (zeros where the mask is 0). Attention is causal and RoPE relative, so a row's states are
 * those of the row alone whichever side the batch pads on (sentence-transformers pads a
 * left-padding tokenizer's rows on the left: the same vectors). The sequences are this run's,
 * reset for every step and kept for the next one; a step holds at most STEP_TOKENS tokens (at
 * least one row), which bounds their KV caches. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "models/decoder_impl.h"
#include "models/encoder_family.h"
#include "models/grow.h"

#define STEP_TOKENS 512

/* Per-worker state: the decoder's activations, the sequences of a step, its tokens. */
struct causal_run {
    struct decoder_run *run;
    const struct decoder_model *d; /* the model seqs were made for: a worker may run another */
    struct decoder_seq **seqs;     /* (n_seqs), created on first use */
    size_t n_seqs;
    int32_t *tokens; /* a step's attended tokens, row after row */
    int *n;          /* (rows of the step) tokens of each */
    float *x;        /* (batch, seq, H) the hidden states at the batch's positions */
    size_t cap_tokens, cap_n, cap_x;
};

static int causal_load(const struct hf_config *cfg, struct weights *w, const char *prefix,
                       enum dtype_compute dt, struct dnn_ctx *ctx, void **model,
                       struct encoder_facts *facts, struct err *e)
{
    (void)prefix; /* the decoder picks its own ("model." or none) */
    struct decoder_model *d = NULL;
    int rc = decoder_load_backbone(w, dt, ctx, &d, e);
    *model = d;
    *facts = (struct encoder_facts){.head = HEAD_NONE, .out_width = (size_t)cfg->hidden_size};
    return rc;
}

static void causal_free(void *model)
{
    decoder_unload(model);
}

static void causal_run_free(void *run)
{
    struct causal_run *r = run;
    if (!r)
        return;
    for (size_t i = 0; i < r->n_seqs; i++)
        decoder_seq_free(r->seqs[i]);
    free(r->seqs);
    decoder_run_free(r->run);
    free(r->tokens);
    free(r->n);
    free(r->x);
    free(r);
}

/* Row b's attended tokens (mask 1; every one without a mask). */
static bool attended(const struct encoder_batch *b, size_t row, size_t t)
{
    return !b->mask || b->mask[row * (size_t)b->seq + t] != 0;
}

/* At least n fresh sequences, each with room for max_tokens. */
static int take_seqs(const struct decoder_model *d, struct causal_run *r, size_t n,
                     struct err *e)
{
    if (r->d != d) { /* sequences of another model (a worker serves any pipeline) */
        for (size_t i = 0; i < r->n_seqs; i++) {
            decoder_seq_free(r->seqs[i]);
            r->seqs[i] = NULL;
        }
        r->d = d;
    }
    if (n > r->n_seqs) {
        struct decoder_seq **s = realloc(r->seqs, n * sizeof *s);
        if (!s)
            return err_set(e, ERR_NOMEM, "out of memory");
        memset(s + r->n_seqs, 0, (n - r->n_seqs) * sizeof *s);
        r->seqs = s;
        r->n_seqs = n;
    }
    int64_t maxpos = decoder_max_positions(d);
    int room = maxpos > 0 && maxpos < INT32_MAX / 4 ? (int)maxpos : INT32_MAX / 4;
    for (size_t i = 0; i < n; i++) {
        if (r->seqs[i]) {
            decoder_seq_reset(r->seqs[i]);
            continue;
        }
        int rc = decoder_seq_new(d, room, &r->seqs[i], e);
        if (rc)
            return rc;
    }
    return 0;
}

/* Rows [first, first + rows) of b as one decoder step; their states into r->x. */
static int step_rows(const struct decoder_model *d, struct dnn_ctx *ctx, struct causal_run *r,
                     const struct encoder_batch *b, size_t first, size_t rows, struct err *e)
{
    size_t S = (size_t)b->seq, H = (size_t)d->H, M = 0;
    int rc = take_seqs(d, r, rows, e);
    if (rc == 0)
        rc = grow_array(&r->n, &r->cap_n, rows, sizeof *r->n, e);
    if (rc == 0)
        rc = grow_array(&r->tokens, &r->cap_tokens, rows * S, sizeof *r->tokens, e);
    if (rc)
        return rc;
    for (size_t i = 0; i < rows; i++) {
        size_t row = first + i, k = 0;
        for (size_t t = 0; t < S; t++)
            if (attended(b, row, t))
                r->tokens[M + k++] = b->ids[row * S + t];
        if (k == 0)
            return err_set(e, ERR_INVALID, "row %zu of the batch has no attended token", row);
        if (k > (size_t)decoder_seq_max_tokens(r->seqs[i]))
            return err_set(e, ERR_TOO_LARGE, "row %zu has %zu tokens, the model takes %d", row,
                           k, decoder_seq_max_tokens(r->seqs[i]));
        r->n[i] = (int)k;
        M += k;
    }
    struct decoder_step st = {.n_seqs = (int)rows,
                              .seqs = r->seqs,
                              .tokens = r->tokens,
                              .n_tokens = r->n,
                              .all_logits = true,
                              .hidden = true};
    const float *states;
    if ((rc = decoder_forward(d, ctx, r->run, &st, &states, e)) != 0)
        return rc;
    for (size_t i = 0; i < rows; i++) {
        size_t row = first + i;
        for (size_t t = 0; t < S; t++)
            if (attended(b, row, t)) {
                memcpy(r->x + (row * S + t) * H, states, H * sizeof *states);
                states += H;
            }
    }
    return 0;
}

static int causal_forward(const void *model, struct dnn_ctx *ctx, void **run,
                          const struct encoder_batch *b, const struct encoder_stop *stop,
                          const float **out, const float **hidden, struct err *e)
{
    const struct decoder_model *d = model;
    if (!*run && !(*run = calloc(1, sizeof(struct causal_run))))
        return err_set(e, ERR_NOMEM, "out of memory");
    struct causal_run *r = *run;
    if (!r->run && !(r->run = decoder_run_new()))
        return err_set(e, ERR_NOMEM, "out of memory");
    size_t B = (size_t)b->batch, S = (size_t)b->seq, H = (size_t)d->H;
    int rc = grow_floats(&r->x, &r->cap_x, B * S * H, e);
    if (rc)
        return rc;
    memset(r->x, 0, B * S * H * sizeof *r->x);
    for (size_t first = 0; first < B && rc == 0;) {
        if (stop->fn && stop->fn(stop->arg))
            return err_set(e, ERR_CANCELLED, "encoder: cancelled");
        size_t rows = 0, tokens = 0;
        while (first + rows < B) { /* whole rows up to STEP_TOKENS, at least one */
            size_t k = 0;
            for (size_t t = 0; t < S; t++)
                k += attended(b, first + rows, t);
            if (rows > 0 && tokens + k > STEP_TOKENS)
                break;
            tokens += k;
            rows++;
        }
        rc = step_rows(d, ctx, r, b, first, rows, e);
        first += rows;
    }
    if (rc)
        return rc;
    if (hidden)
        *hidden = r->x;
    *out = r->x;
    return 0;
}

const struct encoder_family causal_family = {causal_load, causal_free, causal_forward,
                                             causal_run_free};
