/* text_classification: the text-classification pipeline's parameters and post-processing
 * (transformers TextClassificationPipeline): function_to_apply, top_k and the legacy
 * return_all_scores, with HF's output shapes for one input text. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pipeline.h"

int text_classification_params(const json_t *parameters, struct textcls_params *p, struct err *e)
{
    *p = (struct textcls_params){.function_to_apply = TEXTCLS_FN_DEFAULT, .top_k = 1};
    int rc = pipeline_check_parameters(parameters, e);
    if (rc)
        return rc;
    const char *fn = NULL;
    if ((rc = pipeline_param_string(parameters, "function_to_apply", &fn, e)) != 0)
        return err_set(
            e, ERR_INVALID,
            "parameter 'function_to_apply' must be \"softmax\", \"sigmoid\" or \"none\"");
    if (fn) {
        if (strcasecmp(fn, "softmax") == 0)
            p->function_to_apply = TEXTCLS_FN_SOFTMAX;
        else if (strcasecmp(fn, "sigmoid") == 0)
            p->function_to_apply = TEXTCLS_FN_SIGMOID;
        else if (strcasecmp(fn, "none") == 0)
            p->function_to_apply = TEXTCLS_FN_NONE;
        else
            return err_set(e, ERR_INVALID,
                           "parameter 'function_to_apply' must be \"softmax\", \"sigmoid\" or "
                           "\"none\", not \"%.40s\"",
                           fn);
    }
    /* top_k present (even as null) selects the sorted-list shape; null means every label. */
    bool top_k_null = false;
    if ((rc = pipeline_param_positive(parameters, "top_k", true, &p->top_k, &top_k_null, e)) != 0)
        return rc;
    p->top_k_given =
        top_k_null || (json_is_object(parameters) && json_object_get(parameters, "top_k") != NULL);
    if (top_k_null)
        p->top_k = 0;
    return pipeline_param_bool(parameters, "return_all_scores", &p->return_all_scores, e);
}

/* HF's default: regression none; multi-label or one label sigmoid; otherwise softmax. */
static enum textcls_fn default_fn(const char *problem_type, size_t n_labels)
{
    if (problem_type && strcmp(problem_type, "regression") == 0)
        return TEXTCLS_FN_NONE;
    if ((problem_type && strcmp(problem_type, "multi_label_classification") == 0) || n_labels == 1)
        return TEXTCLS_FN_SIGMOID;
    return TEXTCLS_FN_SOFTMAX;
}

static json_t *label_score(const char *label, double score)
{
    return json_pack("{s:s, s:f}", "label", label, "score", score);
}

/* A list of {label, score} for the labels in order[0..n). */
static json_t *label_list(const char *const *id2label, const double *scores, const size_t *order,
                          size_t n)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++)
        if (json_array_append_new(list, label_score(id2label[order[i]], scores[order[i]])) != 0) {
            json_decref(list);
            return NULL;
        }
    return list;
}

int text_classification_finish(const float *logits, size_t n_labels, const char *const *id2label,
                               const char *problem_type, const struct textcls_params *p,
                               json_t **out, struct err *e)
{
    *out = NULL;
    if (n_labels == 0)
        return err_set(e, ERR_INTERNAL, "text-classification: the model has no labels");
    double *scores = malloc(n_labels * sizeof *scores); /* (n_labels) */
    size_t *order = malloc(n_labels * sizeof *order);
    json_t *result = NULL;
    if (!scores || !order)
        goto nomem;
    enum textcls_fn fn = p->function_to_apply;
    if (fn == TEXTCLS_FN_DEFAULT)
        fn = default_fn(problem_type, n_labels);
    for (size_t i = 0; i < n_labels; i++) {
        scores[i] = logits[i];
        if (fn == TEXTCLS_FN_SIGMOID)
            scores[i] = 1.0 / (1.0 + exp(-scores[i]));
        order[i] = i;
    }
    if (fn == TEXTCLS_FN_SOFTMAX)
        pipeline_softmax(scores, n_labels);

    if (!p->top_k_given && !p->return_all_scores) {
        /* legacy: [{"label": argmax, "score": max}]; the first maximum wins, as argmax */
        size_t best = 0;
        for (size_t i = 1; i < n_labels; i++)
            if (scores[i] > scores[best])
                best = i;
        result = label_list(id2label, scores, &best, 1);
    } else if (!p->top_k_given) {
        /* legacy return_all_scores: every label in label order, inside one more list */
        json_t *inner = label_list(id2label, scores, order, n_labels);
        result = inner ? json_array() : NULL;
        if (result && json_array_append_new(result, inner) != 0) {
            json_decref(result);
            result = NULL;
        }
    } else {
        /* sorted by score, descending; equal scores keep label order (Python's stable sort) */
        for (size_t i = 1; i < n_labels; i++) {
            size_t v = order[i], j = i;
            for (; j > 0 && scores[order[j - 1]] < scores[v]; j--)
                order[j] = order[j - 1];
            order[j] = v;
        }
        size_t k = p->top_k == 0 || p->top_k > n_labels ? n_labels : p->top_k;
        result = label_list(id2label, scores, order, k);
    }
    if (!result)
        goto nomem;
    free(scores);
    free(order);
    *out = result;
    return 0;
nomem:
    free(scores);
    free(order);
    return err_set(e, ERR_NOMEM, "text-classification: out of memory");
}
