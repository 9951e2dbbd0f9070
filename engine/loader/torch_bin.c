/* torch_bin: torch.save zip checkpoints -> tensor views; see torch_bin.h for the format and
 * the checks. libzip reads the archive through a source over the file's mmap that notes where
 * each read starts, which is how a stored entry's place in the file is found. */
#include "loader/torch_bin.h"
#include "loader/files.h"
#include "loader/pickle.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#define CHUNK (1u << 20)
#define PICKLE_MAX_BYTES (1u << 30)
/* deflate expands at most ~1032:1; anything claiming more is not what torch wrote */
#define DEFLATE_RATIO 1100u

/* One mapped file, and while it is being read its zip handle. */
struct tb_file {
    char *path;
    unsigned char *map;
    size_t map_size;
    size_t pos, last_read; /* the zip source's position; where its latest read began */
    zip_error_t zerr;
};

struct torch_bin {
    struct tb_file *files;
    size_t n_files;
    void **blocks; /* malloc'ed copies: decompressed storages, strided tensors */
    size_t n_blocks, cap_blocks;
    struct tensor *tensors; /* sorted by name once open succeeds; names are malloc'ed */
    size_t n_tensors, cap_tensors;
};

/* A storage as read: where its bytes are, and where in the file when used in place. */
struct tb_storage {
    const unsigned char *data;
    size_t size;
    bool mapped;
    size_t file_off;
    const char *key;
};

/* ---- the zip source over the mmap ---- */

/* libzip's source protocol: one command per call, answered as zip_source_function(3) says. */
static zip_int64_t src_cb(void *ud, void *data, zip_uint64_t len, zip_source_cmd_t cmd)
{
    struct tb_file *f = ud;
    switch (cmd) {
    case ZIP_SOURCE_OPEN:
        f->pos = 0;
        return 0;
    case ZIP_SOURCE_READ: {
        size_t n = f->map_size - f->pos < len ? f->map_size - f->pos : (size_t)len;
        f->last_read = f->pos;
        memcpy(data, f->map + f->pos, n);
        f->pos += n;
        return (zip_int64_t)n;
    }
    case ZIP_SOURCE_CLOSE:
    case ZIP_SOURCE_FREE:
        return 0;
    case ZIP_SOURCE_STAT: {
        zip_stat_t *st = data;
        zip_stat_init(st);
        st->size = f->map_size;
        st->valid |= ZIP_STAT_SIZE;
        return sizeof *st;
    }
    case ZIP_SOURCE_ERROR:
        return zip_error_to_data(&f->zerr, data, len);
    case ZIP_SOURCE_SEEK: {
        zip_int64_t np = zip_source_seek_compute_offset(f->pos, f->map_size, data, len, &f->zerr);
        if (np < 0)
            return -1;
        f->pos = (size_t)np;
        return 0;
    }
    case ZIP_SOURCE_TELL:
        return (zip_int64_t)f->pos;
    case ZIP_SOURCE_SUPPORTS:
        return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN, ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE,
                                              ZIP_SOURCE_STAT, ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE,
                                              ZIP_SOURCE_SEEK, ZIP_SOURCE_TELL,
                                              ZIP_SOURCE_SUPPORTS, -1);
    default:
        zip_error_set(&f->zerr, ZIP_ER_OPNOTSUPP, 0);
        return -1;
    }
}

static int map_file(const char *path, struct tb_file *f, struct err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return files_error(path, errno, e);
    struct stat sb;
    int rc = 0;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        rc = err_set(e, ERR_IO, "%s: not a readable regular file", path);
    else if (sb.st_size < 22) /* the zip end record alone */
        rc = err_set(e, ERR_FORMAT, "%s: file of %lld bytes is too short for a zip archive",
                     path, (long long)sb.st_size);
    else {
        f->map_size = (size_t)sb.st_size;
        f->map = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (f->map == MAP_FAILED) {
            f->map = NULL;
            rc = err_set(e, ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
        }
    }
    close(fd);
    return rc;
}

/* ---- small helpers ---- */

static int keep_block(struct torch_bin *tb, void *p)
{
    if (tb->n_blocks == tb->cap_blocks) {
        size_t nc = tb->cap_blocks ? tb->cap_blocks * 2 : 16;
        void **q = realloc(tb->blocks, nc * sizeof *q);
        if (!q)
            return -1;
        tb->blocks = q;
        tb->cap_blocks = nc;
    }
    tb->blocks[tb->n_blocks++] = p;
    return 0;
}

static char *path_join(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    if (p)
        sprintf(p, "%s/%s", dir, name);
    return p;
}

static int cmp_by_name(const void *a, const void *b)
{
    return strcmp(((const struct tensor *)a)->name, ((const struct tensor *)b)->name);
}

static int cmp_storage_off(const void *a, const void *b)
{
    const struct tb_storage *x = *(const struct tb_storage *const *)a;
    const struct tb_storage *y = *(const struct tb_storage *const *)b;
    return x->file_off < y->file_off ? -1 : x->file_off > y->file_off;
}

/* ---- entries ---- */

/* Reads entry idx through libzip, comparing with the file at the place its first read began;
 * true when every byte matched there (the entry can be used in place at *off). */
static int read_compare(zip_t *za, struct tb_file *f, zip_uint64_t idx, size_t size,
                        unsigned char *copy, size_t *off, bool *same, const char *name,
                        struct err *e)
{
    zip_file_t *zf = zip_fopen_index(za, idx, 0);
    if (!zf)
        return err_set(e, ERR_FORMAT, "%s: entry '%s': %s", f->path, name, zip_strerror(za));
    unsigned char *buf = malloc(CHUNK);
    int rc = !buf ? err_set(e, ERR_NOMEM, "out of memory") : 0;
    *same = true;
    size_t done = 0;
    while (rc == 0 && done <= size) {
        /* into the copy while it has room, else the chunk buffer; past the end, one byte to
         * reach EOF, where libzip checks the CRC */
        bool into_copy = copy && done < size;
        size_t want = into_copy ? size - done : (done < size ? CHUNK : 1);
        unsigned char *dst = into_copy ? copy + done : buf;
        zip_int64_t got = zip_fread(zf, dst, want);
        if (got < 0)
            rc = err_set(e, ERR_FORMAT, "%s: entry '%s': %s", f->path, name,
                         zip_file_strerror(zf));
        else if (got == 0)
            break;
        else if ((size_t)got > size - done)
            rc = err_set(e, ERR_FORMAT, "%s: entry '%s' is longer than its size", f->path, name);
        else {
            if (done == 0)
                *off = f->last_read;
            if (*same && (*off > f->map_size || f->map_size - *off < done + (size_t)got ||
                          memcmp(f->map + *off + done, dst, (size_t)got) != 0))
                *same = false;
            done += (size_t)got;
        }
    }
    if (rc == 0 && done != size)
        rc = err_set(e, ERR_FORMAT, "%s: entry '%s' is truncated", f->path, name);
    zip_fclose(zf);
    free(buf);
    return rc;
}

/* Entry `name` of za (exactly size bytes when size != SIZE_MAX): used in place in the mmap
 * when stored and found there, else read into a copy kept by tb. */
static int read_entry(struct torch_bin *tb, zip_t *za, struct tb_file *f, const char *name,
                      size_t size, struct tb_storage *out, struct err *e)
{
    zip_int64_t idx = zip_name_locate(za, name, 0);
    zip_stat_t st;
    if (idx < 0 || zip_stat_index(za, (zip_uint64_t)idx, 0, &st) != 0)
        return err_set(e, ERR_FORMAT, "%s: no entry '%s'", f->path, name);
    if (size != SIZE_MAX && st.size != size)
        return err_set(e, ERR_FORMAT, "%s: entry '%s' has %llu bytes, its tensors need %zu",
                       f->path, name, (unsigned long long)st.size, size);
    bool stored = st.comp_method == ZIP_CM_STORE;
    if ((stored && st.size > f->map_size) ||
        (!stored && st.size / DEFLATE_RATIO > st.comp_size + 1024))
        return err_set(e, ERR_FORMAT, "%s: entry '%s' claims an impossible size", f->path, name);
    out->size = (size_t)st.size;
    out->data = (const unsigned char *)"";
    out->mapped = false;
    bool same = false;
    int rc = 0;
    if (stored && out->size > 0) {
        rc = read_compare(za, f, (zip_uint64_t)idx, out->size, NULL, &out->file_off, &same, name, e);
        if (rc == 0 && same) {
            out->data = f->map + out->file_off;
            out->mapped = true;
            return 0;
        }
    }
    if (rc || out->size == 0)
        return rc;
    unsigned char *copy = malloc(out->size);
    if (!copy || keep_block(tb, copy)) {
        free(copy);
        return err_set(e, ERR_NOMEM, "%s: out of memory for entry '%s'", f->path, name);
    }
    size_t off;
    out->data = copy;
    return read_compare(za, f, (zip_uint64_t)idx, out->size, copy, &off, &same, name, e);
}

/* The one ARCHIVE/data.pkl: its ARCHIVE/ prefix into prefix. */
static int find_prefix(zip_t *za, const char *path, char *prefix, size_t cap, struct err *e)
{
    zip_int64_t n = zip_get_num_entries(za, 0);
    int found = 0;
    for (zip_int64_t i = 0; i < n; i++) {
        const char *name = zip_get_name(za, (zip_uint64_t)i, 0);
        const char *slash = name ? strchr(name, '/') : NULL;
        if (!slash || strcmp(slash, "/data.pkl") != 0)
            continue;
        if (found++ || (size_t)(slash - name) + 2 > cap)
            return err_set(e, ERR_FORMAT, "%s: more than one data.pkl, or a bad archive name",
                           path);
        snprintf(prefix, cap, "%.*s/", (int)(slash - name), name);
    }
    return found ? 0 : err_set(e, ERR_FORMAT, "%s: no ARCHIVE/data.pkl: not a torch.save checkpoint", path);
}

/* ---- tensors ---- */

static bool contiguous(const struct pickle_tensor *t)
{
    int64_t want = 1;
    for (int d = t->n_dims - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != want)
            return false;
        want *= t->shape[d];
    }
    return true;
}

/* A strided view copied into a contiguous array (checked to fit its storage by pickle.c). */
static void gather(const struct pickle_tensor *t, const unsigned char *base, size_t es,
                   unsigned char *dst)
{
    int64_t ix[TENSOR_MAX_DIMS] = {0};
    for (size_t k = 0; k < t->n_elements; k++) {
        uint64_t src = t->offset;
        for (int d = 0; d < t->n_dims; d++)
            src += (uint64_t)ix[d] * (uint64_t)t->stride[d];
        memcpy(dst + k * es, base + src * es, es);
        for (int d = t->n_dims - 1; d >= 0 && ++ix[d] == t->shape[d]; d--)
            ix[d] = 0;
    }
}

static int add_tensor(struct torch_bin *tb, struct tb_file *f, struct pickle_tensor *pt,
                      const struct pickle_storage *ps, const struct tb_storage *s, struct err *e)
{
    if (tb->n_tensors == tb->cap_tensors) {
        size_t nc = tb->cap_tensors ? tb->cap_tensors * 2 : 64;
        struct tensor *q = realloc(tb->tensors, nc * sizeof *q);
        if (!q)
            return err_set(e, ERR_NOMEM, "out of memory");
        tb->tensors = q;
        tb->cap_tensors = nc;
    }
    size_t es = dtype_size(ps->dtype);
    struct tensor *t = &tb->tensors[tb->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = pt->name;
    pt->name = NULL;
    tb->n_tensors++;
    t->file = f->path;
    t->dtype = ps->dtype;
    t->n_dims = pt->n_dims;
    memcpy(t->shape, pt->shape, sizeof t->shape);
    t->n_elements = pt->n_elements;
    t->size_bytes = pt->n_elements * es;
    if (t->n_elements == 0 || contiguous(pt))
        t->data = s->data + (t->n_elements ? pt->offset * es : 0);
    else {
        unsigned char *copy = malloc(t->size_bytes);
        if (!copy || keep_block(tb, copy)) {
            free(copy);
            return err_set(e, ERR_NOMEM, "%s: out of memory for tensor '%s'", f->path, t->name);
        }
        gather(pt, s->data, es, copy);
        t->data = copy;
    }
    t->aligned = (uintptr_t)t->data % es == 0;
    return 0;
}

/* Stored storages must not share bytes of the file. */
static int check_overlap(struct tb_file *f, struct tb_storage *s, size_t n, struct err *e)
{
    struct tb_storage **v = malloc((n + 1) * sizeof *v);
    if (!v)
        return err_set(e, ERR_NOMEM, "out of memory");
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i].mapped)
            v[m++] = &s[i];
    qsort(v, m, sizeof *v, cmp_storage_off);
    int rc = 0;
    for (size_t i = 1; i < m && rc == 0; i++)
        if (v[i - 1]->file_off + v[i - 1]->size > v[i]->file_off)
            rc = err_set(e, ERR_FORMAT, "%s: storages '%s' and '%s' overlap in the file",
                         f->path, v[i - 1]->key, v[i]->key);
    free(v);
    return rc;
}

/* Reads every storage of sd and adds its tensors. */
static int add_tensors(struct torch_bin *tb, zip_t *za, struct tb_file *f, const char *prefix,
                       struct pickle_state_dict *sd, struct err *e)
{
    struct tb_storage *s = calloc(sd->n_storages + 1, sizeof *s);
    if (!s)
        return err_set(e, ERR_NOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < sd->n_storages && rc == 0; i++) {
        char name[160];
        uint64_t bytes;
        snprintf(name, sizeof name, "%sdata/%s", prefix, sd->storages[i].key);
        s[i].key = sd->storages[i].key;
        if (__builtin_mul_overflow(sd->storages[i].numel, dtype_size(sd->storages[i].dtype),
                                   &bytes) || bytes >= SIZE_MAX)
            rc = err_set(e, ERR_FORMAT, "%s: storage '%s' is absurdly large", f->path, s[i].key);
        else
            rc = read_entry(tb, za, f, name, (size_t)bytes, &s[i], e);
    }
    if (rc == 0)
        rc = check_overlap(f, s, sd->n_storages, e);
    for (size_t i = 0; i < sd->n_tensors && rc == 0; i++) {
        struct pickle_tensor *pt = &sd->tensors[i];
        rc = add_tensor(tb, f, pt, &sd->storages[pt->storage], &s[pt->storage], e);
    }
    free(s);
    return rc;
}

/* Checks the byte order entry, reads data.pkl and the storages. */
static int read_archive(struct torch_bin *tb, zip_t *za, struct tb_file *f, struct err *e)
{
    char prefix[128], name[160];
    int rc = find_prefix(za, f->path, prefix, sizeof prefix, e);
    if (rc)
        return rc;
    struct tb_storage bo, pkl;
    snprintf(name, sizeof name, "%sbyteorder", prefix);
    if (zip_name_locate(za, name, 0) >= 0) {
        rc = read_entry(tb, za, f, name, SIZE_MAX, &bo, e);
        if (rc == 0 && !(bo.size == 6 && memcmp(bo.data, "little", 6) == 0))
            rc = err_set(e, ERR_FORMAT, "%s: byteorder is not 'little'", f->path);
        if (rc)
            return rc;
    }
    snprintf(name, sizeof name, "%sdata.pkl", prefix);
    rc = read_entry(tb, za, f, name, SIZE_MAX, &pkl, e);
    if (rc == 0 && pkl.size > PICKLE_MAX_BYTES)
        rc = err_set(e, ERR_FORMAT, "%s: data.pkl is absurdly large", f->path);
    if (rc)
        return rc;
    struct pickle_state_dict sd;
    rc = pickle_read_state_dict(pkl.data, pkl.size, f->path, &sd, e);
    if (rc == 0)
        rc = add_tensors(tb, za, f, prefix, &sd, e);
    pickle_state_dict_free(&sd);
    return rc;
}

/* Maps path and adds its tensors to tb. */
static int add_file(struct torch_bin *tb, const char *path, struct err *e)
{
    struct tb_file *q = realloc(tb->files, (tb->n_files + 1) * sizeof *q);
    if (!q)
        return err_set(e, ERR_NOMEM, "out of memory");
    tb->files = q;
    struct tb_file *f = &tb->files[tb->n_files];
    memset(f, 0, sizeof *f);
    if (!(f->path = strdup(path)))
        return err_set(e, ERR_NOMEM, "out of memory");
    tb->n_files++;
    int rc = map_file(path, f, e);
    if (rc)
        return rc;
    zip_error_init(&f->zerr);
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_function_create(src_cb, f, &ze);
    zip_t *za = src ? zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze) : NULL;
    if (!za) {
        rc = err_set(e, ERR_FORMAT,
                     "%s: not a zip archive (%s); checkpoints from torch before 1.6 are not "
                     "supported", path, zip_error_strerror(&ze));
        zip_source_free(src);
    } else {
        rc = read_archive(tb, za, f, e);
        zip_discard(za);
    }
    zip_error_fini(&ze);
    zip_error_fini(&f->zerr);
    return rc;
}

/* Sorts the tensors; a name twice is an error. */
static int finish(struct torch_bin *tb, struct err *e)
{
    if (tb->n_tensors == 0)
        return err_set(e, ERR_FORMAT, "%s: the checkpoint holds no tensors",
                       tb->n_files ? tb->files[0].path : "?");
    qsort(tb->tensors, tb->n_tensors, sizeof *tb->tensors, cmp_by_name);
    for (size_t i = 1; i < tb->n_tensors; i++)
        if (strcmp(tb->tensors[i - 1].name, tb->tensors[i].name) == 0)
            return err_set(e, ERR_FORMAT, "%s: tensor '%s' appears twice", tb->tensors[i].file,
                           tb->tensors[i].name);
    return 0;
}

/* ---- sharded ---- */

static int open_shards(struct torch_bin *tb, const char *dir, const char *index, json_t *wm,
                       struct err *e)
{
    const char *name;
    json_t *v;
    json_t *seen = json_object();
    int rc = seen ? 0 : err_set(e, ERR_NOMEM, "out of memory");
    json_object_foreach(wm, name, v)
    {
        const char *shard = json_string_value(v);
        if (rc || (shard && json_object_get(seen, shard)))
            continue;
        if (!shard || !*shard || strchr(shard, '/') || !strcmp(shard, ".") || !strcmp(shard, "..")) {
            rc = err_set(e, ERR_FORMAT, "%s: tensor '%s': bad shard name", index, name);
            continue;
        }
        json_object_set_new(seen, shard, json_true());
        char *path = path_join(dir, shard);
        rc = path ? add_file(tb, path, e) : err_set(e, ERR_NOMEM, "out of memory");
        if (rc == ERR_NOT_FOUND)
            rc = err_set(e, ERR_FORMAT, "%s: tensor '%s': shard '%s' does not exist", index,
                         name, shard);
        free(path);
    }
    json_decref(seen);
    return rc;
}

static int open_index(struct torch_bin *tb, const char *dir, const char *index, struct err *e)
{
    json_error_t je;
    json_t *idx = json_load_file(index, JSON_REJECT_DUPLICATES, &je);
    if (!idx)
        return err_set(e, ERR_FORMAT, "%s: invalid JSON at line %d: %s", index, je.line, je.text);
    json_t *wm = json_object_get(idx, "weight_map");
    int rc = 0;
    if (!json_is_object(wm) || json_object_size(wm) == 0)
        rc = err_set(e, ERR_FORMAT, "%s: missing or empty weight_map", index);
    if (rc == 0)
        rc = open_shards(tb, dir, index, wm, e);
    if (rc == 0)
        rc = finish(tb, e);
    const char *name;
    json_t *v;
    json_object_foreach(wm, name, v)
    {
        const struct tensor *t = rc ? NULL : torch_bin_get(tb, name);
        const char *file = t ? strrchr(t->file, '/') : NULL;
        if (rc == 0 && (!file || strcmp(file + 1, json_string_value(v)) != 0))
            rc = err_set(e, ERR_FORMAT, "%s: tensor '%s' is not in shard '%s'", index, name,
                         json_string_value(v));
    }
    if (rc == 0 && tb->n_tensors != json_object_size(wm))
        rc = err_set(e, ERR_FORMAT, "%s: the shards hold tensors the weight_map does not list",
                     index);
    json_decref(idx);
    return rc;
}

/* ---- public ---- */

int torch_bin_open_file(const char *path, struct torch_bin **out, struct err *e)
{
    struct torch_bin *tb = calloc(1, sizeof *tb);
    if (!tb)
        return err_set(e, ERR_NOMEM, "out of memory");
    int rc = add_file(tb, path, e);
    if (rc == 0)
        rc = finish(tb, e);
    if (rc)
        torch_bin_close(tb);
    else
        *out = tb;
    return rc;
}

int torch_bin_open(const char *dir, struct torch_bin **out, struct err *e)
{
    char *single = path_join(dir, "pytorch_model.bin");
    char *index = path_join(dir, "pytorch_model.bin.index.json");
    struct stat sb;
    int rc;
    struct torch_bin *tb = NULL;
    if (!single || !index)
        rc = err_set(e, ERR_NOMEM, "out of memory");
    else if (stat(single, &sb) == 0)
        rc = torch_bin_open_file(single, out, e);
    else if (stat(index, &sb) != 0)
        rc = err_set(e, ERR_NOT_FOUND, "%s: no pytorch_model.bin or pytorch_model.bin.index.json",
                     dir);
    else if (!(tb = calloc(1, sizeof *tb)))
        rc = err_set(e, ERR_NOMEM, "out of memory");
    else if ((rc = open_index(tb, dir, index, e)))
        torch_bin_close(tb);
    else
        *out = tb;
    free(single);
    free(index);
    return rc;
}

void torch_bin_close(struct torch_bin *tb)
{
    if (!tb)
        return;
    for (size_t i = 0; i < tb->n_files; i++) {
        if (tb->files[i].map)
            munmap(tb->files[i].map, tb->files[i].map_size);
        free(tb->files[i].path);
    }
    for (size_t i = 0; i < tb->n_blocks; i++)
        free(tb->blocks[i]);
    for (size_t i = 0; i < tb->n_tensors; i++)
        free((char *)tb->tensors[i].name);
    free(tb->files);
    free(tb->blocks);
    free(tb->tensors);
    free(tb);
}

const struct tensor *torch_bin_get(const struct torch_bin *tb, const char *name)
{
    struct tensor key = {.name = name};
    return tb->n_tensors ? bsearch(&key, tb->tensors, tb->n_tensors, sizeof key, cmp_by_name)
                         : NULL;
}

size_t torch_bin_count(const struct torch_bin *tb)
{
    return tb->n_tensors;
}

const struct tensor *torch_bin_at(const struct torch_bin *tb, size_t i)
{
    return i < tb->n_tensors ? &tb->tensors[i] : NULL;
}
