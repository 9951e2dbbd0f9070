/* fuzz_tokenizer: a tokenizer.json (tokenizer/*.c: normalizers, pre-tokenizers, WordPiece, BPE
 * and Unigram models, post-processors, decoders, added tokens) built from untrusted bytes, then
 * used as a pipeline would: a few fixed texts (ASCII, accents, CJK, emoji, special-token
 * look-alikes, a pair) encoded with and without truncation and padding, decoded back, and
 * every id of a small range decoded and looked up. */
#include "fuzz.h"
#include "tokenizer/tokenizer.h"

static const char *const texts[] = {
    "Hello, world! It's 2024.",
    "  Caf\xc3\xa9 na\xc3\xafve \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80",
    "[CLS] <s> </s> <|endoftext|> [MASK] <unk> \t\n\r end",
    "",
};

static void round_trip(const struct tokenizer *tk, const struct encoding *enc)
{
    int32_t ids[512];
    size_t n = enc->n < 512 ? enc->n : 512;
    for (size_t i = 0; i < n; i++)
        ids[i] = enc->ids[i];
    char *out = NULL;
    size_t len = 0;
    struct err e = {0};
    if (tokenizer_decode(tk, ids, n, true, &out, &len, &e) == 0)
        free(out);
}

static void encode_all(const struct tokenizer *tk, const struct tokenizer_params *p)
{
    size_t n_texts = sizeof texts / sizeof *texts;
    for (size_t i = 0; i < n_texts; i++) {
        struct encodings enc = {0};
        struct err e = {0};
        const char *pair = i == 0 ? texts[1] : NULL;
        if (tokenizer_encode(tk, texts[i], strlen(texts[i]), pair, pair ? strlen(pair) : 0, p,
                             &enc, &e) == 0 &&
            enc.n > 0)
            round_trip(tk, &enc.v[0]);
        encodings_fini(&enc);
    }
}

static void query_ids(const struct tokenizer *tk)
{
    size_t n = tokenizer_vocab_size(tk);
    int32_t ids[64];
    size_t k = 0;
    for (int32_t id = -1; id < 63 && (size_t)(id + 1) <= n + 1; id++) {
        ids[k++] = id;
        const char *tok = tokenizer_id_to_token(tk, id);
        if (tok)
            tokenizer_token_to_id(tk, tok);
        tokenizer_is_special(tk, id);
    }
    char *out = NULL;
    size_t len = 0;
    struct err e = {0};
    if (tokenizer_decode(tk, ids, k, false, &out, &len, &e) == 0)
        free(out);
    const char *toks[] = {"he", "##llo", "\xc4\xa0world", "\xe2\x96\x81x"};
    if (tokenizer_tokens_to_string(tk, toks, 4, &out, &len, &e) == 0)
        free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tokenizer *tk = NULL;
    struct err e = {0};
    if (fuzz_report(tokenizer_from_json((const char *)data, size, NULL, 0, &tk, &e), &e) != 0)
        return 0;
    struct tokenizer_params p = tokenizer_params_default(tk);
    encode_all(tk, &p);
    p.truncation = true;
    p.max_length = 8;
    p.stride = 2;
    p.padding = PAD_FIXED;
    p.pad_length = 12;
    encode_all(tk, &p);
    query_ids(tk);
    tokenizer_num_special_tokens(tk, true);
    tokenizer_has_subword_prefix(tk);
    tokenizer_free(tk);
    return 0;
}
