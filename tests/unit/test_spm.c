/* test_spm: the sentencepiece model reader (tokenizer/spm_proto.c) on real model files and on
 * hostile ones. The real files are tokenizers-spm.tar.xz's (written by sentencepiece's own
 * sentencepiece_model_pb2, tools/refgen/spm_tokenizers.py): every field the converters use
 * must come out as sentencepiece wrote it, and every cut of a file inside a field must be
 * refused. Hand-made files (a small protobuf writer below) cover each malformation the reader
 * refuses: lengths and varints past the end, groups, wrong wire types, NUL or non-UTF-8
 * pieces, repeated pieces, non-finite scores, unknown piece and model types, unk_id out of
 * range; and tokenizer_load names the file of a model it refuses. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "suites.h"
#include "support/support.h"
#include "tokenizer/spm_proto.h"
#include "tokenizer/tokenizer.h"

/* ---- a small protobuf writer ---- */

struct buf {
    uint8_t b[1 << 16];
    size_t n;
};

static void put_varint(struct buf *w, uint64_t v)
{
    do {
        w->b[w->n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
}

static void put_tag(struct buf *w, uint32_t field, int type)
{
    put_varint(w, (uint64_t)field << 3 | (uint64_t)type);
}

static void put_bytes(struct buf *w, uint32_t field, const void *p, size_t n)
{
    put_tag(w, field, 2);
    put_varint(w, n);
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void put_float(struct buf *w, uint32_t field, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put_tag(w, field, 5);
    for (int i = 0; i < 4; i++)
        w->b[w->n++] = (uint8_t)(u >> (8 * i));
}

/* A SentencePiece message as field 1 of the model. */
static void put_piece(struct buf *w, const char *piece, size_t len, float score, int type)
{
    static struct buf p;
    p.n = 0;
    put_bytes(&p, 1, piece, len);
    put_float(&p, 2, score);
    put_tag(&p, 3, 0);
    put_varint(&p, (uint64_t)type);
    put_bytes(w, 1, p.b, p.n);
}

/* <unk> <s> </s> a b ab, a trainer_spec (model_type, byte_fallback, ids) and a
 * normalizer_spec with add_dummy_prefix false and, when charsmap, a 3-byte charsmap (not a
 * valid one: the Precompiled normalizer refuses it). */
static void small_model(struct buf *w, int model_type, bool charsmap)
{
    w->n = 0;
    put_piece(w, "<unk>", 5, 0, SPM_UNKNOWN);
    put_piece(w, "<s>", 3, 0, SPM_CONTROL);
    put_piece(w, "</s>", 4, 0, SPM_CONTROL);
    put_piece(w, "a", 1, -1.5f, SPM_NORMAL);
    put_piece(w, "b", 1, -2.5f, SPM_NORMAL);
    put_piece(w, "\xe2\x96\x81" "ab", 5, -3.0f, SPM_USER_DEFINED);
    struct buf t = {.n = 0};
    put_tag(&t, 3, 0);
    put_varint(&t, (uint64_t)model_type);
    put_tag(&t, 35, 0);
    put_varint(&t, 1);
    put_tag(&t, 43, 0);
    put_varint(&t, UINT64_MAX); /* pad_id -1, as protobuf writes a negative int32 */
    put_bytes(w, 2, t.b, t.n);
    struct buf n = {.n = 0};
    if (charsmap)
        put_bytes(&n, 2, "xyz", 3);
    put_tag(&n, 3, 0);
    put_varint(&n, 0);
    put_bytes(&n, 99, "skipped", 7);
    put_bytes(w, 3, n.b, n.n);
}

static int parse(const struct buf *w, struct spm_model *m, struct err *e)
{
    return spm_model_parse(w->b, w->n, m, e);
}

START_TEST(small_model_fields)
{
    struct buf w;
    small_model(&w, SPM_BPE, true);
    struct spm_model m;
    struct err e = {0};
    ck_assert_msg(parse(&w, &m, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(m.n_pieces, 6);
    ck_assert_str_eq(m.pieces[5].text, "\xe2\x96\x81" "ab");
    ck_assert_int_eq(m.pieces[5].type, SPM_USER_DEFINED);
    ck_assert(m.pieces[4].score == -2.5f);
    ck_assert_int_eq(m.model_type, SPM_BPE);
    ck_assert(m.byte_fallback);
    ck_assert_int_eq(m.unk_id, 0);
    ck_assert_int_eq(m.bos_id, 1); /* the proto defaults where not given */
    ck_assert_int_eq(m.pad_id, -1);
    ck_assert_uint_eq(m.charsmap_len, 3);
    ck_assert_mem_eq(m.charsmap, "xyz", 3);
    ck_assert(!m.add_dummy_prefix);
    ck_assert(m.remove_extra_whitespaces);
    spm_model_free(&m);
}
END_TEST

/* Every prefix of the small model: refused unless it ends between two fields of the model
 * (then a valid, shorter model); never a crash (ASan/valgrind runs see the reads). */
START_TEST(small_model_every_cut)
{
    struct buf w;
    small_model(&w, SPM_UNIGRAM, true);
    int refused = 0;
    for (size_t n = 0; n < w.n; n++) {
        struct spm_model m;
        struct err e = {0};
        int rc = spm_model_parse(w.b, n, &m, &e);
        ck_assert_msg(rc == 0 || rc == ERR_FORMAT, "cut at %zu: %d %s", n, rc, e.msg);
        refused += rc != 0;
        if (rc == 0)
            spm_model_free(&m);
    }
    ck_assert_int_gt(refused, (int)w.n - 10);
}
END_TEST

static const char *spm_file(const char *name, const char *file)
{
    static char path[800];
    snprintf(path, sizeof path, "%s/tokenizers-spm/%s/%s",
             fixture_dir("tokenizers-spm.tar.xz"), name, file);
    return path;
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    ck_assert_uint_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* The fixtures' models as sentencepiece wrote them (spm_tokenizers.py builds them). */
START_TEST(real_models)
{
    size_t len;
    uint8_t *b = read_all(spm_file("llama", "tokenizer.model"), &len);
    struct spm_model m;
    struct err e = {0};
    ck_assert_msg(spm_model_parse(b, len, &m, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(m.n_pieces, 32000);
    ck_assert_int_eq(m.model_type, SPM_BPE);
    ck_assert(m.byte_fallback);
    ck_assert_int_eq(m.pieces[3].type, SPM_BYTE);
    ck_assert_str_eq(m.pieces[3].text, "<0x00>");
    ck_assert_int_eq(m.pieces[2].type, SPM_CONTROL);
    ck_assert_ptr_null(m.charsmap);
    ck_assert(!m.remove_extra_whitespaces);
    spm_model_free(&m);
    /* a cut inside the last piece, inside the specs, inside the first piece */
    size_t cuts[] = {len - 1, len - 7, 5, 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        ck_assert_int_eq(spm_model_parse(b, cuts[i], &m, &e), ERR_FORMAT);
        ck_assert_msg(strstr(e.msg, "truncated") != NULL, "%s", e.msg);
    }
    free(b);
    b = read_all(spm_file("xlmr", "sentencepiece.bpe.model"), &len);
    ck_assert_msg(spm_model_parse(b, len, &m, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(m.model_type, SPM_UNIGRAM);
    ck_assert_int_eq(m.pad_id, -1);
    ck_assert_int_eq(m.pieces[0].type, SPM_UNKNOWN);
    ck_assert_uint_gt(m.charsmap_len, 1000);
    ck_assert(isfinite(m.pieces[100].score) && m.pieces[100].score < 0);
    spm_model_free(&m);
    free(b);
}
END_TEST

/* One hostile model: its bytes and a phrase the error must contain. */
static void refused(const struct buf *w, const char *phrase)
{
    struct spm_model m;
    struct err e = {0};
    ck_assert_int_eq(parse(w, &m, &e), ERR_FORMAT);
    ck_assert_msg(strstr(e.msg, phrase) != NULL, "'%s' not in: %s", phrase, e.msg);
    ck_assert_ptr_null(m.pieces);
}

START_TEST(hostile_models)
{
    struct buf w = {.n = 0};
    refused(&w, "no pieces");
    put_piece(&w, "a", 1, 0, SPM_NORMAL);
    put_piece(&w, "a", 1, 0, SPM_NORMAL);
    refused(&w, "'a' is given twice");
    w.n = 0;
    put_piece(&w, "a\0b", 3, 0, SPM_NORMAL);
    refused(&w, "NUL");
    w.n = 0;
    put_piece(&w, "\xff", 1, 0, SPM_NORMAL);
    refused(&w, "UTF-8");
    w.n = 0;
    put_piece(&w, "", 0, 0, SPM_NORMAL);
    refused(&w, "empty");
    w.n = 0;
    put_piece(&w, "a", 1, NAN, SPM_NORMAL);
    refused(&w, "finite");
    w.n = 0;
    put_piece(&w, "a", 1, INFINITY, SPM_NORMAL);
    refused(&w, "finite");
    w.n = 0;
    put_piece(&w, "a", 1, 0, 7);
    refused(&w, "unknown type 7");
    w.n = 0;
    put_piece(&w, "a", 1, 0, SPM_NORMAL);
    struct buf t = {.n = 0};
    put_tag(&t, 3, 0);
    put_varint(&t, 3); /* WORD */
    put_bytes(&w, 2, t.b, t.n);
    refused(&w, "model_type 3");
    w.n = 0;
    put_piece(&w, "a", 1, 0, SPM_NORMAL);
    t.n = 0;
    put_tag(&t, 40, 0);
    put_varint(&t, 5);
    put_bytes(&w, 2, t.b, t.n);
    refused(&w, "unk_id 5");
    w.n = 0;
    put_tag(&w, 1, 2);
    put_varint(&w, 1000); /* a length past the end */
    refused(&w, "truncated");
    w.n = 0;
    put_tag(&w, 1, 2);
    for (int i = 0; i < 11; i++)
        w.b[w.n++] = 0xff; /* a varint of more than 10 bytes */
    refused(&w, "truncated or malformed");
    w.n = 0;
    put_tag(&w, 7, 3); /* a group */
    refused(&w, "wire type 3");
    w.n = 0;
    put_tag(&w, 1, 0); /* pieces as a varint */
    put_varint(&w, 1);
    refused(&w, "ModelProto.pieces");
    w.n = 0;
    w.b[w.n++] = 0; /* field 0 */
    refused(&w, "invalid field tag");
    w.n = 0;
    struct buf p = {.n = 0};
    put_tag(&p, 2, 0); /* a score as a varint */
    put_varint(&p, 1);
    put_bytes(&w, 1, p.b, p.n);
    refused(&w, "SentencePiece.score");
}
END_TEST

/* A directory whose model is refused: ERR_FORMAT naming the directory and the file. */
START_TEST(load_refuses_a_bad_model)
{
    char dir[700], path[800];
    snprintf(dir, sizeof dir, "%s/bad-spm", temp_dir());
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/spiece.model", dir);
    struct buf w;
    small_model(&w, SPM_UNIGRAM, false);
    FILE *f = fopen(path, "wb");
    ck_assert_uint_eq(fwrite(w.b, 1, w.n - 2, f), w.n - 2);
    fclose(f);
    struct tokenizer *tk = NULL;
    struct err e = {0};
    ck_assert_int_eq(tokenizer_load(dir, &tk, &e), ERR_FORMAT);
    ck_assert_ptr_null(tk);
    ck_assert_msg(strstr(e.msg, dir) && strstr(e.msg, "spiece.model") &&
                      strstr(e.msg, "truncated"),
                  "%s", e.msg);
    /* the whole file loads, as T5 (the class spiece.model is named for) */
    f = fopen(path, "wb");
    ck_assert_uint_eq(fwrite(w.b, 1, w.n, f), w.n);
    fclose(f);
    ck_assert_msg(tokenizer_load(dir, &tk, &e) == 0, "%s", e.msg);
    tokenizer_free(tk);
    /* with the invalid charsmap, the Precompiled normalizer's own error */
    small_model(&w, SPM_UNIGRAM, true);
    f = fopen(path, "wb");
    ck_assert_uint_eq(fwrite(w.b, 1, w.n, f), w.n);
    fclose(f);
    ck_assert_int_eq(tokenizer_load(dir, &tk, &e), ERR_FORMAT);
    ck_assert_msg(strstr(e.msg, "precompiled_charsmap") != NULL, "%s", e.msg);
}
END_TEST

/* A BPE model whose pieces would take minutes to generate merges from is refused. */
START_TEST(load_refuses_overlong_bpe_pieces)
{
    char dir[700], path[800];
    snprintf(dir, sizeof dir, "%s/long-bpe", temp_dir());
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/tokenizer.model", dir);
    static struct buf w;
    static char piece[33000];
    memset(piece, 'a', sizeof piece);
    w.n = 0;
    put_piece(&w, "<unk>", 5, 0, SPM_UNKNOWN);
    put_piece(&w, piece, sizeof piece, -1, SPM_NORMAL);
    FILE *f = fopen(path, "wb");
    ck_assert_uint_eq(fwrite(w.b, 1, w.n, f), w.n);
    fclose(f);
    struct tokenizer *tk = NULL;
    struct err e = {0};
    ck_assert_int_eq(tokenizer_load(dir, &tk, &e), ERR_FORMAT);
    ck_assert_msg(strstr(e.msg, "tokenizer.model: the pieces are too long") != NULL, "%s",
                  e.msg);
}
END_TEST

Suite *suite_spm(void)
{
    Suite *s = suite_create("spm");
    TCase *tc = tcase_create("spm_proto");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, small_model_fields);
    tcase_add_test(tc, small_model_every_cut);
    tcase_add_test(tc, real_models);
    tcase_add_test(tc, hostile_models);
    tcase_add_test(tc, load_refuses_a_bad_model);
    tcase_add_test(tc, load_refuses_overlong_bpe_pieces);
    suite_add_tcase(s, tc);
    return s;
}
