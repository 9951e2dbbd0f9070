/* test_loader: safetensors, hf_config and dtype conversion. Expected tensor names, shapes and
 * counts were listed from the fixture files with Python's json/struct modules; expected F16
 * values come from Python's struct 'e' decoder and from a naive ldexp formula written here,
 * never from the code under test. Every malformed-file case is a small file built in a temp
 * directory and must fail with ERR_FORMAT and a message naming the file and the tensor. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader/hf_config.h"
#include "loader/safetensors.h"
#include "suites.h"
#include "support/support.h"

#ifndef INFERD_SOURCE_DIR
#define INFERD_SOURCE_DIR "."
#endif

/* ---- fixtures ---- */

static struct safetensors *open_model(const char *name)
{
    struct safetensors *st = NULL;
    struct err e = {0};
    int rc = safetensors_open(fixture_model(name), &st, &e);
    ck_assert_msg(rc == 0, "%s: %s", name, e.msg);
    return st;
}

static void write_bytes(const char *dir, const char *name, const void *p, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* Writes DIR/name as a safetensors file: 8-byte length (header_len, or strlen(header) when
 * UINT64_MAX), the header text, then data_len bytes of 0x3c (F16 1.0 pairs). */
static void write_st(const char *dir, const char *name, const char *header, size_t data_len,
                     uint64_t header_len)
{
    size_t hl = strlen(header);
    uint64_t n = header_len == UINT64_MAX ? hl : header_len;
    size_t total = 8 + hl + data_len;
    unsigned char *buf = malloc(total);
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(n >> (8 * i));
    memcpy(buf + 8, header, hl);
    memset(buf + 8 + hl, 0x3c, data_len);
    write_bytes(dir, name, buf, total);
    free(buf);
}

/* Opens dir and expects failure of kind `kind` with a message containing each of the
 * NULL-terminated strings. */
static void expect_open_fails(const char *dir, int kind, ...)
{
    struct safetensors *st = NULL;
    struct err e = {0};
    int rc = safetensors_open(dir, &st, &e);
    ck_assert_msg(rc == kind, "rc %d (%s), want %d: %s", rc, err_kind_name(rc), kind, e.msg);
    ck_assert_ptr_null(st);
    va_list ap;
    va_start(ap, kind);
    for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *))
        ck_assert_msg(strstr(e.msg, s), "message '%s' lacks '%s'", e.msg, s);
    va_end(ap);
}

/* A one-file model with this header and data size, expected to fail naming the tensor. */
static void expect_bad_single(const char *header, size_t data_len, uint64_t header_len,
                              const char *tensor, const char *detail)
{
    const char *dir = temp_dir();
    write_st(dir, "model.safetensors", header, data_len, header_len);
    expect_open_fails(dir, ERR_FORMAT, "model.safetensors", tensor, detail, NULL);
}

/* ---- fixture models ---- */

struct expect_tensor {
    const char *model;
    const char *name;
    enum dtype dtype;
    int n_dims;
    int64_t shape[2];
};

/* Listed from the fixture headers with Python. */
static const struct expect_tensor expected[] = {
    {"bert-seqcls", "bert.embeddings.word_embeddings.weight", DTYPE_F32, 2, {30522, 32}},
    {"bert-seqcls", "bert.embeddings.token_type_embeddings.weight", DTYPE_F32, 2, {2, 32}},
    {"bert-seqcls", "classifier.weight", DTYPE_F32, 2, {2, 32}},
    {"bert-seqcls", "bert.embeddings.LayerNorm.bias", DTYPE_F32, 1, {32}},
    {"bert-embed", "embeddings.word_embeddings.weight", DTYPE_F32, 2, {30522, 32}},
    {"bert-embed", "pooler.dense.weight", DTYPE_F32, 2, {32, 32}},
    {"distilbert-seqcls",
     "distilbert.embeddings.word_embeddings.weight",
     DTYPE_F32,
     2,
     {30522, 32}},
    {"distilbert-seqcls", "pre_classifier.weight", DTYPE_F32, 2, {32, 32}},
    {"albert-seqcls", "albert.embeddings.word_embeddings.weight", DTYPE_F32, 2, {3002, 16}},
    {"albert-seqcls", "albert.encoder.embedding_hidden_mapping_in.weight", DTYPE_F32, 2, {32, 16}},
    {"electra-seqcls", "electra.embeddings_project.weight", DTYPE_F32, 2, {32, 16}},
    {"roberta-seqcls", "roberta.embeddings.position_embeddings.weight", DTYPE_F32, 2, {514, 32}},
    {"roberta-seqcls", "classifier.out_proj.weight", DTYPE_F32, 2, {2, 32}},
    {"gpt2-lm", "transformer.h.0.attn.c_attn.weight", DTYPE_F32, 2, {32, 96}},
    {"gpt2-lm", "transformer.wpe.weight", DTYPE_F32, 2, {256, 32}},
    {"llama-lm", "model.layers.0.mlp.gate_proj.weight", DTYPE_F32, 2, {64, 32}},
    {"llama-lm", "lm_head.weight", DTYPE_F32, 2, {32000, 32}},
    {"t5-s2s",
     "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
     DTYPE_F32,
     2,
     {32, 4}},
    {"spam-bert-tiny", "bert.embeddings.word_embeddings.weight", DTYPE_F16, 2, {30522, 128}},
    {"spam-bert-tiny", "classifier.weight", DTYPE_F16, 2, {2, 128}},
};

START_TEST(fixture_tensors_have_expected_shapes)
{
    const struct expect_tensor *x = &expected[_i];
    struct safetensors *st = open_model(x->model);
    const struct tensor *t = safetensors_get(st, x->name);
    ck_assert_msg(t != NULL, "%s: no tensor %s", x->model, x->name);
    ck_assert_str_eq(t->name, x->name);
    ck_assert_int_eq(t->dtype, x->dtype);
    ck_assert_int_eq(t->n_dims, x->n_dims);
    size_t n = 1;
    for (int d = 0; d < x->n_dims; d++) {
        ck_assert_int_eq(t->shape[d], x->shape[d]);
        n *= (size_t)x->shape[d];
    }
    ck_assert_uint_eq(t->n_elements, n);
    ck_assert_uint_eq(t->size_bytes, n * dtype_size(x->dtype));
    ck_assert_ptr_null(safetensors_get(st, "no.such.tensor"));
    safetensors_close(st);
}
END_TEST

/* Tensor counts from Python; names come back sorted and each resolves to itself. */
static const struct {
    const char *model;
    size_t n_tensors;
} counts[] = {
    {"albert-seqcls", 27},     {"bert-embed", 39},
    {"bert-mlm", 42},          {"bert-nli", 41},
    {"bert-qa", 39},           {"bert-seqcls", 41},
    {"bert-tokcls", 39},       {"distilbert-qa", 38},
    {"distilbert-seqcls", 40}, {"distilbert-tokcls", 38},
    {"electra-seqcls", 43},    {"gpt2-lm", 28},
    {"llama-lm", 21},          {"roberta-seqcls", 41},
    {"roberta-tokcls", 39},    {"t5-s2s", 51},
    {"xlmr-seqcls", 41},       {"xlmr-tokcls", 39},
    {"spam-bert-tiny", 41},
};

START_TEST(fixture_counts_and_iteration)
{
    struct safetensors *st = open_model(counts[_i].model);
    ck_assert_uint_eq(safetensors_count(st), counts[_i].n_tensors);
    ck_assert_uint_eq(safetensors_n_files(st), 1);
    ck_assert_str_eq(safetensors_metadata(st, "format"), "pt");
    for (size_t i = 0; i < safetensors_count(st); i++) {
        const struct tensor *t = safetensors_at(st, i);
        ck_assert_ptr_eq(safetensors_get(st, t->name), t);
        if (i > 0)
            ck_assert_int_lt(strcmp(safetensors_at(st, i - 1)->name, t->name), 0);
    }
    ck_assert_ptr_null(safetensors_at(st, counts[_i].n_tensors));
    safetensors_close(st);
}
END_TEST

/* ---- dtype conversion ---- */

/* Independent binary16 decoder: (-1)^s * 2^(e-15) * (1 + m/1024), subnormals m * 2^-24. */
static double half_ref(uint16_t h)
{
    int s = h >> 15, ex = (h >> 10) & 31, m = h & 1023;
    double v;
    if (ex == 0)
        v = ldexp(m, -24);
    else if (ex == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexp(1024 + m, ex - 25);
    return s ? -v : v;
}

static void assert_same_float(float got, double want, unsigned bits)
{
    if (isnan(want)) {
        ck_assert_msg(isnan(got), "0x%04x: got %g, want nan", bits, (double)got);
        return;
    }
    ck_assert_msg(got == (float)want && !signbit(got) == !signbit(want), "0x%04x: got %a, want %a",
                  bits, (double)got, want);
}

static struct tensor view(enum dtype dt, const void *data, size_t n)
{
    struct tensor t = {.name = "test",
                       .file = "memory",
                       .dtype = dt,
                       .n_dims = 1,
                       .n_elements = n,
                       .size_bytes = n * dtype_size(dt),
                       .data = data};
    t.shape[0] = (int64_t)n;
    return t;
}

START_TEST(f16_known_bit_patterns)
{
    ck_assert_float_eq(f16_to_f32(0x3C00), 1.0f);
    ck_assert_float_eq(f16_to_f32(0x7BFF), 65504.0f);
    ck_assert_float_eq(f16_to_f32(0x0001), 0x1p-24f);   /* 5.96e-8, smallest subnormal */
    ck_assert_float_eq(f16_to_f32(0x03FF), 0x3FFp-24f); /* largest subnormal */
    ck_assert_float_eq(f16_to_f32(0x0400), 0x1p-14f);   /* smallest normal */
    ck_assert_float_eq(f16_to_f32(0xC000), -2.0f);
    ck_assert(isinf(f16_to_f32(0xFC00)) && f16_to_f32(0xFC00) < 0);
    ck_assert(isinf(f16_to_f32(0x7C00)) && f16_to_f32(0x7C00) > 0);
    ck_assert(isnan(f16_to_f32(0x7E00)));
    ck_assert(isnan(f16_to_f32(0x7C01)));
    ck_assert(signbit(f16_to_f32(0x8000)) && f16_to_f32(0x8000) == 0.0f);
    ck_assert_float_eq(bf16_to_f32(0x3F80), 1.0f);
    ck_assert_float_eq(bf16_to_f32(0xC040), -3.0f);
    ck_assert_float_eq(bf16_to_f32(0x0001), 0x1p-133f); /* float subnormal */
    ck_assert(isinf(bf16_to_f32(0xFF80)) && bf16_to_f32(0xFF80) < 0);
    ck_assert(isnan(bf16_to_f32(0x7FC0)));
}
END_TEST

START_TEST(f16_every_pattern_scalar_and_bulk)
{
    /* 65536 halves plus 3 so the bulk path has a tail, starting 1 byte in: unaligned */
    size_t n = 65536 + 3;
    unsigned char *raw = malloc(2 * n + 1);
    float *out = malloc(n * sizeof *out);
    ck_assert(raw && out);
    for (size_t i = 0; i < n; i++) {
        uint16_t h = (uint16_t)i;
        memcpy(raw + 1 + 2 * i, &h, 2);
    }
    struct tensor t = view(DTYPE_F16, raw + 1, n);
    struct err e = {0};
    ck_assert_int_eq(tensor_to_f32(&t, out, n, &e), 0);
    for (size_t i = 0; i < n; i++) {
        uint16_t h = (uint16_t)i;
        assert_same_float(out[i], half_ref(h), h);
        assert_same_float(f16_to_f32(h), half_ref(h), h);
    }
    free(raw);
    free(out);
}
END_TEST

START_TEST(bf16_and_f32_bulk)
{
    uint16_t b[5] = {0x3F80, 0x4049, 0x8000, 0x7F80, 0x0001};
    float want[5] = {1.0f, 3.140625f, -0.0f, INFINITY, 0x1p-133f};
    float out[5];
    struct tensor t = view(DTYPE_BF16, b, 5);
    ck_assert_int_eq(tensor_to_f32(&t, out, 5, NULL), 0);
    for (int i = 0; i < 5; i++)
        ck_assert(out[i] == want[i] && !signbit(out[i]) == !signbit(want[i]));
    t = view(DTYPE_F32, want, 5);
    ck_assert_int_eq(tensor_to_f32(&t, out, 5, NULL), 0);
    ck_assert_mem_eq(out, want, sizeof want);
}
END_TEST

START_TEST(conversion_errors)
{
    int32_t x[2] = {1, 2};
    float out[2];
    struct err e = {0};
    struct tensor t = view(DTYPE_I32, x, 2);
    ck_assert_int_eq(tensor_to_f32(&t, out, 2, &e), ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "test"));
    ck_assert_ptr_nonnull(strstr(e.msg, "I32"));
    t = view(DTYPE_F32, x, 2);
    ck_assert_int_eq(tensor_to_f32(&t, out, 1, &e), ERR_INVALID);
}
END_TEST

/* The spam model's fp16 weights against Python's struct 'e' decoding of the same bytes. */
START_TEST(spam_f16_against_python)
{
    struct safetensors *st = open_model("spam-bert-tiny");
    const struct tensor *t = safetensors_get(st, "bert.embeddings.LayerNorm.weight");
    ck_assert_ptr_nonnull(t);
    float ln[128];
    ck_assert_int_eq(tensor_to_f32(t, ln, 128, NULL), 0);
    const float ln_want[8] = {0.990234375f, 1.0f,          0.99951171875f, 0.9970703125f,
                              1.00390625f,  0.9990234375f, 0.99951171875f, 1.0029296875f};
    for (int i = 0; i < 8; i++)
        ck_assert_float_eq(ln[i], ln_want[i]);
    t = safetensors_get(st, "classifier.weight");
    float cls[256];
    ck_assert_int_eq(tensor_to_f32(t, cls, 256, NULL), 0);
    ck_assert_float_eq(cls[0], -0.037750244140625f);
    ck_assert_float_eq(cls[3], 0.00266265869140625f);
    ck_assert_float_eq(cls[6], -0.01207733154296875f);

    /* whole word-embedding table (9125 subnormals): sums are exact in double */
    t = safetensors_get(st, "bert.embeddings.word_embeddings.weight");
    float *w = malloc(t->n_elements * sizeof *w);
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(tensor_to_f32(t, w, t->n_elements, NULL), 0);
    double sum = 0, sum_abs = 0;
    size_t n_sub = 0;
    for (size_t i = 0; i < t->n_elements; i++) {
        sum += w[i];
        sum_abs += fabs(w[i]);
        n_sub += w[i] != 0 && fabsf(w[i]) < 0x1p-14f;
    }
    ck_assert_double_eq(sum, -181.25497037172318);
    ck_assert_double_eq(sum_abs, 65272.38318365812);
    ck_assert_uint_eq(n_sub, 9125);
    ck_assert_float_eq(w[1000 * 128 + 5], 0.0301513671875f);
    free(w);
    safetensors_close(st);
}
END_TEST

/* ---- malformed safetensors ---- */

#define ONE_F16 "{\"a.weight\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,8]}}"

START_TEST(good_small_file_opens)
{
    const char *dir = temp_dir();
    write_st(dir, "model.safetensors", ONE_F16 "   ", 8, UINT64_MAX);
    struct safetensors *st = NULL;
    struct err e = {0};
    ck_assert_int_eq(safetensors_open(dir, &st, &e), 0);
    const struct tensor *t = safetensors_get(st, "a.weight");
    ck_assert_ptr_nonnull(t);
    float v[4];
    ck_assert_int_eq(tensor_to_f32(t, v, 4, &e), 0);
    ck_assert_float_eq(v[0], 1.05859375f); /* 0x3c3c = 1 + 60/1024 */
    ck_assert_ptr_null(safetensors_metadata(st, "format"));
    safetensors_close(st);
    safetensors_close(NULL);
}
END_TEST

START_TEST(truncated_file)
{
    const char *dir = temp_dir();
    write_bytes(dir, "model.safetensors", "\x10\0\0", 3);
    expect_open_fails(dir, ERR_FORMAT, "model.safetensors", "too short", NULL);
    /* header cut in the middle */
    dir = temp_dir();
    write_st(dir, "model.safetensors", "{\"a.weight\":{\"dty", 0, strlen(ONE_F16));
    expect_open_fails(dir, ERR_FORMAT, "model.safetensors", "header length", NULL);
}
END_TEST

START_TEST(header_length_beyond_file)
{
    const char *dir = temp_dir();
    write_st(dir, "model.safetensors", ONE_F16, 8, 1ull << 40);
    expect_open_fails(dir, ERR_FORMAT, "model.safetensors", "exceeds the file", NULL);
    dir = temp_dir();
    write_st(dir, "model.safetensors", ONE_F16, 8, UINT64_MAX - 3);
    expect_open_fails(dir, ERR_FORMAT, "model.safetensors", NULL);
}
END_TEST

START_TEST(offsets_outside_data)
{
    expect_bad_single(ONE_F16, 4, UINT64_MAX, "a.weight", "outside");
    expect_bad_single(
        "{\"a.weight\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[99999999999,4]}}", 8,
        UINT64_MAX, "a.weight", "end before begin");
}
END_TEST

START_TEST(overlapping_tensors)
{
    expect_bad_single("{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"b.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                      16, UINT64_MAX, "a.weight", "overlap");
    /* adjacent, a zero-size tensor anywhere, and a gap are fine */
    const char *dir = temp_dir();
    write_st(dir, "model.safetensors",
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
             "\"z\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[4,4]},"
             "\"c\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[20,21]}}",
             24, UINT64_MAX);
    struct safetensors *st = NULL;
    struct err e = {0};
    ck_assert_msg(safetensors_open(dir, &st, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(safetensors_get(st, "z")->n_elements, 0);
    ck_assert_int_eq(safetensors_get(st, "c")->n_dims, 0);
    ck_assert_uint_eq(safetensors_get(st, "c")->n_elements, 1);
    safetensors_close(st);
}
END_TEST

START_TEST(wrong_byte_size_for_shape)
{
    expect_bad_single("{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,8]}}",
                      16, UINT64_MAX, "a.weight", "bytes");
}
END_TEST

START_TEST(unknown_dtype)
{
    expect_bad_single("{\"a.weight\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}",
                      2, UINT64_MAX, "a.weight", "F8_E4M3");
    expect_bad_single("{\"a.weight\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,2]}}", 2,
                      UINT64_MAX, "a.weight", "dtype");
}
END_TEST

START_TEST(bad_shapes)
{
    expect_bad_single("{\"a.weight\":{\"dtype\":\"U8\",\"shape\":[-2],\"data_offsets\":[0,2]}}", 2,
                      UINT64_MAX, "a.weight", "shape");
    expect_bad_single("{\"a.weight\":{\"dtype\":\"U8\",\"shape\":[2.5],\"data_offsets\":[0,2]}}", 2,
                      UINT64_MAX, "a.weight", "shape");
    expect_bad_single("{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
                      "\"data_offsets\":[0,0]}}",
                      2, UINT64_MAX, "a.weight", "overflow");
    expect_bad_single("{\"a.weight\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                      "\"data_offsets\":[0,1]}}",
                      2, UINT64_MAX, "a.weight", "dimensions");
    expect_bad_single("{\"a.weight\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}", 2,
                      UINT64_MAX, "a.weight", "data_offsets");
}
END_TEST

START_TEST(invalid_json_header)
{
    const char *dir = temp_dir();
    write_st(dir, "model.safetensors", "{\"a.weight\": {\"dtype\": \"F16\",, }}", 8, UINT64_MAX);
    expect_open_fails(dir, ERR_FORMAT, "model.safetensors", "JSON", NULL);
    dir = temp_dir();
    write_st(dir, "model.safetensors", "[1, 2]", 8, UINT64_MAX);
    expect_open_fails(dir, ERR_FORMAT, "model.safetensors", "object", NULL);
    /* the same tensor twice in one header */
    dir = temp_dir();
    write_st(dir, "model.safetensors",
             "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
             "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
             2, UINT64_MAX);
    expect_open_fails(dir, ERR_FORMAT, "model.safetensors", "duplicate", NULL);
    dir = temp_dir();
    write_st(dir, "model.safetensors", "{\"__metadata__\":{\"format\":1}}", 0, UINT64_MAX);
    expect_open_fails(dir, ERR_FORMAT, "model.safetensors", "__metadata__", NULL);
}
END_TEST

START_TEST(no_weights_file)
{
    expect_open_fails(temp_dir(), ERR_NOT_FOUND, "model.safetensors", NULL);
}
END_TEST

/* ---- sharded index ---- */

#define SHARD1 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"
#define SHARD2 "{\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}"

static void write_index(const char *dir, const char *weight_map)
{
    char text[1024];
    snprintf(text, sizeof text, "{\"metadata\":{\"total_size\":16},\"weight_map\":%s}", weight_map);
    write_bytes(dir, "model.safetensors.index.json", text, strlen(text));
}

/* A header without tensors ({} or only __metadata__) is refused naming the file, as is an index
 * whose weight_map is empty: no empty model reaches the sort of the tensor table. */
START_TEST(no_tensors)
{
    const char *headers[] = {"{}", "{\"__metadata__\":{\"format\":\"pt\"}}"};
    for (size_t i = 0; i < sizeof headers / sizeof *headers; i++) {
        const char *dir = temp_dir();
        write_st(dir, "model.safetensors", headers[i], 0, UINT64_MAX);
        expect_open_fails(dir, ERR_FORMAT,
                          "model.safetensors: no tensors in the safetensors header", NULL);
    }
    const char *dir = temp_dir();
    write_index(dir, "{}");
    expect_open_fails(dir, ERR_FORMAT, "model.safetensors.index.json", "no tensors", NULL);
}
END_TEST

START_TEST(sharded_index_opens)
{
    const char *dir = temp_dir();
    write_st(dir, "model-00001-of-00002.safetensors", SHARD1, 8, UINT64_MAX);
    write_st(dir, "model-00002-of-00002.safetensors", SHARD2, 8, UINT64_MAX);
    write_index(dir, "{\"a\":\"model-00001-of-00002.safetensors\","
                     "\"b\":\"model-00002-of-00002.safetensors\"}");
    struct safetensors *st = NULL;
    struct err e = {0};
    ck_assert_msg(safetensors_open(dir, &st, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(safetensors_n_files(st), 2);
    ck_assert_uint_eq(safetensors_count(st), 2);
    ck_assert_ptr_nonnull(strstr(safetensors_get(st, "a")->file, "00001"));
    ck_assert_ptr_nonnull(strstr(safetensors_get(st, "b")->file, "00002"));
    ck_assert_int_eq(safetensors_get(st, "b")->dtype, DTYPE_F16);
    safetensors_close(st);
}
END_TEST

START_TEST(sharded_index_missing_file)
{
    const char *dir = temp_dir();
    write_st(dir, "model-00001-of-00002.safetensors", SHARD1, 8, UINT64_MAX);
    write_index(dir, "{\"a\":\"model-00001-of-00002.safetensors\","
                     "\"b\":\"model-00002-of-00002.safetensors\"}");
    expect_open_fails(dir, ERR_FORMAT, "index.json", "'b'", "model-00002-of-00002", "not exist",
                      NULL);
}
END_TEST

START_TEST(sharded_index_inconsistent)
{
    /* tensor listed in the wrong shard */
    const char *dir = temp_dir();
    write_st(dir, "s1.safetensors", SHARD1, 8, UINT64_MAX);
    write_st(dir, "s2.safetensors", SHARD2, 8, UINT64_MAX);
    write_index(dir, "{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\","
                     "\"c\":\"s2.safetensors\"}");
    expect_open_fails(dir, ERR_FORMAT, "index.json", "'b'", "s1.safetensors", NULL);
    /* listed but absent everywhere */
    dir = temp_dir();
    write_st(dir, "s1.safetensors", SHARD1, 8, UINT64_MAX);
    write_index(dir, "{\"a\":\"s1.safetensors\",\"zz\":\"s1.safetensors\"}");
    expect_open_fails(dir, ERR_FORMAT, "'zz'", "s1.safetensors", NULL);
    /* the same tensor in two shards */
    dir = temp_dir();
    write_st(dir, "s1.safetensors", SHARD1, 8, UINT64_MAX);
    write_st(dir, "s2.safetensors", SHARD1, 8, UINT64_MAX);
    write_index(dir, "{\"a\":\"s1.safetensors\",\"x\":\"s2.safetensors\"}");
    expect_open_fails(dir, ERR_FORMAT, "'a'", "s1.safetensors", "s2.safetensors", NULL);
    /* a shard path leaving the directory, a non-object weight map */
    dir = temp_dir();
    write_index(dir, "{\"a\":\"../s1.safetensors\"}");
    expect_open_fails(dir, ERR_FORMAT, "'a'", "plain file name", NULL);
    dir = temp_dir();
    write_index(dir, "[]");
    expect_open_fails(dir, ERR_FORMAT, "weight_map", NULL);
    /* a bad shard is reported with its own name */
    dir = temp_dir();
    write_st(dir, "s1.safetensors", SHARD1, 4, UINT64_MAX);
    write_index(dir, "{\"a\":\"s1.safetensors\"}");
    expect_open_fails(dir, ERR_FORMAT, "s1.safetensors", "'a'", "outside", NULL);
}
END_TEST

/* ---- config.json ---- */

static struct hf_config load_config(const char *model)
{
    struct hf_config c;
    struct err e = {0};
    int rc = hf_config_load(fixture_model(model), &c, &e);
    ck_assert_msg(rc == 0, "%s: %s", model, e.msg);
    return c;
}

static const char *const all_models[] = {
    "albert-seqcls",  "bert-embed",  "bert-mlm",      "bert-nli",          "bert-qa",
    "bert-seqcls",    "bert-tokcls", "distilbert-qa", "distilbert-seqcls", "distilbert-tokcls",
    "electra-seqcls", "gpt2-lm",     "llama-lm",      "roberta-seqcls",    "roberta-tokcls",
    "t5-s2s",         "xlmr-seqcls", "xlmr-tokcls",   "spam-bert-tiny",
};

/* Every fixture config loads, and its sizes agree with the weights. */
START_TEST(every_fixture_config_loads)
{
    struct hf_config c = load_config(all_models[_i]);
    ck_assert(c.vocab_size > 0 && c.hidden_size > 0 && c.num_hidden_layers > 0);
    ck_assert(c.num_labels > 0 && c.id2label[c.num_labels - 1] != NULL);
    struct safetensors *st = open_model(all_models[_i]);
    /* the word embedding table is (vocab_size, embedding_size) */
    size_t matched = 0;
    for (size_t i = 0; i < safetensors_count(st); i++) {
        const struct tensor *t = safetensors_at(st, i);
        const char *n = t->name;
        if (strstr(n, "word_embeddings.weight") || strstr(n, "embed_tokens.weight") ||
            strcmp(n, "transformer.wte.weight") == 0 || strcmp(n, "shared.weight") == 0) {
            ck_assert_int_eq(t->n_dims, 2);
            ck_assert_int_eq(t->shape[0], c.vocab_size);
            ck_assert_int_eq(t->shape[1], c.embedding_size);
            matched++;
        }
    }
    ck_assert_uint_ge(matched, 1);
    safetensors_close(st);
    hf_config_fini(&c);
}
END_TEST

START_TEST(config_bert_labels)
{
    struct hf_config c = load_config("bert-tokcls");
    ck_assert_str_eq(c.model_type, "bert");
    ck_assert_str_eq(c.architecture, "BertForTokenClassification");
    ck_assert_int_eq(c.hidden_size, 32);
    ck_assert_int_eq(c.num_hidden_layers, 2);
    ck_assert_int_eq(c.num_attention_heads, 4);
    ck_assert_int_eq(c.intermediate_size, 37);
    ck_assert_int_eq(c.head_dim, 8);
    ck_assert_int_eq(c.type_vocab_size, 2);
    ck_assert_int_eq(c.max_position_embeddings, 512);
    ck_assert_double_eq(c.layer_norm_eps, 1e-12);
    ck_assert_str_eq(c.hidden_act, "gelu");
    ck_assert_int_eq(c.pad_token_id, 0);
    ck_assert_int_eq(c.bos_token_id, -1);
    ck_assert_uint_eq(c.n_eos_token_ids, 0);
    ck_assert_int_eq(c.position_offset, 0);
    ck_assert_uint_eq(c.num_labels, 9);
    ck_assert(!c.labels_default);
    ck_assert_str_eq(c.id2label[0], "O");
    ck_assert_str_eq(c.id2label[4], "I-ORG");
    ck_assert_str_eq(c.id2label[8], "I-MISC");
    ck_assert_int_eq(c.problem_type, HF_PROBLEM_NONE);
    ck_assert_str_eq(c.position_embedding_type, "absolute");
    hf_config_fini(&c);

    c = load_config("spam-bert-tiny");
    ck_assert_int_eq(c.problem_type, HF_PROBLEM_SINGLE_LABEL);
    ck_assert_str_eq(c.id2label[1], "spam");
    ck_assert_int_eq(c.hidden_size, 128);
    ck_assert_int_eq(c.head_dim, 64);
    hf_config_fini(&c);

    c = load_config("bert-embed"); /* no id2label: HF's defaults */
    ck_assert(c.labels_default);
    ck_assert_uint_eq(c.num_labels, 2);
    ck_assert_str_eq(c.id2label[1], "LABEL_1");
    hf_config_fini(&c);
}
END_TEST

START_TEST(config_unified_names)
{
    struct hf_config c = load_config("distilbert-seqcls");
    ck_assert_int_eq(c.hidden_size, 32);
    ck_assert_int_eq(c.num_hidden_layers, 2);
    ck_assert_int_eq(c.num_attention_heads, 4);
    ck_assert_int_eq(c.intermediate_size, 37);
    ck_assert_str_eq(c.hidden_act, "gelu");
    ck_assert_double_eq(c.layer_norm_eps, 1e-12);
    ck_assert_int_eq(c.type_vocab_size, 0);
    ck_assert(!c.sinusoidal_pos_embds);
    hf_config_fini(&c);

    c = load_config("albert-seqcls");
    ck_assert_int_eq(c.embedding_size, 16);
    ck_assert_int_eq(c.hidden_size, 32);
    ck_assert_int_eq(c.num_hidden_groups, 1);
    ck_assert_int_eq(c.inner_group_num, 1);
    ck_assert_int_eq(c.num_hidden_layers, 3);
    ck_assert_str_eq(c.hidden_act, "gelu_new");
    ck_assert_int_eq(c.bos_token_id, 2);
    ck_assert_uint_eq(c.n_eos_token_ids, 1);
    ck_assert_int_eq(c.eos_token_ids[0], 3);
    hf_config_fini(&c);

    c = load_config("electra-seqcls");
    ck_assert_int_eq(c.embedding_size, 16);
    hf_config_fini(&c);

    c = load_config("xlmr-seqcls");
    ck_assert_str_eq(c.model_type, "xlm-roberta");
    ck_assert_int_eq(c.pad_token_id, 1);
    ck_assert_int_eq(c.position_offset, 2);
    ck_assert_int_eq(c.type_vocab_size, 1);
    ck_assert_int_eq(c.max_position_embeddings, 514);
    hf_config_fini(&c);

    c = load_config("gpt2-lm");
    ck_assert_int_eq(c.hidden_size, 32);
    ck_assert_int_eq(c.num_hidden_layers, 2);
    ck_assert_int_eq(c.num_attention_heads, 4);
    ck_assert_int_eq(c.intermediate_size, 128); /* n_inner null = 4 * n_embd */
    ck_assert_int_eq(c.max_position_embeddings, 256);
    ck_assert_str_eq(c.hidden_act, "gelu_new");
    ck_assert_double_eq(c.layer_norm_eps, 1e-5);
    ck_assert_int_eq(c.pad_token_id, -1);
    ck_assert_int_eq(c.eos_token_ids[0], 50256);
    ck_assert(c.tie_word_embeddings);
    hf_config_fini(&c);

    c = load_config("llama-lm");
    ck_assert_int_eq(c.num_key_value_heads, 2);
    ck_assert_int_eq(c.head_dim, 8);
    ck_assert_int_eq(c.intermediate_size, 64);
    ck_assert_double_eq(c.layer_norm_eps, 1e-5);
    ck_assert_double_eq(c.rope_theta, 10000.0);
    ck_assert(!c.rope_scaling.present);
    ck_assert(!c.tie_word_embeddings);
    ck_assert_str_eq(c.hidden_act, "silu");
    ck_assert_int_eq(c.sliding_window, 0);
    hf_config_fini(&c);

    c = load_config("t5-s2s");
    ck_assert_int_eq(c.hidden_size, 32);
    ck_assert_int_eq(c.num_hidden_layers, 2);
    ck_assert_int_eq(c.num_decoder_layers, 2);
    ck_assert_int_eq(c.num_attention_heads, 4);
    ck_assert_int_eq(c.intermediate_size, 48);
    ck_assert_int_eq(c.head_dim, 8);
    ck_assert(c.is_gated_act);
    ck_assert(c.is_encoder_decoder);
    ck_assert_str_eq(c.hidden_act, "gelu_new");
    ck_assert_str_eq(c.feed_forward_proj, "gated-gelu");
    ck_assert_double_eq(c.layer_norm_eps, 1e-6);
    ck_assert_int_eq(c.relative_attention_num_buckets, 32);
    ck_assert_int_eq(c.relative_attention_max_distance, 128);
    ck_assert_int_eq(c.decoder_start_token_id, 0);
    hf_config_fini(&c);
}
END_TEST

#define BASE_CFG                                                                                   \
    "\"model_type\":\"bert\",\"vocab_size\":10,\"hidden_size\":8,\"num_hidden_layers\":1,"         \
    "\"num_attention_heads\":2,\"intermediate_size\":16"

static int parse_cfg(const char *text, struct hf_config *c, struct err *e)
{
    return hf_config_parse(text, strlen(text), "dir/config.json", c, e);
}

/* The config must fail with ERR_FORMAT naming config.json and `key`. */
static void expect_cfg_fails(const char *text, const char *key)
{
    struct hf_config c;
    struct err e = {0};
    int rc = parse_cfg(text, &c, &e);
    ck_assert_msg(rc == ERR_FORMAT, "rc %d for %s", rc, text);
    ck_assert_msg(strstr(e.msg, "config.json") && strstr(e.msg, key), "message '%s' lacks '%s'",
                  e.msg, key);
    ck_assert_ptr_null(c.id2label); /* nothing left to free */
}

/* An unknown model_type is the first thing said, with the supported types (a GPT-2
 * relabelled phi used to fail on "missing 'intermediate_size'"); a caller's list
 * (hf_config_load_for) narrows it; missing files say so. */
START_TEST(config_unsupported_model_type)
{
    struct hf_config c;
    struct err e = {0};
    ck_assert_int_eq(parse_cfg("{\"model_type\":\"phi\",\"n_embd\":8}", &c, &e), ERR_FORMAT);
    ck_assert_str_eq(e.msg, "dir/config.json: model_type 'phi' is not supported (supported: bert, "
                            "roberta, xlm-roberta, camembert, electra, albert, distilbert, mpnet, "
                            "deberta-v2, gpt2, llama, mistral, qwen2, qwen3, gemma, gemma2, "
                            "gemma3_text, phi3, t5, mt5, modernbert, bart, mbart, marian, "
                            "m2m_100, pegasus)");
    const char *dir = fixture_model("bert-seqcls");
    static const char *const gen[] = {"gpt2", "llama"};
    const struct hf_accept accept = {gen, 2, "text generation"};
    ck_assert_int_eq(hf_config_load_for(dir, &accept, &c, &e), ERR_FORMAT);
    char want[700];
    snprintf(want, sizeof want,
             "%s/config.json: model_type 'bert' is not supported for text generation "
             "(supported: gpt2, llama)",
             dir);
    ck_assert_str_eq(e.msg, want);
    ck_assert_int_eq(hf_config_load_for(dir, NULL, &c, &e), 0);
    hf_config_fini(&c);
    ck_assert_int_eq(hf_config_load("/nonexistent/m", &c, &e), ERR_NOT_FOUND);
    ck_assert_str_eq(e.msg, "/nonexistent/m/config.json: no such file");
}
END_TEST

/* A layer count sizes per-layer tables before any weight is read: fuzz_model_json found a
 * ModernBERT config with n_layer 2144444444 allocating 2 GB (its sliding-layer flags). */
START_TEST(config_layers_bounded)
{
    expect_cfg_fails("{\"dim\":32, \"hidden_dim\":1,\"model_type\":\"modernbert\",\"n_head\":4,"
                     "\"n_layer\":2144444444,\"vocab_size\":3}",
                     "'num_hidden_layers' = 2144444444 is over 1024 layers");
    expect_cfg_fails("{\"model_type\":\"t5\",\"vocab_size\":10,\"d_model\":8,\"num_layers\":1,"
                     "\"num_heads\":2,\"d_ff\":16,\"d_kv\":4,\"num_decoder_layers\":5000}",
                     "'num_decoder_layers' = 5000 is over 1024 layers");
    struct hf_config c;
    struct err e = {0};
    ck_assert_int_eq(parse_cfg("{\"model_type\":\"bert\",\"vocab_size\":10,\"hidden_size\":8,"
                               "\"num_hidden_layers\":1024,\"num_attention_heads\":2,"
                               "\"intermediate_size\":16}",
                               &c, &e),
                     0);
    hf_config_fini(&c);
}
END_TEST

START_TEST(config_errors)
{
    struct hf_config c;
    struct err e = {0};
    ck_assert_int_eq(parse_cfg("{" BASE_CFG "}", &c, &e), 0);
    hf_config_fini(&c);
    expect_cfg_fails("{" BASE_CFG ",\"hidden_size\":\"8\"}", "JSON"); /* duplicate key */
    expect_cfg_fails("{\"model_type\":\"bert\",\"vocab_size\":10,\"hidden_size\":\"8\"}",
                     "hidden_size");
    expect_cfg_fails("{\"model_type\":\"bert\",\"vocab_size\":10,\"hidden_size\":8,"
                     "\"num_hidden_layers\":1,\"intermediate_size\":16}",
                     "num_attention_heads");
    expect_cfg_fails("{\"vocab_size\":10}", "model_type");
    expect_cfg_fails("{\"model_type\":\"bert\",\"vocab_size\":-1}", "vocab_size");
    expect_cfg_fails("{" BASE_CFG ",\"layer_norm_eps\":\"1e-12\"}", "layer_norm_eps");
    expect_cfg_fails("{" BASE_CFG ",\"tie_word_embeddings\":1}", "tie_word_embeddings");
    expect_cfg_fails("{" BASE_CFG ",\"id2label\":{\"0\":\"a\",\"2\":\"b\"}}", "id2label");
    expect_cfg_fails("{" BASE_CFG ",\"id2label\":{\"0\":\"a\",\"01\":\"b\"}}", "id2label");
    expect_cfg_fails("{" BASE_CFG ",\"id2label\":{\"0\":\"a\",\"1\":2}}", "id2label");
    expect_cfg_fails("{" BASE_CFG ",\"id2label\":{\"0\":\"a\",\"1\":\"b\"},"
                     "\"label2id\":{\"a\":1,\"b\":0}}",
                     "label2id");
    expect_cfg_fails("{" BASE_CFG ",\"id2label\":{\"0\":\"a\",\"1\":\"b\"},\"num_labels\":3}",
                     "num_labels");
    expect_cfg_fails("{" BASE_CFG ",\"problem_type\":\"ranking\"}", "problem_type");
    expect_cfg_fails("{" BASE_CFG ",\"position_embedding_type\":\"relative_key\"}",
                     "position_embedding_type");
    expect_cfg_fails("{" BASE_CFG ",\"eos_token_id\":[1,\"x\"]}", "eos_token_id");
    expect_cfg_fails("{" BASE_CFG ",\"architectures\":\"BertModel\"}", "architectures");
    expect_cfg_fails("{\"model_type\":\"bert\",\"vocab_size\":10,\"hidden_size\":9,"
                     "\"num_hidden_layers\":1,\"num_attention_heads\":2,\"intermediate_size\":4}",
                     "num_attention_heads");
    expect_cfg_fails("{\"model_type\":\"roberta\",\"vocab_size\":10,\"hidden_size\":8,"
                     "\"num_hidden_layers\":1,\"num_attention_heads\":2,\"intermediate_size\":4}",
                     "pad_token_id");
    expect_cfg_fails("{" BASE_CFG ",\"rope_scaling\":[1]}", "rope_scaling");
    expect_cfg_fails("{" BASE_CFG ",\"num_key_value_heads\":3}", "num_key_value_heads");
    expect_cfg_fails("[1]", "object");
#define MARIAN_CFG                                                                              \
    "\"model_type\":\"marian\",\"vocab_size\":10,\"d_model\":8,\"encoder_layers\":1,"           \
    "\"encoder_attention_heads\":2,\"encoder_ffn_dim\":16,\"decoder_layers\":1,"                  \
    "\"decoder_attention_heads\":2,\"decoder_ffn_dim\":16"
    ck_assert_int_eq(parse_cfg("{" MARIAN_CFG ",\"decoder_vocab_size\":10}", &c, &e), 0);
    hf_config_fini(&c);
    expect_cfg_fails("{" MARIAN_CFG ",\"decoder_vocab_size\":20}",
                     "'decoder_vocab_size' 20 differs from 'vocab_size' 10");

    /* a wrong type in a real file on disk */
    const char *dir = temp_dir();
    const char *bad = "{\"model_type\":\"bert\",\"vocab_size\":10,\"hidden_size\":8,"
                      "\"num_hidden_layers\":true}";
    write_bytes(dir, "config.json", bad, strlen(bad));
    ck_assert_int_eq(hf_config_load(dir, &c, &e), ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "config.json"));
    ck_assert_ptr_nonnull(strstr(e.msg, "num_hidden_layers"));
    ck_assert_int_eq(hf_config_load(temp_dir(), &c, &e), ERR_NOT_FOUND);
}
END_TEST

START_TEST(config_decoder_fields)
{
    struct hf_config c;
    struct err e = {0};
    const char *llama3 =
        "{\"model_type\":\"llama\",\"vocab_size\":128256,\"hidden_size\":2048,"
        "\"num_hidden_layers\":16,\"num_attention_heads\":32,\"num_key_value_heads\":8,"
        "\"intermediate_size\":8192,\"rms_norm_eps\":1e-05,\"rope_theta\":500000.0,"
        "\"rope_scaling\":{\"factor\":32.0,\"high_freq_factor\":4.0,\"low_freq_factor\":1.0,"
        "\"original_max_position_embeddings\":8192,\"rope_type\":\"llama3\"},"
        "\"bos_token_id\":128000,\"eos_token_id\":[128001,128008,128009],"
        "\"max_position_embeddings\":131072,\"tie_word_embeddings\":true}";
    ck_assert_msg(parse_cfg(llama3, &c, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(c.head_dim, 64);
    ck_assert_double_eq(c.rope_theta, 500000.0);
    ck_assert(c.rope_scaling.present);
    ck_assert_str_eq(c.rope_scaling.type, "llama3");
    ck_assert_double_eq(c.rope_scaling.factor, 32.0);
    ck_assert_double_eq(c.rope_scaling.low_freq_factor, 1.0);
    ck_assert_double_eq(c.rope_scaling.high_freq_factor, 4.0);
    ck_assert_int_eq(c.rope_scaling.original_max_position_embeddings, 8192);
    ck_assert_ptr_nonnull(strstr(c.rope_scaling.json, "\"rope_type\":\"llama3\""));
    ck_assert_uint_eq(c.n_eos_token_ids, 3);
    ck_assert_int_eq(c.eos_token_ids[2], 128009);
    ck_assert_int_eq(c.bos_token_id, 128000);
    ck_assert_int_eq(c.max_position_embeddings, 131072);
    hf_config_fini(&c);

    const char *qwen =
        "{\"model_type\":\"qwen2\",\"vocab_size\":100,\"hidden_size\":64,"
        "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
        "\"intermediate_size\":128,\"sliding_window\":4096,\"use_sliding_window\":false,"
        "\"rope_parameters\":{\"rope_theta\":1000000.0,\"rope_type\":\"yarn\",\"factor\":4}}";
    ck_assert_msg(parse_cfg(qwen, &c, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(c.sliding_window, 0);
    ck_assert_double_eq(c.rope_theta, 1000000.0);
    ck_assert_str_eq(c.rope_scaling.type, "yarn");
    ck_assert_double_eq(c.rope_scaling.factor, 4.0);
    ck_assert_double_eq(c.layer_norm_eps, 1e-6); /* Qwen2Config default */
    hf_config_fini(&c);

    const char *mistral =
        "{\"model_type\":\"mistral\",\"vocab_size\":100,\"hidden_size\":64,"
        "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,"
        "\"sliding_window\":4096,\"rope_scaling\":null,\"num_labels\":3}";
    ck_assert_msg(parse_cfg(mistral, &c, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(c.sliding_window, 4096);
    ck_assert_int_eq(c.num_key_value_heads, 4);
    ck_assert(!c.rope_scaling.present);
    ck_assert_uint_eq(c.num_labels, 3);
    ck_assert(!c.labels_default);
    ck_assert_str_eq(c.id2label[2], "LABEL_2");
    hf_config_fini(&c);
}
END_TEST

Suite *suite_loader(void)
{
    Suite *s = suite_create("loader");
    TCase *tc = tcase_create("safetensors");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, fixture_tensors_have_expected_shapes, 0,
                        (int)(sizeof expected / sizeof expected[0]));
    tcase_add_loop_test(tc, fixture_counts_and_iteration, 0,
                        (int)(sizeof counts / sizeof counts[0]));
    tcase_add_test(tc, good_small_file_opens);
    tcase_add_test(tc, truncated_file);
    tcase_add_test(tc, header_length_beyond_file);
    tcase_add_test(tc, offsets_outside_data);
    tcase_add_test(tc, overlapping_tensors);
    tcase_add_test(tc, wrong_byte_size_for_shape);
    tcase_add_test(tc, unknown_dtype);
    tcase_add_test(tc, bad_shapes);
    tcase_add_test(tc, invalid_json_header);
    tcase_add_test(tc, no_weights_file);
    tcase_add_test(tc, no_tensors);
    tcase_add_test(tc, sharded_index_opens);
    tcase_add_test(tc, sharded_index_missing_file);
    tcase_add_test(tc, sharded_index_inconsistent);
    suite_add_tcase(s, tc);

    tc = tcase_create("dtype");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, f16_known_bit_patterns);
    tcase_add_test(tc, f16_every_pattern_scalar_and_bulk);
    tcase_add_test(tc, bf16_and_f32_bulk);
    tcase_add_test(tc, conversion_errors);
    tcase_add_test(tc, spam_f16_against_python);
    suite_add_tcase(s, tc);

    tc = tcase_create("hf_config");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, every_fixture_config_loads, 0,
                        (int)(sizeof all_models / sizeof all_models[0]));
    tcase_add_test(tc, config_bert_labels);
    tcase_add_test(tc, config_unified_names);
    tcase_add_test(tc, config_errors);
    tcase_add_test(tc, config_layers_bounded);
    tcase_add_test(tc, config_unsupported_model_type);
    tcase_add_test(tc, config_decoder_fields);
    suite_add_tcase(s, tc);
    return s;
}
