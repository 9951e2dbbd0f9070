/* fill_mask: the fill-mask pipeline's parameters and post-processing (transformers
 * FillMaskPipeline): softmax over the vocabulary at each mask position, top_k, targets,
 * and token_str / sequence decoded by the tokenizer as HF does. The top_k of each mask are
 * selected with a heap (O(vocab log k)), so a top_k larger than the vocabulary costs no
 * more than the vocabulary. */
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"

/* HF get_target_ids: a vocabulary entry as is, else the first id of its tokenization. */
static int target_id(const struct tokenizer *tk, const char *target, int32_t *id, struct err *e)
{
    *id = tokenizer_token_to_id(tk, target);
    if (*id >= 0)
        return 0;
    struct tokenizer_params tp = tokenizer_params_default(tk);
    tp.add_special_tokens = false;
    tp.truncation = true;
    tp.max_length = 1;
    tp.stride = 0;
    tp.padding = PAD_NONE;
    struct encodings enc = {0};
    int rc = tokenizer_encode(tk, target, strlen(target), NULL, 0, &tp, &enc, e);
    if (rc == 0 && enc.n > 0 && enc.v[0].n > 0)
        *id = enc.v[0].ids[0];
    encodings_fini(&enc);
    if (rc)
        return err_set(e, ERR_INVALID, "parameter 'targets': cannot tokenize '%.40s'", target);
    return 0;
}

int fill_mask_params(const struct tokenizer *tk, const json_t *parameters,
                     struct fill_mask_params *p, struct err *e)
{
    *p = (struct fill_mask_params){.top_k = 5};
    int rc = pipeline_check_parameters(parameters, e);
    if (rc == 0)
        rc = pipeline_param_positive(parameters, "top_k", false, &p->top_k, NULL, e);
    if (rc)
        return rc;
    const json_t *t = json_is_object(parameters) ? json_object_get(parameters, "targets") : NULL;
    if (!t || json_is_null(t))
        return 0;
    size_t n = json_is_string(t) ? 1 : json_is_array(t) ? json_array_size(t) : 0;
    bool ok = json_is_string(t) || json_is_array(t);
    for (size_t i = 0; ok && json_is_array(t) && i < n; i++)
        ok = json_is_string(json_array_get(t, i));
    if (!ok)
        return err_set(e, ERR_INVALID, "parameter 'targets' must be a string or a list of strings");
    p->target_ids = malloc((n ? n : 1) * sizeof *p->target_ids);
    if (!p->target_ids)
        return err_set(e, ERR_NOMEM, "fill-mask: out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_is_string(t) ? t : json_array_get(t, i));
        int32_t id;
        if ((rc = target_id(tk, s, &id, e)) != 0)
            goto fail;
        bool dup = id < 0;
        for (size_t j = 0; !dup && j < p->n_targets; j++)
            dup = p->target_ids[j] == id;
        if (!dup)
            p->target_ids[p->n_targets++] = id;
    }
    if (p->n_targets > 0)
        return 0;
    rc = err_set(e, ERR_INVALID, "parameter 'targets' must name at least one known token");
fail:
    fill_mask_params_fini(p);
    return rc;
}

void fill_mask_params_fini(struct fill_mask_params *p)
{
    free(p->target_ids);
    p->target_ids = NULL;
    p->n_targets = 0;
}

int fill_mask_check(const struct tokenizer *tk, const struct encoding *enc, struct err *e)
{
    int32_t mask = pipeline_special_id(tk, "mask_token");
    const char *name = tokenizer_config_str(tk, "mask_token");
    if (mask < 0)
        return err_set(e, ERR_INVALID, "fill-mask: the model's tokenizer has no mask token");
    for (size_t i = 0; i < enc->n; i++)
        if (enc->ids[i] == mask)
            return 0;
    return err_set(e, ERR_INVALID, "fill-mask: no mask_token (%s) found on the input", name);
}

/* One proposition: {score, token, token_str, sequence} for id at mask position pos. */
static json_t *proposition(const struct tokenizer *tk, const struct encoding *enc, size_t pos,
                           int32_t id, double score, bool single_mask, struct err *e)
{
    int32_t pad = pipeline_special_id(tk, "pad_token");
    int32_t *ids = malloc((enc->n ? enc->n : 1) * sizeof *ids);
    char *seq = NULL, *tok = NULL;
    json_t *o = NULL;
    if (!ids) {
        err_set(e, ERR_NOMEM, "fill-mask: out of memory");
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < enc->n; i++) {
        int32_t v = i == pos ? id : enc->ids[i];
        if (v != pad)
            ids[n++] = v;
    }
    /* with several masks the other masks stay visible: specials kept, as HF */
    if (tokenizer_decode(tk, ids, n, single_mask, &seq, NULL, e) == 0 &&
        tokenizer_decode(tk, &id, 1, false, &tok, NULL, e) == 0) {
        o = json_pack("{s:f, s:i, s:s, s:s}", "score", score, "token", (int)id, "token_str", tok,
                      "sequence", seq);
        if (!o)
            err_set(e, ERR_NOMEM, "fill-mask: cannot build the result");
    }
    free(ids);
    free(seq);
    free(tok);
    return o;
}

/* Candidate a ranks before b: higher probability, then lower id. */
static bool ranks_before(const double *probs, int32_t a, int32_t b)
{
    return probs[a] > probs[b] || (probs[a] == probs[b] && a < b);
}

/* Moves heap[i] down a heap of n ids whose root ranks last of them. */
static void sift_down(const double *probs, int32_t *heap, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, last = i;
        if (l < n && ranks_before(probs, heap[last], heap[l]))
            last = l;
        if (r < n && ranks_before(probs, heap[last], heap[r]))
            last = r;
        if (last == i)
            return;
        int32_t t = heap[i];
        heap[i] = heap[last];
        heap[last] = t;
        i = last;
    }
}

/* The k best of the candidate ids into best[0..k), in rank order: a heap of the k best so
 * far whose root is the worst of them (O(n log k)), then emptied from the back. Returns how
 * many were found (ids outside the vocabulary are skipped). */
size_t fill_mask_top_k(const double *probs, size_t vocab_size, const int32_t *cand, size_t n_cand,
                       size_t k, int32_t *best)
{
    size_t n = 0;
    for (size_t c = 0; c < n_cand && k > 0; c++) {
        int32_t id = cand ? cand[c] : (int32_t)c;
        if (id < 0 || (size_t)id >= vocab_size)
            continue;
        if (n < k) { /* sift up */
            size_t i = n++;
            for (; i > 0 && ranks_before(probs, best[(i - 1) / 2], id); i = (i - 1) / 2)
                best[i] = best[(i - 1) / 2];
            best[i] = id;
        } else if (ranks_before(probs, id, best[0])) {
            best[0] = id;
            sift_down(probs, best, n, 0);
        }
    }
    for (size_t m = n; m > 1; m--) { /* the worst goes last */
        int32_t t = best[0];
        best[0] = best[m - 1];
        best[m - 1] = t;
        sift_down(probs, best, m - 1, 0);
    }
    return n;
}

/* The propositions for the mask at position pos: top_k of the softmax over the vocabulary
 * (restricted to the targets when given), descending, equal scores by lower id. */
static int one_mask(const struct tokenizer *tk, const struct encoding *enc, size_t pos,
                    const float *row, size_t vocab_size, const struct fill_mask_params *p,
                    bool single_mask, json_t **out, struct err *e)
{
    double *probs = malloc(vocab_size * sizeof *probs); /* (vocab) */
    size_t n_cand = p->target_ids ? p->n_targets : vocab_size;
    size_t k = p->top_k < n_cand ? p->top_k : n_cand;
    int32_t *best = malloc((k ? k : 1) * sizeof *best);
    json_t *list = json_array();
    int rc = 0;
    if (!probs || !best || !list) {
        rc = err_set(e, ERR_NOMEM, "fill-mask: out of memory");
        goto cleanup;
    }
    for (size_t v = 0; v < vocab_size; v++)
        probs[v] = row[v];
    pipeline_softmax(probs, vocab_size);
    size_t found = fill_mask_top_k(probs, vocab_size, p->target_ids, n_cand, k, best);
    for (size_t i = 0; i < found; i++) {
        json_t *o = proposition(tk, enc, pos, best[i], probs[best[i]], single_mask, e);
        if (!o) {
            rc = e ? e->kind : ERR_NOMEM;
            goto cleanup;
        }
        json_array_append_new(list, o);
    }
    *out = list;
    list = NULL;
cleanup:
    json_decref(list);
    free(probs);
    free(best);
    return rc;
}

int fill_mask_finish(const struct tokenizer *tk, const struct encoding *enc, const float *logits,
                     size_t vocab_size, const struct fill_mask_params *p, json_t **out,
                     struct err *e)
{
    *out = NULL;
    int rc = fill_mask_check(tk, enc, e);
    if (rc)
        return rc;
    int32_t mask = pipeline_special_id(tk, "mask_token");
    size_t n_masks = 0;
    for (size_t i = 0; i < enc->n; i++)
        n_masks += enc->ids[i] == mask;
    json_t *all = json_array();
    if (!all)
        return err_set(e, ERR_NOMEM, "fill-mask: out of memory");
    for (size_t i = 0; i < enc->n; i++) {
        if (enc->ids[i] != mask)
            continue;
        json_t *list = NULL;
        if ((rc = one_mask(tk, enc, i, logits + i * vocab_size, vocab_size, p, n_masks == 1, &list,
                           e)) != 0) {
            json_decref(all);
            return rc;
        }
        if (n_masks == 1) {
            json_decref(all);
            *out = list;
            return 0;
        }
        json_array_append_new(all, list);
    }
    *out = all;
    return 0;
}

size_t fill_mask_max_results(const struct tokenizer *tk, const struct encoding *enc,
                             size_t vocab_size, const struct fill_mask_params *p)
{
    int32_t mask = pipeline_special_id(tk, "mask_token");
    size_t n_masks = 0;
    for (size_t i = 0; i < enc->n; i++)
        n_masks += enc->ids[i] == mask;
    size_t n_cand = p->target_ids ? p->n_targets : vocab_size;
    return n_masks * (p->top_k < n_cand ? p->top_k : n_cand);
}
