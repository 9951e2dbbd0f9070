/* test_torch_bin: the restricted pickle reader and the torch.save zip reader on checkpoints
 * written here: pickles assembled opcode by opcode (what torch.save writes, then hostile
 * ones: GLOBAL os.system and builtins.eval, REDUCE of a storage type or of a string, opcodes a
 * state dict never has, views past their storage, absurd sizes, memo abuse), zipped with
 * libzip or byte by byte (overlapping stored entries), and real files cut short. Every hostile
 * one must be ERR_FORMAT with a message naming what was refused. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "loader/checkpoint.h"
#include "loader/pickle.h"
#include "suites.h"
#include "support/support.h"

#ifndef INFERD_SOURCE_DIR
#define INFERD_SOURCE_DIR "."
#endif

/* ---- a pickle builder ---- */

struct pk {
    unsigned char b[4096];
    size_t n;
};

static void raw(struct pk *p, const void *s, size_t n)
{
    ck_assert_uint_le(p->n + n, sizeof p->b);
    memcpy(p->b + p->n, s, n);
    p->n += n;
}

static void op(struct pk *p, unsigned char c)
{
    raw(p, &c, 1);
}

static void le32(struct pk *p, uint32_t v)
{
    unsigned char b[4] = {v & 255, v >> 8 & 255, v >> 16 & 255, v >> 24 & 255};
    raw(p, b, 4);
}

static void str(struct pk *p, const char *s)
{
    op(p, 'X');
    le32(p, (uint32_t)strlen(s));
    raw(p, s, strlen(s));
}

static void glob(struct pk *p, const char *module, const char *name)
{
    op(p, 'c');
    raw(p, module, strlen(module));
    op(p, '\n');
    raw(p, name, strlen(name));
    op(p, '\n');
}

static void num(struct pk *p, uint32_t v)
{
    if (v < 256) {
        op(p, 'K');
        op(p, (unsigned char)v);
    } else if (v < 0x80000000u) {
        op(p, 'J');
        le32(p, v);
    } else { /* LONG1: 4 bytes and a sign byte, as pickle writes a large positive int */
        op(p, 0x8a);
        op(p, 5);
        le32(p, v);
        op(p, 0);
    }
}

/* A view of a storage: _rebuild_tensor_v2((storage, stype, key, 'cpu', numel), offset,
 * shape, stride, False, OrderedDict()), as torch writes it. */
struct view {
    const char *stype, *key;
    uint32_t numel, offset;
    int n_dims;
    uint32_t shape[3], stride[3];
};

static void tensor(struct pk *p, const struct view *v)
{
    glob(p, "torch._utils", "_rebuild_tensor_v2");
    op(p, '(');
    op(p, '(');
    str(p, "storage");
    glob(p, "torch", v->stype);
    str(p, v->key);
    str(p, "cpu");
    num(p, v->numel);
    op(p, 't');
    op(p, 'Q');
    num(p, v->offset);
    op(p, '(');
    for (int d = 0; d < v->n_dims; d++)
        num(p, v->shape[d]);
    op(p, 't');
    op(p, '(');
    for (int d = 0; d < v->n_dims; d++)
        num(p, v->stride[d]);
    op(p, 't');
    op(p, 0x89);
    glob(p, "collections", "OrderedDict");
    op(p, ')');
    op(p, 'R');
    op(p, 't');
    op(p, 'R');
}

/* {names[i]: views[i]} as an OrderedDict, protocol 2. */
static void state_dict(struct pk *p, int n, const char *const *names, const struct view *views)
{
    op(p, 0x80);
    op(p, 2);
    glob(p, "collections", "OrderedDict");
    op(p, ')');
    op(p, 'R');
    op(p, 'q');
    op(p, 0);
    op(p, '(');
    for (int i = 0; i < n; i++) {
        str(p, names[i]);
        tensor(p, &views[i]);
    }
    op(p, 'u');
    op(p, '.');
}

/* ---- zips ---- */

struct entry {
    const char *name;
    const void *data;
    size_t size;
};

/* DIR/pytorch_model.bin holding archive/data.pkl = pkl, archive/byteorder = "little" and
 * archive/data/KEY for each storage, all stored uncompressed (deflated when deflate). */
static void write_zip(const char *dir, const struct pk *pkl, const struct entry *st, int n,
                      int deflate)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/pytorch_model.bin", dir);
    int err = 0;
    zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
    ck_assert_ptr_nonnull(za);
    struct entry all[8] = {{"archive/data.pkl", pkl->b, pkl->n}, {"archive/byteorder", "little", 6}};
    for (int i = 0; i < n; i++)
        all[2 + i] = st[i];
    for (int i = 0; i < n + 2; i++) {
        zip_source_t *s = zip_source_buffer(za, all[i].data, all[i].size, 0);
        zip_int64_t idx = zip_file_add(za, all[i].name, s, ZIP_FL_ENC_UTF_8);
        ck_assert_int_ge(idx, 0);
        zip_set_file_compression(za, (zip_uint64_t)idx, deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
    }
    ck_assert_int_eq(zip_close(za), 0);
}

static struct checkpoint *open_ok(const char *dir)
{
    struct checkpoint *ck = NULL;
    struct err e = {0};
    ck_assert_msg(checkpoint_open(dir, &ck, &e) == 0, "%s", e.msg);
    ck_assert_str_eq(checkpoint_format(ck), "pytorch");
    return ck;
}

/* dir's checkpoint fails with ERR_FORMAT and a message containing want. */
static void expect_refused(const char *dir, const char *want)
{
    struct checkpoint *ck = NULL;
    struct err e = {0};
    int rc = checkpoint_open(dir, &ck, &e);
    ck_assert_msg(rc == ERR_FORMAT, "rc %d (%s), want ERR_FORMAT: %s", rc, err_kind_name(rc),
                  e.msg);
    ck_assert_ptr_null(ck);
    ck_assert_msg(strstr(e.msg, want), "message '%s' lacks '%s'", e.msg, want);
}

/* A pickle alone (one storage "0" of 12 floats beside it) that must be refused. */
static void expect_pickle_refused(const struct pk *p, const char *want)
{
    static float data[12];
    const char *dir = temp_dir();
    struct entry st = {"archive/data/0", data, sizeof data};
    write_zip(dir, p, &st, 1, 0);
    expect_refused(dir, want);
}

static const float twelve[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};

/* ---- what torch writes ---- */

START_TEST(views_offsets_and_shared_storage)
{
    /* a: (2, 2) at offset 0; b: (2, 3) at offset 1 with strides (1, 2): b[i][j] = 1 + i + 2j;
     * c: the same storage again as (12) */
    const char *names[] = {"a", "b", "c"};
    const struct view v[] = {{"FloatStorage", "0", 12, 0, 2, {2, 2}, {2, 1}},
                             {"FloatStorage", "0", 12, 1, 2, {2, 3}, {1, 2}},
                             {"FloatStorage", "0", 12, 0, 1, {12}, {1}}};
    struct pk p = {0};
    state_dict(&p, 3, names, v);
    for (int deflate = 0; deflate < 2; deflate++) {
        const char *dir = temp_dir();
        struct entry st = {"archive/data/0", twelve, sizeof twelve};
        write_zip(dir, &p, &st, 1, deflate);
        struct checkpoint *ck = open_ok(dir);
        ck_assert_uint_eq(checkpoint_count(ck), 3);
        const struct tensor *a = checkpoint_get(ck, "a"), *b = checkpoint_get(ck, "b"),
                            *c = checkpoint_get(ck, "c");
        ck_assert_int_eq(a->dtype, DTYPE_F32);
        ck_assert_int_eq(b->n_dims, 2);
        ck_assert_int_eq(b->shape[1], 3);
        ck_assert_mem_eq(a->data, twelve, 4 * sizeof(float));
        ck_assert_mem_eq(c->data, twelve, sizeof twelve);
        ck_assert_ptr_eq(a->data, c->data); /* one storage, read once */
        float want_b[6] = {1, 3, 5, 2, 4, 6};
        ck_assert_mem_eq(b->data, want_b, sizeof want_b);
        checkpoint_close(ck);
    }
}
END_TEST

START_TEST(every_storage_type)
{
    static const struct {
        const char *stype;
        enum dtype dt;
    } types[] = {{"HalfStorage", DTYPE_F16}, {"BFloat16Storage", DTYPE_BF16},
                 {"LongStorage", DTYPE_I64}, {"float16", DTYPE_F16},
                 {"bfloat16", DTYPE_BF16},   {"float32", DTYPE_F32}};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        const char *names[] = {"t"};
        const struct view v = {types[i].stype, "7", 2, 0, 1, {2}, {1}};
        struct pk p = {0};
        state_dict(&p, 1, names, &v);
        const char *dir = temp_dir();
        unsigned char bytes[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
        size_t size = 2 * dtype_size(types[i].dt);
        struct entry st = {"archive/data/7", bytes, size};
        write_zip(dir, &p, &st, 1, 0);
        struct checkpoint *ck = open_ok(dir);
        const struct tensor *t = checkpoint_get(ck, "t");
        ck_assert_int_eq(t->dtype, types[i].dt);
        ck_assert_uint_eq(t->size_bytes, size);
        ck_assert_mem_eq(t->data, bytes, size);
        checkpoint_close(ck);
    }
}
END_TEST

/* ---- hostile pickles ---- */

START_TEST(global_os_system)
{
    struct pk p = {0};
    op(&p, 0x80);
    op(&p, 2);
    glob(&p, "os", "system");
    str(&p, "touch /tmp/inferd-pwned");
    op(&p, 0x85);
    op(&p, 'R');
    op(&p, '.');
    expect_pickle_refused(&p, "global 'os.system' is not allowed");
}
END_TEST

START_TEST(global_builtins_eval)
{
    struct pk p = {0};
    op(&p, 0x80);
    op(&p, 2);
    glob(&p, "builtins", "eval");
    str(&p, "__import__('os').system('true')");
    op(&p, 0x85);
    op(&p, 'R');
    op(&p, '.');
    expect_pickle_refused(&p, "global 'builtins.eval' is not allowed");
}
END_TEST

START_TEST(reduce_of_unknown_callables)
{
    struct pk p = {0}; /* a storage type is a known global but not a callable */
    op(&p, 0x80);
    op(&p, 2);
    glob(&p, "torch", "FloatStorage");
    op(&p, ')');
    op(&p, 'R');
    op(&p, '.');
    expect_pickle_refused(&p, "REDUCE of 'torch.FloatStorage'");
    struct pk q = {0}; /* a string as the callable */
    op(&q, 0x80);
    op(&q, 2);
    str(&q, "os.system");
    op(&q, ')');
    op(&q, 'R');
    op(&q, '.');
    expect_pickle_refused(&q, "REDUCE of something that is not an allowed global");
    struct pk r = {0}; /* OrderedDict with arguments */
    op(&r, 0x80);
    op(&r, 2);
    glob(&r, "collections", "OrderedDict");
    str(&r, "x");
    op(&r, 0x85);
    op(&r, 'R');
    op(&r, '.');
    expect_pickle_refused(&r, "REDUCE of 'collections.OrderedDict'");
}
END_TEST

START_TEST(opcodes_a_state_dict_never_has)
{
    /* STACK_GLOBAL, INST, OBJ, NEWOBJ, EXT1, BINSTRING */
    const unsigned char refused[] = {0x93, 'i', 'o', 0x81, 0x82, 'T'};
    for (size_t i = 0; i < sizeof refused; i++) {
        struct pk p = {0};
        op(&p, 0x80);
        op(&p, 2);
        op(&p, refused[i]);
        op(&p, '.');
        char want[32];
        snprintf(want, sizeof want, "opcode 0x%02x", refused[i]);
        expect_pickle_refused(&p, want);
    }
}
END_TEST

START_TEST(views_past_their_storage)
{
    const char *names[] = {"w"};
    const struct view bad[] = {
        {"FloatStorage", "0", 12, 9, 2, {2, 2}, {2, 1}},         /* offset + extent past 12 */
        {"FloatStorage", "0", 12, 0, 2, {4, 4}, {4, 1}},         /* 16 elements of 12 */
        {"FloatStorage", "0", 12, 13, 1, {1}, {1}},              /* offset past the end */
        {"FloatStorage", "0", 12, 0, 2, {2, 2}, {100000, 1}},    /* a stride past the end */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct pk p = {0};
        state_dict(&p, 1, names, &bad[i]);
        expect_pickle_refused(&p, "past the end of its storage");
    }
}
END_TEST

START_TEST(absurd_sizes)
{
    const char *names[] = {"w"};
    /* numel 4e9 floats: the entry of 48 bytes does not match */
    const struct view big = {"FloatStorage", "0", 4000000000u, 0, 1, {1}, {1}};
    struct pk p = {0};
    state_dict(&p, 1, names, &big);
    expect_pickle_refused(&p, "its tensors need");
    /* shape product overflowing 64 bits */
    const struct view ovf = {"FloatStorage", "0", 12, 0, 3, {4000000000u, 4000000000u, 4000000000u},
                             {0, 0, 0}};
    struct pk q = {0};
    state_dict(&q, 1, names, &ovf);
    expect_pickle_refused(&q, "overflows");
    /* a string claiming 4 GB */
    struct pk r = {0};
    op(&r, 0x80);
    op(&r, 2);
    op(&r, 'X');
    le32(&r, 0xfffffff0u);
    expect_pickle_refused(&r, "truncated");
    /* a memo slot far beyond anything written */
    struct pk s = {0};
    op(&s, 0x80);
    op(&s, 2);
    op(&s, '}');
    op(&s, 'r');
    le32(&s, 0xfffffff0u);
    op(&s, '.');
    expect_pickle_refused(&s, "memo index out of range");
}
END_TEST

START_TEST(malformed_structure)
{
    struct pk p = {0}; /* GET of a slot never PUT */
    op(&p, 0x80);
    op(&p, 2);
    op(&p, 'h');
    op(&p, 3);
    op(&p, '.');
    expect_pickle_refused(&p, "unset memo slot");
    struct pk q = {0}; /* not a dict */
    op(&q, 0x80);
    op(&q, 2);
    num(&q, 5);
    op(&q, '.');
    expect_pickle_refused(&q, "not a dict");
    struct pk r = {0}; /* a value that is not a tensor */
    op(&r, 0x80);
    op(&r, 2);
    op(&r, '}');
    str(&r, "w");
    num(&r, 7);
    op(&r, 's');
    op(&r, '.');
    expect_pickle_refused(&r, "'w' is not a tensor");
    struct pk s = {0}; /* no STOP */
    op(&s, 0x80);
    op(&s, 2);
    op(&s, '}');
    expect_pickle_refused(&s, "without STOP");
    struct pk t = {0}; /* popping below the stack */
    op(&t, 0x80);
    op(&t, 2);
    op(&t, 'R');
    expect_pickle_refused(&t, "stack underflow");
    /* one key twice */
    const char *names[] = {"w", "w"};
    const struct view v[] = {{"FloatStorage", "0", 12, 0, 1, {2}, {1}},
                             {"FloatStorage", "0", 12, 0, 1, {2}, {1}}};
    struct pk u = {0};
    state_dict(&u, 2, names, v);
    expect_pickle_refused(&u, "appears twice");
    /* one storage key with two sizes */
    const char *names2[] = {"a", "b"};
    const struct view v2[] = {{"FloatStorage", "0", 12, 0, 1, {2}, {1}},
                              {"FloatStorage", "0", 6, 0, 1, {2}, {1}}};
    struct pk w = {0};
    state_dict(&w, 2, names2, v2);
    expect_pickle_refused(&w, "different types or sizes");
}
END_TEST

/* ---- hostile zips ---- */

START_TEST(missing_storage_and_wrong_byteorder)
{
    const char *names[] = {"w"};
    const struct view v = {"FloatStorage", "5", 12, 0, 1, {12}, {1}};
    struct pk p = {0};
    state_dict(&p, 1, names, &v);
    expect_pickle_refused(&p, "no entry 'archive/data/5'");
    /* big-endian */
    const char *dir = temp_dir();
    char path[1024];
    snprintf(path, sizeof path, "%s/pytorch_model.bin", dir);
    int err = 0;
    zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
    struct pk q = {0};
    const struct view v0 = {"FloatStorage", "0", 12, 0, 1, {12}, {1}};
    state_dict(&q, 1, names, &v0);
    zip_file_add(za, "archive/data.pkl", zip_source_buffer(za, q.b, q.n, 0), 0);
    zip_file_add(za, "archive/byteorder", zip_source_buffer(za, "big", 3, 0), 0);
    zip_file_add(za, "archive/data/0", zip_source_buffer(za, twelve, sizeof twelve, 0), 0);
    ck_assert_int_eq(zip_close(za), 0);
    expect_refused(dir, "byteorder is not 'little'");
}
END_TEST

START_TEST(truncated_and_foreign_files)
{
    const char *src = fixture_dir("models-bin.tar.xz");
    char path[1024];
    snprintf(path, sizeof path, "%s/models-bin/t5-s2s-fp16/pytorch_model.bin", src);
    size_t len = 0;
    char *bytes = read_file(path, &len);
    ck_assert_ptr_nonnull(bytes);
    const size_t cuts[] = {len - 1, len - 30, len / 2, 100, 21};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        const char *dir = temp_dir();
        snprintf(path, sizeof path, "%s/pytorch_model.bin", dir);
        FILE *f = fopen(path, "wb");
        fwrite(bytes, 1, cuts[i], f);
        fclose(f);
        expect_refused(dir, "pytorch_model.bin");
    }
    /* a pickle file of the old (pre-zip) format */
    const char *dir = temp_dir();
    snprintf(path, sizeof path, "%s/pytorch_model.bin", dir);
    FILE *f = fopen(path, "wb");
    static const unsigned char legacy[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9,
                                           0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e, 0x80, 0x02, 0x4d,
                                           0xe9, 0x03, 0x2e, 0x80, 0x02, 0x7d};
    fwrite(legacy, 1, sizeof legacy, f);
    fclose(f);
    expect_refused(dir, "not a zip archive");
    free(bytes);
}
END_TEST

/* ---- a zip written byte by byte: stored entries sharing bytes of the file ---- */

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0xedb88320u : c >> 1;
    }
    return ~c;
}

static void put16(unsigned char *p, unsigned v)
{
    p[0] = v & 255;
    p[1] = v >> 8 & 255;
}

static void put32(unsigned char *p, uint32_t v)
{
    put16(p, v & 0xffff);
    put16(p + 2, v >> 16);
}

/* A local header for name with size bytes of data at out; returns its length. */
static size_t local_header(unsigned char *out, const char *name, const unsigned char *data,
                           size_t size)
{
    memset(out, 0, 30);
    put32(out, 0x04034b50);
    put16(out + 4, 20);
    put32(out + 14, crc32_of(data, size));
    put32(out + 18, (uint32_t)size);
    put32(out + 22, (uint32_t)size);
    put16(out + 26, (unsigned)strlen(name));
    memcpy(out + 30, name, strlen(name));
    return 30 + strlen(name);
}

static size_t central_header(unsigned char *out, const char *name, const unsigned char *data,
                             size_t size, size_t local_off)
{
    memset(out, 0, 46);
    put32(out, 0x02014b50);
    put16(out + 4, 20);
    put16(out + 6, 20);
    put32(out + 16, crc32_of(data, size));
    put32(out + 20, (uint32_t)size);
    put32(out + 24, (uint32_t)size);
    put16(out + 28, (unsigned)strlen(name));
    put32(out + 42, (uint32_t)local_off);
    memcpy(out + 46, name, strlen(name));
    return 46 + strlen(name);
}

START_TEST(overlapping_stored_entries)
{
    /* data/0's 48+ bytes of data are data/1's local header and data: two storages, one
     * stretch of the file */
    const char *names[] = {"a", "b"};
    const struct view v[] = {{"FloatStorage", "0", 20, 0, 1, {20}, {1}},
                             {"FloatStorage", "1", 4, 0, 1, {4}, {1}}};
    struct pk p = {0};
    state_dict(&p, 2, names, v);
    static unsigned char file[8192];
    size_t n = 0, off_pkl = 0, off0, off1;
    n += local_header(file + n, "archive/data.pkl", p.b, p.n);
    memcpy(file + n, p.b, p.n);
    n += p.n;
    off0 = n;
    /* inner: data/1's local header then its 16 bytes, padded to 80 bytes = data/0's data */
    unsigned char inner[80] = {0};
    const unsigned char d1[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    size_t h1 = local_header(inner, "archive/data/1", d1, sizeof d1);
    memcpy(inner + h1, d1, sizeof d1);
    n += local_header(file + n, "archive/data/0", inner, sizeof inner);
    size_t data0 = n;
    memcpy(file + n, inner, sizeof inner);
    n += sizeof inner;
    off1 = data0;
    size_t cd = n;
    n += central_header(file + n, "archive/data.pkl", p.b, p.n, off_pkl);
    n += central_header(file + n, "archive/data/0", inner, sizeof inner, off0);
    n += central_header(file + n, "archive/data/1", d1, sizeof d1, off1);
    unsigned char *end = file + n;
    memset(end, 0, 22);
    put32(end, 0x06054b50);
    put16(end + 8, 3);
    put16(end + 10, 3);
    put32(end + 12, (uint32_t)(n - cd));
    put32(end + 16, (uint32_t)cd);
    n += 22;
    const char *dir = temp_dir();
    char path[1024];
    snprintf(path, sizeof path, "%s/pytorch_model.bin", dir);
    FILE *f = fopen(path, "wb");
    ck_assert_uint_eq(fwrite(file, 1, n, f), n);
    fclose(f);
    /* refused: by our overlap check, or by libzip's consistency check first */
    struct checkpoint *ck = NULL;
    struct err e = {0};
    int rc = checkpoint_open(dir, &ck, &e);
    ck_assert_msg(rc == ERR_FORMAT, "rc %d: %s", rc, e.msg);
    ck_assert_msg(strstr(e.msg, "overlap") || strstr(e.msg, "zip"), "%s", e.msg);
}
END_TEST

/* ---- sharded indexes ---- */

START_TEST(sharded_index_errors)
{
    const char *src = fixture_dir("models-bin.tar.xz");
    char cmd[4096];
    const char *dir = temp_dir();
    snprintf(cmd, sizeof cmd, "cp '%s'/models-bin/bert-seqcls-sharded/* '%s'/", src, dir);
    ck_assert_int_eq(system(cmd), 0);
    struct checkpoint *ck = open_ok(dir);
    ck_assert_uint_eq(checkpoint_count(ck), 41);
    checkpoint_close(ck);
    /* a tensor listed in the other shard */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && sed -i '0,/00001-of/s/\"bert.embeddings.LayerNorm.bias\": \"pytorch_model-00001/"
             "\"bert.embeddings.LayerNorm.bias\": \"pytorch_model-00002/' pytorch_model.bin.index.json",
             dir);
    ck_assert_int_eq(system(cmd), 0);
    expect_refused(dir, "is not in shard");
    /* a shard name with a path */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && sed -i 's|\"pytorch_model-00002-of-00002.bin\"|\"../x.bin\"|' "
             "pytorch_model.bin.index.json", dir);
    ck_assert_int_eq(system(cmd), 0);
    expect_refused(dir, "bad shard name");
}
END_TEST

/* The pickle reader directly: a prefix of a valid pickle is never accepted. */
START_TEST(every_prefix_refused)
{
    const char *names[] = {"w"};
    const struct view v = {"FloatStorage", "0", 12, 0, 2, {2, 2}, {2, 1}};
    struct pk p = {0};
    state_dict(&p, 1, names, &v);
    for (size_t n = 0; n <= p.n; n++) {
        struct pickle_state_dict sd;
        struct err e = {0};
        int rc = pickle_read_state_dict(p.b, n, "test", &sd, &e);
        ck_assert_int_eq(rc, n == p.n ? 0 : ERR_FORMAT);
        if (n == p.n) {
            ck_assert_uint_eq(sd.n_tensors, 1);
            ck_assert_str_eq(sd.tensors[0].name, "w");
            ck_assert_uint_eq(sd.storages[0].numel, 12);
        }
        pickle_state_dict_free(&sd);
    }
}
END_TEST

/* What torch.save writes for a module's state_dict(): an OrderedDict whose _metadata attribute
 * comes as BUILD (the fuzz seed, written by torch 2.11). */
START_TEST(ordered_dict_with_metadata)
{
    size_t len = 0;
    char *p = read_file(INFERD_SOURCE_DIR "/tests/fuzz/corpus/pickle/ordered-metadata.pkl", &len);
    ck_assert_ptr_nonnull(p);
    struct pickle_state_dict sd;
    struct err e = {0};
    ck_assert_msg(pickle_read_state_dict(p, len, "seed", &sd, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(sd.n_tensors, 1);
    ck_assert_str_eq(sd.tensors[0].name, "w");
    ck_assert_int_eq(sd.tensors[0].n_dims, 2);
    ck_assert_int_eq(sd.tensors[0].shape[1], 3);
    ck_assert_uint_eq(sd.tensors[0].n_elements, 6);
    ck_assert_int_eq(sd.storages[0].dtype, DTYPE_F32);
    pickle_state_dict_free(&sd);
    free(p);
}
END_TEST

Suite *suite_torch_bin(void)
{
    Suite *s = suite_create("torch_bin");
    TCase *tc = tcase_create("torch_bin");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, views_offsets_and_shared_storage);
    tcase_add_test(tc, every_storage_type);
    tcase_add_test(tc, global_os_system);
    tcase_add_test(tc, global_builtins_eval);
    tcase_add_test(tc, reduce_of_unknown_callables);
    tcase_add_test(tc, opcodes_a_state_dict_never_has);
    tcase_add_test(tc, views_past_their_storage);
    tcase_add_test(tc, absurd_sizes);
    tcase_add_test(tc, malformed_structure);
    tcase_add_test(tc, missing_storage_and_wrong_byteorder);
    tcase_add_test(tc, truncated_and_foreign_files);
    tcase_add_test(tc, overlapping_stored_entries);
    tcase_add_test(tc, sharded_index_errors);
    tcase_add_test(tc, every_prefix_refused);
    tcase_add_test(tc, ordered_dict_with_metadata);
    suite_add_tcase(s, tc);
    return s;
}
