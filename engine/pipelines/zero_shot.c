/* zero_shot: the zero-shot-classification pipeline (transformers
 * ZeroShotClassificationPipeline): candidate labels, the hypothesis template formatted as
 * Python's str.format, one (sequence, hypothesis) NLI pair per label, and the entailment
 * scores (softmax across labels, or entailment vs contradiction per label with multi_label). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pipeline.h"

static int add_label(struct zero_shot_params *p, const char *s, size_t len, struct err *e)
{
    /* the array doubles when full: its size is the next power of two of n_labels */
    if ((p->n_labels & (p->n_labels - 1)) == 0) {
        size_t cap = p->n_labels ? 2 * p->n_labels : 1;
        char **v = realloc(p->candidate_labels, cap * sizeof *v);
        if (!v)
            return err_set(e, ERR_NOMEM, "zero-shot-classification: out of memory");
        p->candidate_labels = v;
    }
    if (!(p->candidate_labels[p->n_labels] = strndup(s, len)))
        return err_set(e, ERR_NOMEM, "zero-shot-classification: out of memory");
    p->n_labels++;
    return 0;
}

/* A string is split on commas, each part stripped of whitespace, empty parts dropped. */
static int parse_labels(const json_t *v, struct zero_shot_params *p, struct err *e)
{
    static const char msg[] =
        "parameter 'candidate_labels' must be a list of strings or a comma-separated string";
    int rc = 0;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        while (rc == 0 && *s) {
            const char *comma = strchr(s, ',');
            const char *stop = comma ? comma : s + strlen(s);
            const char *a = s, *b = stop;
            while (a < b && isspace((unsigned char)*a))
                a++;
            while (b > a && isspace((unsigned char)b[-1]))
                b--;
            if (b > a)
                rc = add_label(p, a, (size_t)(b - a), e);
            s = comma ? comma + 1 : stop;
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; rc == 0 && i < json_array_size(v); i++) {
            const json_t *x = json_array_get(v, i);
            if (!json_is_string(x))
                return err_set(e, ERR_INVALID, "%s", msg);
            rc = add_label(p, json_string_value(x), json_string_length(x), e);
        }
    } else {
        return err_set(e, ERR_INVALID, "%s", msg);
    }
    if (rc == 0 && p->n_labels == 0)
        rc = err_set(e, ERR_INVALID, "parameter 'candidate_labels' must hold at least one label");
    return rc;
}

/* str.format(label) for templates with "{}" or "{0}" fields and "{{" "}}" escapes; any
 * other field is ERR_INVALID, as Python raises. */
static int format_template(const char *t, const char *label, char **out, struct err *e)
{
    size_t cap = strlen(t) + 1, n = 0, ll = strlen(label);
    for (const char *s = t; *s; s++)
        cap += *s == '{' ? ll : 0;
    char *o = malloc(cap);
    if (!o)
        return err_set(e, ERR_NOMEM, "zero-shot-classification: out of memory");
    for (const char *s = t; *s;) {
        if ((s[0] == '{' && s[1] == '{') || (s[0] == '}' && s[1] == '}')) {
            o[n++] = s[0];
            s += 2;
        } else if (strncmp(s, "{}", 2) == 0 || strncmp(s, "{0}", 3) == 0) {
            memcpy(o + n, label, ll);
            n += ll;
            s += s[1] == '}' ? 2 : 3;
        } else if (*s == '{' || *s == '}') {
            free(o);
            return err_set(e, ERR_INVALID,
                           "parameter 'hypothesis_template' has a field other than {} at \"%.20s\"",
                           s);
        } else {
            o[n++] = *s++;
        }
    }
    o[n] = '\0';
    *out = o;
    return 0;
}

int zero_shot_params(const json_t *parameters, struct zero_shot_params *p, struct err *e)
{
    *p = (struct zero_shot_params){0};
    int rc = pipeline_check_parameters(parameters, e);
    if (rc)
        return rc;
    const json_t *labels =
        json_is_object(parameters) ? json_object_get(parameters, "candidate_labels") : NULL;
    const char *tmpl = "This example is {}.";
    bool multi_class = false;
    char *check = NULL;
    if (!labels || json_is_null(labels))
        rc = err_set(e, ERR_INVALID, "parameter 'candidate_labels' is required");
    if (rc == 0)
        rc = parse_labels(labels, p, e);
    if (rc == 0)
        rc = pipeline_param_string(parameters, "hypothesis_template", &tmpl, e);
    if (rc == 0)
        rc = pipeline_param_bool(parameters, "multi_class", &multi_class, e);
    p->multi_label = multi_class; /* legacy name; multi_label wins when both are given */
    if (rc == 0)
        rc = pipeline_param_bool(parameters, "multi_label", &p->multi_label, e);
    if (rc == 0 && !(p->hypothesis_template = strdup(tmpl)))
        rc = err_set(e, ERR_NOMEM, "zero-shot-classification: out of memory");
    /* HF: a template that formatting leaves unchanged cannot hold the label */
    if (rc == 0 && (rc = format_template(tmpl, p->candidate_labels[0], &check, e)) == 0 &&
        strcmp(check, tmpl) == 0)
        rc = err_set(e, ERR_INVALID,
                     "parameter 'hypothesis_template' (\"%.60s\") must contain {} where the "
                     "label goes",
                     tmpl);
    free(check);
    if (rc)
        zero_shot_params_fini(p);
    return rc;
}

void zero_shot_params_fini(struct zero_shot_params *p)
{
    for (size_t i = 0; i < p->n_labels; i++)
        free(p->candidate_labels[i]);
    free(p->candidate_labels);
    free(p->hypothesis_template);
    *p = (struct zero_shot_params){0};
}

int zero_shot_hypothesis(const struct zero_shot_params *p, size_t i, char **out, struct err *e)
{
    return format_template(p->hypothesis_template, p->candidate_labels[i], out, e);
}

int zero_shot_prepare(const struct tokenizer *tk, const char *sequence, size_t len,
                      const struct zero_shot_params *p, struct encodings *pairs, struct err *e)
{
    struct tokenizer_params tp = tokenizer_params_default(tk);
    size_t max = tokenizer_model_max_length(tk);
    tp.add_special_tokens = true;
    tp.padding = PAD_NONE;
    tp.stride = 0;
    if (max > 0) { /* truncation="only_first" up to model_max_length */
        tp.truncation = true;
        tp.max_length = max;
        tp.strategy = TRUNC_ONLY_FIRST;
    }
    for (size_t i = 0; i < p->n_labels; i++)
        pairs[i] = (struct encodings){0};
    for (size_t i = 0; i < p->n_labels; i++) {
        char *h = NULL;
        int rc = zero_shot_hypothesis(p, i, &h, e);
        if (rc == 0)
            rc = tokenizer_encode(tk, sequence, len, h, strlen(h), &tp, &pairs[i], e);
        free(h);
        if (rc) {
            for (size_t j = 0; j <= i; j++)
                encodings_fini(&pairs[j]);
            return rc;
        }
    }
    return 0;
}

int zero_shot_finish(const char *sequence, const float *logits, size_t n_classes,
                     const char *const *id2label, const struct zero_shot_params *p, json_t **out,
                     struct err *e)
{
    *out = NULL;
    size_t n = p->n_labels;
    if (n_classes < 2)
        return err_set(e, ERR_INTERNAL, "zero-shot-classification: the model has %zu classes",
                       n_classes);
    /* entailment: the first label starting with "entail", else the last class (HF's -1) */
    size_t entail = n_classes - 1;
    for (size_t c = 0; c < n_classes; c++)
        if (id2label[c] && strncasecmp(id2label[c], "entail", 6) == 0) {
            entail = c;
            break;
        }
    size_t contra = entail == 0 ? n_classes - 1 : 0;
    double *scores = malloc(n * sizeof *scores); /* (n_labels) */
    size_t *order = malloc(n * sizeof *order);
    json_t *labels = json_array(), *values = json_array();
    if (!scores || !order || !labels || !values)
        goto nomem;
    if (p->multi_label || n == 1) {
        for (size_t i = 0; i < n; i++) {
            double pair[2] = {logits[i * n_classes + contra], logits[i * n_classes + entail]};
            pipeline_softmax(pair, 2);
            scores[i] = pair[1];
        }
    } else {
        for (size_t i = 0; i < n; i++)
            scores[i] = logits[i * n_classes + entail];
        pipeline_softmax(scores, n);
    }
    /* reversed(argsort): descending, equal scores with the later label first */
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        for (; j > 0 && scores[order[j - 1]] <= scores[i]; j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(labels, json_string(p->candidate_labels[order[i]])) != 0 ||
            json_array_append_new(values, json_real(scores[order[i]])) != 0)
            goto nomem;
    *out = json_pack("{s:s, s:o, s:o}", "sequence", sequence, "labels", labels, "scores", values);
    free(scores);
    free(order);
    return *out ? 0 : err_set(e, ERR_NOMEM, "zero-shot-classification: cannot build the result");
nomem:
    free(scores);
    free(order);
    json_decref(labels);
    json_decref(values);
    return err_set(e, ERR_NOMEM, "zero-shot-classification: out of memory");
}
