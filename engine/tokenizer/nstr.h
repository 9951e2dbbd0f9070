/* nstr: the normalized string of Hugging Face tokenizers (NormalizedString).
 * It owns a normalized UTF-8 buffer and, for every byte of it, the range of the
 * ORIGINAL input (absolute byte offsets into the text given to tokenizer_encode)
 * that produced it. Normalizers and pre-tokenizers change the text only through
 * nstr_transform*, nstr_replace and nstr_split so that token offsets can always be
 * traced back to the input, with exactly HF's alignment rules. */
#ifndef INFERD_NSTR_H
#define INFERD_NSTR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nspan {
    uint32_t start, end; /* original byte range, absolute */
};

struct nstr {
    char *s; /* normalized text, NUL-terminated, len bytes */
    size_t len, cap;
    struct nspan *align; /* len entries: align[i] = original range of byte i */
    uint32_t orig_start; /* offsets_original(): the original range this string covers */
    uint32_t orig_end;
};

/* One step of a transformation, as HF's (char, isize) pairs:
 * change == 0: cp replaces the next input char; change > 0: cp is inserted
 * (aligned like the char before it); change < 0: cp replaces the next char and
 * the -change chars after it are removed. */
struct nchange {
    uint32_t cp;
    int32_t change;
};

struct nchange_vec {
    struct nchange *v;
    size_t n, cap;
};

/* A piece of a string found by a pattern: [start, end) in normalized bytes. */
struct nmatch {
    uint32_t start, end;
    bool is_match;
};

struct nmatch_vec {
    struct nmatch *v;
    size_t n, cap;
};

enum split_behavior {
    SPLIT_REMOVED,
    SPLIT_ISOLATED,
    SPLIT_MERGED_WITH_PREVIOUS,
    SPLIT_MERGED_WITH_NEXT,
    SPLIT_CONTIGUOUS,
};

struct nstr_vec {
    struct nstr *v;
    size_t n, cap;
};

/* Builds an nstr over text[0..len) whose original offsets start at base
 * (every byte aligned to its whole code point, as HF does). */
int nstr_init(struct nstr *ns, const char *text, size_t len, uint32_t base);
void nstr_fini(struct nstr *ns);
/* Moves src into dst (dst must be uninitialised or finalised); src becomes empty. */
void nstr_move(struct nstr *dst, struct nstr *src);

/* dst = the normalized byte range [start, end) of src (HF slice(Range::Normalized)).
 * start and end must be on char boundaries. */
int nstr_slice(const struct nstr *src, size_t start, size_t end, struct nstr *dst);

/* Original range of normalized bytes [start, end) (HF convert_offsets + shift). */
struct nspan nstr_original_span(const struct nstr *ns, size_t start, size_t end);

/* HF transform_range over normalized bytes [start, end): the chars there are
 * replaced by dest (n steps); initial_offset chars at the start are removed first. */
int nstr_transform_range(struct nstr *ns, size_t start, size_t end, const struct nchange *dest,
                         size_t n, size_t initial_offset);
int nstr_transform(struct nstr *ns, const struct nchange *dest, size_t n, size_t initial_offset);

/* Common transformations, each exactly as the HF NormalizedString method of that name. */
int nstr_map(struct nstr *ns, uint32_t (*fn)(uint32_t cp, void *ctx), void *ctx);
int nstr_filter(struct nstr *ns, bool (*keep)(uint32_t cp, void *ctx), void *ctx);
int nstr_prepend(struct nstr *ns, const char *s);
int nstr_append(struct nstr *ns, const char *s);
int nstr_lrstrip(struct nstr *ns, bool left, bool right);
/* Replaces every match (is_match) found in ns by content (HF replace). */
int nstr_replace(struct nstr *ns, const struct nmatch_vec *m, const char *content);

/* Patterns (HF Pattern::find_matches): the returned pieces cover the whole string. */
int nstr_find_char(const struct nstr *ns, bool (*pred)(uint32_t cp, void *ctx), void *ctx,
                   struct nmatch_vec *out);
int nstr_find_string(const struct nstr *ns, const char *lit, size_t lit_len,
                     struct nmatch_vec *out);
struct pcre2_real_code_8;
int nstr_find_regex(const struct nstr *ns, const struct pcre2_real_code_8 *re,
                    struct nmatch_vec *out);
void nmatch_invert(struct nmatch_vec *m);

/* HF split(pattern, behavior): appends the non-empty resulting slices to out. */
int nstr_split(const struct nstr *ns, const struct nmatch_vec *m, enum split_behavior behavior,
               struct nstr_vec *out);

/* Vectors. _push copies nothing: it moves *ns into the vector. */
int nchange_push(struct nchange_vec *v, uint32_t cp, int32_t change);
void nchange_vec_fini(struct nchange_vec *v);
int nmatch_push(struct nmatch_vec *v, uint32_t start, uint32_t end, bool is_match);
void nmatch_vec_fini(struct nmatch_vec *v);
int nstr_vec_push(struct nstr_vec *v, struct nstr *ns);
void nstr_vec_fini(struct nstr_vec *v); /* finalises every element */

#endif
