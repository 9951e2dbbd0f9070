/* token_classification: the token-classification (NER) pipeline's parameters, model input
 * and post-processing (transformers TokenClassificationPipeline): per-token softmax, the
 * five aggregation strategies, the is_subword heuristics, ignore_labels, and `word` formed
 * by the tokenizer's convert_tokens_to_string. Offsets are code points, as Python's. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pipeline.h"

static const char *const strategy_names[] = {"none", "simple", "first", "average", "max"};

int token_classification_params(const json_t *parameters, struct tokcls_params *p, struct err *e)
{
    *p = (struct tokcls_params){.aggregation_strategy = TOKCLS_AGG_NONE};
    int rc = pipeline_check_parameters(parameters, e);
    if (rc)
        return rc;
    /* legacy flags, mapped as transformers does before looking at aggregation_strategy */
    bool grouped = false, ignore_subwords = false;
    if ((rc = pipeline_param_bool(parameters, "grouped_entities", &grouped, e)) != 0 ||
        (rc = pipeline_param_bool(parameters, "ignore_subwords", &ignore_subwords, e)) != 0)
        return rc;
    if (grouped)
        p->aggregation_strategy = ignore_subwords ? TOKCLS_AGG_FIRST : TOKCLS_AGG_SIMPLE;
    const char *s = NULL;
    if (pipeline_param_string(parameters, "aggregation_strategy", &s, e) != 0)
        return err_set(e, ERR_INVALID,
                       "parameter 'aggregation_strategy' must be one of \"none\", "
                       "\"simple\", \"first\", \"average\", \"max\"");
    if (s) {
        size_t i = 0;
        while (i < 5 && strcasecmp(s, strategy_names[i]) != 0)
            i++;
        if (i == 5)
            return err_set(e, ERR_INVALID,
                           "parameter 'aggregation_strategy' must be one of \"none\", "
                           "\"simple\", \"first\", \"average\", \"max\", not \"%.40s\"",
                           s);
        p->aggregation_strategy = (enum tokcls_aggregation)i;
    }
    const json_t *il = parameters && json_is_object(parameters)
                           ? json_object_get(parameters, "ignore_labels")
                           : NULL;
    if (il && !json_is_null(il)) {
        bool ok = json_is_array(il);
        for (size_t i = 0; ok && i < json_array_size(il); i++)
            ok = json_is_string(json_array_get(il, i));
        if (!ok)
            return err_set(e, ERR_INVALID, "parameter 'ignore_labels' must be a list of strings");
        p->ignore_labels = il;
    }
    return 0;
}

int token_classification_prepare(const struct tokenizer *tk, const char *text, size_t len,
                                 struct encodings *out, struct err *e)
{
    struct tokenizer_params tp = tokenizer_params_default(tk);
    size_t max = tokenizer_model_max_length(tk);
    tp.add_special_tokens = true;
    tp.padding = PAD_NONE;
    tp.stride = 0;
    if (max > 0) {
        tp.truncation = true;
        tp.max_length = max;
        tp.strategy = TRUNC_LONGEST_FIRST;
    }
    return tokenizer_encode(tk, text, len, NULL, 0, &tp, out, e);
}

/* One token (pre-entity) or one aggregated word: what HF keeps in its dicts. */
struct entity {
    const char *label; /* id2label entry (entity), or for groups the tag after the last '-' */
    double score;
    const double *scores; /* (n_labels) probabilities; NULL for grouped words */
    size_t index;         /* token index in the encoding */
    char *word;           /* owned */
    size_t start, end;    /* code points */
    bool is_subword;
};

struct entities {
    struct entity *v;
    size_t n;
};

static void entities_fini(struct entities *es)
{
    for (size_t i = 0; i < es->n; i++)
        free(es->v[i].word);
    free(es->v);
    es->v = NULL;
    es->n = 0;
}

static size_t argmax(const double *x, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* convert_tokens_to_string over the words of es[0..n). */
static int join_words(const struct tokenizer *tk, const struct entity *es, size_t n, char **out,
                      struct err *e)
{
    const char **words = malloc(n * sizeof *words);
    if (!words)
        return err_set(e, ERR_NOMEM, "token-classification: out of memory");
    for (size_t i = 0; i < n; i++)
        words[i] = es[i].word;
    int rc = tokenizer_tokens_to_string(tk, words, n, out, NULL, e);
    free(words);
    return rc;
}

/* HF gather_pre_entities: every non-special token with its probabilities, word and
 * offsets; is_subword by the continuing-subword prefix (word-aware models) or else by
 * "no space right before or at the token start". */
struct context {
    const struct tokenizer *tk;
    const char *text;
    const size_t *cp_at; /* (n_cp + 1) byte position of each code point */
    size_t n_cp;
    const struct encoding *enc;
    const double *probs; /* (enc->n, n_labels) */
    size_t n_labels;
    const char *const *id2label;
};

static int gather(const struct context *c, struct entities *out, struct err *e)
{
    const struct encoding *enc = c->enc;
    int32_t unk = pipeline_special_id(c->tk, "unk_token");
    bool word_aware = tokenizer_has_subword_prefix(c->tk);
    out->v = calloc(enc->n ? enc->n : 1, sizeof *out->v);
    out->n = 0;
    if (!out->v)
        return err_set(e, ERR_NOMEM, "token-classification: out of memory");
    for (size_t i = 0; i < enc->n; i++) {
        if (enc->special[i])
            continue;
        size_t start = enc->offsets[i].start, end = enc->offsets[i].end;
        if (start > end || end > c->n_cp)
            return err_set(e, ERR_INTERNAL, "token-classification: token %zu offsets out of range",
                           i);
        const char *ref = c->text + c->cp_at[start];
        size_t ref_bytes = c->cp_at[end] - c->cp_at[start];
        const char *tok = tokenizer_id_to_token(c->tk, enc->ids[i]);
        struct entity *en = &out->v[out->n];
        *en = (struct entity){
            .scores = c->probs + i * c->n_labels, .index = i, .start = start, .end = end};
        if (enc->ids[i] == unk || !tok) {
            en->word = strndup(ref, ref_bytes);
            en->is_subword = false;
        } else {
            en->word = strdup(tok);
            if (word_aware) {
                en->is_subword = pipeline_cp_count(tok) != end - start;
            } else {
                /* sentence[start - 1 : start + 1] holds no space */
                bool space = c->text[c->cp_at[start - (start > 0)]] == ' ' ||
                             (start < c->n_cp && c->text[c->cp_at[start]] == ' ');
                en->is_subword = start > 0 && !space;
            }
        }
        if (!en->word)
            return err_set(e, ERR_NOMEM, "token-classification: out of memory");
        out->n++;
        size_t best = argmax(en->scores, c->n_labels);
        en->label = c->id2label[best];
        en->score = en->scores[best];
    }
    return 0;
}

/* HF aggregate_word: one entity for the tokens es[0..n) of one word. */
static int aggregate_word(const struct context *c, enum tokcls_aggregation strategy,
                          const struct entity *es, size_t n, struct entity *out, struct err *e)
{
    *out = (struct entity){.index = es[0].index, .start = es[0].start, .end = es[n - 1].end};
    int rc = join_words(c->tk, es, n, &out->word, e);
    if (rc)
        return rc;
    size_t best;
    if (strategy == TOKCLS_AGG_FIRST) {
        best = argmax(es[0].scores, c->n_labels);
        out->score = es[0].scores[best];
    } else if (strategy == TOKCLS_AGG_MAX) {
        size_t top = 0; /* the first token with the highest probability */
        for (size_t i = 1; i < n; i++)
            if (es[i].scores[argmax(es[i].scores, c->n_labels)] >
                es[top].scores[argmax(es[top].scores, c->n_labels)])
                top = i;
        best = argmax(es[top].scores, c->n_labels);
        out->score = es[top].scores[best];
    } else { /* average over the word's tokens, then the best label */
        double *avg = calloc(c->n_labels, sizeof *avg);
        if (!avg)
            return err_set(e, ERR_NOMEM, "token-classification: out of memory");
        for (size_t i = 0; i < n; i++)
            for (size_t l = 0; l < c->n_labels; l++)
                avg[l] += es[i].scores[l] / (double)n;
        best = argmax(avg, c->n_labels);
        out->score = avg[best];
        free(avg);
    }
    out->label = c->id2label[best];
    return 0;
}

/* HF aggregate_words: a word starts at every token that is not a subword. */
static int aggregate_words(const struct context *c, enum tokcls_aggregation strategy,
                           struct entities *tokens, struct entities *words, struct err *e)
{
    words->v = calloc(tokens->n ? tokens->n : 1, sizeof *words->v);
    words->n = 0;
    if (!words->v)
        return err_set(e, ERR_NOMEM, "token-classification: out of memory");
    for (size_t i = 0; i < tokens->n;) {
        size_t j = i + 1;
        while (j < tokens->n && tokens->v[j].is_subword)
            j++;
        int rc = aggregate_word(c, strategy, tokens->v + i, j - i, &words->v[words->n], e);
        if (rc)
            return rc;
        words->n++;
        i = j;
    }
    return 0;
}

/* HF get_tag: ("B", rest) for "B-x", ("I", rest) for "I-x", else ("I", label). */
static const char *get_tag(const char *label, char *bi)
{
    if ((label[0] == 'B' || label[0] == 'I') && label[1] == '-') {
        *bi = label[0];
        return label + 2;
    }
    *bi = 'I';
    return label;
}

/* HF group_sub_entities: the group takes the first entity's label after its last '-',
 * the mean score, the joined words and the outer offsets. */
static int group_sub(const struct context *c, const struct entity *es, size_t n, struct entity *out,
                     struct err *e)
{
    const char *dash = strrchr(es[0].label, '-');
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += es[i].score;
    *out = (struct entity){.label = dash ? dash + 1 : es[0].label,
                           .score = sum / (double)n,
                           .start = es[0].start,
                           .end = es[n - 1].end};
    return join_words(c->tk, es, n, &out->word, e);
}

/* HF group_entities: adjacent entities with the same tag merge unless the next is "B-". */
static int group_entities(const struct context *c, const struct entities *in,
                          struct entities *groups, struct err *e)
{
    groups->v = calloc(in->n ? in->n : 1, sizeof *groups->v);
    groups->n = 0;
    if (!groups->v)
        return err_set(e, ERR_NOMEM, "token-classification: out of memory");
    size_t first = 0;
    for (size_t i = 1; i <= in->n; i++) {
        if (i < in->n) {
            char bi, last_bi;
            const char *tag = get_tag(in->v[i].label, &bi);
            const char *last_tag = get_tag(in->v[i - 1].label, &last_bi);
            if (strcmp(tag, last_tag) == 0 && bi != 'B')
                continue;
        }
        if (in->n == 0)
            break;
        int rc = group_sub(c, in->v + first, i - first, &groups->v[groups->n], e);
        if (rc)
            return rc;
        groups->n++;
        first = i;
    }
    return 0;
}

static bool ignored(const struct tokcls_params *p, const char *label)
{
    if (!p->ignore_labels)
        return strcmp(label, "O") == 0;
    for (size_t i = 0; i < json_array_size(p->ignore_labels); i++)
        if (strcmp(json_string_value(json_array_get(p->ignore_labels, i)), label) == 0)
            return true;
    return false;
}

static int to_json(const struct entities *es, bool grouped, const struct tokcls_params *p,
                   json_t **out, struct err *e)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < es->n; i++) {
        const struct entity *en = &es->v[i];
        if (ignored(p, en->label))
            continue;
        json_t *o = grouped
                        ? json_pack("{s:s, s:f, s:s, s:I, s:I}", "entity_group", en->label, "score",
                                    en->score, "word", en->word, "start", (json_int_t)en->start,
                                    "end", (json_int_t)en->end)
                        : json_pack("{s:s, s:f, s:I, s:s, s:I, s:I}", "entity", en->label, "score",
                                    en->score, "index", (json_int_t)en->index, "word", en->word,
                                    "start", (json_int_t)en->start, "end", (json_int_t)en->end);
        if (!o || json_array_append_new(list, o) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    if (!list)
        return err_set(e, ERR_NOMEM, "token-classification: cannot build the result");
    *out = list;
    return 0;
}

int token_classification_finish(const struct tokenizer *tk, const char *text, size_t len,
                                const struct encoding *enc, const float *logits, size_t n_labels,
                                const char *const *id2label, const struct tokcls_params *p,
                                json_t **out, struct err *e)
{
    *out = NULL;
    if (n_labels == 0)
        return err_set(e, ERR_INTERNAL, "token-classification: the model has no labels");
    struct entities tokens = {0}, words = {0}, groups = {0};
    size_t n_cp = 0;
    size_t *cp_at = pipeline_cp_index(text, len, &n_cp);
    double *probs = malloc((enc->n ? enc->n : 1) * n_labels * sizeof *probs); /* (n, labels) */
    int rc = 0;
    if (!cp_at || !probs) {
        rc = err_set(e, ERR_NOMEM, "token-classification: out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < enc->n * n_labels; i++)
        probs[i] = logits[i];
    for (size_t i = 0; i < enc->n; i++)
        pipeline_softmax(probs + i * n_labels, n_labels);
    struct context c = {tk, text, cp_at, n_cp, enc, probs, n_labels, id2label};
    if ((rc = gather(&c, &tokens, e)) != 0)
        goto cleanup;
    enum tokcls_aggregation s = p->aggregation_strategy;
    if (s == TOKCLS_AGG_NONE) {
        rc = to_json(&tokens, false, p, out, e);
        goto cleanup;
    }
    const struct entities *level = &tokens;
    if (s != TOKCLS_AGG_SIMPLE) {
        if ((rc = aggregate_words(&c, s, &tokens, &words, e)) != 0)
            goto cleanup;
        level = &words;
    }
    if ((rc = group_entities(&c, level, &groups, e)) != 0)
        goto cleanup;
    rc = to_json(&groups, true, p, out, e);
cleanup:
    entities_fini(&tokens);
    entities_fini(&words);
    entities_fini(&groups);
    free(cp_at);
    free(probs);
    return rc;
}
