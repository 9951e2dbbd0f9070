/* make_gguf: converts a LLaMA checkpoint in the Hugging Face layout (config.json +
 * model.safetensors, as make-random-decoder writes it) into one GGUF file that llama.cpp loads,
 * for the llama.cpp anchor of the generation benchmark (bench/run_llamacpp.sh). A benchmark
 * tool only: inferd never reads GGUF, and nothing here links llama.cpp.
 *
 * GGUF (version 3), as this writer lays it out, all little-endian:
 *   header   "GGUF", u32 version 3, u64 number of tensors, u64 number of key/value pairs
 *   kv pairs key (a string: u64 byte length, then the bytes, no NUL), u32 value type, value;
 *            an array value is u32 element type, u64 count, the elements
 *   tensors  per tensor: name (string), u32 number of dimensions, u64 per dimension (the
 *            innermost first: a (rows, cols) matrix is [cols, rows]), u32 ggml type, u64 offset
 *            of its data from the start of the data section (a multiple of the alignment)
 *   data     after zero padding to the alignment (32 bytes): the tensors, each padded to 32
 * Element encodings (ggml's): F32; F16 (IEEE binary16); BF16 (the top half of a float,
 * rounded to nearest even); Q8_0: blocks of 32 values along a row, each an f16 scale d =
 * max|x| / 127 and 32 int8 round(x / d); Q4_0: blocks of 32, an f16 scale d = m / -8 where m is
 * the value of largest magnitude, then 16 bytes of 4-bit codes min(15, trunc(x / d + 8.5)),
 * value j of the block in the low nibble of byte j and value j + 16 in its high nibble.
 *
 * The model: HF names map to llama.cpp's (token_embd, blk.N.attn_q ..., output_norm, output).
 * Norm weights stay F32 (one dimension); every matrix, the embedding and lm_head included, gets
 * the requested type (as llama.cpp's converter does for f16/bf16/q8_0). RoPE: transformers'
 * LLaMA rotates the pairs (i, i + d/2) of each head (rotate_half), llama.cpp's "llama"
 * architecture the pairs (2i, 2i + 1); so the rows of q_proj and k_proj are reordered inside
 * each head, new row 2i = old row i and new row 2i + 1 = old row i + d/2. Attention scores are
 * dot products of q and k, which the same reordering of both leaves unchanged.
 * The tokenizer: the benchmark's random models have none and the benchmark feeds token ids, so
 * the file carries a minimal SentencePiece-style ("llama") vocabulary of vocab_size entries:
 * <unk>, <s>, </s>, the 256 byte tokens <0x00>..<0xFF>, then placeholders "t259", ...; no BOS
 * is added.
 *
 * usage: make-gguf MODEL_DIR OUT.gguf F32|F16|BF16|Q8_0|Q4_0
 * OUT.gguf is written as OUT.gguf.tmp and renamed when complete. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "loader/hf_config.h"
#include "loader/safetensors.h"
#include "loader/tensor.h"

#define ALIGN 32
#define QBLOCK 32
#define MAX_TENSORS 4096
#define MIN_VOCAB 259 /* the 3 specials and 256 byte tokens */

/* ggml's type numbers and block sizes; llama.cpp's file type (general.file_type) for each. */
enum ggml_type_id { GT_F32 = 0, GT_F16 = 1, GT_Q4_0 = 2, GT_Q8_0 = 8, GT_BF16 = 30 };

struct out_type {
    const char *name;
    enum ggml_type_id ggml;
    uint32_t file_type;
    size_t block, block_bytes;                        /* values per block and its bytes */
    void (*encode)(const float *block, uint8_t *out); /* one block */
};

/* GGUF value types used here. */
enum { KV_U32 = 4, KV_I32 = 5, KV_F32 = 6, KV_BOOL = 7, KV_STRING = 8, KV_ARRAY = 9 };

/* One tensor to write: where it comes from and how it is stored. */
struct plan {
    char name[96];
    const struct tensor *src;
    const struct out_type *type;
    int64_t rows, cols; /* cols 0: a vector of rows values */
    int permute_heads;  /* > 0: reorder the rows of this many heads for llama.cpp's RoPE */
    uint64_t offset;    /* in the data section */
};

struct writer {
    FILE *f; /* NULL: only count the key/value pairs */
    int failed;
    uint64_t n_kv;
};

/* ---- encodings ---- */

static uint32_t f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

/* IEEE binary16, rounded to nearest even; overflow to infinity, NaN stays NaN. */
static uint16_t f32_to_f16(float x)
{
    uint32_t u = f32_bits(x);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) /* inf or NaN */
        return (uint16_t)(sign | 0x7c00u | (a > 0x7f800000u ? 0x200u : 0u));
    if (a >= 0x477ff000u) /* rounds to >= 65520: infinity */
        return (uint16_t)(sign | 0x7c00u);
    int e = (int)(a >> 23) - 127;
    uint32_t mant = (a & 0x7fffffu) | 0x800000u; /* 24 bits with the implicit one */
    int shift;                                   /* bits of mant dropped */
    uint32_t base;                               /* exponent field of the result */
    if (e < -14) {                               /* binary16 subnormal (or zero) */
        if (e < -25)
            return sign;
        shift = 13 + (-14 - e);
        base = 0;
    } else {
        shift = 13;
        base = (uint32_t)(e + 15) << 10;
        mant &= 0x7fffffu; /* the implicit one lives in the exponent field */
    }
    uint32_t q = mant >> shift, rest = mant & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rest > half || (rest == half && (q & 1u)))
        q++; /* a carry into the exponent field is the right result */
    return (uint16_t)(sign | (base + q));
}

static uint16_t f32_to_bf16(float x)
{
    uint32_t u = f32_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static void put_f16(uint8_t *p, float x)
{
    uint16_t h = f32_to_f16(x);
    p[0] = (uint8_t)(h & 0xff);
    p[1] = (uint8_t)(h >> 8);
}

static void encode_q8_0(const float *x, uint8_t *out)
{
    float amax = 0.0f;
    for (int j = 0; j < QBLOCK; j++)
        amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
    float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    put_f16(out, d);
    for (int j = 0; j < QBLOCK; j++)
        out[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
}

static void encode_q4_0(const float *x, uint8_t *out)
{
    float amax = 0.0f, m = 0.0f;
    for (int j = 0; j < QBLOCK; j++)
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            m = x[j];
        }
    float d = m / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    put_f16(out, d);
    for (int j = 0; j < QBLOCK / 2; j++) {
        int lo = (int)(int8_t)(x[j] * id + 8.5f), hi = (int)(int8_t)(x[j + QBLOCK / 2] * id + 8.5f);
        lo = lo > 15 ? 15 : lo;
        hi = hi > 15 ? 15 : hi;
        out[2 + j] = (uint8_t)(lo | (hi << 4));
    }
}

static void encode_f32(const float *x, uint8_t *out)
{
    memcpy(out, x, 4);
}

static void encode_f16(const float *x, uint8_t *out)
{
    put_f16(out, x[0]);
}

static void encode_bf16(const float *x, uint8_t *out)
{
    uint16_t b = f32_to_bf16(x[0]);
    out[0] = (uint8_t)(b & 0xff);
    out[1] = (uint8_t)(b >> 8);
}

static const struct out_type out_types[] = {
    {"F32", GT_F32, 0, 1, 4, encode_f32},
    {"F16", GT_F16, 1, 1, 2, encode_f16},
    {"BF16", GT_BF16, 32, 1, 2, encode_bf16},
    {"Q8_0", GT_Q8_0, 7, QBLOCK, 2 + QBLOCK, encode_q8_0},
    {"Q4_0", GT_Q4_0, 2, QBLOCK, 2 + QBLOCK / 2, encode_q4_0},
};

/* n values (a multiple of the type's block) of x encoded as type t into out. */
static void encode(const struct out_type *t, const float *x, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i += t->block)
        t->encode(&x[i], out + i / t->block * t->block_bytes);
}

static size_t encoded_bytes(const struct plan *p)
{
    size_t n = (size_t)p->rows * (size_t)(p->cols ? p->cols : 1);
    return n / p->type->block * p->type->block_bytes;
}

static uint64_t pad_to(uint64_t x)
{
    return (x + ALIGN - 1) / ALIGN * ALIGN;
}

/* ---- writing ---- */

static void put(struct writer *w, const void *p, size_t n)
{
    if (w->f && !w->failed && n && fwrite(p, 1, n, w->f) != n)
        w->failed = 1;
}

static void put_u32(struct writer *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(w, b, 4);
}

static void put_u64(struct writer *w, uint64_t v)
{
    put_u32(w, (uint32_t)v);
    put_u32(w, (uint32_t)(v >> 32));
}

static void put_str(struct writer *w, const char *s)
{
    put_u64(w, strlen(s));
    put(w, s, strlen(s));
}

/* The key of a pair (and one more pair counted). */
static void put_key(struct writer *w, const char *key)
{
    w->n_kv++;
    put_str(w, key);
}

static void kv_u32(struct writer *w, const char *key, uint32_t v)
{
    put_key(w, key);
    put_u32(w, KV_U32);
    put_u32(w, v);
}

static void kv_f32(struct writer *w, const char *key, float v)
{
    put_key(w, key);
    put_u32(w, KV_F32);
    put_u32(w, f32_bits(v));
}

static void kv_str(struct writer *w, const char *key, const char *v)
{
    put_key(w, key);
    put_u32(w, KV_STRING);
    put_str(w, v);
}

static void kv_bool(struct writer *w, const char *key, int v)
{
    put_key(w, key);
    put_u32(w, KV_BOOL);
    uint8_t b = v ? 1 : 0;
    put(w, &b, 1);
}

static void array_head(struct writer *w, const char *key, uint32_t type, uint64_t n)
{
    put_key(w, key);
    put_u32(w, KV_ARRAY);
    put_u32(w, type);
    put_u64(w, n);
}

/* The minimal vocabulary described at the top: tokens, scores, token types. */
static void kv_vocab(struct writer *w, int64_t vocab)
{
    enum { NORMAL = 1, UNKNOWN = 2, CONTROL = 3, BYTE = 6 };
    char tok[32];
    array_head(w, "tokenizer.ggml.tokens", KV_STRING, (uint64_t)vocab);
    for (int64_t i = 0; i < vocab; i++) {
        if (i < 3)
            snprintf(tok, sizeof tok, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
        else if (i < MIN_VOCAB)
            snprintf(tok, sizeof tok, "<0x%02X>", (unsigned)(i - 3));
        else
            snprintf(tok, sizeof tok, "t%" PRId64, i);
        put_str(w, tok);
    }
    array_head(w, "tokenizer.ggml.scores", KV_F32, (uint64_t)vocab);
    for (int64_t i = 0; i < vocab; i++)
        put_u32(w, f32_bits(i < MIN_VOCAB ? 0.0f : (float)-i));
    array_head(w, "tokenizer.ggml.token_type", KV_I32, (uint64_t)vocab);
    for (int64_t i = 0; i < vocab; i++)
        put_u32(w, i == 0 ? UNKNOWN : i < 3 ? CONTROL : i < MIN_VOCAB ? BYTE : NORMAL);
}

static void write_kv(struct writer *w, const struct hf_config *c, const struct out_type *t,
                     const char *name)
{
    kv_str(w, "general.architecture", "llama");
    kv_str(w, "general.name", name);
    kv_u32(w, "general.file_type", t->file_type);
    kv_u32(w, "llama.vocab_size", (uint32_t)c->vocab_size);
    kv_u32(w, "llama.context_length", (uint32_t)c->max_position_embeddings);
    kv_u32(w, "llama.embedding_length", (uint32_t)c->hidden_size);
    kv_u32(w, "llama.block_count", (uint32_t)c->num_hidden_layers);
    kv_u32(w, "llama.feed_forward_length", (uint32_t)c->intermediate_size);
    kv_u32(w, "llama.attention.head_count", (uint32_t)c->num_attention_heads);
    kv_u32(w, "llama.attention.head_count_kv", (uint32_t)c->num_key_value_heads);
    kv_u32(w, "llama.attention.key_length", (uint32_t)c->head_dim);
    kv_u32(w, "llama.attention.value_length", (uint32_t)c->head_dim);
    kv_f32(w, "llama.attention.layer_norm_rms_epsilon", (float)c->layer_norm_eps);
    kv_u32(w, "llama.rope.dimension_count", (uint32_t)c->head_dim);
    kv_f32(w, "llama.rope.freq_base", (float)c->rope_theta);
    kv_str(w, "tokenizer.ggml.model", "llama");
    if (c->bos_token_id >= 0 && c->bos_token_id < c->vocab_size)
        kv_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)c->bos_token_id);
    if (c->n_eos_token_ids > 0 && c->eos_token_ids[0] >= 0 && c->eos_token_ids[0] < c->vocab_size)
        kv_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)c->eos_token_ids[0]);
    kv_bool(w, "tokenizer.ggml.add_bos_token", 0);
    kv_vocab(w, c->vocab_size);
}

/* ---- the tensor plan ---- */

struct planner {
    const struct safetensors *st;
    const struct out_type *type;
    struct plan *p;
    int n;
    struct err *e;
};

/* Adds HF tensor hf as GGUF tensor gguf; a vector stays F32. */
static int plan_add(struct planner *pl, const char *hf, const char *gguf, int64_t rows,
                    int64_t cols, int permute_heads)
{
    const struct tensor *t = safetensors_get(pl->st, hf);
    if (!t)
        return err_set(pl->e, ERR_NOT_FOUND, "no tensor %s in the checkpoint", hf);
    int64_t want[2] = {rows, cols};
    if (t->n_dims != (cols ? 2 : 1) || t->shape[0] != want[0] || (cols && t->shape[1] != cols))
        return err_set(pl->e, ERR_FORMAT, "%s: shape does not match config.json", hf);
    if (pl->n >= MAX_TENSORS)
        return err_set(pl->e, ERR_TOO_LARGE, "more than %d tensors", MAX_TENSORS);
    struct plan *p = &pl->p[pl->n++];
    snprintf(p->name, sizeof p->name, "%s", gguf);
    p->src = t;
    p->type = cols ? pl->type : &out_types[0];
    p->rows = rows;
    p->cols = cols;
    p->permute_heads = permute_heads;
    return 0;
}

static int plan_layer(struct planner *pl, const struct hf_config *c, int l)
{
    static const struct {
        const char *hf, *gguf;
        int rows, cols, permute; /* 'H' hidden, 'Q' heads * head_dim, 'K' kv heads * head_dim,
                                  * 'F' intermediate, 0 none; permute: 'Q', 'K' or 0 */
    } rows[] = {
        {"input_layernorm.weight", "attn_norm.weight", 'H', 0, 0},
        {"self_attn.q_proj.weight", "attn_q.weight", 'Q', 'H', 'Q'},
        {"self_attn.k_proj.weight", "attn_k.weight", 'K', 'H', 'K'},
        {"self_attn.v_proj.weight", "attn_v.weight", 'K', 'H', 0},
        {"self_attn.o_proj.weight", "attn_output.weight", 'H', 'Q', 0},
        {"post_attention_layernorm.weight", "ffn_norm.weight", 'H', 0, 0},
        {"mlp.gate_proj.weight", "ffn_gate.weight", 'F', 'H', 0},
        {"mlp.up_proj.weight", "ffn_up.weight", 'F', 'H', 0},
        {"mlp.down_proj.weight", "ffn_down.weight", 'H', 'F', 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t dims[2], heads = 0;
        int spec[2] = {rows[i].rows, rows[i].cols};
        for (int k = 0; k < 2; k++)
            dims[k] = spec[k] == 'H'   ? c->hidden_size
                      : spec[k] == 'Q' ? c->num_attention_heads * c->head_dim
                      : spec[k] == 'K' ? c->num_key_value_heads * c->head_dim
                      : spec[k] == 'F' ? c->intermediate_size
                                       : 0;
        if (rows[i].permute)
            heads = rows[i].permute == 'Q' ? c->num_attention_heads : c->num_key_value_heads;
        char hf[128], gguf[96];
        snprintf(hf, sizeof hf, "model.layers.%d.%s", l, rows[i].hf);
        snprintf(gguf, sizeof gguf, "blk.%d.%s", l, rows[i].gguf);
        if (plan_add(pl, hf, gguf, dims[0], dims[1], (int)heads) != 0)
            return -1;
    }
    return 0;
}

static int plan_model(struct planner *pl, const struct hf_config *c)
{
    const char *head = c->tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
    if (plan_add(pl, "model.embed_tokens.weight", "token_embd.weight", c->vocab_size,
                 c->hidden_size, 0) != 0)
        return -1;
    for (int l = 0; l < c->num_hidden_layers; l++)
        if (plan_layer(pl, c, l) != 0)
            return -1;
    if (plan_add(pl, "model.norm.weight", "output_norm.weight", c->hidden_size, 0, 0) != 0 ||
        plan_add(pl, head, "output.weight", c->vocab_size, c->hidden_size, 0) != 0)
        return -1;
    uint64_t off = 0;
    for (int i = 0; i < pl->n; i++) {
        pl->p[i].offset = off;
        off = pad_to(off + encoded_bytes(&pl->p[i]));
    }
    return 0;
}

/* Only what this writer maps: a plain LLaMA whose rows split into 32-value blocks. */
static int check_config(const struct hf_config *c, struct err *e)
{
    if (strcmp(c->model_type, "llama") != 0)
        return err_set(e, ERR_INVALID, "model_type '%s': only llama is converted", c->model_type);
    if (c->rope_scaling.present || c->attention_bias || c->mlp_bias)
        return err_set(e, ERR_INVALID, "RoPE scaling and biases are not converted");
    if (c->hidden_size % QBLOCK || c->intermediate_size % QBLOCK ||
        (c->num_attention_heads * c->head_dim) % QBLOCK || c->head_dim % 2)
        return err_set(e, ERR_INVALID, "row lengths must be multiples of %d", QBLOCK);
    if (c->vocab_size < MIN_VOCAB || c->vocab_size > INT32_MAX || c->num_hidden_layers > 1000)
        return err_set(e, ERR_INVALID, "vocab_size %" PRId64 " or layers out of range",
                       c->vocab_size);
    return 0;
}

/* ---- tensor data ---- */

/* x (heads * d rows of cols) reordered per head: new row 2i = old i, 2i + 1 = old i + d/2. */
static void permute_rows(const float *x, float *out, int64_t heads, int64_t rows, int64_t cols)
{
    int64_t d = rows / heads;
    for (int64_t h = 0; h < heads; h++)
        for (int64_t i = 0; i < d / 2; i++)
            for (int t = 0; t < 2; t++)
                memcpy(out + (size_t)(h * d + 2 * i + t) * (size_t)cols,
                       x + (size_t)(h * d + t * (d / 2) + i) * (size_t)cols,
                       (size_t)cols * sizeof *x);
}

static int write_tensor(struct writer *w, const struct plan *p, float *buf, float *tmp,
                        uint8_t *enc, struct err *e)
{
    size_t n = p->src->n_elements;
    if (tensor_to_f32(p->src, buf, n, e) != 0)
        return -1;
    const float *x = buf;
    if (p->permute_heads > 0) {
        permute_rows(buf, tmp, p->permute_heads, p->rows, p->cols);
        x = tmp;
    }
    encode(p->type, x, n, enc);
    static const uint8_t zeros[ALIGN];
    size_t bytes = encoded_bytes(p);
    put(w, enc, bytes);
    put(w, zeros, pad_to(bytes) - bytes);
    return 0;
}

static int write_file(FILE *f, const struct planner *pl, const struct hf_config *c,
                      const char *name, struct err *e)
{
    struct writer count = {NULL, 0, 0}, w = {f, 0, 0};
    write_kv(&count, c, pl->type, name); /* a dry run: how many pairs */
    put(&w, "GGUF", 4);
    put_u32(&w, 3);
    put_u64(&w, (uint64_t)pl->n);
    put_u64(&w, count.n_kv);
    write_kv(&w, c, pl->type, name);
    for (int i = 0; i < pl->n; i++) {
        const struct plan *p = &pl->p[i];
        put_str(&w, p->name);
        put_u32(&w, p->cols ? 2 : 1);
        if (p->cols)
            put_u64(&w, (uint64_t)p->cols);
        put_u64(&w, (uint64_t)p->rows);
        put_u32(&w, p->type->ggml);
        put_u64(&w, p->offset);
    }
    long pos = ftell(f);
    if (pos < 0 || w.failed)
        return err_set(e, ERR_IO, "writing failed: %s", strerror(errno));
    static const uint8_t zeros[ALIGN];
    put(&w, zeros, pad_to((uint64_t)pos) - (uint64_t)pos);
    size_t max = 0;
    for (int i = 0; i < pl->n; i++)
        max = pl->p[i].src->n_elements > max ? pl->p[i].src->n_elements : max;
    float *buf = malloc(max * sizeof *buf), *tmp = malloc(max * sizeof *tmp);
    uint8_t *enc = malloc(max * sizeof(float));
    int rc = buf && tmp && enc ? 0 : err_set(e, ERR_NOMEM, "out of memory");
    for (int i = 0; rc == 0 && i < pl->n; i++)
        rc = write_tensor(&w, &pl->p[i], buf, tmp, enc, e);
    free(buf);
    free(tmp);
    free(enc);
    if (rc == 0 && w.failed)
        rc = err_set(e, ERR_IO, "writing failed: %s", strerror(errno));
    return rc;
}

static int convert(const char *dir, const char *out, const struct out_type *type, struct err *e)
{
    struct hf_config c;
    struct safetensors *st = NULL;
    static struct plan plans[MAX_TENSORS];
    if (hf_config_load(dir, &c, e) != 0)
        return -1;
    int rc = check_config(&c, e);
    if (rc == 0)
        rc = safetensors_open(dir, &st, e);
    struct planner pl = {st, type, plans, 0, e};
    if (rc == 0)
        rc = plan_model(&pl, &c);
    char tmp[4096], name[256];
    const char *slash = strrchr(dir, '/');
    snprintf(name, sizeof name, "%s", slash && slash[1] ? slash + 1 : dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    FILE *f = rc == 0 ? fopen(tmp, "wb") : NULL;
    if (rc == 0 && !f)
        rc = err_set(e, ERR_IO, "%s: %s", tmp, strerror(errno));
    if (f) {
        rc = write_file(f, &pl, &c, name, e);
        if (fclose(f) != 0 && rc == 0)
            rc = err_set(e, ERR_IO, "%s: %s", tmp, strerror(errno));
        if (rc == 0 && rename(tmp, out) != 0)
            rc = err_set(e, ERR_IO, "%s: %s", out, strerror(errno));
        if (rc != 0)
            remove(tmp);
    }
    safetensors_close(st);
    hf_config_fini(&c);
    return rc;
}

int main(int argc, char **argv)
{
    const struct out_type *type = NULL;
    for (size_t i = 0; argc == 4 && i < sizeof out_types / sizeof out_types[0]; i++)
        if (strcmp(argv[3], out_types[i].name) == 0)
            type = &out_types[i];
    if (!type) {
        fputs("usage: make-gguf MODEL_DIR OUT.gguf F32|F16|BF16|Q8_0|Q4_0\n", stderr);
        return 2;
    }
    struct err e = {0};
    if (convert(argv[1], argv[2], type, &e) != 0) {
        fprintf(stderr, "make-gguf: %s: %s\n", argv[1], e.msg[0] ? e.msg : "failed");
        return 1;
    }
    fprintf(stderr, "make-gguf: wrote %s (%s)\n", argv[2], type->name);
    return 0;
}
