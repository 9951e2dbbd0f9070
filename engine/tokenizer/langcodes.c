/* langcodes: the translation inputs of the tokenizers that take language codes, as their
 * transformers classes build them in _build_translation_inputs (TranslationPipeline's
 * preprocess): the source language's code token around the text, and the target language's
 * code token id as generate()'s forced_bos_token_id. One row a tokenizer class (the
 * tokenizer_config.json tokenizer_class, "Fast" or not):
 *   NllbTokenizer     "[src] $A </s>"; with legacy_behaviour "$A </s> [src]"
 *   M2M100Tokenizer   "[__src__] $A </s>" (the code is the language wrapped in "__")
 *   MBartTokenizer    "$A </s> [src]"
 *   MBart50Tokenizer  "[src] $A </s>"
 * A code must be a special token of the tokenizer (the classes add their codes so; M2M100's
 * slow tokenizer makes them special only when additional_special_tokens lists them, so there
 * any "__xx__" token of the vocabulary): transformers takes any token, and an unknown one as
 * the unk id, without a word; here those are errors naming the parameter. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

struct lang_family {
    const char *cls;
    const char *fmt;          /* the code token of a language */
    bool suffix;              /* the source code after </s> rather than before the text */
    const char *legacy_key;   /* a config flag that moves it after </s> (NULL: none) */
    bool plain;               /* a code may be a plain token (not special) */
};

static const struct lang_family lang_families[] = {
    {"NllbTokenizer", "%s", false, "legacy_behaviour", false},
    {"M2M100Tokenizer", "__%s__", false, NULL, true},
    {"MBartTokenizer", "%s", true, NULL, false},
    {"MBart50Tokenizer", "%s", false, NULL, false},
};

static const struct lang_family *family_of(const struct tokenizer *tk)
{
    const char *cls = tokenizer_config_str(tk, "tokenizer_class");
    size_t n = cls ? strlen(cls) : 0;
    if (n > 4 && strcmp(cls + n - 4, "Fast") == 0)
        n -= 4;
    for (size_t i = 0; cls && i < sizeof lang_families / sizeof lang_families[0]; i++)
        if (strlen(lang_families[i].cls) == n && strncmp(lang_families[i].cls, cls, n) == 0)
            return &lang_families[i];
    return NULL;
}

bool tokenizer_has_language_codes(const struct tokenizer *tk)
{
    return family_of(tk) != NULL;
}

/* Whether tok is one of the named special tokens (</s>, <pad>, ...), no language. */
static bool named_special(const struct tokenizer *tk, const char *tok)
{
    static const char *const keys[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                       "pad_token", "cls_token", "mask_token"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = tokenizer_config_str(tk, keys[i]);
        if (v && strcmp(v, tok) == 0)
            return true;
    }
    return false;
}

/* The id of language `lang` (parameter `param`): ERR_INVALID when its code is no special
 * token of the tokenizer or one of the named ones. */
static int lang_id(const struct tokenizer *tk, const struct lang_family *f, const char *param,
                   const char *lang, int32_t *id, struct err *e)
{
    char tok[128];
    int32_t unk = -1;
    const char *unk_tok = tokenizer_config_str(tk, "unk_token");
    if (unk_tok)
        unk = tokenizer_token_to_id(tk, unk_tok);
    if (!lang)
        return err_set(e, ERR_INVALID,
                       "Translation requires a `src_lang` and a `tgt_lang` for this model");
    int w = snprintf(tok, sizeof tok, f->fmt, lang);
    *id = w > 0 && (size_t)w < sizeof tok && lang[0] ? tokenizer_token_to_id(tk, tok) : -1;
    if (*id < 0 || *id == unk || (!f->plain && !tokenizer_is_special(tk, *id)) ||
        named_special(tk, tok))
        return err_set(e, ERR_INVALID, "`%s` '%.60s' is not a language code of this model's "
                       "tokenizer", param, lang);
    return 0;
}

int tokenizer_translation_encode(const struct tokenizer *tk, const char *text, size_t len,
                                 const char *src_lang, const char *tgt_lang, size_t max_length,
                                 int32_t **ids, size_t *n, int32_t *forced_bos, struct err *e)
{
    *ids = NULL;
    *n = 0;
    const struct lang_family *f = family_of(tk);
    if (!f)
        return err_set(e, ERR_INVALID, "this model's tokenizer takes no language codes");
    int32_t src, eos;
    const char *eos_tok = tokenizer_config_str(tk, "eos_token");
    int rc = lang_id(tk, f, "src_lang", src_lang, &src, e);
    if (rc == 0)
        rc = lang_id(tk, f, "tgt_lang", tgt_lang, forced_bos, e);
    if (rc)
        return rc;
    eos = tokenizer_token_to_id(tk, eos_tok ? eos_tok : "</s>");
    if (eos < 0)
        return err_set(e, ERR_INVALID, "the tokenizer's eos token is not in its vocabulary");
    bool suffix = f->suffix || (f->legacy_key && tokenizer_config_bool(tk, f->legacy_key, false));
    struct tokenizer_params p = tokenizer_params_default(tk);
    p.add_special_tokens = false;
    p.padding = PAD_NONE;
    p.truncation = max_length > 2;
    if (p.truncation)
        p.max_length = max_length - 2;
    struct encodings enc = {0};
    if ((rc = tokenizer_encode(tk, text, len, NULL, 0, &p, &enc, e)) != 0)
        return rc;
    const struct encoding *x = &enc.v[0];
    int32_t *out = malloc((x->n + 2) * sizeof *out);
    if (!out) {
        encodings_fini(&enc);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    size_t k = 0;
    if (!suffix)
        out[k++] = src;
    if (x->n) /* an empty text has no ids (x->ids may be NULL) */
        memcpy(out + k, x->ids, x->n * sizeof *out);
    k += x->n;
    out[k++] = eos;
    if (suffix)
        out[k++] = src;
    encodings_fini(&enc);
    *ids = out;
    *n = k;
    return 0;
}
