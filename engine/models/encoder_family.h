/* encoder_family: what an encoder architecture whose layers are not BERT's plugs into
 * encoder.c (private to engine/models). Its variant row names a struct encoder_family; the
 * family then owns its weights (load/free) and its per-worker activations (run_free), and
 * runs the embeddings, layers and head of one pass (forward). encoder.c keeps what every
 * encoder shares: config.json and the variant table, the safetensors files, the head kind and
 * output width the pipelines see, and the split of a batch into passes over the threads
 * (each pass calls forward on its own thread with its own run).
 *
 *     const struct encoder_family modernbert_family = {mb_load, mb_free, mb_forward, mb_run_free};
 *     {"modernbert", "model.", ..., &modernbert_family},   // encoder.c variants[]
 */
#ifndef INFERD_ENCODER_FAMILY_H
#define INFERD_ENCODER_FAMILY_H

#include "models/encoder.h"
#include "models/weights.h"

/* What load tells encoder.c about the model it loaded. */
struct encoder_facts {
    enum encoder_head head;
    size_t out_width; /* values per output row, as encoder_out_width */
};

/* The cancel hook of the run (encoder_run_set_stop), to ask between layers. */
struct encoder_stop {
    encoder_stop_fn fn;
    void *arg;
};

struct encoder_family {
    /* Takes the tensors of w (open, prefix picked: `prefix`) for cfg into a new *model. On
     * failure *model may hold a partial model that free accepts. */
    int (*load)(const struct hf_config *cfg, struct weights *w, const char *prefix,
                enum dtype_compute dt, struct dnn_ctx *ctx, void **model,
                struct encoder_facts *facts, struct err *e);
    void (*free)(void *model);
    /* One pass over b (every row padded to b->seq, b->lm_rows honoured): *out and *hidden
     * (when not NULL) as encoder_forward says, pointing into *run, which forward creates on
     * first use and grows. */
    int (*forward)(const void *model, struct dnn_ctx *ctx, void **run,
                   const struct encoder_batch *b, const struct encoder_stop *stop,
                   const float **out, const float **hidden, struct err *e);
    void (*run_free)(void *run);
};

extern const struct encoder_family modernbert_family;
/* A decoder's final hidden states (encoder_causal.c): LLaMA, Mistral, Qwen2, Qwen3 embeddings. */
extern const struct encoder_family causal_family;
/* BartForSequenceClassification (encoder_bart.c): eos-pooled decoder states, bart-large-mnli. */
extern const struct encoder_family bart_cls_family;

#endif
