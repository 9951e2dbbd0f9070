/* hf_config: config.json -> struct hf_config (model_type, sizes, labels, eps, encoder and T5
 * fields), with the per-model_type defaults of the HF config classes; see hf_config.h. The
 * decoder fields are read by loader/hf_config_decoder.c (shared reader: hf_config_read.h). */
#include "loader/hf_config.h"
#include "loader/files.h"
#include "loader/hf_config_read.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Defaults of the transformers config class for a model_type, for keys a file may omit. */
struct family {
    const char *model_type;
    const char *hidden_act;
    double norm_eps;
    int64_t max_position_embeddings;
    int64_t type_vocab_size;
    int64_t embedding_size; /* 0: same as hidden_size */
    bool roberta_positions; /* position ids start at pad_token_id + 1 */
};

static const struct family families[] = {
    {"bert", "gelu", 1e-12, 512, 2, 0, false},
    {"roberta", "gelu", 1e-12, 512, 2, 0, true},
    {"xlm-roberta", "gelu", 1e-12, 512, 2, 0, true},
    {"camembert", "gelu", 1e-12, 512, 2, 0, true},
    {"electra", "gelu", 1e-12, 512, 2, 128, false},
    {"albert", "gelu_new", 1e-12, 512, 2, 128, false},
    {"distilbert", "gelu", 1e-12, 512, 0, 0, false},
    {"mpnet", "gelu", 1e-12, 514, 0, 0, true},
    {"deberta-v2", "gelu", 1e-7, 512, 0, 0, false},
    {"gpt2", "gelu_new", 1e-5, 1024, 0, 0, false},
    {"llama", "silu", 1e-6, 2048, 0, 0, false},
    {"mistral", "silu", 1e-6, 131072, 0, 0, false},
    {"qwen2", "silu", 1e-6, 32768, 0, 0, false},
    {"qwen3", "silu", 1e-6, 32768, 0, 0, false},
    {"gemma", "gelu_pytorch_tanh", 1e-6, 8192, 0, 0, false},
    {"gemma2", "gelu_pytorch_tanh", 1e-6, 8192, 0, 0, false},
    {"gemma3_text", "gelu_pytorch_tanh", 1e-6, 131072, 0, 0, false},
    {"phi3", "silu", 1e-5, 4096, 0, 0, false},
    {"t5", "relu", 1e-6, 0, 0, 0, false},
    {"mt5", "gelu_new", 1e-6, 0, 0, 0, false},
    {"modernbert", "gelu", 1e-5, 8192, 0, 0, false},
    /* the BART-like seq2seq classes (their LayerNorms are nn.LayerNorm's 1e-5) */
    {"bart", "gelu", 1e-5, 1024, 0, 0, false},
    {"mbart", "gelu", 1e-5, 1024, 0, 0, false},
    {"marian", "gelu", 1e-5, 1024, 0, 0, false},
    {"m2m_100", "relu", 1e-5, 1024, 0, 0, false},
    {"pegasus", "gelu", 1e-5, 1024, 0, 0, false},
};

#define N_FAMILIES (sizeof families / sizeof families[0])

size_t hf_config_model_types(const char **out, size_t max)
{
    for (size_t i = 0; i < N_FAMILIES && i < max; i++)
        out[i] = families[i].model_type;
    return N_FAMILIES;
}

int hf_config_unsupported(struct err *e, const char *what, const char *model_type, const char *for_,
                          const char *const *names, size_t n)
{
    char list[400] = "";
    for (size_t i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
    return err_set(e, ERR_FORMAT, "%s: model_type '%.40s' is not supported%s%s (supported: %s)",
                   what, model_type, for_ && *for_ ? " for " : "", for_ ? for_ : "", list);
}

/* ---- typed getters: absent or null leaves *found false and returns 0 ---- */

int get_int_in(const struct reader *r, const json_t *obj, const char *key, int64_t *out,
                      bool *found)
{
    const json_t *v = json_object_get(obj, key);
    *found = false;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return err_set(r->e, ERR_FORMAT, "%s: '%s' must be an integer", r->what, key);
    *out = json_integer_value(v);
    *found = true;
    return 0;
}

/* The first of keys (NULL-terminated) that is present. */
int get_int_any(const struct reader *r, const char *const *keys, int64_t *out, bool *found)
{
    for (; *keys; keys++) {
        int rc = get_int_in(r, r->root, *keys, out, found);
        if (rc || *found)
            return rc;
    }
    return 0;
}

int get_num_in(const struct reader *r, const json_t *obj, const char *key, double *out,
                      bool *found)
{
    const json_t *v = json_object_get(obj, key);
    *found = false;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return err_set(r->e, ERR_FORMAT, "%s: '%s' must be a number", r->what, key);
    *out = json_number_value(v);
    *found = true;
    return 0;
}

int get_str_in(const struct reader *r, const json_t *obj, const char *key, char *buf,
                      size_t size, bool *found)
{
    const json_t *v = json_object_get(obj, key);
    *found = false;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return err_set(r->e, ERR_FORMAT, "%s: '%s' must be a string", r->what, key);
    if (json_string_length(v) >= size)
        return err_set(r->e, ERR_FORMAT, "%s: '%s' is too long", r->what, key);
    memcpy(buf, json_string_value(v), json_string_length(v) + 1);
    *found = true;
    return 0;
}

int get_bool(const struct reader *r, const char *key, bool *out)
{
    const json_t *v = json_object_get(r->root, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return err_set(r->e, ERR_FORMAT, "%s: '%s' must be true or false", r->what, key);
    *out = json_is_true(v);
    return 0;
}

/* A required positive size under any of keys; the first key names it in messages. */
int get_size(const struct reader *r, const char *const *keys, int64_t *out, bool required)
{
    bool found;
    int rc = get_int_any(r, keys, out, &found);
    if (rc)
        return rc;
    if (!found)
        return required ? err_set(r->e, ERR_FORMAT, "%s: missing '%s'", r->what, keys[0]) : 0;
    if (*out <= 0 || *out > SIZE_LIMIT)
        return err_set(r->e, ERR_FORMAT, "%s: '%s' = %lld is out of range", r->what, keys[0],
                       (long long)*out);
    return 0;
}

int get_layers(const struct reader *r, const char *const *keys, int64_t *out, bool required)
{
    int rc = get_size(r, keys, out, required);
    if (!rc && *out > LAYER_LIMIT)
        return err_set(r->e, ERR_FORMAT, "%s: '%s' = %lld is over %d layers", r->what, keys[0],
                       (long long)*out, LAYER_LIMIT);
    return rc;
}

/* An optional token id: absent or null -> -1; a list keeps its first element. */
static int get_token_id(const struct reader *r, const char *key, int64_t *out)
{
    const json_t *v = json_object_get(r->root, key);
    *out = -1;
    if (json_is_array(v) && json_array_size(v) > 0)
        v = json_array_get(v, 0);
    if (!v || json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > SIZE_LIMIT)
        return err_set(r->e, ERR_FORMAT, "%s: '%s' must be a non-negative integer or a list",
                       r->what, key);
    *out = json_integer_value(v);
    return 0;
}

/* ---- sections ---- */

static int read_eos(const struct reader *r, struct hf_config *c)
{
    const json_t *v = json_object_get(r->root, "eos_token_id");
    if (!v || json_is_null(v))
        return 0;
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (n == 0)
        return 0;
    c->eos_token_ids = calloc(n, sizeof *c->eos_token_ids);
    if (!c->eos_token_ids)
        return err_set(r->e, ERR_NOMEM, "%s: out of memory", r->what);
    for (size_t i = 0; i < n; i++) {
        const json_t *x = json_is_array(v) ? json_array_get(v, i) : v;
        if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > SIZE_LIMIT)
            return err_set(r->e, ERR_FORMAT,
                           "%s: 'eos_token_id' must be a non-negative integer or a list of them",
                           r->what);
        c->eos_token_ids[i] = json_integer_value(x);
    }
    c->n_eos_token_ids = n;
    return 0;
}

/* Parses a decimal label id with no sign and no leading zero. */
static bool parse_label_id(const char *s, size_t n_labels, size_t *out)
{
    size_t v = 0;
    if (!*s || (s[0] == '0' && s[1]))
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (size_t)(*s - '0');
        if (v >= n_labels)
            return false;
    }
    *out = v;
    return true;
}

static int default_labels(const struct reader *r, struct hf_config *c, size_t n)
{
    c->id2label = calloc(n, sizeof *c->id2label);
    if (!c->id2label)
        return err_set(r->e, ERR_NOMEM, "%s: out of memory", r->what);
    c->num_labels = n;
    for (size_t i = 0; i < n; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "LABEL_%zu", i);
        c->id2label[i] = strdup(buf);
        if (!c->id2label[i])
            return err_set(r->e, ERR_NOMEM, "%s: out of memory", r->what);
    }
    return 0;
}

/* label2id, when present, must be the exact inverse of id2label. */
static int check_label2id(const struct reader *r, const struct hf_config *c)
{
    const json_t *l2i = json_object_get(r->root, "label2id");
    if (!l2i || json_is_null(l2i))
        return 0;
    if (!json_is_object(l2i))
        return err_set(r->e, ERR_FORMAT, "%s: 'label2id' must be an object", r->what);
    if (json_object_size(l2i) != c->num_labels)
        return err_set(r->e, ERR_FORMAT, "%s: 'label2id' has %zu labels, 'id2label' %zu", r->what,
                       json_object_size(l2i), c->num_labels);
    for (size_t i = 0; i < c->num_labels; i++) {
        const json_t *v = json_object_get(l2i, c->id2label[i]);
        if (!json_is_integer(v) || json_integer_value(v) != (json_int_t)i)
            return err_set(r->e, ERR_FORMAT, "%s: 'label2id' does not map '%s' to %zu", r->what,
                           c->id2label[i], i);
    }
    return 0;
}

static int read_labels(const struct reader *r, struct hf_config *c)
{
    int64_t n_given = 0;
    bool has_n = false;
    static const char *const num_keys[] = {"num_labels", "_num_labels", NULL};
    int rc = get_int_any(r, num_keys, &n_given, &has_n);
    if (rc)
        return rc;
    if (has_n && (n_given <= 0 || n_given > 1000000))
        return err_set(r->e, ERR_FORMAT, "%s: 'num_labels' = %lld is out of range", r->what,
                       (long long)n_given);
    const json_t *i2l = json_object_get(r->root, "id2label");
    if (!i2l || json_is_null(i2l)) {
        c->labels_default = !has_n;
        rc = default_labels(r, c, has_n ? (size_t)n_given : 2);
        return rc ? rc : check_label2id(r, c);
    }
    if (!json_is_object(i2l) || json_object_size(i2l) == 0)
        return err_set(r->e, ERR_FORMAT, "%s: 'id2label' must be a non-empty object", r->what);
    size_t n = json_object_size(i2l);
    if (has_n && (size_t)n_given != n)
        return err_set(r->e, ERR_FORMAT, "%s: 'num_labels' is %lld but 'id2label' has %zu", r->what,
                       (long long)n_given, n);
    c->id2label = calloc(n, sizeof *c->id2label);
    if (!c->id2label)
        return err_set(r->e, ERR_NOMEM, "%s: out of memory", r->what);
    c->num_labels = n;
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)i2l, k, v)
    {
        size_t id;
        if (!parse_label_id(k, n, &id))
            return err_set(r->e, ERR_FORMAT, "%s: 'id2label' key '%s' is not an id in 0..%zu",
                           r->what, k, n - 1);
        if (!json_is_string(v))
            return err_set(r->e, ERR_FORMAT, "%s: 'id2label' '%s' must be a string", r->what, k);
        c->id2label[id] = strdup(json_string_value(v));
        if (!c->id2label[id])
            return err_set(r->e, ERR_NOMEM, "%s: out of memory", r->what);
    }
    /* n distinct canonical keys all below n: every id 0..n-1 is present */
    return check_label2id(r, c);
}

static int read_problem_type(const struct reader *r, struct hf_config *c)
{
    char s[HF_NAME_SIZE];
    bool found;
    int rc = get_str_in(r, r->root, "problem_type", s, sizeof s, &found);
    if (rc || !found)
        return rc;
    if (strcmp(s, "single_label_classification") == 0)
        c->problem_type = HF_PROBLEM_SINGLE_LABEL;
    else if (strcmp(s, "multi_label_classification") == 0)
        c->problem_type = HF_PROBLEM_MULTI_LABEL;
    else if (strcmp(s, "regression") == 0)
        c->problem_type = HF_PROBLEM_REGRESSION;
    else
        return err_set(r->e, ERR_FORMAT, "%s: unknown 'problem_type' '%s'", r->what, s);
    return 0;
}

/* T5: feed_forward_proj is "<act>" or "gated-<act>"; gated-gelu means gelu_new (as HF). */
static int read_t5(const struct reader *r, struct hf_config *c)
{
    bool found;
    int rc = get_str_in(r, r->root, "feed_forward_proj", c->feed_forward_proj,
                        sizeof c->feed_forward_proj, &found);
    if (rc)
        return rc;
    if (!found) /* T5Config's default; MT5Config's is gated-gelu */
        strcpy(c->feed_forward_proj, strcmp(c->model_type, "mt5") == 0 ? "gated-gelu" : "relu");
    const char *act = c->feed_forward_proj;
    if (strncmp(act, "gated-", 6) == 0) {
        c->is_gated_act = true;
        act += 6;
    }
    if (!*act || strchr(act, '-'))
        return err_set(r->e, ERR_FORMAT, "%s: 'feed_forward_proj' '%s' is not <act> or gated-<act>",
                       r->what, c->feed_forward_proj);
    snprintf(c->hidden_act, sizeof c->hidden_act, "%s",
             c->is_gated_act && strcmp(act, "gelu") == 0 ? "gelu_new" : act);
    c->is_encoder_decoder = true;
    static const char *const dec[] = {"num_decoder_layers", NULL};
    static const char *const buckets[] = {"relative_attention_num_buckets", NULL};
    static const char *const dist[] = {"relative_attention_max_distance", NULL};
    c->num_decoder_layers = c->num_hidden_layers;
    c->relative_attention_num_buckets = 32;
    c->relative_attention_max_distance = 128;
    rc = get_layers(r, dec, &c->num_decoder_layers, false);
    if (!rc)
        rc = get_size(r, buckets, &c->relative_attention_num_buckets, false);
    if (!rc)
        rc = get_size(r, dist, &c->relative_attention_max_distance, false);
    bool scale = false;
    c->scale_decoder_outputs = -1;
    const json_t *sv = json_object_get(r->root, "scale_decoder_outputs");
    if (!rc && sv && !json_is_null(sv) && (rc = get_bool(r, "scale_decoder_outputs", &scale)) == 0)
        c->scale_decoder_outputs = scale;
    return rc;
}

/* MPNet's relative position bias: its bucket count (MPNetConfig's default 32). */
static int read_mpnet(const struct reader *r, struct hf_config *c)
{
    static const char *const buckets[] = {"relative_attention_num_buckets", NULL};
    c->relative_attention_num_buckets = 32;
    return get_size(r, buckets, &c->relative_attention_num_buckets, false);
}

/* DeBERTa-v2's relative attention, with DebertaV2Config's defaults; pos_att_type is a list
 * or a "p2c|c2p" string. */
static int read_deberta(const struct reader *r, struct hf_config *c)
{
    struct hf_deberta *d = &c->deberta;
    static const char *const rel[] = {"max_relative_positions", NULL};
    static const char *const buckets[] = {"position_buckets", NULL};
    static const char *const conv[] = {"conv_kernel_size", NULL};
    static const char *const pool[] = {"pooler_hidden_size", NULL};
    bool found;
    d->max_relative_positions = d->position_buckets = -1;
    d->position_biased_input = true;
    d->pooler_hidden_size = c->hidden_size;
    strcpy(d->pooler_hidden_act, "gelu");
    char norm[HF_NAME_SIZE] = "none", types[HF_NAME_SIZE] = "";
    int rc = get_bool(r, "relative_attention", &d->relative_attention);
    if (!rc)
        rc = get_int_any(r, rel, &d->max_relative_positions, &found);
    if (!rc)
        rc = get_int_any(r, buckets, &d->position_buckets, &found);
    if (!rc)
        rc = get_int_any(r, conv, &d->conv_kernel_size, &found);
    if (!rc)
        rc = get_size(r, pool, &d->pooler_hidden_size, false);
    if (!rc)
        rc = get_bool(r, "share_att_key", &d->share_att_key);
    if (!rc)
        rc = get_bool(r, "position_biased_input", &d->position_biased_input);
    if (!rc)
        rc = get_str_in(r, r->root, "pooler_hidden_act", d->pooler_hidden_act,
                        sizeof d->pooler_hidden_act, &found);
    if (!rc)
        rc = get_str_in(r, r->root, "norm_rel_ebd", norm, sizeof norm, &found);
    const json_t *pt = json_object_get(r->root, "pos_att_type");
    if (!rc && json_is_string(pt))
        rc = get_str_in(r, r->root, "pos_att_type", types, sizeof types, &found);
    for (size_t i = 0; !rc && json_is_array(pt) && i < json_array_size(pt); i++) {
        const char *t = json_string_value(json_array_get(pt, i));
        if (!t || strlen(types) + strlen(t) + 2 > sizeof types)
            return err_set(r->e, ERR_FORMAT, "%s: 'pos_att_type' must be a list of names",
                           r->what);
        strcat(strcat(types, "|"), t);
    }
    if (rc)
        return rc;
    d->c2p = strstr(types, "c2p") != NULL;
    d->p2c = strstr(types, "p2c") != NULL;
    d->norm_rel_ebd = strstr(norm, "layer_norm") != NULL;
    if (d->max_relative_positions < 1)
        d->max_relative_positions = c->max_position_embeddings;
    return 0;
}

/* Heads, head_dim and key/value heads must fit together. */
static int read_heads(const struct reader *r, struct hf_config *c)
{
    static const char *const hd[] = {"head_dim", "d_kv", NULL};
    static const char *const kv[] = {"num_key_value_heads", NULL};
    c->head_dim = 0;
    int rc = get_size(r, hd, &c->head_dim, false);
    if (rc)
        return rc;
    if (c->head_dim == 0) {
        if (c->hidden_size % c->num_attention_heads != 0)
            return err_set(r->e, ERR_FORMAT,
                           "%s: 'hidden_size' %lld is not a multiple of 'num_attention_heads' %lld",
                           r->what, (long long)c->hidden_size, (long long)c->num_attention_heads);
        c->head_dim = c->hidden_size / c->num_attention_heads;
    }
    c->num_key_value_heads = c->num_attention_heads;
    rc = get_size(r, kv, &c->num_key_value_heads, false);
    if (rc)
        return rc;
    if (c->num_attention_heads % c->num_key_value_heads != 0)
        return err_set(r->e, ERR_FORMAT,
                       "%s: 'num_attention_heads' %lld is not a multiple of "
                       "'num_key_value_heads' %lld",
                       r->what, (long long)c->num_attention_heads,
                       (long long)c->num_key_value_heads);
    return 0;
}

/* The sizes every model has, under any of their names. */
static int read_sizes(const struct reader *r, struct hf_config *c)
{
    static const char *const vocab[] = {"vocab_size", NULL};
    static const char *const hidden[] = {"hidden_size", "dim", "n_embd", "d_model", NULL};
    static const char *const layers[] = {"num_hidden_layers", "n_layers",       "n_layer",
                                         "num_layers",        "encoder_layers", NULL};
    static const char *const heads[] = {"num_attention_heads", "n_heads", "n_head", "num_heads",
                                        "encoder_attention_heads", NULL};
    static const char *const inter[] = {"intermediate_size", "hidden_dim",      "n_inner",
                                        "d_ff",              "encoder_ffn_dim", NULL};
    int rc = get_size(r, vocab, &c->vocab_size, true);
    if (!rc)
        rc = get_size(r, hidden, &c->hidden_size, true);
    if (!rc)
        rc = get_layers(r, layers, &c->num_hidden_layers, true);
    if (!rc)
        rc = get_size(r, heads, &c->num_attention_heads, true);
    if (rc)
        return rc;
    bool gpt2 = strcmp(c->model_type, "gpt2") == 0;
    rc = get_size(r, inter, &c->intermediate_size, !gpt2);
    if (rc)
        return rc;
    if (gpt2 && c->intermediate_size == 0)
        c->intermediate_size = 4 * c->hidden_size; /* n_inner: null */
    return read_heads(r, c);
}

/* Activation, norm epsilon, positions, token types and embedding size with family defaults. */
static int read_encoder_fields(const struct reader *r, const struct family *fam,
                               struct hf_config *c)
{
    static const char *const act_keys[] = {"hidden_act", "activation", "activation_function",
                                           "hidden_activation"};
    bool found = false;
    int rc = 0;
    for (size_t i = 0; i < 4 && !rc && !found; i++)
        rc = get_str_in(r, r->root, act_keys[i], c->hidden_act, sizeof c->hidden_act, &found);
    if (rc)
        return rc;
    if (!found)
        snprintf(c->hidden_act, sizeof c->hidden_act, "%s", fam->hidden_act);
    static const char *const eps_keys[] = {"layer_norm_eps", "layer_norm_epsilon", "rms_norm_eps",
                                           "norm_eps"};
    found = false;
    for (size_t i = 0; i < 4 && !rc && !found; i++)
        rc = get_num_in(r, r->root, eps_keys[i], &c->layer_norm_eps, &found);
    if (rc)
        return rc;
    if (!found)
        c->layer_norm_eps = fam->norm_eps;
    if (!(c->layer_norm_eps > 0 && c->layer_norm_eps < 1))
        return err_set(r->e, ERR_FORMAT, "%s: layer norm epsilon %g is out of range", r->what,
                       c->layer_norm_eps);
    static const char *const pos[] = {"max_position_embeddings", "n_positions", NULL};
    static const char *const tvs[] = {"type_vocab_size", NULL};
    static const char *const emb[] = {"embedding_size", NULL};
    static const char *const groups[] = {"num_hidden_groups", NULL};
    static const char *const inner[] = {"inner_group_num", NULL};
    c->max_position_embeddings = fam->max_position_embeddings;
    c->type_vocab_size = fam->type_vocab_size;
    c->embedding_size = fam->embedding_size ? fam->embedding_size : c->hidden_size;
    c->num_hidden_groups = 1;
    c->inner_group_num = 1;
    rc = get_size(r, pos, &c->max_position_embeddings, false);
    bool tv_found = false;
    if (!rc && (rc = get_int_any(r, tvs, &c->type_vocab_size, &tv_found)) == 0 &&
        (c->type_vocab_size < 0 || c->type_vocab_size > SIZE_LIMIT)) /* 0: DeBERTa-v3 */
        rc = err_set(r->e, ERR_FORMAT, "%s: 'type_vocab_size' = %lld is out of range", r->what,
                     (long long)c->type_vocab_size);
    if (!rc)
        rc = get_size(r, emb, &c->embedding_size, false);
    if (!rc)
        rc = get_size(r, groups, &c->num_hidden_groups, false);
    if (!rc)
        rc = get_size(r, inner, &c->inner_group_num, false);
    if (!rc)
        rc = get_bool(r, "sinusoidal_pos_embds", &c->sinusoidal_pos_embds);
    if (rc)
        return rc;
    strcpy(c->position_embedding_type, "absolute");
    rc = get_str_in(r, r->root, "position_embedding_type", c->position_embedding_type,
                    sizeof c->position_embedding_type, &found);
    if (rc)
        return rc;
    if (strcmp(c->position_embedding_type, "absolute") != 0)
        return err_set(r->e, ERR_FORMAT,
                       "%s: 'position_embedding_type' '%s' is not supported (only 'absolute')",
                       r->what, c->position_embedding_type);
    if (fam->roberta_positions) {
        if (c->pad_token_id < 0)
            return err_set(r->e, ERR_FORMAT, "%s: missing 'pad_token_id' (RoBERTa positions)",
                           r->what);
        c->position_offset = c->pad_token_id + 1;
    }
    return 0;
}

static int read_ids(const struct reader *r, struct hf_config *c)
{
    int rc = get_token_id(r, "pad_token_id", &c->pad_token_id);
    if (!rc)
        rc = get_token_id(r, "bos_token_id", &c->bos_token_id);
    if (!rc)
        rc = get_token_id(r, "decoder_start_token_id", &c->decoder_start_token_id);
    if (!rc)
        rc = read_eos(r, c);
    return rc;
}

/* ModernBertConfig: global and local RoPE bases, the local window (sliding_window) and its
 * layers (every layer but each global_attn_every_n_layers-th, unless layer_types says), the
 * biases and the classifier head's pooling and activation. */
static int read_modernbert(const struct reader *r, struct hf_config *c)
{
    static const char *const every[] = {"global_attn_every_n_layers", NULL};
    static const char *const local[] = {"local_attention", NULL};
    bool found;
    int64_t n = 3;
    c->rope_theta = 160000.0;
    c->local_rope_theta = 10000.0;
    c->sliding_window = 128;
    c->decoder_bias = true;
    snprintf(c->classifier_pooling, sizeof c->classifier_pooling, "cls");
    snprintf(c->classifier_activation, sizeof c->classifier_activation, "gelu");
    int rc = get_num_in(r, r->root, "global_rope_theta", &c->rope_theta, &found);
    if (!rc)
        rc = get_num_in(r, r->root, "local_rope_theta", &c->local_rope_theta, &found);
    /* transformers 5: rope_parameters {"full_attention": {"rope_theta"}, "sliding_attention"} */
    const json_t *rp = json_object_get(r->root, "rope_parameters");
    const json_t *full = json_object_get(rp, "full_attention");
    const json_t *slide = json_object_get(rp, "sliding_attention");
    if (!rc && json_is_object(full))
        rc = get_num_in(r, full, "rope_theta", &c->rope_theta, &found);
    if (!rc && json_is_object(slide))
        rc = get_num_in(r, slide, "rope_theta", &c->local_rope_theta, &found);
    if (!rc && !(c->rope_theta > 0 && c->local_rope_theta > 0))
        rc = err_set(r->e, ERR_FORMAT, "%s: the RoPE bases must be positive", r->what);
    if (!rc)
        rc = get_size(r, local, &c->sliding_window, false);
    if (!rc)
        rc = get_size(r, every, &n, false);
    if (!rc)
        rc = get_bool(r, "norm_bias", &c->norm_bias);
    if (!rc)
        rc = get_bool(r, "classifier_bias", &c->classifier_bias);
    if (!rc)
        rc = get_bool(r, "decoder_bias", &c->decoder_bias);
    if (!rc)
        rc = get_str_in(r, r->root, "classifier_pooling", c->classifier_pooling,
                        sizeof c->classifier_pooling, &found);
    if (!rc)
        rc = get_str_in(r, r->root, "classifier_activation", c->classifier_activation,
                        sizeof c->classifier_activation, &found);
    if (!rc && strcmp(c->classifier_pooling, "cls") != 0 && strcmp(c->classifier_pooling, "mean"))
        rc = err_set(r->e, ERR_FORMAT, "%s: 'classifier_pooling' must be \"cls\" or \"mean\"",
                     r->what);
    if (rc || c->sliding_layers)
        return rc;
    c->sliding_layers = calloc((size_t)c->num_hidden_layers, sizeof *c->sliding_layers);
    if (!c->sliding_layers)
        return err_set(r->e, ERR_NOMEM, "%s: out of memory", r->what);
    for (int64_t i = 0; i < c->num_hidden_layers; i++)
        c->sliding_layers[i] = i % n != 0;
    return 0;
}

static int read_all(const struct reader *r, struct hf_config *c)
{
    bool found;
    int rc = get_str_in(r, r->root, "model_type", c->model_type, sizeof c->model_type, &found);
    if (rc)
        return rc;
    if (!found || !c->model_type[0])
        return err_set(r->e, ERR_FORMAT, "%s: missing 'model_type'", r->what);
    const struct family *fam = NULL;
    for (size_t i = 0; i < N_FAMILIES; i++)
        if (strcmp(families[i].model_type, c->model_type) == 0)
            fam = &families[i];
    bool accepted = fam != NULL && !r->accept;
    for (size_t i = 0; fam && r->accept && i < r->accept->n; i++)
        accepted |= strcmp(r->accept->names[i], c->model_type) == 0;
    if (!accepted) {
        const char *names[N_FAMILIES];
        hf_config_model_types(names, N_FAMILIES);
        const struct hf_accept all = {names, N_FAMILIES, NULL};
        const struct hf_accept *a = r->accept ? r->accept : &all;
        return hf_config_unsupported(r->e, r->what, c->model_type, a->for_, a->names, a->n);
    }
    const json_t *arch = json_object_get(r->root, "architectures");
    if (arch && !json_is_null(arch)) {
        if (!json_is_array(arch))
            return err_set(r->e, ERR_FORMAT, "%s: 'architectures' must be a list", r->what);
        if (json_array_size(arch) > 0) {
            const json_t *a0 = json_array_get(arch, 0);
            if (!json_is_string(a0) || json_string_length(a0) >= sizeof c->architecture)
                return err_set(r->e, ERR_FORMAT, "%s: 'architectures' must hold short strings",
                               r->what);
            memcpy(c->architecture, json_string_value(a0), json_string_length(a0) + 1);
        }
    }
    c->tie_word_embeddings = true;
    rc = read_ids(r, c);
    if (!rc)
        rc = read_sizes(r, c);
    if (!rc)
        rc = read_encoder_fields(r, fam, c);
    if (!rc)
        rc = read_labels(r, c);
    if (!rc)
        rc = read_problem_type(r, c);
    if (!rc)
        rc = hf_config_read_decoder(r, c);
    if (!rc && (strcmp(c->model_type, "t5") == 0 || strcmp(c->model_type, "mt5") == 0))
        rc = read_t5(r, c);
    if (!rc)
        rc = hf_config_read_seq2seq(r, c);
    if (!rc && strcmp(c->model_type, "modernbert") == 0)
        rc = read_modernbert(r, c);
    if (!rc && strcmp(c->model_type, "mpnet") == 0)
        rc = read_mpnet(r, c);
    if (!rc && strcmp(c->model_type, "deberta-v2") == 0)
        rc = read_deberta(r, c);
    return rc;
}

/* ---- public ---- */

static int parse_for(const char *json_text, size_t len, const char *what,
                     const struct hf_accept *accept, struct hf_config *cfg, struct err *e)
{
    memset(cfg, 0, sizeof *cfg);
    json_error_t je;
    json_t *root = json_loadb(json_text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return err_set(e, ERR_FORMAT, "%s: invalid JSON at line %d: %s", what, je.line, je.text);
    int rc;
    if (!json_is_object(root)) {
        rc = err_set(e, ERR_FORMAT, "%s: not a JSON object", what);
    } else {
        struct reader r = {root, what, e, accept};
        rc = read_all(&r, cfg);
    }
    json_decref(root);
    if (rc)
        hf_config_fini(cfg);
    return rc;
}

int hf_config_parse(const char *json_text, size_t len, const char *what, struct hf_config *cfg,
                    struct err *e)
{
    return parse_for(json_text, len, what, NULL, cfg, e);
}

int hf_config_load(const char *dir, struct hf_config *cfg, struct err *e)
{
    return hf_config_load_for(dir, NULL, cfg, e);
}

int hf_config_load_for(const char *dir, const struct hf_accept *accept, struct hf_config *cfg,
                       struct err *e)
{
    memset(cfg, 0, sizeof *cfg);
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/config.json", dir) >= sizeof path)
        return err_set(e, ERR_INVALID, "%s: path too long", dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        return files_error(path, errno, e);
    int rc = 0;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        rc = err_set(e, ERR_IO, "%s: cannot read", path);
        goto close_file;
    }
    long size = ftell(f);
    if (size < 0 || size > 64L * 1024 * 1024) {
        rc = err_set(e, size < 0 ? ERR_IO : ERR_FORMAT, "%s: cannot read or too large", path);
        goto close_file;
    }
    rewind(f);
    buf = malloc((size_t)size + 1);
    if (!buf) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", path);
        goto close_file;
    }
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        rc = err_set(e, ERR_IO, "%s: short read", path);
        goto free_buf;
    }
    rc = parse_for(buf, (size_t)size, path, accept, cfg, e);
free_buf:
    free(buf);
close_file:
    fclose(f);
    return rc;
}

void hf_config_fini(struct hf_config *cfg)
{
    if (cfg->id2label)
        for (size_t i = 0; i < cfg->num_labels; i++)
            free(cfg->id2label[i]);
    free(cfg->id2label);
    free(cfg->eos_token_ids);
    free(cfg->rope_scaling.json);
    free(cfg->rope_scaling.short_factor);
    free(cfg->rope_scaling.long_factor);
    free(cfg->sliding_layers);
    memset(cfg, 0, sizeof *cfg);
}
