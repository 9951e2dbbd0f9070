/* encoder_bart: BartForSequenceClassification (bart-large-mnli and its fine-tunes) run as an
 * encoder family (encoder_family.h), so that the encoder tasks (text-classification,
 * zero-shot-classification) serve it: HEAD_SEQ_CLS, (batch, num_labels) logits.
 *
 * transformers feeds the decoder the input shifted right (decoder_start_token_id first) and
 * pools the decoder's hidden state at the last eos token of each row through
 * classification_head (dense, tanh, out_proj). A row's attended tokens (mask 1, in order) are
 * encoded as one sequence of the BART model (models/bart.h: no padding, which is what the
 * attention mask makes of a padded row); the decoder then runs over the start token and the
 * row's ids before its last eos, whose final hidden state is the one transformers pools (the
 * decoder is causal: the padding after it cannot change it). A row without an eos is
 * ERR_INVALID, as transformers refuses it. */
#include <stdlib.h>
#include <string.h>

#include "models/bart.h"
#include "models/encoder_family.h"
#include "models/grow.h"

/* Per-worker state: the model's activations and a step's sequences and tokens. */
struct bart_cls_run {
    struct bart_run *run;
    const struct bart_model *m; /* the model seqs were made for (a worker may run another; the
                                   sequences are freed without it) */
    struct bart_seq **seqs;
    size_t n_seqs;
    int32_t *enc_ids, *dec_ids;
    int *n_enc, *n_dec;
    size_t cap_enc, cap_dec, cap_n_enc, cap_n_dec;
};

static int cls_load(const struct hf_config *cfg, struct weights *w, const char *prefix,
                    enum dtype_compute dt, struct dnn_ctx *ctx, void **model,
                    struct encoder_facts *facts, struct err *e)
{
    (void)prefix; /* bart_load_weights picks "model." */
    const char *suffix = "ForSequenceClassification";
    size_t n = strlen(cfg->architecture), k = strlen(suffix);
    *model = NULL;
    if (n < k || strcmp(cfg->architecture + n - k, suffix) != 0)
        return err_set(e, ERR_FORMAT,
                       "%s: architecture '%s': the encoder tasks run a %s model only as "
                       "BartForSequenceClassification",
                       w->dir, cfg->architecture, cfg->model_type);
    if (cfg->n_eos_token_ids == 0)
        return err_set(e, ERR_FORMAT, "%s: config.json: no eos_token_id to pool at", w->dir);
    struct bart_model *m = NULL;
    int rc = bart_load_weights(cfg, w, dt, ctx, true, &m, e);
    *model = m;
    *facts = (struct encoder_facts){.head = HEAD_SEQ_CLS, .out_width = cfg->num_labels};
    return rc;
}

static void cls_free(void *model)
{
    bart_unload(model);
}

static void cls_run_free(void *run)
{
    struct bart_cls_run *r = run;
    if (!r)
        return;
    for (size_t i = 0; i < r->n_seqs; i++)
        bart_seq_free(r->seqs[i]);
    free(r->seqs);
    bart_run_free(r->run);
    free(r->enc_ids);
    free(r->dec_ids);
    free(r->n_enc);
    free(r->n_dec);
    free(r);
}

/* At least n fresh sequences of m. */
static int take_seqs(const struct bart_model *m, struct bart_cls_run *r, size_t n, struct err *e)
{
    if (r->m != m) { /* a worker serves any pipeline */
        for (size_t i = 0; i < r->n_seqs; i++) {
            bart_seq_free(r->seqs[i]);
            r->seqs[i] = NULL;
        }
        r->m = m;
    }
    if (n > r->n_seqs) {
        struct bart_seq **s = realloc(r->seqs, n * sizeof *s);
        if (!s)
            return err_set(e, ERR_NOMEM, "out of memory");
        memset(s + r->n_seqs, 0, (n - r->n_seqs) * sizeof *s);
        r->seqs = s;
        r->n_seqs = n;
    }
    int room = (int)bart_max_positions(m);
    for (size_t i = 0; i < n; i++) {
        if (r->seqs[i]) {
            bart_seq_reset(r->seqs[i]);
            continue;
        }
        int rc = bart_seq_new(m, room, room, &r->seqs[i], e);
        if (rc)
            return rc;
    }
    return 0;
}

/* Row b's attended ids into enc (returns how many), and its decoder input (the start token,
 * then the ids before its last eos) into dec (*n_dec of them). */
static int row_inputs(const struct bart_model *m, const struct encoder_batch *b, size_t row,
                      int32_t *enc, int32_t *dec, int *n_dec, struct err *e)
{
    const struct hf_config *c = bart_config(m);
    int n = 0, last_eos = -1;
    for (int t = 0; t < b->seq; t++) {
        size_t k = row * (size_t)b->seq + (size_t)t;
        if (b->mask && !b->mask[k])
            continue;
        for (size_t j = 0; j < c->n_eos_token_ids; j++)
            if (b->ids[k] == c->eos_token_ids[j])
                last_eos = n;
        enc[n++] = b->ids[k];
    }
    if (n == 0 || last_eos < 0)
        return err_set(e, ERR_INVALID,
                       "row %zu of the batch has no eos token (BartForSequenceClassification "
                       "pools the last one)",
                       row);
    dec[0] = bart_decoder_start_token_id(m);
    memcpy(dec + 1, enc, (size_t)last_eos * sizeof *dec);
    *n_dec = last_eos + 1;
    return n;
}

static int cls_forward(const void *model, struct dnn_ctx *ctx, void **run,
                       const struct encoder_batch *b, const struct encoder_stop *stop,
                       const float **out, const float **hidden, struct err *e)
{
    const struct bart_model *m = model;
    if (hidden)
        return err_set(e, ERR_INVALID, "a BART sequence classifier has no encoder hidden states");
    if (!*run && !(*run = calloc(1, sizeof(struct bart_cls_run))))
        return err_set(e, ERR_NOMEM, "out of memory");
    struct bart_cls_run *r = *run;
    if (!r->run && !(r->run = bart_run_new()))
        return err_set(e, ERR_NOMEM, "out of memory");
    size_t B = (size_t)b->batch, S = (size_t)b->seq;
    int rc = take_seqs(m, r, B, e);
    if (rc == 0)
        rc = grow_array(&r->enc_ids, &r->cap_enc, B * S, sizeof *r->enc_ids, e);
    if (rc == 0)
        rc = grow_array(&r->dec_ids, &r->cap_dec, B * S, sizeof *r->dec_ids, e);
    if (rc == 0)
        rc = grow_array(&r->n_enc, &r->cap_n_enc, B, sizeof *r->n_enc, e);
    if (rc == 0)
        rc = grow_array(&r->n_dec, &r->cap_n_dec, B, sizeof *r->n_dec, e);
    if (rc)
        return rc;
    size_t n_enc = 0, n_dec = 0;
    for (size_t i = 0; i < B; i++) {
        int n = row_inputs(m, b, i, r->enc_ids + n_enc, r->dec_ids + n_dec, &r->n_dec[i], e);
        if (n < 0)
            return n;
        r->n_enc[i] = n;
        n_enc += (size_t)n;
        n_dec += (size_t)r->n_dec[i];
    }
    if (stop->fn && stop->fn(stop->arg))
        return err_set(e, ERR_CANCELLED, "encoder: cancelled");
    struct bart_encode_batch eb = {(int)B, r->seqs, r->enc_ids, r->n_enc};
    if ((rc = bart_encode(m, ctx, r->run, &eb, NULL, e)) != 0)
        return rc;
    struct bart_step st = {.n_seqs = (int)B,
                           .seqs = r->seqs,
                           .tokens = r->dec_ids,
                           .n_tokens = r->n_dec,
                           .hidden = true};
    const float *pooled; /* (B, D) each row's state at its last eos */
    if ((rc = bart_forward(m, ctx, r->run, &st, &pooled, e)) != 0)
        return rc;
    return bart_classify(m, ctx, r->run, pooled, (int)B, out, e);
}

const struct encoder_family bart_cls_family = {cls_load, cls_free, cls_forward, cls_run_free};
