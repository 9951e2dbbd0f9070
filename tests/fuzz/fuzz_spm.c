/* fuzz_spm: a sentencepiece model file (tokenizer/spm_proto.c, the bounds-checked protobuf
 * reader) and the tokenizer transformers would build from it (tokenizer/slow_spm.c). The
 * first byte picks the tokenizer class (T5, ALBERT, XLM-R, DeBERTa-v2, Llama: each family's
 * vocabulary layout, merges and components); the rest is the model file. A parsed model must
 * hold what the reader promises (NUL-terminated UTF-8 pieces of the stated length, known
 * types, finite scores, unk_id a piece); the model is then written into a directory with that
 * class's tokenizer_config.json, loaded with tokenizer_load and used on two texts. */
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "tokenizer/spm_proto.h"
#include "tokenizer/tokenizer.h"

static const char *const classes[] = {"T5Tokenizer", "AlbertTokenizer", "XLMRobertaTokenizer",
                                      "DebertaV2Tokenizer", "LlamaTokenizer"};
#define N_CLASSES (sizeof classes / sizeof classes[0])
static char dirs[N_CLASSES][256];

static void write_file(const char *dir, const char *name, const uint8_t *data, size_t size)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char root[] = "/tmp/fuzz_spm.XXXXXX";
    if (!mkdtemp(root))
        abort();
    for (size_t i = 0; i < N_CLASSES; i++) {
        snprintf(dirs[i], sizeof dirs[i], "%s/%zu", root, i);
        if (mkdir(dirs[i], 0700) != 0)
            abort();
        char cfg[256];
        int n = snprintf(cfg, sizeof cfg, "{\"tokenizer_class\": \"%s\", \"extra_ids\": 3}",
                         classes[i]);
        write_file(dirs[i], "tokenizer_config.json", (const uint8_t *)cfg, (size_t)n);
    }
    return 0;
}

static void check(const struct spm_model *m)
{
    if (m->n_pieces == 0 || m->unk_id < 0 || (size_t)m->unk_id >= m->n_pieces)
        abort();
    for (size_t i = 0; i < m->n_pieces; i++) {
        const struct spm_piece *p = &m->pieces[i];
        if (p->len == 0 || strlen(p->text) != p->len || !isfinite(p->score) ||
            p->type < SPM_NORMAL || p->type > SPM_BYTE)
            abort();
    }
}

static void use(const struct tokenizer *tk)
{
    static const char *const texts[] = {"Hello  world! Caf\xc3\xa9 <s> </s> <mask> x\xe2\x96\x81y",
                                        "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\t\n end "};
    struct tokenizer_params p = tokenizer_params_default(tk);
    struct encodings enc = {0};
    struct err e = {0};
    if (tokenizer_encode(tk, texts[0], strlen(texts[0]), texts[1], strlen(texts[1]), &p, &enc,
                         &e) == 0 &&
        enc.n > 0) {
        char *out = NULL;
        size_t len = 0;
        if (tokenizer_decode(tk, enc.v[0].ids, enc.v[0].n, true, &out, &len, &e) == 0)
            free(out);
    }
    encodings_fini(&enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *dir = dirs[data[0] % N_CLASSES];
    struct spm_model m;
    struct err e = {0};
    if (fuzz_report(spm_model_parse(data + 1, size - 1, &m, &e), &e) != 0)
        return 0;
    check(&m);
    spm_model_free(&m);
    write_file(dir, data[0] % N_CLASSES == 4 ? "tokenizer.model" : "spiece.model", data + 1,
               size - 1);
    struct tokenizer *tk = NULL;
    if (fuzz_report(tokenizer_load(dir, &tk, &e), &e) == 0)
        use(tk);
    tokenizer_free(tk);
    return 0;
}
