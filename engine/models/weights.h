/* weights: what the model loaders (models/encoder.c, decoder.c, t5.c) share to turn a
 * checkpoint (config.json + the weights in any format loader/checkpoint.h reads: safetensors,
 * pytorch_model.bin) into their weights: the frame of a load (the model
 * allocated, the files opened and closed, the model freed on failure); a tensor fetched by its
 * HF name, checked against the shape config.json implies and converted to float; linears (one,
 * or several stacked along the output axis so that one matmul computes them all: q | k | v,
 * gate | up) prepacked for oneDNN; norms (weight and optional bias); and the final check that
 * every tensor of the file was used. Each architecture keeps its own tensor names, its layouts
 * (GPT-2's transposed Conv1D) and its list of tensors HF saves but does not load.
 *
 * Every error names the model directory and the tensor:
 *   DIR: tensor 'NAME' is missing
 *   DIR: tensor 'NAME' has shape [GOT], config.json implies [WANT]
 *   DIR: tensor 'NAME' is not used by MODEL
 *
 *     static int load(void *model, struct weights *w, enum dtype_compute dt,
 *                     struct dnn_ctx *ctx, struct err *e)
 *     {
 *         struct bert *m = model;
 *         int rc = hf_config_load(w->dir, &m->cfg, e);   // then check it
 *         if (rc == 0)
 *             rc = weights_open(w, e);
 *         if (rc == 0)
 *             rc = weights_linear(w, ctx, "classifier", H, labels, true, dt, ACT_NONE, &m->cls, e);
 *         return rc ? rc : weights_check_unused(w, "bert", NULL, NULL, e);
 *     }
 *     rc = weights_load_model(dir, dt, ctx, sizeof(struct bert), load, unload, &model, e);
 */
#ifndef INFERD_WEIGHTS_H
#define INFERD_WEIGHTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "loader/checkpoint.h"
#include "ops/ops.h"

typedef struct json_t json_t;

/* A pre-quantized checkpoint's quantization_config (models/q4_checkpoint.c). */
struct q4_config {
    const struct q4_format *format; /* NULL: the checkpoint is not pre-quantized */
    int group;                      /* group_size; -1: one group per input row */
    int zero_plus_one;              /* GPTQ v1: stored zero points are one less */
};

/* One checkpoint being loaded: dir is set before weights_open (weights_load_model does), prefix
 * whenever the names need one; the rest is weights_open's. */
struct weights {
    const char *dir;        /* the model directory: where the files are, and for messages */
    char prefix[32];        /* put before every name asked for ("model." ...); "" by default */
    struct checkpoint *ck;  /* the file(s), open until weights_close */
    char *used;             /* per tensor index: taken by the model */
    size_t n_used;          /* how many are */
    struct q4_config q4;    /* config.json's quantization_config, if any */
};

/* Load progress: fn(arg, taken, total) each time a loader on this thread takes one more tensor
 * of its checkpoint's total (after its conversion, before its packing); the server logs a
 * large model's load with it. Per thread; fn NULL turns it off. */
typedef void weights_progress_fn(void *arg, size_t taken, size_t total);
void weights_set_progress(weights_progress_fn *fn, void *arg);

/* Opens dir's weights, whatever their format (see checkpoint_open). On failure nothing stays
 * open, but
 * weights_close is still safe to call. */
int weights_open(struct weights *w, struct err *e);

/* Closes the file(s). A struct weights never opened (only .dir set) is fine. */
void weights_close(struct weights *w);

/* prefix when the file has a tensor called prefix + probe, else "": the base model's names
 * carry a prefix ("bert.", "model.") in a checkpoint with a head, none in a bare one. */
const char *weights_pick_prefix(const struct weights *w, const char *prefix, const char *probe);

/* Counts t (a tensor of w's file) as used by the model, e.g. a copy of a tied weight that is
 * not loaded but belongs. */
void weights_mark_used(struct weights *w, const struct tensor *t);

/* Fetches prefix + name as floats of shape (rows, cols), or (rows) when cols is 0, into a new
 * malloc'ed array (the caller frees it), and counts it as used. */
int weights_take(struct weights *w, const char *name, int64_t rows, int64_t cols, float **out,
                 struct err *e);

/* A norm's weight (n) and, LayerNorm, its bias (n) as floats; RMSNorm: b NULL. */
struct norm_weights {
    float *w, *b;
};

/* Frees n's arrays. */
void norm_weights_fini(struct norm_weights *n);

/* A norm `base`.weight (n) and, when has_bias, `base`.bias (n). */
int weights_norm(struct weights *w, const char *base, int64_t n, bool has_bias,
                 struct norm_weights *out, struct err *e);

/* Linear parts stacked along the output axis: `bases[i]`.weight (outs[i], in) and, when
 * has_bias, `bases[i]`.bias (outs[i]) concatenated into one linear (sum outs, in) prepacked for
 * oneDNN in dt with act fused. A pre-quantized checkpoint's linears (`bases[i]`.qweight, ...:
 * models/q4_checkpoint.h) are taken as they are at INT4 and dequantized for the other dtypes;
 * the linears such a checkpoint left unquantized (lm_head) stay f32 at INT4. */
int weights_stacked(struct weights *w, struct dnn_ctx *ctx, const char *const *bases,
                    const int64_t *outs, int n, int64_t in, bool has_bias, enum dtype_compute dt,
                    enum act act, struct linear *l, struct err *e);

/* One nn.Linear `base`.weight (out, in) (+ `base`.bias (out) when has_bias). */
int weights_linear(struct weights *w, struct dnn_ctx *ctx, const char *base, int64_t in,
                   int64_t out, bool has_bias, enum dtype_compute dt, enum act act,
                   struct linear *l, struct err *e);

/* A model loader's part once the model is allocated (zeroed): read and check config.json, open
 * w (dir set) with weights_open, take the tensors, end with weights_check_unused. */
typedef int weights_load_fn(void *model, struct weights *w, enum dtype_compute dt,
                            struct dnn_ctx *ctx, struct err *e);

/* The frame every model loader shares: a zeroed model of size bytes filled by load from dir;
 * the files are closed afterwards whatever happened (the model keeps converted copies), and on
 * failure the model is freed with unload (which must accept any partly loaded model) and
 * *out stays NULL. */
int weights_load_model(const char *dir, enum dtype_compute dt, struct dnn_ctx *ctx, size_t size,
                       weights_load_fn *load, void (*unload)(void *model), void **out,
                       struct err *e);

/* Whether a tensor the model did not take may be left alone (HF buffers recomputed rather
 * than loaded, copies of tied weights ...); arg is the loader's. */
typedef bool weights_ignorable_fn(const void *arg, const char *name);

/* ERR_FORMAT naming the first tensor of the file that was not taken and that ignorable (when
 * not NULL) does not excuse: a checkpoint of another architecture or size fails instead of
 * running with weights left out. model names the architecture in the message. */
int weights_check_unused(const struct weights *w, const char *model,
                         weights_ignorable_fn *ignorable, const void *arg, struct err *e);

#endif
