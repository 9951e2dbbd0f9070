/* hf_config_seq2seq: the config.json fields of the BART-like encoder-decoders (BartConfig,
 * MBartConfig, MarianConfig, M2M100Config, PegasusConfig: decoder sizes, scale_embedding,
 * Marian's share_encoder_decoder_embeddings) with each config class's defaults, a row per
 * model_type in s2s_defaults[]. The encoder's sizes are read as the generic ones (hf_config.c's
 * aliases encoder_layers, encoder_attention_heads, encoder_ffn_dim). See hf_config.h. */
#include <string.h>

#include "loader/hf_config_read.h"

/* A config class's defaults for the decoder keys a file may omit. */
struct s2s_defaults {
    const char *model_type;
    int64_t decoder_layers, decoder_attention_heads, decoder_ffn_dim;
    bool scale_embedding;
};

static const struct s2s_defaults s2s_defaults[] = {
    {"bart", 12, 16, 4096, false},   {"mbart", 12, 16, 4096, false},
    {"marian", 6, 8, 2048, false},   {"m2m_100", 12, 16, 4096, true},
    {"pegasus", 12, 16, 4096, false},
};

int hf_config_read_seq2seq(const struct reader *r, struct hf_config *c)
{
    const struct s2s_defaults *d = NULL;
    for (size_t i = 0; i < sizeof s2s_defaults / sizeof s2s_defaults[0]; i++)
        if (strcmp(s2s_defaults[i].model_type, c->model_type) == 0)
            d = &s2s_defaults[i];
    if (!d)
        return 0;
    static const char *const layers[] = {"decoder_layers", NULL};
    static const char *const heads[] = {"decoder_attention_heads", NULL};
    static const char *const ffn[] = {"decoder_ffn_dim", NULL};
    struct hf_seq2seq *s = &c->s2s;
    c->is_encoder_decoder = true;
    c->num_decoder_layers = d->decoder_layers;
    s->decoder_attention_heads = d->decoder_attention_heads;
    s->decoder_ffn_dim = d->decoder_ffn_dim;
    s->scale_embedding = d->scale_embedding;
    s->share_encoder_decoder_embeddings = true;
    int rc = get_layers(r, layers, &c->num_decoder_layers, false);
    if (!rc)
        rc = get_size(r, heads, &s->decoder_attention_heads, false);
    if (!rc)
        rc = get_size(r, ffn, &s->decoder_ffn_dim, false);
    if (!rc)
        rc = get_bool(r, "scale_embedding", &s->scale_embedding);
    if (!rc)
        rc = get_bool(r, "share_encoder_decoder_embeddings", &s->share_encoder_decoder_embeddings);
    /* MarianConfig's decoder_vocab_size (separate target vocabularies): the decoder's
     * embedding and head would be another size; refused until the model reads them */
    static const char *const dec_vocab[] = {"decoder_vocab_size", NULL};
    int64_t dv = c->vocab_size;
    if (!rc)
        rc = get_size(r, dec_vocab, &dv, false);
    if (!rc && dv != c->vocab_size)
        rc = err_set(r->e, ERR_FORMAT,
                     "%s: 'decoder_vocab_size' %lld differs from 'vocab_size' %lld: a separate "
                     "target vocabulary is not supported for the model yet (the tokenizer's "
                     "separate_vocabs is)",
                     r->what, (long long)dv, (long long)c->vocab_size);
    if (!rc && c->hidden_size % s->decoder_attention_heads != 0)
        rc = err_set(r->e, ERR_FORMAT,
                     "%s: 'd_model' %lld is not a multiple of 'decoder_attention_heads' %lld",
                     r->what, (long long)c->hidden_size, (long long)s->decoder_attention_heads);
    return rc;
}
