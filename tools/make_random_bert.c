/* make_random_bert: writes a random-weight bert-base-uncased-sized BertForSequenceClassification
 * (12 layers, hidden 768, 12 heads, FFN 3072, vocab 30522, 512 positions, 2 token types,
 * 2 labels) in the Hugging Face layout, config.json + model.safetensors (f32), into a
 * directory, for speed measurements (bench/run_encoder.sh, `inferd bench`).
 * Same recipe as shared/anchors/make_weights.py: every weight and bias normal(0, 1) * 0.02,
 * LayerNorm weights 1 and biases 0; from a fixed-seed PRNG (splitmix64 + Box-Muller), so the
 * values are deterministic but not numpy's. Random weights say nothing about accuracy.
 *
 * usage: make-random-bert DIR [--layers N]      (DIR is created if missing) */
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
#define FFN 3072
#define VOCAB 30522
#define POSITIONS 512
#define TYPES 2
#define LABELS 2

/* A linear `base`.weight (out, in) and `base`.bias (out). */
static void add_linear(struct model_spec *m, const char *base, int64_t in, int64_t out)
{
    char n[128];
    snprintf(n, sizeof n, "%s.weight", base);
    add(m, n, out, in, FILL_NORMAL);
    snprintf(n, sizeof n, "%s.bias", base);
    add(m, n, out, 0, FILL_NORMAL);
}

static void add_ln(struct model_spec *m, const char *base)
{
    char n[128];
    snprintf(n, sizeof n, "%s.weight", base);
    add(m, n, HIDDEN, 0, FILL_ONES);
    snprintf(n, sizeof n, "%s.bias", base);
    add(m, n, HIDDEN, 0, FILL_ZEROS);
}

static void build_spec(struct model_spec *m, int layers)
{
    add(m, "bert.embeddings.word_embeddings.weight", VOCAB, HIDDEN, FILL_NORMAL);
    add(m, "bert.embeddings.position_embeddings.weight", POSITIONS, HIDDEN, FILL_NORMAL);
    add(m, "bert.embeddings.token_type_embeddings.weight", TYPES, HIDDEN, FILL_NORMAL);
    add_ln(m, "bert.embeddings.LayerNorm");
    for (int l = 0; l < layers; l++) {
        static const char *const parts[] = {"attention.self.query", "attention.self.key",
                                            "attention.self.value", "attention.output.dense"};
        char b[96];
        for (int k = 0; k < 4; k++) {
            snprintf(b, sizeof b, "bert.encoder.layer.%d.%s", l, parts[k]);
            add_linear(m, b, HIDDEN, HIDDEN);
        }
        snprintf(b, sizeof b, "bert.encoder.layer.%d.attention.output.LayerNorm", l);
        add_ln(m, b);
        snprintf(b, sizeof b, "bert.encoder.layer.%d.intermediate.dense", l);
        add_linear(m, b, HIDDEN, FFN);
        snprintf(b, sizeof b, "bert.encoder.layer.%d.output.dense", l);
        add_linear(m, b, FFN, HIDDEN);
        snprintf(b, sizeof b, "bert.encoder.layer.%d.output.LayerNorm", l);
        add_ln(m, b);
    }
    add_linear(m, "bert.pooler.dense", HIDDEN, HIDDEN);
    add_linear(m, "classifier", HIDDEN, LABELS);
}

/* ---- writing ---- */

static int write_config(const char *dir, int layers)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "make-random-bert: %s: %s\n", path, strerror(errno));
        return 1;
    }
    fprintf(f,
            "{\n"
            "  \"architectures\": [\"BertForSequenceClassification\"],\n"
            "  \"model_type\": \"bert\",\n"
            "  \"hidden_act\": \"gelu\",\n"
            "  \"hidden_size\": %d,\n"
            "  \"intermediate_size\": %d,\n"
            "  \"num_attention_heads\": %d,\n"
            "  \"num_hidden_layers\": %d,\n"
            "  \"max_position_embeddings\": %d,\n"
            "  \"type_vocab_size\": %d,\n"
            "  \"vocab_size\": %d,\n"
            "  \"layer_norm_eps\": 1e-12,\n"
            "  \"pad_token_id\": 0,\n"
            "  \"id2label\": {\"0\": \"LABEL_0\", \"1\": \"LABEL_1\"},\n"
            "  \"label2id\": {\"LABEL_0\": 0, \"LABEL_1\": 1},\n"
            "  \"torch_dtype\": \"float32\"\n"
            "}\n",
            HIDDEN, FFN, HEADS, layers, POSITIONS, TYPES, VOCAB);
    return fclose(f) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    int layers = 12;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--layers") == 0 && i + 1 < argc)
            layers = atoi(argv[++i]);
        else if (argv[i][0] != '-' && !dir)
            dir = argv[i];
        else
            dir = NULL, i = argc;
    }
    if (!dir || layers <= 0 || layers > 24) {
        fputs("usage: make-random-bert DIR [--layers N (1..24, default 12)]\n", stderr);
        return 2;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "make-random-bert: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    static struct model_spec spec;
    build_spec(&spec, layers);
    if (write_config(dir, layers) || write_safetensors(dir, &spec, "make-random-bert"))
        return 1;
    fprintf(stderr, "make-random-bert: wrote %s (%d layers)\n", dir, layers);
    return 0;
}
