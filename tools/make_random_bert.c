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

#define HIDDEN 768
#define HEADS 12
#define FFN 3072
#define VOCAB 30522
#define POSITIONS 512
#define TYPES 2
#define LABELS 2
#define MAX_TENSORS 256

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

/* safetensors: u64 LE header length, JSON header (padded with spaces to 8 bytes), data. */
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

    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "make-random-bert: %s: %s\n", path, strerror(errno));
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
    if (rc)
        fprintf(stderr, "make-random-bert: writing %s failed\n", path);
    return rc;
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
    if (write_config(dir, layers) || write_safetensors(dir, &spec))
        return 1;
    fprintf(stderr, "make-random-bert: wrote %s (%d layers)\n", dir, layers);
    return 0;
}
