/* make_random_decoder: writes a random-weight causal language model of about 124M parameters
 * in the Hugging Face layout, config.json + model.safetensors (f32), into a directory, for the
 * generation benchmark (bench/run_generate.sh, bench-generate, bench/torch_decoder.py).
 * Two architectures, each with the config fields of its test fixture (shared/fixtures
 * models/gpt2-lm and models/llama-lm) scaled up:
 *
 *   gpt2   GPT2LMHeadModel: n_embd 768, 12 layers, 12 heads, n_inner 3072 (4 x), gelu_new,
 *          1024 learned positions, vocab 50257, tied head: 124,439,808 parameters
 *   llama  LlamaForCausalLM: hidden 768, 12 layers, 12 heads of 64, 4 kv heads (GQA 3:1),
 *          intermediate 2048, SiLU, RoPE default theta 10000, 2048 positions, vocab 32000,
 *          untied head: 124,668,672 parameters
 *
 * Recipe as tools/make_random_bert.c: every weight and bias normal(0, 1) * 0.02, norm weights
 * 1 and LayerNorm biases 0, from a fixed-seed PRNG (splitmix64 + Box-Muller): the same bytes on
 * every run. Random weights say nothing about accuracy, only about speed.
 *
 * usage: make-random-decoder gpt2|llama DIR [--layers N]      (DIR is created if missing) */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define HIDDEN 768
#define HEADS 12
#define HEAD_DIM 64
#define GPT2_FFN 3072
#define GPT2_VOCAB 50257
#define GPT2_POSITIONS 1024
#define LLAMA_KV_HEADS 4
#define LLAMA_FFN 2048
#define LLAMA_VOCAB 32000
#define LLAMA_POSITIONS 2048
#define MAX_TENSORS 256

enum arch { ARCH_GPT2, ARCH_LLAMA };

enum fill { FILL_NORMAL, FILL_ONES, FILL_ZEROS };

struct tensor_spec {
    char name[128];
    int64_t rows, cols; /* cols 0: 1-D (rows) */
    enum fill fill;
};

struct model_spec {
    struct tensor_spec t[MAX_TENSORS];
    int n;
};

static void add(struct model_spec *m, const char *name, int64_t rows, int64_t cols, enum fill fill)
{
    struct tensor_spec *t = &m->t[m->n++];
    snprintf(t->name, sizeof t->name, "%.120s", name);
    t->rows = rows;
    t->cols = cols;
    t->fill = fill;
}

/* "prefix.part" with fill, rows x cols. */
static void addf(struct model_spec *m, const char *prefix, const char *part, int64_t rows,
                 int64_t cols, enum fill fill)
{
    char n[128];
    snprintf(n, sizeof n, "%.63s.%.63s", prefix, part);
    add(m, n, rows, cols, fill);
}

/* GPT-2's Conv1D: weight (in, out), bias (out). */
static void add_conv1d(struct model_spec *m, const char *base, int64_t in, int64_t out)
{
    addf(m, base, "weight", in, out, FILL_NORMAL);
    addf(m, base, "bias", out, 0, FILL_NORMAL);
}

static void build_gpt2(struct model_spec *m, int layers)
{
    add(m, "transformer.wte.weight", GPT2_VOCAB, HIDDEN, FILL_NORMAL);
    add(m, "transformer.wpe.weight", GPT2_POSITIONS, HIDDEN, FILL_NORMAL);
    for (int l = 0; l < layers; l++) {
        char b[96], c[128];
        snprintf(b, sizeof b, "transformer.h.%d", l);
        addf(m, b, "ln_1.weight", HIDDEN, 0, FILL_ONES);
        addf(m, b, "ln_1.bias", HIDDEN, 0, FILL_ZEROS);
        snprintf(c, sizeof c, "%s.attn.c_attn", b);
        add_conv1d(m, c, HIDDEN, 3 * HIDDEN);
        snprintf(c, sizeof c, "%s.attn.c_proj", b);
        add_conv1d(m, c, HIDDEN, HIDDEN);
        addf(m, b, "ln_2.weight", HIDDEN, 0, FILL_ONES);
        addf(m, b, "ln_2.bias", HIDDEN, 0, FILL_ZEROS);
        snprintf(c, sizeof c, "%s.mlp.c_fc", b);
        add_conv1d(m, c, HIDDEN, GPT2_FFN);
        snprintf(c, sizeof c, "%s.mlp.c_proj", b);
        add_conv1d(m, c, GPT2_FFN, HIDDEN);
    }
    add(m, "transformer.ln_f.weight", HIDDEN, 0, FILL_ONES);
    add(m, "transformer.ln_f.bias", HIDDEN, 0, FILL_ZEROS);
    /* tie_word_embeddings: no lm_head.weight, as save_pretrained writes it */
}

static void build_llama(struct model_spec *m, int layers)
{
    const int64_t kv = LLAMA_KV_HEADS * HEAD_DIM;
    add(m, "model.embed_tokens.weight", LLAMA_VOCAB, HIDDEN, FILL_NORMAL);
    for (int l = 0; l < layers; l++) {
        char b[96];
        snprintf(b, sizeof b, "model.layers.%d", l);
        addf(m, b, "input_layernorm.weight", HIDDEN, 0, FILL_ONES);
        addf(m, b, "self_attn.q_proj.weight", HEADS * HEAD_DIM, HIDDEN, FILL_NORMAL);
        addf(m, b, "self_attn.k_proj.weight", kv, HIDDEN, FILL_NORMAL);
        addf(m, b, "self_attn.v_proj.weight", kv, HIDDEN, FILL_NORMAL);
        addf(m, b, "self_attn.o_proj.weight", HIDDEN, HEADS * HEAD_DIM, FILL_NORMAL);
        addf(m, b, "post_attention_layernorm.weight", HIDDEN, 0, FILL_ONES);
        addf(m, b, "mlp.gate_proj.weight", LLAMA_FFN, HIDDEN, FILL_NORMAL);
        addf(m, b, "mlp.up_proj.weight", LLAMA_FFN, HIDDEN, FILL_NORMAL);
        addf(m, b, "mlp.down_proj.weight", HIDDEN, LLAMA_FFN, FILL_NORMAL);
    }
    add(m, "model.norm.weight", HIDDEN, 0, FILL_ONES);
    add(m, "lm_head.weight", LLAMA_VOCAB, HIDDEN, FILL_NORMAL);
}

static size_t n_elements(const struct tensor_spec *t)
{
    return (size_t)t->rows * (size_t)(t->cols ? t->cols : 1);
}

/* ---- PRNG: splitmix64, Box-Muller ---- */

static uint64_t rng_state = 0x5eed0000u;

static uint64_t next_u64(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uniform01(void) /* (0, 1] */
{
    return ((double)(next_u64() >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

static void fill_normal(float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i += 2) {
        double r = sqrt(-2.0 * log(uniform01())), a = 6.283185307179586 * uniform01();
        x[i] = (float)(r * cos(a)) * scale;
        if (i + 1 < n)
            x[i + 1] = (float)(r * sin(a)) * scale;
    }
}

/* ---- writing ---- */

static void config_gpt2(FILE *f, int layers)
{
    fprintf(f,
            "{\n"
            "  \"activation_function\": \"gelu_new\",\n"
            "  \"add_cross_attention\": false,\n"
            "  \"architectures\": [\"GPT2LMHeadModel\"],\n"
            "  \"attn_pdrop\": 0.1,\n"
            "  \"bos_token_id\": 50256,\n"
            "  \"dtype\": \"float32\",\n"
            "  \"embd_pdrop\": 0.1,\n"
            "  \"eos_token_id\": 50256,\n"
            "  \"initializer_range\": 0.02,\n"
            "  \"layer_norm_epsilon\": 1e-05,\n"
            "  \"model_type\": \"gpt2\",\n"
            "  \"n_embd\": %d,\n"
            "  \"n_head\": %d,\n"
            "  \"n_inner\": null,\n"
            "  \"n_layer\": %d,\n"
            "  \"n_positions\": %d,\n"
            "  \"pad_token_id\": null,\n"
            "  \"reorder_and_upcast_attn\": false,\n"
            "  \"resid_pdrop\": 0.1,\n"
            "  \"scale_attn_by_inverse_layer_idx\": false,\n"
            "  \"scale_attn_weights\": true,\n"
            "  \"tie_word_embeddings\": true,\n"
            "  \"use_cache\": true,\n"
            "  \"vocab_size\": %d\n"
            "}\n",
            HIDDEN, HEADS, layers, GPT2_POSITIONS, GPT2_VOCAB);
}

static void config_llama(FILE *f, int layers)
{
    fprintf(f,
            "{\n"
            "  \"architectures\": [\"LlamaForCausalLM\"],\n"
            "  \"attention_bias\": false,\n"
            "  \"attention_dropout\": 0.0,\n"
            "  \"bos_token_id\": 1,\n"
            "  \"dtype\": \"float32\",\n"
            "  \"eos_token_id\": 2,\n"
            "  \"head_dim\": %d,\n"
            "  \"hidden_act\": \"silu\",\n"
            "  \"hidden_size\": %d,\n"
            "  \"initializer_range\": 0.02,\n"
            "  \"intermediate_size\": %d,\n"
            "  \"max_position_embeddings\": %d,\n"
            "  \"mlp_bias\": false,\n"
            "  \"model_type\": \"llama\",\n"
            "  \"num_attention_heads\": %d,\n"
            "  \"num_hidden_layers\": %d,\n"
            "  \"num_key_value_heads\": %d,\n"
            "  \"pad_token_id\": null,\n"
            "  \"pretraining_tp\": 1,\n"
            "  \"rms_norm_eps\": 1e-05,\n"
            "  \"rope_parameters\": {\"rope_theta\": 10000.0, \"rope_type\": \"default\"},\n"
            "  \"tie_word_embeddings\": false,\n"
            "  \"use_cache\": true,\n"
            "  \"vocab_size\": %d\n"
            "}\n",
            HEAD_DIM, HIDDEN, LLAMA_FFN, LLAMA_POSITIONS, HEADS, layers, LLAMA_KV_HEADS,
            LLAMA_VOCAB);
}

static int write_config(const char *dir, enum arch arch, int layers)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "make-random-decoder: %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (arch == ARCH_GPT2)
        config_gpt2(f, layers);
    else
        config_llama(f, layers);
    return fclose(f) == 0 ? 0 : 1;
}

/* safetensors: u64 LE header length, JSON header (padded with spaces to 8 bytes), data.
 * The file is written under a temporary name and renamed, so a half-written model is never
 * taken for a complete one. */
static int write_safetensors(const char *dir, const struct model_spec *m)
{
    size_t cap = 64 + (size_t)m->n * 200, len = 0, off = 0;
    char *hdr = malloc(cap);
    if (!hdr)
        return 1;
    len += (size_t)snprintf(hdr + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < m->n; i++) {
        const struct tensor_spec *t = &m->t[i];
        size_t bytes = n_elements(t) * 4;
        char shape[64];
        if (t->cols)
            snprintf(shape, sizeof shape, "%" PRId64 ",%" PRId64, t->rows, t->cols);
        else
            snprintf(shape, sizeof shape, "%" PRId64, t->rows);
        len += (size_t)snprintf(hdr + len, cap - len,
                                ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%s],"
                                "\"data_offsets\":[%zu,%zu]}",
                                t->name, shape, off, off + bytes);
        off += bytes;
    }
    len += (size_t)snprintf(hdr + len, cap - len, "}");
    while (len % 8 != 0)
        hdr[len++] = ' ';

    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(tmp, sizeof tmp, "%s.part", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "make-random-decoder: %s: %s\n", tmp, strerror(errno));
        free(hdr);
        return 1;
    }
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)((uint64_t)len >> (8 * i));
    int rc = fwrite(le, 1, 8, f) != 8 || fwrite(hdr, 1, len, f) != len;
    free(hdr);
    float *buf = NULL;
    for (int i = 0; i < m->n && rc == 0; i++) {
        const struct tensor_spec *t = &m->t[i];
        size_t n = n_elements(t);
        float *nb = realloc(buf, n * sizeof *nb);
        if (!nb) {
            rc = 1;
            break;
        }
        buf = nb;
        if (t->fill == FILL_NORMAL)
            fill_normal(buf, n, 0.02f);
        else
            for (size_t k = 0; k < n; k++)
                buf[k] = t->fill == FILL_ONES ? 1.0f : 0.0f;
        rc = fwrite(buf, sizeof *buf, n, f) != n; /* little-endian hosts only */
    }
    free(buf);
    if (fclose(f) != 0)
        rc = 1;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = 1;
    if (rc) {
        fprintf(stderr, "make-random-decoder: writing %s failed\n", path);
        remove(tmp);
    }
    return rc;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *arch_name = NULL;
    int layers = 12, bad = 0;
    for (int i = 1; i < argc && !bad; i++) {
        if (strcmp(argv[i], "--layers") == 0 && i + 1 < argc)
            layers = atoi(argv[++i]);
        else if (argv[i][0] != '-' && !arch_name)
            arch_name = argv[i];
        else if (argv[i][0] != '-' && !dir)
            dir = argv[i];
        else
            bad = 1;
    }
    enum arch arch = ARCH_GPT2;
    if (arch_name && strcmp(arch_name, "llama") == 0)
        arch = ARCH_LLAMA;
    else if (!arch_name || strcmp(arch_name, "gpt2") != 0)
        bad = 1;
    if (bad || !dir || layers <= 0 || layers > 48) {
        fputs("usage: make-random-decoder gpt2|llama DIR [--layers N (1..48, default 12)]\n",
              stderr);
        return 2;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "make-random-decoder: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    static struct model_spec spec;
    if (arch == ARCH_GPT2)
        build_gpt2(&spec, layers);
    else
        build_llama(&spec, layers);
    uint64_t params = 0;
    for (int i = 0; i < spec.n; i++)
        params += n_elements(&spec.t[i]);
    if (write_config(dir, arch, layers) || write_safetensors(dir, &spec))
        return 1;
    fprintf(stderr, "make-random-decoder: wrote %s (%s, %d layers, %" PRIu64 " parameters)\n", dir,
            arch_name, layers, params);
    return 0;
}
