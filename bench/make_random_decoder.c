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

#include "random_weights.h"

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

enum arch { ARCH_GPT2, ARCH_LLAMA };

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
    if (write_config(dir, arch, layers) || write_safetensors(dir, &spec, "make-random-decoder"))
        return 1;
    fprintf(stderr, "make-random-decoder: wrote %s (%s, %d layers, %" PRIu64 " parameters)\n", dir,
            arch_name, layers, params);
    return 0;
}
