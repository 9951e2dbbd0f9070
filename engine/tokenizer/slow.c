/* slow: builds the tokenizer.json document transformers would build from a directory's
 * slow-tokenizer files (see slow.h). Owns the file detection (the converters table, in
 * transformers' order of preference), the special-token resolution (tokenizer_config.json,
 * special_tokens_map.json, the family's defaults) and, per family, the component chain
 * (the families tables). The document is handed to tokenizer.c's loader unchanged, so
 * every component is the one tokenizer.json would describe. The sentencepiece families are
 * in slow_spm.c (the converters here name their files); slow_int.h is what they share. */
#include "slow.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader/files.h"
#include "slow_int.h"
#include "spm_proto.h"

static const char *const special_keys[N_SPECIAL] = {"unk_token", "bos_token", "eos_token",
                                                    "sep_token", "pad_token", "cls_token",
                                                    "mask_token"};

/* ---- files ---- */

/* dir/name into *out (malloc'ed, NUL-terminated); the file error names the path. */
int slow_slurp(const char *dir, const char *name, char **out, size_t *len, struct err *e)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    errno = 0;
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = '\0';
        *len = (size_t)n;
        fclose(f);
        *out = buf;
        return 0;
    }
    int errnum = errno ? errno : EIO;
    free(buf);
    if (f)
        fclose(f);
    *out = NULL;
    return files_error(path, errnum, e);
}

static bool has_file(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, R_OK) == 0;
}

/* dir/name as a JSON object; an absent optional file gives an empty object. */
static int load_object(const char *dir, const char *name, bool required, json_t **out,
                       struct err *e)
{
    *out = NULL;
    if (!required && !has_file(dir, name)) {
        *out = json_object();
        return *out ? 0 : err_set(e, ERR_NOMEM, "out of memory");
    }
    size_t len = 0;
    char *text;
    int rc = slow_slurp(dir, name, &text, &len, e);
    if (rc)
        return rc;
    json_error_t je;
    *out = json_loadb(text, len, JSON_DECODE_INT_AS_REAL, &je);
    free(text);
    if (json_is_object(*out))
        return 0;
    json_decref(*out);
    *out = NULL;
    return err_set(e, ERR_FORMAT, "%s: invalid JSON object at line %d column %d: %s", name,
                   je.line, je.column, je.text);
}

/* ---- vocabulary and special tokens ---- */

int slow_set_new(json_t *o, const char *key, json_t *v, struct err *e)
{
    return json_object_set_new(o, key, v) == 0 ? 0 : err_set(e, ERR_NOMEM, "out of memory");
}

int32_t slow_vocab_id(const struct slow *s, const char *tok)
{
    const json_t *v = json_object_get(s->vocab, tok);
    return json_is_number(v) ? (int32_t)json_number_value(v) : -1;
}

int slow_add_vocab(struct slow *s, const char *tok, int32_t id, struct err *e)
{
    if (id >= s->next_id)
        s->next_id = id + 1;
    return slow_set_new(s->vocab, tok, json_integer(id), e);
}

/* The content of a special-token value: "tok" or {"content": "tok", ...}. */
static const char *token_content(const json_t *v)
{
    if (json_is_object(v))
        v = json_object_get(v, "content");
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool flag(const json_t *v, const char *key, bool dflt)
{
    const json_t *b = json_is_object(v) ? json_object_get(v, key) : NULL;
    return json_is_boolean(b) ? json_is_true(b) : dflt;
}

/* Resolves every special token into s->config: the config's own value (null means none),
 * else special_tokens_map.json's, else the family default. */
static int resolve_specials(struct slow *s, const json_t *map, const struct family *f,
                            struct err *e)
{
    for (int k = 0; k < N_SPECIAL; k++) {
        const char *key = special_keys[k];
        if (json_object_get(s->config, key))
            continue;
        json_t *v = json_object_get(map, key);
        if (v && slow_set_new(s->config, key, json_incref(v), e))
            return ERR_NOMEM;
        if (!v && f->defaults[k] && slow_set_new(s->config, key, json_string(f->defaults[k]), e))
            return ERR_NOMEM;
    }
    const char *lists[] = {"additional_special_tokens", "extra_special_tokens"};
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(map, lists[i]);
        if (!json_object_get(s->config, lists[i]) && json_is_array(v) &&
            slow_set_new(s->config, lists[i], json_incref(v), e))
            return ERR_NOMEM;
    }
    return 0;
}

int slow_add_token(struct slow *s, const char *tok, const json_t *v, bool special,
                   struct err *e)
{
    json_t *added = json_object_get(s->doc, "added_tokens");
    if (!added && slow_set_new(s->doc, "added_tokens", added = json_array(), e))
        return ERR_NOMEM;
    if (!s->added && !(s->added = json_object()))
        return err_set(e, ERR_NOMEM, "out of memory");
    if (json_object_get(s->added, tok))
        return 0;
    if (json_object_set_new(s->added, tok, json_true()))
        return err_set(e, ERR_NOMEM, "out of memory");
    int32_t id = slow_vocab_id(s, tok);
    if (id < 0 && slow_add_vocab(s, tok, id = s->next_id, e))
        return ERR_NOMEM;
    json_t *o = json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", (int)id, "content", tok,
                          "single_word", flag(v, "single_word", false), "lstrip",
                          flag(v, "lstrip", false), "rstrip", flag(v, "rstrip", false),
                          "normalized", flag(v, "normalized", false), "special", special);
    return o && json_array_append_new(added, o) == 0 ? 0 : err_set(e, ERR_NOMEM, "out of memory");
}

/* One special token into added_tokens: its vocabulary id, or a new id after the last. */
static int add_special(struct slow *s, const json_t *v, struct err *e)
{
    const char *tok = token_content(v);
    return tok ? slow_add_token(s, tok, v, true, e) : 0;
}

/* transformers adds every special token (the named ones, then the extra lists) to the
 * tokenizer as a special added token. */
static int add_specials(struct slow *s, struct err *e)
{
    int rc;
    if (!json_object_get(s->doc, "added_tokens") &&
        (rc = slow_set_new(s->doc, "added_tokens", json_array(), e)) != 0)
        return rc;
    for (int k = 0; k < N_SPECIAL; k++)
        if ((rc = add_special(s, json_object_get(s->config, special_keys[k]), e)) != 0)
            return rc;
    const char *lists[] = {"additional_special_tokens", "extra_special_tokens"};
    for (size_t l = 0; l < 2; l++) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(s->config, lists[l]), i, v)
        {
            if ((rc = add_special(s, v, e)) != 0)
                return rc;
        }
    }
    return 0;
}

const char *slow_special(const struct slow *s, enum special k)
{
    return token_content(json_object_get(s->config, special_keys[k]));
}

bool slow_config_bool(const struct slow *s, const char *key, bool dflt)
{
    const json_t *v = json_object_get(s->config, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

/* ---- post-processors ---- */

json_t *slow_piece_special(const char *tok, int type)
{
    return json_pack("{s:{s:s, s:i}}", "SpecialToken", "id", tok, "type_id", type);
}

json_t *slow_piece_seq(const char *seq, int type)
{
    return json_pack("{s:{s:s, s:i}}", "Sequence", "id", seq, "type_id", type);
}

json_t *slow_special_entry(const struct slow *s, const char *tok, int32_t dflt_id)
{
    int32_t id = slow_vocab_id(s, tok);
    return json_pack("{s:s, s:[i], s:[s]}", "id", tok, "ids", (int)(id >= 0 ? id : dflt_id),
                     "tokens", tok);
}

/* TemplateProcessing "CLS:0 $A:0 SEP:0" / "CLS:0 $A:0 SEP:0 $B:1 SEP:1" (BertConverter). */
static int post_cls_sep(struct slow *s, struct err *e)
{
    const char *cls = slow_special(s, SP_CLS), *sep = slow_special(s, SP_SEP);
    if (!cls || !sep)
        return err_set(e, ERR_FORMAT, "tokenizer_config.json: cls_token and sep_token are needed");
    json_t *p = json_pack(
        "{s:s, s:[o,o,o], s:[o,o,o,o,o], s:{s:o, s:o}}", "type", "TemplateProcessing", "single",
        slow_piece_special(cls, 0), slow_piece_seq("A", 0), slow_piece_special(sep, 0), "pair",
        slow_piece_special(cls, 0), slow_piece_seq("A", 0), slow_piece_special(sep, 0),
        slow_piece_seq("B", 1),
        slow_piece_special(sep, 1), "special_tokens", cls, slow_special_entry(s, cls, 2), sep,
        slow_special_entry(s, sep, 3));
    return p ? slow_set_new(s->doc, "post_processor", p, e)
             : err_set(e, ERR_NOMEM, "out of memory");
}

/* TemplateProcessing "[BOS:0] $A:0 [EOS:0]" / "... [BOS:1] $B:1 [EOS:1]" with add_bos_token
 * and add_eos_token (transformers' update_post_processor). */
int slow_post_bos_eos(struct slow *s, bool dflt_bos, bool dflt_eos, struct err *e)
{
    const char *bos = slow_special(s, SP_BOS), *eos = slow_special(s, SP_EOS);
    bool add_bos = bos && slow_config_bool(s, "add_bos_token", dflt_bos);
    bool add_eos = eos && slow_config_bool(s, "add_eos_token", dflt_eos);
    json_t *single = json_array(), *pair = json_array(), *sp = json_object();
    json_t *p = json_pack("{s:s, s:o, s:o, s:o}", "type", "TemplateProcessing", "single", single,
                          "pair", pair, "special_tokens", sp);
    if (!p)
        return err_set(e, ERR_NOMEM, "out of memory");
    for (int t = 0; t < 2; t++) {
        json_t *arr = t == 0 ? single : pair;
        for (int k = 0; k <= t; k++) {
            if (add_bos)
                json_array_append_new(arr, slow_piece_special(bos, k));
            json_array_append_new(arr, slow_piece_seq(k ? "B" : "A", k));
            if (add_eos)
                json_array_append_new(arr, slow_piece_special(eos, k));
        }
    }
    if (add_bos)
        json_object_set_new(sp, bos, slow_special_entry(s, bos, 0));
    if (add_eos)
        json_object_set_new(sp, eos, slow_special_entry(s, eos, 0));
    return slow_set_new(s->doc, "post_processor", p, e);
}

/* ---- BERT: vocab.txt ---- */

/* vocab.txt: one token a line, its line number is its id (a repeated token keeps the
 * last, as transformers' load_vocab does). */
static int model_wordpiece(struct slow *s, struct err *e)
{
    size_t len = 0;
    char *text;
    int rc = slow_slurp(s->dir, "vocab.txt", &text, &len, e);
    if (rc)
        return rc;
    json_t *m = json_pack("{s:s, s:s, s:s, s:i, s:{}}", "type", "WordPiece", "unk_token",
                          slow_special(s, SP_UNK) ? slow_special(s, SP_UNK) : "[UNK]",
                          "continuing_subword_prefix", "##", "max_input_chars_per_word", 100,
                          "vocab");
    rc = m ? slow_set_new(s->doc, "model", m, e) : err_set(e, ERR_NOMEM, "out of memory");
    s->vocab = json_object_get(m, "vocab");
    int32_t id = 0;
    for (char *p = text; rc == 0 && p < text + len; id++) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p));
        char *end = nl ? nl : text + len;
        json_t *tok = json_stringn(p, (size_t)(end - p));
        rc = tok ? slow_add_vocab(s, json_string_value(tok), id, e)
                 : err_set(e, ERR_FORMAT, "vocab.txt: line %d is not UTF-8", (int)id + 1);
        json_decref(tok);
        p = end + 1;
    }
    free(text);
    return rc;
}

static int bert_components(struct slow *s, struct err *e)
{
    json_t *strip = json_object_get(s->config, "strip_accents");
    json_t *n = json_pack("{s:s, s:b, s:b, s:O, s:b}", "type", "BertNormalizer", "clean_text", 1,
                          "handle_chinese_chars",
                          slow_config_bool(s, "tokenize_chinese_chars", true),
                          "strip_accents", json_is_boolean(strip) ? strip : json_null(),
                          "lowercase", slow_config_bool(s, "do_lower_case", true));
    int rc = n ? slow_set_new(s->doc, "normalizer", n, e) : err_set(e, ERR_NOMEM, "out of memory");
    if (rc == 0)
        rc = slow_set_new(s->doc, "pre_tokenizer",
                          json_pack("{s:s}", "type", "BertPreTokenizer"), e);
    if (rc == 0)
        rc = slow_set_new(s->doc, "decoder",
                     json_pack("{s:s, s:s, s:b}", "type", "WordPiece", "prefix", "##",
                               "cleanup", 1),
                     e);
    return rc ? rc : post_cls_sep(s, e);
}

/* transformers' BertConverter classes (BertTokenizer's defaults) */
static const char *const bert_classes[] = {
    "BertTokenizer", "DistilBertTokenizer", "ElectraTokenizer", "ConvBertTokenizer",
    "LayoutLMTokenizer", "LxmertTokenizer", "MobileBertTokenizer", "SqueezeBertTokenizer",
    "DPRReaderTokenizer", "DPRQuestionEncoderTokenizer", "DPRContextEncoderTokenizer", NULL};
static const struct family bert_families[] = {
    {bert_classes, {"[UNK]", NULL, NULL, "[SEP]", "[PAD]", "[CLS]", "[MASK]"}, NULL,
     bert_components},
};

/* ---- GPT-2 and RoBERTa: vocab.json + merges.txt ---- */

/* merges.txt: "a b" a line after an optional "#version" line; blank lines are skipped. */
static int read_merges(struct slow *s, json_t *merges, struct err *e)
{
    size_t len = 0;
    char *text;
    int rc = slow_slurp(s->dir, "merges.txt", &text, &len, e), line = 0;
    if (rc)
        return rc;
    for (char *p = text; rc == 0 && p < text + len; p++) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p));
        char *end = nl ? nl : text + len;
        line++;
        size_t n = (size_t)(end - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n > 0 && !(line == 1 && strncmp(p, "#version", 8) == 0)) {
            json_t *m = json_stringn(p, n);
            const char *sp = m ? strchr(json_string_value(m), ' ') : NULL;
            if (!sp || strchr(sp + 1, ' '))
                rc = err_set(e, ERR_FORMAT, "merges.txt: line %d is not two tokens 'a b'", line);
            else if (json_array_append(merges, m))
                rc = err_set(e, ERR_NOMEM, "out of memory");
            json_decref(m);
        }
        p = end;
    }
    free(text);
    return rc;
}

static int model_bpe(struct slow *s, struct err *e)
{
    json_t *vocab;
    int rc = load_object(s->dir, "vocab.json", true, &vocab, e);
    if (rc)
        return rc;
    json_t *m = json_pack("{s:s, s:n, s:n, s:s, s:s, s:b, s:b, s:b, s:o, s:[]}", "type", "BPE",
                          "dropout", "unk_token", "continuing_subword_prefix", "",
                          "end_of_word_suffix", "", "fuse_unk", 0, "byte_fallback", 0,
                          "ignore_merges", 0, "vocab", vocab, "merges");
    if (!m || (rc = slow_set_new(s->doc, "model", m, e)) != 0)
        return rc ? rc : err_set(e, ERR_NOMEM, "out of memory");
    s->vocab = vocab;
    const char *k;
    json_t *v;
    json_object_foreach(vocab, k, v)
    {
        if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) >= 1 << 30)
            return err_set(e, ERR_FORMAT, "vocab.json: '%s' needs an id >= 0", k);
        int32_t id = (int32_t)json_number_value(v);
        json_object_set_new(vocab, k, json_integer(id)); /* JSON_DECODE_INT_AS_REAL undone */
        if (id >= s->next_id)
            s->next_id = id + 1;
    }
    return read_merges(s, json_object_get(m, "merges"), e);
}

static json_t *byte_level(bool add_prefix_space, bool trim_offsets)
{
    return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space",
                     add_prefix_space, "trim_offsets", trim_offsets, "use_regex", 1);
}

static int byte_level_components(struct slow *s, struct err *e)
{
    int rc = slow_set_new(s->doc, "pre_tokenizer",
                     byte_level(slow_config_bool(s, "add_prefix_space", false), true), e);
    return rc ? rc : slow_set_new(s->doc, "decoder", byte_level(true, true), e);
}

static int gpt2_components(struct slow *s, struct err *e)
{
    int rc = byte_level_components(s, e);
    return rc ? rc : slow_post_bos_eos(s, false, false, e);
}

/* RobertaProcessing "<s> A </s>" / "<s> A </s></s> B </s>" with trim_offsets. */
static int roberta_components(struct slow *s, struct err *e)
{
    int rc = byte_level_components(s, e);
    const char *cls = slow_special(s, SP_CLS), *sep = slow_special(s, SP_SEP);
    if (rc || !cls || !sep)
        return rc ? rc : err_set(e, ERR_FORMAT, "cls_token and sep_token are needed");
    int32_t cls_id = slow_vocab_id(s, cls), sep_id = slow_vocab_id(s, sep);
    json_t *p = json_pack("{s:s, s:[s,i], s:[s,i], s:b, s:b}", "type", "RobertaProcessing", "sep",
                          sep, (int)sep_id, "cls", cls, (int)cls_id, "trim_offsets",
                          slow_config_bool(s, "trim_offsets", true), "add_prefix_space",
                          slow_config_bool(s, "add_prefix_space", false));
    return p ? slow_set_new(s->doc, "post_processor", p, e)
             : err_set(e, ERR_NOMEM, "out of memory");
}

static const char *const roberta_classes[] = {"RobertaTokenizer", "BartTokenizer",
                                              "LongformerTokenizer", "MarkupLMTokenizer", NULL};
/* Qwen2Tokenizer has vocab.json + merges.txt too, but NFC and its own split pattern: not the
 * GPT-2 family, so not a class here (its tokenizer.json is needed) */
static const char *const gpt2_classes[] = {"GPT2Tokenizer", NULL};
static const struct family bpe_families[] = {
    {roberta_classes, {"<unk>", "<s>", "</s>", "</s>", "<pad>", "<s>", "<mask>"}, NULL,
     roberta_components},
    {gpt2_classes, {"<|endoftext|>", "<|endoftext|>", "<|endoftext|>"}, NULL, gpt2_components},
};

/* ---- the converters, in order of preference ---- */

static const struct converter converters[] = {
    {{"vocab.txt", NULL}, "vocab.txt", model_wordpiece, bert_families, 1, NULL},
    {{"source.spm", "vocab.json"}, "source.spm + vocab.json", slow_marian_model,
     slow_marian_families, 1, "MarianTokenizer"},
    {{"sentencepiece.bpe.model", "vocab.json"}, "sentencepiece.bpe.model + vocab.json",
     slow_m2m100_model, slow_m2m100_families, 1, "M2M100Tokenizer"},
    {{"vocab.json", "merges.txt"}, "vocab.json + merges.txt", model_bpe, bpe_families, 2, NULL},
    /* sentencepiece models, each file name with the class whose name it is */
    {{"spiece.model", NULL}, "spiece.model", slow_spm_model, slow_spm_families,
     SLOW_SPM_N_FAMILIES, "T5Tokenizer"},
    {{"sentencepiece.bpe.model", NULL}, "sentencepiece.bpe.model", slow_spm_model,
     slow_spm_families, SLOW_SPM_N_FAMILIES, "XLMRobertaTokenizer"},
    {{"spm.model", NULL}, "spm.model", slow_spm_model, slow_spm_families, SLOW_SPM_N_FAMILIES,
     "DebertaV2Tokenizer"},
    {{"tokenizer.model", NULL}, "tokenizer.model", slow_spm_model, slow_spm_families,
     SLOW_SPM_N_FAMILIES, "LlamaTokenizer"},
};
#define N_CONVERTERS (sizeof converters / sizeof converters[0])

static const struct converter *find_converter(const char *dir)
{
    for (size_t i = 0; i < N_CONVERTERS; i++) {
        const struct converter *c = &converters[i];
        if (has_file(dir, c->files[0]) && (!c->files[1] || has_file(dir, c->files[1])))
            return c;
    }
    return NULL;
}

static int not_found(const char *dir, struct err *e)
{
    char list[256] = "";
    for (size_t i = 0; i < N_CONVERTERS; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                 converters[i].what);
    return err_set(e, ERR_NOT_FOUND,
                   "%s/tokenizer.json: no such file, nor slow-tokenizer files (%s)", dir, list);
}

/* The supported classes of c, "A, B, ..." in buf. */
static void class_list(const struct converter *c, char *buf, size_t size)
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t f = 0; f < c->n_families; f++)
        for (const char *const *k = c->families[f].classes; k && *k && at < size; k++)
            at += (size_t)snprintf(buf + at, size - at, "%s%s", at ? ", " : "", *k);
}

/* The family for tokenizer_config.json's tokenizer_class ("...Fast" too), else the
 * converter's default class, else the last family. A class no family lists is an error
 * naming it: another converter (Qwen2Tokenizer's NFC and split pattern) would give other ids,
 * never silently the nearest family's. */
static const struct family *pick_family(const struct converter *c, const json_t *config,
                                        struct err *e)
{
    const char *cls = json_string_value(json_object_get(config, "tokenizer_class"));
    if (!cls)
        cls = c->default_class;
    if (!cls)
        return &c->families[c->n_families - 1];
    size_t n = strlen(cls);
    if (n > 4 && strcmp(cls + n - 4, "Fast") == 0)
        n -= 4;
    for (size_t f = 0; f < c->n_families; f++)
        for (const char *const *k = c->families[f].classes; k && *k; k++)
            if (strlen(*k) == n && strncmp(*k, cls, n) == 0)
                return &c->families[f];
    char list[1024];
    class_list(c, list, sizeof list);
    err_set(e, ERR_FORMAT,
            "tokenizer_config.json's tokenizer_class \"%.80s\" is not supported from these "
            "files (supported: %s); give the model's tokenizer.json",
            cls, list);
    return NULL;
}

static int convert(struct slow *s, const struct converter *c, struct err *e)
{
    json_t *map = NULL;
    int rc = load_object(s->dir, "tokenizer_config.json", false, &s->config, e);
    if (rc == 0)
        rc = load_object(s->dir, "special_tokens_map.json", false, &map, e);
    const struct family *f = rc ? NULL : pick_family(c, s->config, e);
    if (rc == 0 && !f)
        rc = ERR_FORMAT;
    s->family = f;
    s->file = c->files[0];
    if (rc == 0)
        rc = resolve_specials(s, map, f, e);
    json_decref(map);
    if (rc == 0 && !(s->doc = json_pack("{s:s, s:n, s:n}", "version", "1.0", "truncation",
                                        "padding")))
        rc = err_set(e, ERR_NOMEM, "out of memory");
    if (rc == 0)
        rc = c->model(s, e);
    if (rc == 0)
        rc = add_specials(s, e);
    return rc ? rc : f->components(s, e);
}

int slow_tokenizer_convert(const char *dir, json_t **doc, json_t **config, struct err *e)
{
    *doc = *config = NULL;
    const struct converter *c = find_converter(dir);
    if (!c)
        return not_found(dir, e);
    struct slow s = {.dir = dir};
    int rc = convert(&s, c, e);
    json_decref(s.lookup);
    json_decref(s.added);
    if (s.spm)
        spm_model_free(s.spm);
    free(s.spm);
    if (rc) {
        json_decref(s.doc);
        json_decref(s.config);
        err_prefix(e, "%s: converting %s: ", dir, c->what);
        return rc;
    }
    *doc = s.doc;
    *config = s.config;
    return 0;
}
