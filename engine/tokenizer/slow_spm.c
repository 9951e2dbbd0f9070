/* slow_spm: the tokenizers transformers builds from a sentencepiece model (spiece.model,
 * sentencepiece.bpe.model, spm.model, tokenizer.model) when a repo has no tokenizer.json.
 * transformers 5 extracts the pieces (SentencePieceExtractor), lets the class's converter
 * reorder them (convert_from_spm: XLM-R's fairseq ids, T5's sentinels) and then the
 * tokenizer class itself sets the model and components; this file is that, one family a
 * class (the families table):
 *   T5Tokenizer          Unigram; Precompiled; WhitespaceSplit + Metaspace; "$A </s>"
 *   AlbertTokenizer      Unigram; `` '' -> ", NFKD + StripAccents unless keep_accents,
 *                        Lowercase if do_lower_case, Precompiled; "[CLS] $A [SEP]"
 *   XLMRobertaTokenizer  Unigram over <s> <pad> </s> <unk> + pieces[3:] + <mask>;
 *                        Precompiled; "<s> $A </s>" / "<s> $A </s> </s> $B </s>"
 *   DebertaV2Tokenizer   Unigram; whitespace runs -> " ", NFC, right strip; optional
 *                        punctuation split; Metaspace; "[CLS] $A [SEP]"
 *   LlamaTokenizer       BPE with byte fallback, merges generated from the vocabulary;
 *                        Metaspace (legacy / add_prefix_space); add_bos_token/add_eos_token
 * and the two whose pieces vocab.json numbers (their own converters, slow.c's table):
 *   MarianTokenizer      source.spm + vocab.json: Unigram, sentencepiece's float lattice
 *   M2M100Tokenizer      sentencepiece.bpe.model + vocab.json: BPE, "__xx__" language codes
 * The model file is read by spm_proto.c; the model type is the class's (as in transformers,
 * a Unigram class reads a BPE file's pieces as a Unigram vocabulary and Llama the reverse).
 * Control pieces become special added tokens and user-defined pieces plain added tokens,
 * before the named special tokens. An empty precompiled charsmap means no Precompiled
 * normalizer (transformers fails to build one from it). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slow_int.h"
#include "spm_proto.h"
#include "utf8.h"

#define SPACE "\xe2\x96\x81" /* U+2581, the Metaspace replacement */

static int nomem(struct err *e)
{
    return err_set(e, ERR_NOMEM, "out of memory");
}

static int set_component(struct slow *s, const char *key, json_t *v, struct err *e)
{
    return v ? slow_set_new(s->doc, key, v, e) : nomem(e);
}

/* ---- vocabularies ---- */

/* [piece, score] */
static int append_scored(json_t *list, const char *piece, double score, struct err *e)
{
    return json_array_append_new(list, json_pack("[s, f]", piece, score)) == 0 ? 0 : nomem(e);
}

/* The pieces from index `from` on, as a Unigram vocabulary. */
static int append_pieces(struct slow *s, json_t *list, size_t from, struct err *e)
{
    int rc = 0;
    for (size_t i = from; rc == 0 && i < s->spm->n_pieces; i++)
        rc = append_scored(list, s->spm->pieces[i].text, s->spm->pieces[i].score, e);
    return rc;
}

/* doc.model = Unigram over list (taken), with its token -> id index. */
static int unigram(struct slow *s, json_t *list, int32_t unk_id, struct err *e)
{
    json_t *m = json_pack("{s:s, s:i, s:o, s:b}", "type", "Unigram", "unk_id", (int)unk_id,
                          "vocab", list, "byte_fallback", 0);
    if (!m || !(s->lookup = json_object())) {
        json_decref(m);
        return nomem(e);
    }
    s->vocab = s->lookup;
    s->next_id = 0;
    int rc = slow_set_new(s->doc, "model", m, e);
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (rc == 0)
            rc = slow_add_vocab(s, json_string_value(json_array_get(v, 0)), (int32_t)i, e);
    }
    return rc;
}

static int unigram_pieces(struct slow *s, int32_t unk_id, struct err *e)
{
    json_t *list = json_array();
    int rc = list ? append_pieces(s, list, 0, e) : nomem(e);
    if (rc) {
        json_decref(list);
        return rc;
    }
    return unigram(s, list, unk_id, e);
}

/* T5: the pieces, then <extra_id_N-1> ... <extra_id_0> (extra_ids, default 100). */
static int t5_model(struct slow *s, struct err *e)
{
    const json_t *x = json_object_get(s->config, "extra_ids");
    double n = json_is_number(x) ? json_number_value(x) : 100;
    if (!(n >= 0 && n <= 100000) || n != floor(n))
        return err_set(e, ERR_FORMAT, "tokenizer_config.json: extra_ids must be an integer "
                       "from 0 to 100000");
    json_t *list = json_array();
    int rc = list ? append_pieces(s, list, 0, e) : nomem(e);
    for (int i = (int)n - 1; rc == 0 && i >= 0; i--) {
        char name[32];
        snprintf(name, sizeof name, "<extra_id_%d>", i);
        rc = append_scored(list, name, 0.0, e);
    }
    if (rc) {
        json_decref(list);
        return rc;
    }
    if ((rc = unigram(s, list, 2, e)) != 0)
        return rc;
    /* the sentinels are special tokens whatever additional_special_tokens says */
    for (int i = 0; rc == 0 && i < (int)n; i++) {
        char name[32];
        snprintf(name, sizeof name, "<extra_id_%d>", i);
        rc = slow_add_token(s, name, NULL, true, e);
    }
    return rc;
}

static int albert_model(struct slow *s, struct err *e)
{
    return unigram_pieces(s, 1, e);
}

/* fairseq's layout: <s> <pad> </s> <unk>, the pieces after the model's first three (its
 * <unk> <s> </s>), then <mask>: piece i has id i + 1. */
static int xlmr_model(struct slow *s, struct err *e)
{
    const enum special head[] = {SP_BOS, SP_PAD, SP_EOS, SP_UNK};
    json_t *list = json_array();
    int rc = list ? 0 : nomem(e);
    for (size_t i = 0; rc == 0 && i < 4; i++)
        rc = slow_special(s, head[i])
                 ? append_scored(list, slow_special(s, head[i]), 0.0, e)
                 : err_set(e, ERR_FORMAT, "XLMRobertaTokenizer needs bos, pad, eos and unk tokens");
    if (rc == 0)
        rc = append_pieces(s, list, 3, e);
    if (rc == 0)
        rc = slow_special(s, SP_MASK) ? append_scored(list, slow_special(s, SP_MASK), 0.0, e)
                                      : err_set(e, ERR_FORMAT,
                                                "XLMRobertaTokenizer needs a mask_token");
    if (rc) {
        json_decref(list);
        return rc;
    }
    return unigram(s, list, 3, e);
}

/* DeBERTa-v2: unk is the first piece equal to unk_token with score 0, else the model's. */
static int deberta_model(struct slow *s, struct err *e)
{
    const char *unk = slow_special(s, SP_UNK);
    int32_t unk_id = s->spm->unk_id;
    for (size_t i = 0; unk && i < s->spm->n_pieces; i++)
        if (strcmp(s->spm->pieces[i].text, unk) == 0 && s->spm->pieces[i].score == 0.0f) {
            unk_id = (int32_t)i;
            break;
        }
    return unigram_pieces(s, unk_id, e);
}

/* The bytes generate_merges may hash at most: each split of a piece of L bytes hashes L, so
 * the work is the sum of L squared (Llama 2: ~2 MB). Beyond this a model's pieces are too
 * long to be a real BPE vocabulary, and it is refused instead of loading for minutes. */
#define MERGE_WORK_MAX ((uint64_t)1 << 30)

/* transformers' generate_merges: for each piece in id order, each split into two pieces of
 * the vocabulary, left part shortest first. */
static int generate_merges(struct slow *s, json_t *merges, struct err *e)
{
    size_t max = 0;
    uint64_t work = 0;
    for (size_t i = 0; i < s->spm->n_pieces; i++) {
        size_t len = s->spm->pieces[i].len;
        max = len > max ? len : max;
        work += (uint64_t)len * len;
    }
    if (work > MERGE_WORK_MAX)
        return err_set(e, ERR_FORMAT, "%s: the pieces are too long to generate BPE merges from "
                       "(%llu bytes to hash, at most %llu)", s->file,
                       (unsigned long long)work, (unsigned long long)MERGE_WORK_MAX);
    char *buf = malloc(max + 1);
    if (!buf)
        return nomem(e);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < s->spm->n_pieces; i++) {
        const struct spm_piece *p = &s->spm->pieces[i];
        if (!json_object_get(s->vocab, p->text)) /* M2M100: not in vocab.json */
            continue;
        for (size_t k = utf8_len((unsigned char)p->text[0]); rc == 0 && k < p->len;
             k += utf8_len((unsigned char)p->text[k])) {
            memcpy(buf, p->text, k);
            buf[k] = '\0';
            if (!json_object_get(s->vocab, buf) || !json_object_get(s->vocab, p->text + k))
                continue;
            if (json_array_append_new(merges, json_pack("[s, s]", buf, p->text + k)))
                rc = nomem(e);
        }
    }
    free(buf);
    return rc;
}

/* Llama: BPE over the pieces (id = index), byte fallback, no unk token, fused unknowns. */
static int llama_model(struct slow *s, struct err *e)
{
    json_t *vocab = json_object(), *merges = json_array();
    json_t *m = json_pack("{s:s, s:n, s:n, s:n, s:n, s:b, s:b, s:b, s:o, s:o}", "type", "BPE",
                          "dropout", "unk_token", "continuing_subword_prefix",
                          "end_of_word_suffix", "fuse_unk", 1, "byte_fallback", 1,
                          "ignore_merges", 0, "vocab", vocab, "merges", merges);
    int rc = m ? slow_set_new(s->doc, "model", m, e) : nomem(e);
    if (rc)
        return rc;
    s->vocab = vocab;
    for (size_t i = 0; rc == 0 && i < s->spm->n_pieces; i++)
        rc = slow_add_vocab(s, s->spm->pieces[i].text, (int32_t)i, e);
    return rc ? rc : generate_merges(s, merges, e);
}

/* ---- components ---- */

static char *base64(const unsigned char *in, size_t n)
{
    static const char digits[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;
    for (size_t i = 0; out && i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        *o++ = digits[v >> 18 & 63];
        *o++ = digits[v >> 12 & 63];
        *o++ = i + 1 < n ? digits[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? digits[v & 63] : '=';
    }
    if (out)
        *o = '\0';
    return out;
}

/* Appends the Precompiled normalizer of the model's charsmap, if it has one. */
static int append_precompiled(struct slow *s, json_t *list, struct err *e)
{
    if (!s->spm->charsmap_len)
        return 0;
    char *b64 = base64(s->spm->charsmap, s->spm->charsmap_len);
    json_t *n = b64 ? json_pack("{s:s, s:s}", "type", "Precompiled", "precompiled_charsmap", b64)
                    : NULL;
    free(b64);
    return n && json_array_append_new(list, n) == 0 ? 0 : nomem(e);
}

/* A normalizer list as the document's normalizer: none, the one, or a Sequence. */
static int set_normalizers(struct slow *s, json_t *list, struct err *e)
{
    size_t n = json_array_size(list);
    json_t *v = n == 0   ? json_null()
                : n == 1 ? json_incref(json_array_get(list, 0))
                         : json_pack("{s:s, s:O}", "type", "Sequence", "normalizers", list);
    json_decref(list);
    return set_component(s, "normalizer", v, e);
}

static json_t *metaspace(const char *scheme, bool split)
{
    return json_pack("{s:s, s:s, s:s, s:b}", "type", "Metaspace", "replacement", SPACE,
                     "prepend_scheme", scheme, "split", split);
}

static json_t *replace(const char *kind, const char *pattern, const char *content)
{
    return json_pack("{s:s, s:{s:s}, s:s}", "type", "Replace", "pattern", kind, pattern,
                     "content", content);
}

/* pre_tokenizer Sequence[WhitespaceSplit, Metaspace(split)] and the Metaspace decoder. */
static int whitespace_metaspace(struct slow *s, const char *scheme, struct err *e)
{
    int rc = set_component(s, "pre_tokenizer",
                           json_pack("{s:s, s:[{s:s}, o]}", "type", "Sequence", "pretokenizers",
                                     "type", "WhitespaceSplit", metaspace(scheme, true)),
                           e);
    return rc ? rc : set_component(s, "decoder", metaspace(scheme, true), e);
}

/* A template piece "$A"/"$B" or a special token, with its type id. */
struct tpl {
    const char *piece;
    int type;
};

static json_t *tpl_list(const struct tpl *t, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, t[i].piece[0] == '$'
                                     ? slow_piece_seq(t[i].piece + 1, t[i].type)
                                     : slow_piece_special(t[i].piece, t[i].type));
    return a;
}

/* TemplateProcessing; names[k] is written with the id of the token ids_of[k]. */
static int post_template(struct slow *s, const struct tpl *single, size_t ns,
                         const struct tpl *pair, size_t np, const char *const names[2],
                         const char *const ids_of[2], struct err *e)
{
    json_t *sp = json_object();
    for (int k = 0; sp && k < 2; k++) {
        int32_t id = ids_of[k] ? slow_vocab_id(s, ids_of[k]) : -1;
        if (id < 0) {
            json_decref(sp);
            return err_set(e, ERR_FORMAT, "the post-processor's '%s' token is not in the "
                           "vocabulary", ids_of[k] ? ids_of[k] : names[k]);
        }
        json_t *entry = json_pack("{s:s, s:[i], s:[s]}", "id", names[k], "ids", (int)id,
                                  "tokens", names[k]);
        if (!entry || json_object_set_new(sp, names[k], entry)) {
            json_decref(sp);
            return nomem(e);
        }
    }
    return set_component(s, "post_processor",
                         sp ? json_pack("{s:s, s:o, s:o, s:o}", "type", "TemplateProcessing",
                                        "single", tpl_list(single, ns), "pair",
                                        tpl_list(pair, np), "special_tokens", sp)
                            : NULL,
                         e);
}

/* "CLS $A SEP" / "CLS $A SEP $B:1 SEP:1" (ALBERT with the literal names, DeBERTa-v2 with
 * the tokens themselves). */
static int post_cls_sep(struct slow *s, const char *cls, const char *sep, struct err *e)
{
    const struct tpl single[] = {{cls, 0}, {"$A", 0}, {sep, 0}};
    const struct tpl pair[] = {{cls, 0}, {"$A", 0}, {sep, 0}, {"$B", 1}, {sep, 1}};
    const char *const names[2] = {cls, sep};
    const char *const ids_of[2] = {slow_special(s, SP_CLS), slow_special(s, SP_SEP)};
    return post_template(s, single, 3, pair, 5, names, ids_of, e);
}

static int t5_components(struct slow *s, struct err *e)
{
    json_t *list = json_array();
    int rc = list ? append_precompiled(s, list, e) : nomem(e);
    if (rc == 0)
        rc = set_normalizers(s, list, e);
    else
        json_decref(list);
    if (rc == 0)
        rc = whitespace_metaspace(s, "always", e);
    const struct tpl single[] = {{"$A", 0}, {"</s>", 0}};
    const struct tpl pair[] = {{"$A", 0}, {"</s>", 0}, {"$B", 0}, {"</s>", 0}};
    const char *const names[2] = {"</s>", "</s>"};
    const char *const ids_of[2] = {slow_special(s, SP_EOS), slow_special(s, SP_EOS)};
    return rc ? rc : post_template(s, single, 2, pair, 4, names, ids_of, e);
}

static int albert_components(struct slow *s, struct err *e)
{
    json_t *list = json_array();
    int rc = list ? 0 : nomem(e);
    if (rc == 0 && (json_array_append_new(list, replace("String", "``", "\"")) ||
                    json_array_append_new(list, replace("String", "''", "\""))))
        rc = nomem(e);
    if (rc == 0 && !slow_config_bool(s, "keep_accents", false) &&
        (json_array_append_new(list, json_pack("{s:s}", "type", "NFKD")) ||
         json_array_append_new(list, json_pack("{s:s}", "type", "StripAccents"))))
        rc = nomem(e);
    if (rc == 0 && slow_config_bool(s, "do_lower_case", true) &&
        json_array_append_new(list, json_pack("{s:s}", "type", "Lowercase")))
        rc = nomem(e);
    if (rc == 0)
        rc = append_precompiled(s, list, e);
    if (rc) {
        json_decref(list);
        return rc;
    }
    if ((rc = set_normalizers(s, list, e)) != 0)
        return rc;
    rc = whitespace_metaspace(s, slow_config_bool(s, "add_prefix_space", true) ? "always"
                                                                                : "never", e);
    return rc ? rc : post_cls_sep(s, "[CLS]", "[SEP]", e);
}

static int xlmr_components(struct slow *s, struct err *e)
{
    json_t *list = json_array();
    int rc = list ? append_precompiled(s, list, e) : nomem(e);
    if (rc) {
        json_decref(list);
        return rc;
    }
    if ((rc = set_normalizers(s, list, e)) != 0 ||
        (rc = whitespace_metaspace(s, slow_config_bool(s, "add_prefix_space", true) ? "always"
                                                                                     : "never",
                                   e)) != 0)
        return rc;
    const char *bos = slow_special(s, SP_BOS), *eos = slow_special(s, SP_EOS);
    const struct tpl single[] = {{bos, 0}, {"$A", 0}, {eos, 0}};
    const struct tpl pair[] = {{bos, 0}, {"$A", 0}, {eos, 0}, {eos, 0}, {"$B", 0}, {eos, 0}};
    const char *const names[2] = {bos, eos};
    return post_template(s, single, 3, pair, 6, names, names, e);
}

static int deberta_components(struct slow *s, struct err *e)
{
    json_t *list = json_array();
    if (list && slow_config_bool(s, "do_lower_case", false))
        json_array_append_new(list, json_pack("{s:s}", "type", "Lowercase"));
    if (list) {
        json_array_append_new(list, replace("Regex", "\\s{2,}|[\\n\\r\\t]", " "));
        json_array_append_new(list, json_pack("{s:s}", "type", "NFC"));
        json_array_append_new(list, json_pack("{s:s, s:b, s:b}", "type", "Strip", "strip_left",
                                              0, "strip_right", 1));
    }
    int rc = list ? set_normalizers(s, list, e) : nomem(e);
    const char *scheme = slow_config_bool(s, "add_prefix_space", true) ? "always" : "first";
    json_t *pre = json_array();
    if (pre && slow_config_bool(s, "split_by_punct", false))
        json_array_append_new(pre, json_pack("{s:s, s:s}", "type", "Punctuation", "behavior",
                                             "Isolated"));
    if (pre)
        json_array_append_new(pre, metaspace(scheme, true));
    if (rc == 0)
        rc = set_component(s, "pre_tokenizer",
                           pre ? json_pack("{s:s, s:O}", "type", "Sequence", "pretokenizers", pre)
                               : NULL,
                           e);
    json_decref(pre);
    if (rc == 0)
        rc = set_component(s, "decoder", metaspace(scheme, true), e);
    const char *cls = slow_special(s, SP_CLS), *sep = slow_special(s, SP_SEP);
    if (rc == 0 && (!cls || !sep))
        rc = err_set(e, ERR_FORMAT, "DebertaV2Tokenizer needs cls_token and sep_token");
    return rc ? rc : post_cls_sep(s, cls, sep, e);
}

/* Llama: Metaspace without split; the prefix space "first" unless legacy ("always") or
 * add_prefix_space is false ("never"); decoding strips the prefix space it added. */
static int llama_components(struct slow *s, struct err *e)
{
    bool prefix = slow_config_bool(s, "add_prefix_space", true);
    const char *scheme = !prefix ? "never" : slow_config_bool(s, "legacy", false) ? "always"
                                                                                  : "first";
    int rc = set_component(s, "normalizer", json_null(), e);
    if (rc == 0)
        rc = set_component(s, "pre_tokenizer", metaspace(scheme, false), e);
    json_t *dec = json_pack("[o, {s:s}, {s:s}]", replace("String", SPACE, " "), "type",
                            "ByteFallback", "type", "Fuse");
    if (dec && prefix)
        json_array_append_new(dec, json_pack("{s:s, s:s, s:i, s:i}", "type", "Strip", "content",
                                             " ", "start", 1, "stop", 0));
    if (rc == 0)
        rc = set_component(s, "decoder",
                           dec ? json_pack("{s:s, s:O}", "type", "Sequence", "decoders", dec)
                               : NULL,
                           e);
    json_decref(dec);
    return rc ? rc : slow_post_bos_eos(s, false, false, e);
}

/* ---- the families and the converter's model function ---- */

static const char *const t5_classes[] = {"T5Tokenizer", NULL};
static const char *const albert_classes[] = {"AlbertTokenizer", NULL};
static const char *const xlmr_classes[] = {"XLMRobertaTokenizer", NULL};
static const char *const deberta_classes[] = {"DebertaV2Tokenizer", NULL};
static const char *const llama_classes[] = {"LlamaTokenizer", "CodeLlamaTokenizer", NULL};

/* defaults: unk, bos, eos, sep, pad, cls, mask (the classes' __init__ defaults) */
const struct family slow_spm_families[SLOW_SPM_N_FAMILIES] = {
    {t5_classes, {"<unk>", NULL, "</s>", NULL, "<pad>"}, t5_model, t5_components},
    {albert_classes, {"<unk>", "[CLS]", "[SEP]", "[SEP]", "<pad>", "[CLS]", "[MASK]"},
     albert_model, albert_components},
    {xlmr_classes, {"<unk>", "<s>", "</s>", "</s>", "<pad>", "<s>", "<mask>"}, xlmr_model,
     xlmr_components},
    {deberta_classes, {"[UNK]", "[CLS]", "[SEP]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"},
     deberta_model, deberta_components},
    {llama_classes, {"<unk>", "<s>", "</s>"}, llama_model, llama_components},
};

/* Reads the converter's file into s->spm. */
static int parse_spm(struct slow *s, struct err *e)
{
    char *buf;
    size_t len = 0;
    int rc = slow_slurp(s->dir, s->file, &buf, &len, e);
    if (rc)
        return rc;
    if (!(s->spm = calloc(1, sizeof *s->spm))) {
        free(buf);
        return nomem(e);
    }
    rc = spm_model_parse((const uint8_t *)buf, len, s->spm, e);
    free(buf);
    if (rc)
        err_prefix(e, "%s: ", s->file);
    return rc;
}

int slow_spm_model(struct slow *s, struct err *e)
{
    int rc = parse_spm(s, e);
    if (rc || (rc = s->family->model(s, e)) != 0)
        return rc;
    for (size_t i = 0; rc == 0 && i < s->spm->n_pieces; i++) {
        const struct spm_piece *p = &s->spm->pieces[i];
        if (p->type == SPM_CONTROL || p->type == SPM_USER_DEFINED)
            rc = slow_add_token(s, p->text, NULL, p->type == SPM_CONTROL, e);
    }
    return rc;
}

/* ---- MarianTokenizer: source.spm segments, vocab.json numbers ---- */

/* File `name` (vocab.json: token -> id, ids dense from 0) as the list of its tokens by id. */
static int vocab_file_tokens(struct slow *s, const char *name, json_t **out, struct err *e)
{
    char *text;
    size_t len = 0;
    int rc = slow_slurp(s->dir, name, &text, &len, e);
    if (rc)
        return rc;
    json_error_t je;
    json_t *v = json_loadb(text, len, 0, &je);
    free(text);
    size_t n = json_is_object(v) ? json_object_size(v) : 0;
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++)
        json_array_append_new(list, json_null());
    rc = !json_is_object(v) ? err_set(e, ERR_FORMAT, "%s: not a JSON object of token -> id", name)
         : !list || json_array_size(list) != n ? nomem(e)
                                               : 0;
    const char *tok;
    json_t *id;
    json_object_foreach(v, tok, id)
    {
        json_int_t k = json_is_integer(id) ? json_integer_value(id) : -1;
        if (rc == 0 && (k < 0 || (size_t)k >= n || !json_is_null(json_array_get(list, (size_t)k))))
            rc = err_set(e, ERR_FORMAT, "%s: the id of '%s' is not one of 0..%zu, each once",
                         name, tok, n ? n - 1 : 0);
        if (rc == 0 && json_array_set_new(list, (size_t)k, json_string(tok)))
            rc = nomem(e);
    }
    json_decref(v);
    if (rc)
        json_decref(list);
    *out = rc ? NULL : list;
    return rc;
}

static int marian_tokens(struct slow *s, json_t **out, struct err *e)
{
    return vocab_file_tokens(s, "vocab.json", out, e);
}

/* MarianTokenizer with separate_vocabs: ids decode through target_vocab.json (the document's
 * inferd-only "inferd_decode_vocab", tokens by id), while vocab.json numbers the inputs. */
static int marian_target_vocab(struct slow *s, struct err *e)
{
    if (!slow_config_bool(s, "separate_vocabs", false))
        return 0;
    json_t *tokens = NULL;
    int rc = vocab_file_tokens(s, "target_vocab.json", &tokens, e);
    return rc ? rc : slow_set_new(s->doc, "inferd_decode_vocab", tokens, e);
}

/* Unigram numbered by vocab.json: a token that is a normal piece of source.spm has its
 * score; every other one (target-side pieces, specials, language codes) keeps its id but
 * is never matched, as MarianTokenizer segments with source.spm alone. A source piece
 * missing from vocab.json cannot be produced (real Marian vocabularies hold them all). */
int slow_marian_model(struct slow *s, struct err *e)
{
    json_t *tokens = NULL, *index = json_object(), *list = json_array(), *unmatched = json_array();
    int rc = index && list && unmatched ? parse_spm(s, e) : nomem(e);
    if (rc == 0)
        rc = marian_tokens(s, &tokens, e);
    for (size_t i = 0; rc == 0 && i < s->spm->n_pieces; i++)
        if (s->spm->pieces[i].type == SPM_NORMAL &&
            json_object_set_new(index, s->spm->pieces[i].text, json_integer((json_int_t)i)))
            rc = nomem(e);
    size_t i;
    json_t *t;
    json_array_foreach(tokens, i, t)
    {
        const json_t *p = json_object_get(index, json_string_value(t));
        double score = p ? s->spm->pieces[json_integer_value(p)].score : 0.0;
        if (rc == 0)
            rc = append_scored(list, json_string_value(t), score, e);
        if (rc == 0 && !p && json_array_append_new(unmatched, json_integer((json_int_t)i)))
            rc = nomem(e);
    }
    json_decref(tokens);
    json_decref(index);
    const char *unk = slow_special(s, SP_UNK);
    int32_t unk_id = -1;
    for (i = 0; rc == 0 && unk && i < json_array_size(list); i++)
        if (strcmp(json_string_value(json_array_get(json_array_get(list, i), 0)), unk) == 0)
            unk_id = (int32_t)i;
    if (rc == 0 && unk_id < 0)
        rc = err_set(e, ERR_FORMAT, "vocab.json: the unk token '%s' is not in the vocabulary",
                     unk ? unk : "(none)");
    if (rc) {
        json_decref(list);
        json_decref(unmatched);
        return rc;
    }
    if ((rc = unigram(s, list, unk_id, e)) != 0) {
        json_decref(unmatched);
        return rc;
    }
    json_t *model = json_object_get(s->doc, "model");
    rc = slow_set_new(model, "inferd_unmatched", unmatched, e); /* taken either way */
    if (rc == 0)
        rc = slow_set_new(model, "inferd_float_scores", json_true(), e);
    if (rc == 0)
        rc = marian_target_vocab(s, e);
    /* >>xx<< target-language codes: MarianTokenizer takes a leading one whole, before
     * sentencepiece; as plain added tokens they are matched anywhere (a superset). */
    const json_t *vocab = json_object_get(model, "vocab");
    for (i = 0; rc == 0 && i < json_array_size(vocab); i++) {
        const char *tok = json_string_value(json_array_get(json_array_get(vocab, i), 0));
        size_t l = strlen(tok);
        if (l > 4 && strncmp(tok, ">>", 2) == 0 && strcmp(tok + l - 2, "<<") == 0)
            rc = slow_add_token(s, tok, NULL, false, e);
    }
    return rc;
}

/* sentencepiece's own encoding: the charsmap, runs of spaces collapsed and both ends
 * stripped (remove_extra_whitespaces), one Metaspace'd string for the whole text (the
 * lattice spans the sentence: its float path scores decide ties as sentencepiece's do);
 * "$A </s>" / "$A $B </s>"; the Metaspace decoder (target.spm decodes pieces the same
 * way), then the pieces fused and every space at either end stripped (MarianTokenizer
 * strips its decoded string). */
static int marian_components(struct slow *s, struct err *e)
{
    json_t *list = json_array();
    int rc = list ? append_precompiled(s, list, e) : nomem(e);
    if (rc == 0 && (json_array_append_new(list, replace("Regex", " {2,}", " ")) ||
                    json_array_append_new(list, json_pack("{s:s, s:b, s:b}", "type", "Strip",
                                                          "strip_left", 1, "strip_right", 1))))
        rc = nomem(e);
    if (rc == 0)
        rc = set_normalizers(s, list, e);
    else
        json_decref(list);
    if (rc == 0)
        rc = set_component(s, "pre_tokenizer", metaspace("always", false), e);
    if (rc == 0)
        rc = set_component(s, "decoder",
                           json_pack("{s:s, s:[o, {s:s}, {s:s, s:s, s:i, s:i}]}", "type",
                                     "Sequence", "decoders", metaspace("always", false), "type",
                                     "Fuse", "type", "Strip", "content", " ", "start", 1 << 20,
                                     "stop", 1 << 20),
                           e);
    const struct tpl single[] = {{"$A", 0}, {"</s>", 0}};
    const struct tpl pair[] = {{"$A", 0}, {"$B", 0}, {"</s>", 0}};
    const char *const names[2] = {"</s>", "</s>"};
    const char *const ids_of[2] = {slow_special(s, SP_EOS), slow_special(s, SP_EOS)};
    return rc ? rc : post_template(s, single, 2, pair, 3, names, ids_of, e);
}

/* ---- M2M100Tokenizer: sentencepiece.bpe.model segments, vocab.json numbers ---- */

/* fairseq's language codes of M2M100Tokenizer's language_codes, in id order (the token of
 * code c is "__c__", numbered from len(vocab.json) on). */
static const char *const m2m100_codes[] = {
    "af", "am", "ar", "ast", "az", "ba", "be", "bg", "bn", "br", "bs", "ca", "ceb", "cs", "cy",
    "da", "de", "el", "en", "es", "et", "fa", "ff", "fi", "fr", "fy", "ga", "gd", "gl", "gu",
    "ha", "he", "hi", "hr", "ht", "hu", "hy", "id", "ig", "ilo", "is", "it", "ja", "jv", "ka",
    "kk", "km", "kn", "ko", "lb", "lg", "ln", "lo", "lt", "lv", "mg", "mk", "ml", "mn", "mr",
    "ms", "my", "ne", "nl", "no", "ns", "oc", "or", "pa", "pl", "ps", "pt", "ro", "ru", "sd",
    "si", "sk", "sl", "so", "sq", "sr", "ss", "su", "sv", "sw", "ta", "th", "tl", "tn", "tr",
    "uk", "ur", "uz", "vi", "wo", "xh", "yi", "yo", "zh", "zu", NULL,
};
static const char *const wmt21_codes[] = {"en", "ha", "is", "ja", "cs", "ru", "zh", "de", NULL};

/* The codes tokenizer_config.json's language_codes names (default "m2m100"). */
static const char *const *m2m100_code_list(const struct slow *s, struct err *e)
{
    const json_t *v = json_object_get(s->config, "language_codes");
    const char *name = json_is_string(v) ? json_string_value(v) : "m2m100";
    if (strcmp(name, "m2m100") == 0)
        return m2m100_codes;
    if (strcmp(name, "wmt21") == 0)
        return wmt21_codes;
    err_set(e, ERR_FORMAT, "tokenizer_config.json: language_codes '%.40s' is not one of "
            "m2m100, wmt21", name);
    return NULL;
}

/* BPE over the vocab.json tokens (their ids) with merges generated from the model's pieces
 * in the model's order, as the Llama family's; unknown characters one fused unk, no byte
 * fallback (sentencepiece's BPE encoding). Then each language's "__xx__" at len(vocab.json)
 * + i: a plain vocabulary entry the merges never make, found only as the inputs' prefix;
 * the codes additional_special_tokens lists become special tokens (add_specials), as in
 * transformers 4.57, which leaves the others plain tokens. A piece missing from vocab.json
 * is never made (real fairseq dictionaries hold them all); a unigram model is refused. */
int slow_m2m100_model(struct slow *s, struct err *e)
{
    json_t *tokens = NULL, *vocab = json_object(), *merges = json_array();
    int rc = vocab && merges ? parse_spm(s, e) : nomem(e);
    if (rc == 0 && s->spm->model_type != SPM_BPE)
        rc = err_set(e, ERR_FORMAT, "%s: M2M100Tokenizer needs a BPE sentencepiece model, "
                     "this one is unigram", s->file);
    const char *const *codes = rc ? NULL : m2m100_code_list(s, e);
    if (rc == 0 && !codes)
        rc = ERR_FORMAT;
    if (rc == 0)
        rc = marian_tokens(s, &tokens, e);
    const char *unk = slow_special(s, SP_UNK);
    json_t *m = rc ? NULL
                   : json_pack("{s:s, s:n, s:s?, s:n, s:n, s:b, s:b, s:b, s:O, s:O}", "type",
                               "BPE", "dropout", "unk_token", unk, "continuing_subword_prefix",
                               "end_of_word_suffix", "fuse_unk", 1, "byte_fallback", 0,
                               "ignore_merges", 0, "vocab", vocab, "merges", merges);
    if (rc == 0)
        rc = m ? slow_set_new(s->doc, "model", m, e) : nomem(e);
    json_decref(merges);
    json_decref(vocab);
    if (rc) {
        json_decref(tokens);
        return rc;
    }
    s->vocab = vocab; /* owned by the document now */
    size_t i;
    json_t *t;
    json_array_foreach(tokens, i, t)
    {
        if (rc == 0)
            rc = slow_add_vocab(s, json_string_value(t), (int32_t)i, e);
    }
    size_t n = json_array_size(tokens);
    json_decref(tokens);
    if (rc == 0 && (!unk || slow_vocab_id(s, unk) < 0))
        rc = err_set(e, ERR_FORMAT, "vocab.json: the unk token '%s' is not in the vocabulary",
                     unk ? unk : "(none)");
    for (size_t k = 0; rc == 0 && codes[k]; k++) {
        char tok[16];
        snprintf(tok, sizeof tok, "__%s__", codes[k]);
        rc = slow_vocab_id(s, tok) >= 0
                 ? err_set(e, ERR_FORMAT, "vocab.json: the language code %s is in it (the "
                           "tokenizer numbers the codes after it)", tok)
                 : slow_add_vocab(s, tok, (int32_t)(n + k), e);
    }
    json_t *model = json_object_get(s->doc, "model");
    return rc ? rc : generate_merges(s, json_object_get(model, "merges"), e);
}

/* sentencepiece's normalization and decoding as Marian's (marian_components); the words
 * split at each U+2581 (no piece of a whitespace-split model crosses one); "[__src__] $A
 * </s>" / "[__src__] $A $B </s>" with src_lang from tokenizer_config.json (default "en"). */
static int m2m100_components(struct slow *s, struct err *e)
{
    int rc = marian_components(s, e);
    if (rc == 0)
        rc = set_component(s, "pre_tokenizer", metaspace("always", true), e);
    const json_t *v = json_object_get(s->config, "src_lang");
    char src[64];
    int w = snprintf(src, sizeof src, "__%s__", json_is_string(v) ? json_string_value(v) : "en");
    if (rc == 0 && (w <= 0 || (size_t)w >= sizeof src || slow_vocab_id(s, src) < 0))
        rc = err_set(e, ERR_FORMAT, "tokenizer_config.json: src_lang '%.40s' is not one of "
                     "the language codes", json_string_value(v));
    const struct tpl single[] = {{src, 0}, {"$A", 0}, {"</s>", 0}};
    const struct tpl pair[] = {{src, 0}, {"$A", 0}, {"$B", 0}, {"</s>", 0}};
    const char *const names[2] = {src, "</s>"};
    const char *const ids_of[2] = {src, slow_special(s, SP_EOS)};
    return rc ? rc : post_template(s, single, 3, pair, 4, names, ids_of, e);
}

static const char *const m2m100_classes[] = {"M2M100Tokenizer", NULL};

const struct family slow_m2m100_families[1] = {
    {m2m100_classes, {"<unk>", "<s>", "</s>", "</s>", "<pad>"}, NULL, m2m100_components},
};

static const char *const marian_classes[] = {"MarianTokenizer", NULL};

const struct family slow_marian_families[1] = {
    {marian_classes, {"<unk>", NULL, "</s>", NULL, "<pad>"}, NULL, marian_components},
};
