/* encoder: see encoder.h. The forward pass, in the shapes of one batch
 * (B sequences of S tokens, M = B*S rows, hidden H, intermediate I, embedding E):
 *
 *   emb   = LN(word[ids] + pos[positions] + type[type_ids])        (M, E)
 *   x     = E == H ? emb : emb W_proj^T + b                       (M, H)  ALBERT, ELECTRA
 *   per layer (ALBERT: the shared layers of its group):
 *     qkv = x W_qkv^T + b                                         (M, 3H) one fused linear
 *     att = softmax(q k^T / sqrt(d) + mask [+ bias]) v            (M, H)
 *           bias: MPNet's and DeBERTa's relative positions (encoder_relpos.c; DeBERTa also
 *           scales by 1/sqrt(d (1 + c2p + p2c)), has no absolute positions in v3 and zeroes
 *           the embeddings of padding)
 *     x   = LN(x + att W_o^T + b)
 *     x   = LN(x + act(x W_1^T + b1) W_2^T + b2)                  via (M, I)
 *   head: pooled/CLS classifier (DeBERTa: ContextPooler), per-token classifier, QA span
 *   logits, or the MLM transform + tied decoder.
 *
 * Variants are rows of `variants` (names of tensors and small flags), not copies; a row that
 * names a family (ModernBERT: encoder_modernbert.c) has that family load and run its passes
 * (encoder_family.h), while the split of a batch into passes stays here. */
#include "models/encoder.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/encoder_impl.h"
#include "models/grow.h"

/* ---- architecture variants ---- */

static const struct variant variants[] = {
    {"bert", "bert.", LAYOUT_BERT, POOL_BERT, false, true, NULL, NULL},
    {"roberta", "roberta.", LAYOUT_BERT, POOL_ROBERTA, true, true, NULL, NULL},
    {"xlm-roberta", "roberta.", LAYOUT_BERT, POOL_ROBERTA, true, true, NULL, NULL},
    {"camembert", "roberta.", LAYOUT_BERT, POOL_ROBERTA, true, true, NULL, NULL},
    {"distilbert", "distilbert.", LAYOUT_DISTILBERT, POOL_DISTIL, false, false, NULL, NULL},
    {"albert", "albert.", LAYOUT_ALBERT, POOL_ALBERT, false, true, NULL, NULL},
    {"electra", "electra.", LAYOUT_BERT, POOL_ELECTRA, false, true, NULL, NULL},
    {"modernbert", "model.", LAYOUT_BERT, POOL_BERT, false, false, NULL, &modernbert_family},
    {"mpnet", "mpnet.", LAYOUT_MPNET, POOL_ROBERTA, true, false, &relpos_mpnet, NULL},
    {"deberta-v2", "deberta.", LAYOUT_DEBERTA, POOL_CONTEXT, false, true, &relpos_deberta, NULL},
    /* decoders whose final hidden states are pooled into sentence embeddings */
    {"llama", "model.", LAYOUT_BERT, POOL_BERT, false, false, NULL, &causal_family},
    {"mistral", "model.", LAYOUT_BERT, POOL_BERT, false, false, NULL, &causal_family},
    {"qwen2", "model.", LAYOUT_BERT, POOL_BERT, false, false, NULL, &causal_family},
    {"qwen3", "model.", LAYOUT_BERT, POOL_BERT, false, false, NULL, &causal_family},
    /* an encoder-decoder whose eos-pooled decoder states are classified (bart-large-mnli) */
    {"bart", "model.", LAYOUT_BERT, POOL_BERT, false, false, NULL, &bart_cls_family},
};

#define N_VARIANTS (sizeof variants / sizeof variants[0])

size_t encoder_model_types(const char **out, size_t max)
{
    for (size_t i = 0; i < N_VARIANTS && i < max; i++)
        out[i] = variants[i].model_type;
    return N_VARIANTS;
}

/* ---- loading ---- */

/* A LayerNorm `base`.weight (n) + `base`.bias (n). */
static int take_ln(struct weights *w, const char *base, int64_t n, struct norm_weights *ln,
                   struct err *e)
{
    return weights_norm(w, base, n, true, ln, e);
}

/* A linear layer `base`.weight (out, in) + `base`.bias (out), prepacked for oneDNN. */
static int take_linear(struct weights *w, struct dnn_ctx *ctx, const char *base, int64_t in,
                       int64_t out, enum dtype_compute dt, enum act act, struct linear *l,
                       struct err *e)
{
    return weights_linear(w, ctx, base, in, out, true, dt, act, l, e);
}

/* Tensor names inside one layer, per layout: q, k, v, attention output, its norm,
 * FFN in, FFN out, output norm. */
static const char *const layer_names[][8] = {
    [LAYOUT_BERT] = {"attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense", "attention.output.LayerNorm", "intermediate.dense",
                     "output.dense", "output.LayerNorm"},
    [LAYOUT_DISTILBERT] = {"attention.q_lin", "attention.k_lin", "attention.v_lin",
                           "attention.out_lin", "sa_layer_norm", "ffn.lin1", "ffn.lin2",
                           "output_layer_norm"},
    [LAYOUT_ALBERT] = {"attention.query", "attention.key", "attention.value", "attention.dense",
                       "attention.LayerNorm", "ffn", "ffn_output", "full_layer_layer_norm"},
    [LAYOUT_MPNET] = {"attention.attn.q", "attention.attn.k", "attention.attn.v",
                      "attention.attn.o", "attention.LayerNorm", "intermediate.dense",
                      "output.dense", "output.LayerNorm"},
    [LAYOUT_DEBERTA] = {"attention.self.query_proj", "attention.self.key_proj",
                        "attention.self.value_proj", "attention.output.dense",
                        "attention.output.LayerNorm", "intermediate.dense", "output.dense",
                        "output.LayerNorm"},
};

static int load_layer(struct encoder *m, struct weights *w, struct dnn_ctx *ctx, const char *lp,
                      enum dtype_compute dt, struct layer *L, struct err *e)
{
    char n[8][256];
    for (int i = 0; i < 8; i++)
        snprintf(n[i], sizeof n[i], "%s%s", lp, layer_names[m->v->layout][i]);
    const char *q = n[0], *k = n[1], *v = n[2], *o = n[3], *ln1 = n[4], *f1 = n[5], *f2 = n[6],
               *ln2 = n[7];
    /* q, k, v concatenated into one (3H, H) linear: one matmul instead of three */
    const char *qkv[3] = {q, k, v};
    const int64_t outs[3] = {m->H, m->H, m->H};
    int rc = weights_stacked(w, ctx, qkv, outs, 3, m->H, true, dt, ACT_NONE, &L->qkv, e);
    if (rc == 0)
        rc = take_linear(w, ctx, o, m->H, m->H, dt, ACT_NONE, &L->o, e);
    if (rc == 0)
        rc = take_ln(w, ln1, m->H, &L->ln_att, e);
    if (rc == 0)
        rc = take_linear(w, ctx, f1, m->H, m->I, dt, m->act, &L->ffn1, e);
    if (rc == 0)
        rc = take_linear(w, ctx, f2, m->I, m->H, dt, ACT_NONE, &L->ffn2, e);
    if (rc == 0)
        rc = take_ln(w, ln2, m->H, &L->ln_out, e);
    return rc;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int load_head(struct encoder *m, struct weights *w, struct dnn_ctx *ctx,
                     enum dtype_compute dt, struct err *e)
{
    const char *arch = m->cfg.architecture;
    int64_t H = m->H;
    char a[256], b[256];
    if (ends_with(arch, "ForSequenceClassification")) {
        m->head = HEAD_SEQ_CLS;
        m->out_width = m->cfg.num_labels;
        m->has_pool = true;
        enum act pact = ACT_NONE;
        switch (m->v->pool) {
        case POOL_BERT:
            snprintf(a, sizeof a, "%spooler.dense", m->prefix);
            snprintf(b, sizeof b, "classifier");
            m->pool_tanh = true;
            break;
        case POOL_ALBERT:
            snprintf(a, sizeof a, "%spooler", m->prefix);
            snprintf(b, sizeof b, "classifier");
            m->pool_tanh = true;
            break;
        case POOL_DISTIL:
            snprintf(a, sizeof a, "pre_classifier");
            snprintf(b, sizeof b, "classifier");
            pact = ACT_RELU;
            break;
        case POOL_ROBERTA:
            snprintf(a, sizeof a, "classifier.dense");
            snprintf(b, sizeof b, "classifier.out_proj");
            m->pool_tanh = true;
            break;
        case POOL_ELECTRA:
            snprintf(a, sizeof a, "classifier.dense");
            snprintf(b, sizeof b, "classifier.out_proj");
            pact = ACT_GELU_ERF;
            break;
        case POOL_CONTEXT:
            snprintf(a, sizeof a, "pooler.dense");
            snprintf(b, sizeof b, "classifier");
            if (act_parse(m->cfg.deberta.pooler_hidden_act, &pact, e) != 0) {
                err_prefix(e, "%s: config.json: pooler_hidden_act: ", w->dir);
                return e ? e->kind : ERR_INVALID;
            }
            break;
        }
        int rc = take_linear(w, ctx, a, H, H, dt, pact, &m->pool, e);
        return rc ? rc : take_linear(w, ctx, b, H, (int64_t)m->out_width, dt, ACT_NONE, &m->cls, e);
    }
    if (ends_with(arch, "ForTokenClassification")) {
        m->head = HEAD_TOKEN_CLS;
        m->out_width = m->cfg.num_labels;
        return take_linear(w, ctx, "classifier", H, (int64_t)m->out_width, dt, ACT_NONE, &m->cls,
                           e);
    }
    if (ends_with(arch, "ForQuestionAnswering")) {
        m->head = HEAD_QA;
        m->out_width = 2;
        return take_linear(w, ctx, "qa_outputs", H, 2, dt, ACT_NONE, &m->cls, e);
    }
    if (ends_with(arch, "ForMaskedLM")) {
        /* transform (dense + act + LN) then the decoder tied to the word embeddings */
        const char *dense, *norm, *bias;
        if (m->v->layout == LAYOUT_DISTILBERT) {
            dense = "vocab_transform", norm = "vocab_layer_norm", bias = "vocab_projector.bias";
        } else if (m->v->roberta_positions) {
            dense = "lm_head.dense", norm = "lm_head.layer_norm", bias = "lm_head.bias";
        } else if ((m->v->layout == LAYOUT_BERT || m->v->layout == LAYOUT_DEBERTA) &&
                   m->E == m->H) {
            dense = "cls.predictions.transform.dense";
            norm = "cls.predictions.transform.LayerNorm";
            bias = "cls.predictions.bias";
        } else {
            return err_set(e, ERR_FORMAT, "%s: %s is not supported", w->dir, arch);
        }
        m->head = HEAD_MASKED_LM;
        m->out_width = (size_t)m->vocab;
        enum act tact =
            m->v->roberta_positions || m->v->layout == LAYOUT_DISTILBERT ? ACT_GELU_ERF : m->act;
        int rc = take_linear(w, ctx, dense, H, H, dt, tact, &m->mlm_transform, e);
        if (rc == 0)
            rc = take_ln(w, norm, H, &m->mlm_ln, e);
        float *bv = NULL;
        if (rc == 0)
            rc = weights_take(w, bias, m->vocab, 0, &bv, e);
        if (rc == 0)
            rc = linear_init(&m->cls, ctx, emb_table_f32(&m->word), bv, (int)H, (int)m->vocab, dt,
                             ACT_NONE, e);
        free(bv);
        return rc;
    }
    if (ends_with(arch, "Model") || arch[0] == '\0') {
        m->head = HEAD_NONE;
        m->out_width = (size_t)H;
        return 0;
    }
    return err_set(e, ERR_FORMAT, "%s: config.json: architecture '%s' is not supported", w->dir,
                   arch);
}

static int load_embeddings(struct encoder *m, struct weights *w, struct dnn_ctx *ctx,
                           enum dtype_compute dt, struct err *e)
{
    char n[256];
    const char *p = m->prefix;
    snprintf(n, sizeof n, "%sembeddings.word_embeddings.weight", p);
    float *word = NULL;
    int rc = weights_take(w, n, m->vocab, m->E, &word, e);
    if (rc == 0)
        emb_table_take(&m->word, word, m->vocab, m->E);
    /* as many positions as the file has (DeBERTa-v3: none, relative positions only) */
    snprintf(n, sizeof n, "%sembeddings.position_embeddings.weight", p);
    const struct tensor *pt = checkpoint_get(w->ck, n);
    m->n_pos = pt ? pt->shape[0] : 0;
    if (rc == 0 && (!m->v->rel || m->v->rel->abs_positions(&m->cfg)))
        rc = weights_take(w, n, m->n_pos, m->E, &m->pos, e);
    if (rc == 0 && m->v->has_types && m->cfg.type_vocab_size > 0) {
        m->n_type = m->cfg.type_vocab_size;
        snprintf(n, sizeof n, "%sembeddings.token_type_embeddings.weight", p);
        rc = weights_take(w, n, m->n_type, m->E, &m->type, e);
    }
    snprintf(n, sizeof n, "%sembeddings.LayerNorm", p);
    if (rc == 0)
        rc = take_ln(w, n, m->E, &m->emb_ln, e);
    if (rc == 0 && m->E != m->H) {
        m->has_proj = true;
        if (m->v->layout == LAYOUT_ALBERT)
            snprintf(n, sizeof n, "%sencoder.embedding_hidden_mapping_in", p);
        else
            snprintf(n, sizeof n, "%sembeddings_project", p);
        rc = take_linear(w, ctx, n, m->E, m->H, dt, ACT_NONE, &m->proj, e);
    }
    return rc;
}

/* Every tensor must be used, except HF's known extras: pooler weights of models whose head does
 * not pool, position-id buffers, and the MLM decoder tied to the word embeddings. */
static bool ignorable(const void *arg, const char *name)
{
    (void)arg;
    return strstr(name, "pooler") || strstr(name, "position_ids") ||
           strstr(name, "predictions.decoder") || strstr(name, "lm_head.decoder") ||
           strstr(name, "vocab_projector.weight");
}

/* A variant with its own family: its tensors, then encoder.c's view of them. */
static int load_family(struct encoder *m, struct weights *w, enum dtype_compute dt,
                       struct dnn_ctx *ctx, struct err *e)
{
    const char *prefix = weights_pick_prefix(w, m->v->prefix, "embeddings.norm.weight");
    struct encoder_facts f = {0};
    int rc = m->v->family->load(&m->cfg, w, prefix, dt, ctx, &m->family_model, &f, e);
    m->head = f.head;
    m->out_width = f.out_width;
    m->n_pos = m->cfg.max_position_embeddings;
    return rc ? rc : weights_check_unused(w, m->cfg.architecture, ignorable, NULL, e);
}

/* config.json, then the tensors (see weights_load_fn). */
static int load(void *model, struct weights *w, enum dtype_compute dt, struct dnn_ctx *ctx,
                struct err *e)
{
    struct encoder *m = model;
    const char *dir = w->dir;
    const char *names[N_VARIANTS];
    encoder_model_types(names, N_VARIANTS);
    const struct hf_accept accept = {names, N_VARIANTS, "the encoder tasks"};
    int rc = hf_config_load_for(dir, &accept, &m->cfg, e);
    if (rc)
        return rc;
    for (size_t i = 0; i < N_VARIANTS; i++)
        if (strcmp(variants[i].model_type, m->cfg.model_type) == 0)
            m->v = &variants[i];
    m->H = (int)m->cfg.hidden_size;
    m->I = (int)m->cfg.intermediate_size;
    m->E = (int)m->cfg.embedding_size;
    m->n_heads = (int)m->cfg.num_attention_heads;
    m->n_layers = (int)m->cfg.num_hidden_layers;
    m->vocab = m->cfg.vocab_size;
    m->eps = (float)m->cfg.layer_norm_eps;
    if (m->n_heads <= 0 || m->H % m->n_heads != 0)
        return err_set(e, ERR_FORMAT,
                       "%s: config.json: hidden_size %d is not a multiple of %d heads", dir, m->H,
                       m->n_heads);
    m->head_dim = m->H / m->n_heads;
    if ((rc = act_parse(m->cfg.hidden_act, &m->act, e)) != 0) {
        err_prefix(e, "%s: config.json: ", dir);
        return rc;
    }
    if ((rc = weights_open(w, e)) != 0)
        return rc;
    snprintf(m->prefix, sizeof m->prefix, "%s",
             weights_pick_prefix(w, m->v->prefix, "embeddings.word_embeddings.weight"));
    if (m->v->family)
        return load_family(m, w, dt, ctx, e);

    if ((rc = load_embeddings(m, w, ctx, dt, e)) != 0)
        return rc;
    int groups = m->v->layout == LAYOUT_ALBERT ? (int)m->cfg.num_hidden_groups : 1;
    int inner = m->v->layout == LAYOUT_ALBERT ? (int)m->cfg.inner_group_num : 1;
    m->n_layer_weights = m->v->layout == LAYOUT_ALBERT ? groups * inner : m->n_layers;
    if (groups <= 0 || inner <= 0 || m->n_layers % groups != 0)
        return err_set(e, ERR_FORMAT, "%s: config.json: %d layers in %d groups", dir, m->n_layers,
                       groups);
    m->layers = calloc((size_t)m->n_layer_weights, sizeof *m->layers);
    if (!m->layers)
        return err_set(e, ERR_NOMEM, "out of memory");
    for (int i = 0; i < m->n_layer_weights && rc == 0; i++) {
        char lp[128];
        if (m->v->layout == LAYOUT_ALBERT)
            snprintf(lp, sizeof lp, "%sencoder.albert_layer_groups.%d.albert_layers.%d.", m->prefix,
                     i / inner, i % inner);
        else if (m->v->layout == LAYOUT_DISTILBERT)
            snprintf(lp, sizeof lp, "%stransformer.layer.%d.", m->prefix, i);
        else
            snprintf(lp, sizeof lp, "%sencoder.layer.%d.", m->prefix, i);
        rc = load_layer(m, w, ctx, lp, dt, &m->layers[i], e);
    }
    /* ALBERT: layer l uses group l / (layers / groups), whose inner layers run in order */
    m->n_steps = m->n_layers * inner;
    m->schedule = calloc((size_t)m->n_steps, sizeof *m->schedule);
    if (rc == 0 && !m->schedule)
        rc = err_set(e, ERR_NOMEM, "out of memory");
    for (int l = 0; rc == 0 && l < m->n_layers; l++)
        for (int k = 0; k < inner; k++)
            m->schedule[l * inner + k] =
                m->v->layout == LAYOUT_ALBERT ? (l / (m->n_layers / groups)) * inner + k : l;
    if (rc == 0 && m->v->rel)
        rc = m->v->rel->load(m, w, ctx, e);
    if (rc == 0)
        rc = load_head(m, w, ctx, dt, e);
    if (rc == 0) /* after load_head: an MLM decoder is packed from the f32 rows (one copy) */
        rc = m->head == HEAD_MASKED_LM ? emb_table_share(&m->word, &m->cls, dt, e)
                                       : emb_table_compact(&m->word, dt, e);
    return rc ? rc : weights_check_unused(w, m->cfg.architecture, ignorable, NULL, e);
}

static void unload(void *m)
{
    encoder_free(m);
}

int encoder_load(const char *dir, enum dtype_compute dt, struct dnn_ctx *ctx, struct encoder **out,
                 struct err *e)
{
    void *m;
    int rc = weights_load_model(dir, dt, ctx, sizeof **out, load, unload, &m, e);
    *out = m;
    return rc;
}

void encoder_free(struct encoder *m)
{
    if (!m)
        return;
    if (m->v && m->v->family)
        m->v->family->free(m->family_model);
    for (int i = 0; m->layers && i < m->n_layer_weights; i++) {
        struct layer *L = &m->layers[i];
        linear_fini(&L->qkv);
        linear_fini(&L->o);
        linear_fini(&L->ffn1);
        linear_fini(&L->ffn2);
        norm_weights_fini(&L->ln_att);
        norm_weights_fini(&L->ln_out);
    }
    free(m->layers);
    free(m->schedule);
    free(m->rel_table);
    emb_table_fini(&m->word);
    free(m->pos);
    free(m->type);
    norm_weights_fini(&m->emb_ln);
    linear_fini(&m->proj);
    linear_fini(&m->pool);
    linear_fini(&m->cls);
    linear_fini(&m->mlm_transform);
    norm_weights_fini(&m->mlm_ln);
    hf_config_fini(&m->cfg);
    free(m);
}

const struct hf_config *encoder_config(const struct encoder *m)
{
    return &m->cfg;
}

enum encoder_head encoder_head_kind(const struct encoder *m)
{
    return m->head;
}

size_t encoder_out_width(const struct encoder *m)
{
    return m->out_width;
}

/* ---- forward ---- */

struct encoder_run *encoder_run_new(void)
{
    return calloc(1, sizeof(struct encoder_run));
}

void encoder_run_set_stop(struct encoder_run *r, encoder_stop_fn stop, void *arg)
{
    r->stop = stop;
    r->stop_arg = arg;
}

static int check_stop(const struct encoder_run *r, struct err *e)
{
    if (r->stop && r->stop(r->stop_arg))
        return err_set(e, ERR_CANCELLED, "encoder: cancelled");
    return 0;
}

void encoder_run_free(struct encoder_run *r)
{
    if (!r)
        return;
    free(r->emb);
    free(r->x);
    free(r->qkv);
    free(r->att);
    free(r->tmp);
    free(r->inter);
    free(r->rows);
    free(r->rows2);
    free(r->out);
    free(r->bias);
    free(r->passes);
    free(r->pass_order);
    free(r->pass_ids);
    for (int i = 0; i < MAX_PASS_THREADS; i++) {
        encoder_run_free(r->sub[i]);
        dnn_ctx_free(r->sub_ctx[i]);
    }
    if (r->family_run_free)
        r->family_run_free(r->family_run);
    free(r);
}

static int embed(const struct encoder *m, struct dnn_ctx *ctx, const struct encoder_batch *b,
                 float *emb, struct err *e)
{
    size_t E = (size_t)m->E;
    int64_t pad = m->cfg.pad_token_id;
    int M = b->batch * b->seq;
    /* positions (M), checked with the ids and types first; the sums below cannot fail */
    int32_t *pos = dnn_scratch(ctx, (size_t)M * sizeof *pos, e);
    if (!pos)
        return e ? e->kind : ERR_NOMEM;
    for (int i = 0; i < b->batch; i++) {
        int64_t run = 0; /* RoBERTa: count of non-pad tokens so far */
        for (int t = 0; t < b->seq; t++) {
            size_t r = (size_t)i * (size_t)b->seq + (size_t)t;
            int32_t id = b->ids[r];
            if (id < 0 || id >= m->vocab)
                return err_set(e, ERR_INVALID, "token id %d out of the vocabulary (%lld)", id,
                               (long long)m->vocab);
            int64_t p = t;
            if (m->v->roberta_positions)
                p = id != pad ? pad + ++run : pad;
            if (m->pos && (p < 0 || p >= m->n_pos))
                return err_set(e, ERR_INVALID, "sequence too long: position %lld of %lld",
                               (long long)p, (long long)m->n_pos);
            int32_t tt = b->type_ids ? b->type_ids[r] : 0;
            if (m->type && (tt < 0 || tt >= m->n_type))
                return err_set(e, ERR_INVALID, "token type %d out of range", tt);
            pos[r] = (int32_t)p;
        }
    }
#pragma omp parallel for schedule(static) if (M >= 64)
    for (int r = 0; r < M; r++) {
        int32_t tt = b->type_ids ? b->type_ids[r] : 0;
        const float *pe = m->pos ? m->pos + (size_t)pos[r] * E : NULL;
        const float *te = m->type ? m->type + (size_t)tt * E : NULL;
        float *o = emb + (size_t)r * E;
        emb_table_row(&m->word, b->ids[r], o);
        for (size_t k = 0; pe && k < E; k++)
            o[k] += pe[k];
        for (size_t k = 0; te && k < E; k++)
            o[k] += te[k];
    }
    int rc = layernorm_forward(ctx, emb, NULL, emb, m->emb_ln.w, m->emb_ln.b, m->eps, M, m->E, e);
    if (rc == 0 && m->v->rel && m->v->rel->mask_embeddings && b->mask)
        for (int r = 0; r < M; r++)
            if (!b->mask[r])
                memset(emb + (size_t)r * E, 0, E * sizeof *emb);
    return rc;
}

/* The layer after its attention r->att: x = LN(x + att W_o + b) (the residual add is the
 * matmul's sum post-op, in place in x), then x = LN(x + ffn2(ffn1(x))) through inter (M, I). */
static int layer_rest(const struct encoder *m, const struct layer *L, struct dnn_ctx *ctx,
                      struct encoder_run *r, int M, struct err *e)
{
    int H = m->H;
    int rc = linear_forward_add(&L->o, ctx, r->att, r->x, M, e);
    if (rc == 0)
        rc = layernorm_forward(ctx, r->x, NULL, r->x, L->ln_att.w, L->ln_att.b, m->eps, M, H, e);
    if (rc == 0)
        rc = linear_ffn_forward(&L->ffn1, &L->ffn2, ctx, r->x, r->inter, r->x, M, e);
    if (rc == 0)
        rc = layernorm_forward(ctx, r->x, NULL, r->x, L->ln_out.w, L->ln_out.b, m->eps, M, H, e);
    return rc;
}

/* Step li of the forward pass, with layer L. */
static int layer_forward(const struct encoder *m, int li, const struct layer *L,
                         struct dnn_ctx *ctx, struct encoder_run *r, const struct encoder_batch *b,
                         struct err *e)
{
    int M = b->batch * b->seq, H = m->H, rc;
    struct attn_shape s = {b->batch, b->seq, m->n_heads, m->head_dim, 3 * H, H, 0};
    struct attn_bias ab = {0};
    if (L->qkv.dt == DTYPE_COMPUTE_INT8 && !m->v->rel && attention_bf16_native(&s)) {
        /* INT8: QKV straight into bf16 heads (in r->qkv's memory), attention in bf16 on them */
        uint16_t *heads = (uint16_t *)(void *)r->qkv;
        rc = linear_forward_heads(&L->qkv, ctx, r->x, &s, heads, e);
        if (rc == 0)
            rc = attention_forward_heads(ctx, &s, heads, b->mask, r->att, e);
        return rc != 0 ? rc : layer_rest(m, L, ctx, r, M, e);
    }
    rc = linear_forward(&L->qkv, ctx, r->x, r->qkv, M, e); /* (M, 3H) */
    if (rc == 0 && m->v->rel)
        rc = m->v->rel->layer(m, li, r, b, &ab, e);
    /* INT8: attention in bf16 (ops/attention_bf16.c; f32 without native bf16), unless a
     * relative-position bias */
    if (rc == 0 && L->qkv.dt == DTYPE_COMPUTE_INT8 && !m->v->rel)
        rc =
            attention_forward_bf16(ctx, &s, r->qkv, r->qkv + H, r->qkv + 2 * H, b->mask, r->att, e);
    else if (rc == 0)
        rc = attention_forward_biased(ctx, &s, r->qkv, r->qkv + H, r->qkv + 2 * H, b->mask,
                                      m->v->rel ? &ab : NULL, r->att, e);
    return rc != 0 ? rc : layer_rest(m, L, ctx, r, M, e);
}

static int head_forward(const struct encoder *m, struct dnn_ctx *ctx, struct encoder_run *r,
                        const struct encoder_batch *b, const float **out, struct err *e)
{
    int M = b->batch * b->seq, H = m->H, rc = 0;
    size_t W = m->out_width;
    switch (m->head) {
    case HEAD_NONE: *out = r->x; return 0;
    case HEAD_SEQ_CLS: {
        /* first token of each sequence -> pooler/dense -> classifier */
        if ((rc = grow_floats(&r->rows, &r->cap_rows, (size_t)b->batch * (size_t)H, e)) ||
            (rc = grow_floats(&r->rows2, &r->cap_rows2, (size_t)b->batch * (size_t)H, e)) ||
            (rc = grow_floats(&r->out, &r->cap_out, (size_t)b->batch * W, e)))
            return rc;
        for (int i = 0; i < b->batch; i++)
            memcpy(r->rows + (size_t)i * (size_t)H, r->x + (size_t)i * (size_t)b->seq * (size_t)H,
                   (size_t)H * sizeof(float));
        rc = linear_forward(&m->pool, ctx, r->rows, r->rows2, b->batch, e);
        if (rc == 0 && m->pool_tanh)
            for (size_t k = 0; k < (size_t)b->batch * (size_t)H; k++)
                r->rows2[k] = tanhf(r->rows2[k]);
        if (rc == 0)
            rc = linear_forward(&m->cls, ctx, r->rows2, r->out, b->batch, e);
        *out = r->out;
        return rc;
    }
    case HEAD_TOKEN_CLS:
    case HEAD_QA:
        if ((rc = grow_floats(&r->out, &r->cap_out, (size_t)M * W, e)) != 0)
            return rc;
        rc = linear_forward(&m->cls, ctx, r->x, r->out, M, e);
        *out = r->out;
        return rc;
    case HEAD_MASKED_LM: {
        int n = b->lm_rows ? b->n_lm_rows : M;
        if (n <= 0)
            return err_set(e, ERR_INVALID, "no rows to predict");
        if ((rc = grow_floats(&r->rows, &r->cap_rows, (size_t)n * (size_t)H, e)) ||
            (rc = grow_floats(&r->rows2, &r->cap_rows2, (size_t)n * (size_t)H, e)) ||
            (rc = grow_floats(&r->out, &r->cap_out, (size_t)n * W, e)))
            return rc;
        for (int i = 0; i < n; i++) {
            int row = b->lm_rows ? b->lm_rows[i] : i;
            if (row < 0 || row >= M)
                return err_set(e, ERR_INVALID, "row %d outside the batch", row);
            memcpy(r->rows + (size_t)i * (size_t)H, r->x + (size_t)row * (size_t)H,
                   (size_t)H * sizeof(float));
        }
        rc = linear_forward(&m->mlm_transform, ctx, r->rows, r->rows2, n, e);
        if (rc == 0)
            rc = layernorm_forward(ctx, r->rows2, NULL, r->rows2, m->mlm_ln.w, m->mlm_ln.b, m->eps,
                                   n, H, e);
        if (rc == 0)
            rc = linear_forward(&m->cls, ctx, r->rows2, r->out, n, e);
        *out = r->out;
        return rc;
    }
    }
    return err_set(e, ERR_INTERNAL, "unknown head");
}

/* A pass: sequences order[first .. first + n) of the batch, each cut to len tokens (the
 * longest real length among them: no padding beyond it). */
struct pass_spec {
    int first, n, len;
};

/* Runs one pass on the calling thread (thread th of the team) and copies its outputs into
 * r's at the rows of its sequences; positions past a sequence's pass length are zeros. */
static int pass_forward(const struct encoder *m, struct encoder_run *r,
                        const struct encoder_batch *b, const int32_t *order,
                        const struct pass_spec *ps, int th, bool want_hidden, struct err *e)
{
    if (!r->sub[th] && !(r->sub[th] = encoder_run_new()))
        return err_set(e, ERR_NOMEM, "out of memory for a pass");
    if (!r->sub_ctx[th] && !(r->sub_ctx[th] = dnn_ctx_new(1, e)))
        return e->kind ? e->kind : ERR_NOMEM;
    struct encoder_run *sr = r->sub[th];
    encoder_run_set_stop(sr, r->stop, r->stop_arg);
    size_t S = (size_t)b->seq, L = (size_t)ps->len, n = (size_t)ps->n;
    int rc;
    if ((rc = grow_array(&sr->pass_ids, &sr->cap_pass_ids, 3 * n * L, sizeof *sr->pass_ids, e)) !=
        0)
        return rc;
    int32_t *ids = sr->pass_ids, *types = ids + n * L, *mask = types + n * L;
    size_t c = L < S ? L : S; /* tokens taken from each row; the rest is masked padding */
    int32_t pad = m->cfg.pad_token_id >= 0 && m->cfg.pad_token_id < m->vocab
                      ? (int32_t)m->cfg.pad_token_id
                      : 0;
    for (size_t j = 0; j < n; j++) {
        size_t src = (size_t)order[ps->first + (int)j] * S;
        int32_t *ij = ids + j * L, *tj = types + j * L, *mj = mask + j * L;
        memcpy(ij, b->ids + src, c * sizeof *ids);
        if (b->type_ids)
            memcpy(tj, b->type_ids + src, c * sizeof *types);
        else
            memset(tj, 0, c * sizeof *types);
        if (b->mask)
            memcpy(mj, b->mask + src, c * sizeof *mask);
        for (size_t t = 0; t < c && !b->mask; t++)
            mj[t] = 1;
        for (size_t t = c; t < L; t++) {
            ij[t] = pad;
            tj[t] = 0;
            mj[t] = 0;
        }
    }
    struct encoder_batch sb = {
        .batch = ps->n, .seq = ps->len, .ids = ids, .type_ids = types, .mask = mask};
    const float *so, *sh = NULL;
    rc = encoder_forward(m, r->sub_ctx[th], sr, &sb, &so, want_hidden ? &sh : NULL, e);
    if (rc)
        return rc;
    size_t H = (size_t)m->H, W = m->out_width;
    for (size_t j = 0; j < n; j++) {
        size_t row = (size_t)order[ps->first + (int)j];
        if (want_hidden) {
            memcpy(r->x + row * S * H, sh + j * L * H, c * H * sizeof(float));
            memset(r->x + (row * S + c) * H, 0, (S - c) * H * sizeof(float));
        }
        if (m->head == HEAD_SEQ_CLS)
            memcpy(r->out + row * W, so + j * W, W * sizeof(float));
        else if (m->head != HEAD_NONE) {
            memcpy(r->out + row * S * W, so + j * L * W, c * W * sizeof(float));
            memset(r->out + (row * S + c) * W, 0, (S - c) * W * sizeof(float));
        }
    }
    return 0;
}

/* The batch as passes over the threads (see PASS_ROWS): sequences sorted by real length
 * (the last token the mask keeps), longest first, then cut into passes of at most PASS_ROWS
 * tokens (at least one sequence), each padded only to its own longest. */
static int split_forward(const struct encoder *m, struct encoder_run *r,
                         const struct encoder_batch *b, const float **out, const float **hidden,
                         struct err *e)
{
    size_t B = (size_t)b->batch, S = (size_t)b->seq;
    int rc = grow_array(&r->pass_order, &r->cap_pass_order, 2 * B, sizeof *r->pass_order, e);
    if (rc == 0)
        rc = grow_array(&r->passes, &r->cap_passes, B, sizeof *r->passes, e);
    if (rc)
        return rc;
    int32_t *order = r->pass_order, *len = order + B;
    for (size_t i = 0; i < B; i++) {
        int l = (int)S;
        if (b->mask)
            while (l > 1 && b->mask[i * S + (size_t)l - 1] == 0)
                l--;
        len[i] = l;
        order[i] = (int32_t)i;
    }
    /* insertion sort by length, longest first, stable (batches are small) */
    for (size_t i = 1; i < B; i++) {
        int32_t v = order[i];
        size_t j = i;
        while (j > 0 && len[order[j - 1]] < len[v]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
    int n_pass = 0;
    for (int i = 0; i < (int)B;) {
        /* lengths rounded up to PASS_ALIGN tokens (masked padding): a handful of shapes, so
         * the oneDNN primitives of every pass shape stay cached instead of being rebuilt */
        int L = (len[order[i]] + PASS_ALIGN - 1) / PASS_ALIGN * PASS_ALIGN;
        if (!m->v->roberta_positions && m->pos && L > m->n_pos)
            L = len[order[i]]; /* padding would need positions past the table */
        int n = PASS_ROWS / L > 0 ? PASS_ROWS / L : 1;
        n = n > (int)B - i ? (int)B - i : n;
        r->passes[n_pass++] = (struct pass_spec){i, n, L};
        i += n;
    }
    int T = omp_get_max_threads();
    T = T > MAX_PASS_THREADS ? MAX_PASS_THREADS : T;
    T = T > n_pass ? n_pass : T;
    size_t M = B * S, W = m->out_width;
    bool want_hidden = hidden || m->head == HEAD_NONE;
    size_t n_out = m->head == HEAD_SEQ_CLS ? B * W : M * W;
    if ((want_hidden && (rc = grow_floats(&r->x, &r->cap_x, M * (size_t)m->H, e))) ||
        (m->head != HEAD_NONE && (rc = grow_floats(&r->out, &r->cap_out, n_out, e))))
        return rc;
    int failed = 0;
    struct err first = {0};
#pragma omp parallel num_threads(T)
    {
        int th = omp_get_thread_num();
        struct err te = {0};
#pragma omp for schedule(dynamic, 1)
        for (int p = 0; p < n_pass; p++) {
            int bad;
#pragma omp atomic read
            bad = failed;
            if (bad)
                continue;
            if (pass_forward(m, r, b, order, &r->passes[p], th, want_hidden, &te) != 0) {
#pragma omp critical(encoder_pass_error)
                if (!failed) {
                    failed = 1;
                    first = te;
                }
            }
        }
    }
    if (failed) {
        if (e)
            *e = first;
        return first.kind ? first.kind : ERR_INTERNAL;
    }
    if (hidden)
        *hidden = r->x;
    *out = m->head == HEAD_NONE ? r->x : r->out;
    return 0;
}

int encoder_forward(const struct encoder *m, struct dnn_ctx *ctx, struct encoder_run *r,
                    const struct encoder_batch *b, const float **out, const float **hidden,
                    struct err *e)
{
    if (b->batch <= 0 || b->seq <= 0)
        return err_set(e, ERR_INVALID, "empty batch (%d x %d)", b->batch, b->seq);
    /* several sequences: passes over the threads (a masked-LM batch picking rows keeps one
     * pass: its output rows follow lm_rows, not the sequences) */
    if (b->batch > 1 && !b->lm_rows && !omp_in_parallel() &&
        (omp_get_max_threads() > 1 || (size_t)b->batch * (size_t)b->seq > PASS_ROWS))
        return split_forward(m, r, b, out, hidden, e);
    if (m->v->family) {
        const struct encoder_stop stop = {r->stop, r->stop_arg};
        r->family_run_free = m->v->family->run_free;
        return m->v->family->forward(m->family_model, ctx, &r->family_run, b, &stop, out, hidden,
                                     e);
    }
    size_t M = (size_t)b->batch * (size_t)b->seq;
    int rc;
    if ((rc = grow_floats(&r->x, &r->cap_x, M * (size_t)m->H, e)) ||
        (rc = grow_floats(&r->qkv, &r->cap_qkv, M * 3 * (size_t)m->H, e)) ||
        (rc = grow_floats(&r->att, &r->cap_att, M * (size_t)m->H, e)) ||
        (rc = grow_floats(&r->tmp, &r->cap_tmp, M * (size_t)m->H, e)) ||
        (rc = grow_floats(&r->inter, &r->cap_inter, M * (size_t)m->I, e)) ||
        (m->has_proj && (rc = grow_floats(&r->emb, &r->cap_emb, M * (size_t)m->E, e))))
        return rc;
    float *emb = m->has_proj ? r->emb : r->x;
    if ((rc = embed(m, ctx, b, emb, e)) != 0)
        return rc;
    if (m->has_proj && (rc = linear_forward(&m->proj, ctx, emb, r->x, (int)M, e)) != 0)
        return rc;
    if (m->v->rel && m->v->rel->prepare && (rc = m->v->rel->prepare(m, r, b, e)) != 0)
        return rc;
    for (int i = 0; i < m->n_steps && rc == 0; i++)
        if ((rc = check_stop(r, e)) == 0)
            rc = layer_forward(m, i, &m->layers[m->schedule[i]], ctx, r, b, e);
    if (rc)
        return rc;
    if (hidden)
        *hidden = r->x;
    return head_forward(m, ctx, r, b, out, e);
}
