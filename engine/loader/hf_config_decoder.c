/* hf_config_decoder: the decoder fields of config.json (RoPE and its scaling, sliding windows
 * and which layers have them, tied head, biases, Gemma's soft-capping and query scalar, Phi-3's
 * partial rotary factor) with the defaults of each decoder config class, a row per model_type
 * in dec_defaults[] (types without a row: the PretrainedConfig defaults). See hf_config.h. */
#include <stdlib.h>
#include <string.h>

#include "loader/hf_config_read.h"

/* Which layers get the sliding window when config.json has no "layer_types". */
enum window_layers {
    WINDOW_ALL,         /* every layer */
    WINDOW_FROM_MAX,    /* Qwen2/3: layers >= max_window_layers, only with use_sliding_window */
    WINDOW_EVERY_OTHER, /* Gemma 2: layers 0, 2, 4, ... */
    WINDOW_PATTERN,     /* Gemma 3: all but every sliding_window_pattern-th (default 6) */
};

/* Defaults of a decoder config class, for keys a file may omit. */
struct dec_defaults {
    const char *model_type;
    bool tied;                  /* tie_word_embeddings */
    enum window_layers windows; /* which layers slide */
    int64_t sliding_window;     /* when the key is absent (null: none); 0: none */
    int64_t head_dim;           /* when absent; 0: hidden_size / heads */
    const char *act_key;        /* the activation's key instead of hidden_act (Gemma) */
    double query_pre_attn_scalar, attn_softcap, final_softcap, rope_local_base;
};

static const struct dec_defaults dec_defaults[] = {
    {"llama", false, WINDOW_ALL, 0, 0, NULL, 0, 0, 0, 0},
    {"mistral", false, WINDOW_ALL, 4096, 0, NULL, 0, 0, 0, 0},
    {"qwen2", false, WINDOW_FROM_MAX, 0, 0, NULL, 0, 0, 0, 0},
    {"qwen3", false, WINDOW_FROM_MAX, 0, 128, NULL, 0, 0, 0, 0},
    {"gemma", true, WINDOW_ALL, 0, 256, "hidden_activation", 0, 0, 0, 0},
    {"gemma2", true, WINDOW_EVERY_OTHER, 4096, 256, "hidden_activation", 256, 50, 30, 0},
    {"gemma3_text", true, WINDOW_PATTERN, 4096, 256, "hidden_activation", 256, 0, 0, 10000},
    {"phi3", false, WINDOW_ALL, 0, 0, NULL, 0, 0, 0, 0},
    {"mt5", false, WINDOW_ALL, 0, 0, NULL, 0, 0, 0, 0}, /* MT5Config: an untied lm_head */
};
static const struct dec_defaults other_defaults = {"", true, WINDOW_ALL, 0, 0, NULL, 0, 0, 0, 0};

static const struct dec_defaults *defaults_of(const char *model_type)
{
    for (size_t i = 0; i < sizeof dec_defaults / sizeof dec_defaults[0]; i++)
        if (strcmp(dec_defaults[i].model_type, model_type) == 0)
            return &dec_defaults[i];
    return &other_defaults;
}

/* A list of numbers (longrope's factors) into a malloc'ed array. */
static int read_factors(const struct reader *r, const json_t *s, const char *key, double **out,
                        size_t *n)
{
    const json_t *a = json_object_get(s, key);
    if (!a || json_is_null(a))
        return err_set(r->e, ERR_FORMAT, "%s: longrope scaling needs '%s'", r->what, key);
    if (!json_is_array(a) || json_array_size(a) == 0 || (*n && json_array_size(a) != *n))
        return err_set(r->e, ERR_FORMAT, "%s: '%s' must be a list of %zu numbers", r->what, key,
                       *n ? *n : json_array_size(a));
    *n = json_array_size(a);
    *out = calloc(*n, sizeof **out);
    if (!*out)
        return err_set(r->e, ERR_NOMEM, "%s: out of memory", r->what);
    for (size_t i = 0; i < *n; i++) {
        const json_t *x = json_array_get(a, i);
        if (!json_is_number(x) || !(json_number_value(x) > 0))
            return err_set(r->e, ERR_FORMAT, "%s: '%s'[%zu] must be a positive number", r->what,
                           key, i);
        (*out)[i] = json_number_value(x);
    }
    return 0;
}

/* longrope's factor lists and attention factor; original_max_position_embeddings may be
 * top-level (Phi-3's config writes it there). */
static int read_longrope(const struct reader *r, const json_t *s, struct hf_config *c)
{
    struct hf_rope_scaling *rs = &c->rope_scaling;
    bool found;
    int rc = read_factors(r, s, "short_factor", &rs->short_factor, &rs->n_factors);
    if (!rc)
        rc = read_factors(r, s, "long_factor", &rs->long_factor, &rs->n_factors);
    if (!rc)
        rc = get_num_in(r, s, "attention_factor", &rs->attention_factor, &found);
    if (!rc && rs->original_max_position_embeddings == 0)
        rc = get_int_in(r, r->root, "original_max_position_embeddings",
                        &rs->original_max_position_embeddings, &found);
    if (!rc && rs->original_max_position_embeddings <= 0)
        rc = err_set(r->e, ERR_FORMAT,
                     "%s: longrope scaling needs 'original_max_position_embeddings'", r->what);
    return rc;
}

/* rope_theta and the scaling object: transformers < 5 writes top-level "rope_theta" and
 * "rope_scaling" {"type" | "rope_type", "factor", ...}; transformers 5 writes both inside
 * "rope_parameters" {"rope_theta", "rope_type": "default" | ..., ...}. */
static int read_rope(const struct reader *r, struct hf_config *c)
{
    bool found;
    const json_t *params = json_object_get(r->root, "rope_parameters");
    if (params && !json_is_null(params) && !json_is_object(params))
        return err_set(r->e, ERR_FORMAT, "%s: 'rope_parameters' must be an object", r->what);
    c->rope_theta = 10000.0;
    int rc = get_num_in(r, r->root, "rope_theta", &c->rope_theta, &found);
    if (!rc && !found && json_is_object(params))
        rc = get_num_in(r, params, "rope_theta", &c->rope_theta, &found);
    if (rc)
        return rc;
    if (!(c->rope_theta > 0))
        return err_set(r->e, ERR_FORMAT, "%s: 'rope_theta' must be positive", r->what);
    const json_t *s = json_object_get(r->root, "rope_scaling");
    if (!s || json_is_null(s))
        s = json_is_object(params) ? params : NULL;
    if (!s)
        return 0;
    if (!json_is_object(s))
        return err_set(r->e, ERR_FORMAT, "%s: 'rope_scaling' must be an object or null", r->what);
    struct hf_rope_scaling *rs = &c->rope_scaling;
    rc = get_str_in(r, s, "rope_type", rs->type, sizeof rs->type, &found);
    if (!rc && !found)
        rc = get_str_in(r, s, "type", rs->type, sizeof rs->type, &found);
    if (rc)
        return rc;
    if (!found || strcmp(rs->type, "default") == 0) {
        memset(rs, 0, sizeof *rs);
        return 0;
    }
    rs->present = true;
    int64_t orig = 0;
    rc = get_num_in(r, s, "factor", &rs->factor, &found);
    if (!rc)
        rc = get_num_in(r, s, "low_freq_factor", &rs->low_freq_factor, &found);
    if (!rc)
        rc = get_num_in(r, s, "high_freq_factor", &rs->high_freq_factor, &found);
    if (!rc)
        rc = get_int_in(r, s, "original_max_position_embeddings", &orig, &found);
    if (rc)
        return rc;
    rs->original_max_position_embeddings = orig;
    if (strcmp(rs->type, "longrope") == 0 && (rc = read_longrope(r, s, c)) != 0)
        return rc;
    rs->json = json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS);
    if (!rs->json)
        return err_set(r->e, ERR_NOMEM, "%s: out of memory", r->what);
    return 0;
}

/* "layer_types": one of "full_attention" / "sliding_attention" per layer. */
static int read_layer_types(const struct reader *r, struct hf_config *c)
{
    const json_t *lt = json_object_get(r->root, "layer_types");
    if (!lt || json_is_null(lt))
        return 0;
    if (!json_is_array(lt) || json_array_size(lt) != (size_t)c->num_hidden_layers)
        return err_set(r->e, ERR_FORMAT, "%s: 'layer_types' must be a list of %lld layer types",
                       r->what, (long long)c->num_hidden_layers);
    c->sliding_layers = calloc((size_t)c->num_hidden_layers, sizeof *c->sliding_layers);
    if (!c->sliding_layers)
        return err_set(r->e, ERR_NOMEM, "%s: out of memory", r->what);
    for (size_t i = 0; i < json_array_size(lt); i++) {
        const char *t = json_string_value(json_array_get(lt, i));
        if (t && strcmp(t, "sliding_attention") == 0)
            c->sliding_layers[i] = true;
        else if (!t || strcmp(t, "full_attention") != 0)
            return err_set(r->e, ERR_FORMAT, "%s: 'layer_types'[%zu] is not a layer type we know",
                           r->what, i);
    }
    return 0;
}

/* Which layers slide when "layer_types" does not say (see enum window_layers). */
static int default_sliding_layers(const struct reader *r, const struct dec_defaults *dd,
                                  struct hf_config *c)
{
    int64_t pattern = 6;
    static const char *const pat[] = {"sliding_window_pattern", NULL};
    int rc = dd->windows == WINDOW_PATTERN ? get_size(r, pat, &pattern, false) : 0;
    if (rc || dd->windows == WINDOW_ALL || c->sliding_window == 0)
        return rc;
    c->sliding_layers = calloc((size_t)c->num_hidden_layers, sizeof *c->sliding_layers);
    if (!c->sliding_layers)
        return err_set(r->e, ERR_NOMEM, "%s: out of memory", r->what);
    for (int64_t i = 0; i < c->num_hidden_layers; i++) {
        bool from_max = i >= c->max_window_layers;
        bool other = (i + 1) % 2 != 0, patterned = (i + 1) % pattern != 0;
        c->sliding_layers[i] = dd->windows == WINDOW_FROM_MAX      ? from_max
                               : dd->windows == WINDOW_EVERY_OTHER ? other
                                                                   : patterned;
    }
    return 0;
}

/* Sliding window: absent takes the class default (Mistral, Gemma 2/3: 4096), null none;
 * Qwen2/3 only use it with use_sliding_window (default false); which layers: "layer_types",
 * else the class's rule. */
static int read_sliding_window(const struct reader *r, const struct dec_defaults *dd,
                               struct hf_config *c)
{
    static const char *const sw[] = {"sliding_window", NULL};
    static const char *const mwl[] = {"max_window_layers", NULL};
    bool found;
    int64_t v = 0;
    c->sliding_window = 0;
    c->max_window_layers = 28;
    int rc = get_int_any(r, sw, &v, &found);
    if (!rc && !json_object_get(r->root, "sliding_window"))
        v = dd->sliding_window;
    else if (!rc && found && (v <= 0 || v > SIZE_LIMIT))
        rc = err_set(r->e, ERR_FORMAT, "%s: 'sliding_window' = %lld is out of range", r->what,
                     (long long)v);
    bool use_sw = dd->windows != WINDOW_FROM_MAX;
    if (!rc)
        rc = get_bool(r, "use_sliding_window", &use_sw);
    if (!rc)
        rc = get_int_any(r, mwl, &c->max_window_layers, &found);
    if (!rc && c->max_window_layers < 0)
        rc = err_set(r->e, ERR_FORMAT, "%s: 'max_window_layers' must not be negative", r->what);
    if (rc)
        return rc;
    c->sliding_window = use_sw ? v : 0;
    if ((rc = read_layer_types(r, c)) != 0)
        return rc;
    return c->sliding_layers ? 0 : default_sliding_layers(r, dd, c);
}

/* A number whose class default is def: absent keeps def, null or 0 means none (0). */
static int num_or_default(const struct reader *r, const char *key, double def, double *out)
{
    bool found;
    *out = json_object_get(r->root, key) ? 0 : def;
    int rc = get_num_in(r, r->root, key, out, &found);
    if (!rc && *out < 0)
        rc = err_set(r->e, ERR_FORMAT, "%s: '%s' must not be negative", r->what, key);
    return rc;
}

/* Gemma's fields: the activation under its own key, the query scalar, soft-capping, the local
 * RoPE base; head_dim's class default; Phi-3's partial rotary factor. */
static int read_family_fields(const struct reader *r, const struct dec_defaults *dd,
                              struct hf_config *c)
{
    bool found;
    int rc = 0;
    if (dd->act_key) {
        rc = get_str_in(r, r->root, dd->act_key, c->hidden_act, sizeof c->hidden_act, &found);
        if (!rc && !found)
            strcpy(c->hidden_act, "gelu_pytorch_tanh");
    }
    if (!rc && dd->head_dim && !json_object_get(r->root, "head_dim"))
        c->head_dim = dd->head_dim;
    if (!rc)
        rc = num_or_default(r, "query_pre_attn_scalar", dd->query_pre_attn_scalar,
                            &c->query_pre_attn_scalar);
    if (!rc)
        rc = num_or_default(r, "attn_logit_softcapping", dd->attn_softcap,
                            &c->attn_logit_softcapping);
    if (!rc)
        rc = num_or_default(r, "final_logit_softcapping", dd->final_softcap,
                            &c->final_logit_softcapping);
    if (!rc)
        rc = num_or_default(r, "rope_local_base_freq", dd->rope_local_base,
                            &c->rope_local_base_freq);
    c->partial_rotary_factor = 1.0;
    if (!rc)
        rc = get_num_in(r, r->root, "partial_rotary_factor", &c->partial_rotary_factor, &found);
    if (!rc && !(c->partial_rotary_factor > 0 && c->partial_rotary_factor <= 1))
        rc = err_set(r->e, ERR_FORMAT, "%s: 'partial_rotary_factor' must be in (0, 1]", r->what);
    return rc;
}

int hf_config_read_decoder(const struct reader *r, struct hf_config *c)
{
    const struct dec_defaults *dd = defaults_of(c->model_type);
    int rc = read_rope(r, c);
    if (!rc)
        rc = read_sliding_window(r, dd, c);
    if (!rc)
        rc = read_family_fields(r, dd, c);
    c->tie_word_embeddings = dd->tied;
    c->scale_attn_weights = true;
    if (!rc)
        rc = get_bool(r, "tie_word_embeddings", &c->tie_word_embeddings);
    if (!rc)
        rc = get_bool(r, "is_encoder_decoder", &c->is_encoder_decoder);
    if (!rc)
        rc = get_bool(r, "attention_bias", &c->attention_bias);
    if (!rc)
        rc = get_bool(r, "mlp_bias", &c->mlp_bias);
    if (!rc)
        rc = get_bool(r, "scale_attn_weights", &c->scale_attn_weights);
    if (!rc)
        rc = get_bool(r, "scale_attn_by_inverse_layer_idx", &c->scale_attn_by_inverse_layer_idx);
    return rc;
}
