/* safetensors: mmap, header JSON, bounds/dtype/overlap checks -> tensor views; see
 * safetensors.h for the format and the list of checks. */
#include "loader/safetensors.h"
#include "loader/files.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The reference implementation's limit; a real header is a few hundred kB at most. */
#define HEADER_MAX_BYTES 100000000u

/* One mapped file. */
struct st_file {
    char *path;
    void *map;                /* the whole file, PROT_READ */
    size_t map_size;          /* file size in bytes */
    const unsigned char *buf; /* the data buffer: map + 8 + N */
    size_t buf_size;          /* map_size - 8 - N */
    json_t *metadata;         /* "__metadata__" object or NULL */
};

struct safetensors {
    struct st_file *files;
    size_t n_files;
    struct tensor *tensors; /* sorted by name once open succeeds; names are malloc'ed */
    size_t n_tensors;
    size_t cap_tensors;
    uint32_t *slots; /* open-addressing hash of tensor index + 1 (0 = empty) */
    size_t n_slots;  /* power of two, at least 2 * n_tensors */
};

/* ---- small helpers ---- */

static char *path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static int cmp_by_name(const void *a, const void *b)
{
    return strcmp(((const struct tensor *)a)->name, ((const struct tensor *)b)->name);
}

/* Index into st->tensors ordered by data offset inside one file, for the overlap check. */
struct span {
    size_t begin, end, idx;
};

static int cmp_span(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* ---- mapping ---- */

/* Maps path read-only into f. A missing file is ERR_NOT_FOUND, any other failure ERR_IO. */
static int map_file(const char *path, struct st_file *f, struct err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return files_error(path, errno, e);
    int rc = 0;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        rc = err_set(e, ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto close_fd;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = err_set(e, ERR_IO, "%s: not a regular file", path);
        goto close_fd;
    }
    if (sb.st_size < 8) {
        rc = err_set(e, ERR_FORMAT, "%s: file of %lld bytes is too short for a header", path,
                     (long long)sb.st_size);
        goto close_fd;
    }
    f->map_size = (size_t)sb.st_size;
    f->map = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        rc = err_set(e, ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
    }
close_fd:
    close(fd);
    return rc;
}

static void unmap_file(struct st_file *f)
{
    if (f->map)
        munmap(f->map, f->map_size);
    json_decref(f->metadata);
    free(f->path);
}

/* ---- header ---- */

/* Reads a JSON integer >= 0 into *out, or fails naming file, tensor and field. */
static int get_count(const json_t *v, const char *path, const char *name, const char *field,
                     size_t *out, struct err *e)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return err_set(e, ERR_FORMAT, "%s: tensor '%s': %s must hold non-negative integers", path,
                       name, field);
    json_int_t x = json_integer_value(v);
    if ((unsigned long long)x > SIZE_MAX)
        return err_set(e, ERR_FORMAT, "%s: tensor '%s': %s value too large", path, name, field);
    *out = (size_t)x;
    return 0;
}

/* Fills t from one header entry {"dtype", "shape", "data_offsets"} of file f. */
static int parse_entry(const struct st_file *f, const char *name, const json_t *v, struct tensor *t,
                       struct err *e)
{
    const char *path = f->path;
    if (!json_is_object(v))
        return err_set(e, ERR_FORMAT, "%s: tensor '%s': entry is not an object", path, name);
    const json_t *jd = json_object_get(v, "dtype");
    const json_t *js = json_object_get(v, "shape");
    const json_t *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd))
        return err_set(e, ERR_FORMAT, "%s: tensor '%s': missing or non-string dtype", path, name);
    if (dtype_parse(json_string_value(jd), &t->dtype) != 0)
        return err_set(e, ERR_FORMAT, "%s: tensor '%s': unknown dtype '%s'", path, name,
                       json_string_value(jd));
    if (!json_is_array(js))
        return err_set(e, ERR_FORMAT, "%s: tensor '%s': missing or non-array shape", path, name);
    if (json_array_size(js) > TENSOR_MAX_DIMS)
        return err_set(e, ERR_FORMAT, "%s: tensor '%s': %zu dimensions, at most %d supported", path,
                       name, json_array_size(js), TENSOR_MAX_DIMS);
    t->n_dims = (int)json_array_size(js);
    size_t n = 1;
    for (int d = 0; d < t->n_dims; d++) {
        size_t dim = 0;
        int rc = get_count(json_array_get(js, (size_t)d), path, name, "shape", &dim, e);
        if (rc)
            return rc;
        if (dim > INT64_MAX || __builtin_mul_overflow(n, dim, &n))
            return err_set(e, ERR_FORMAT, "%s: tensor '%s': shape overflows", path, name);
        t->shape[d] = (int64_t)dim;
    }
    t->n_elements = n;
    if (__builtin_mul_overflow(n, dtype_size(t->dtype), &t->size_bytes))
        return err_set(e, ERR_FORMAT, "%s: tensor '%s': shape overflows", path, name);
    if (!json_is_array(jo) || json_array_size(jo) != 2)
        return err_set(e, ERR_FORMAT, "%s: tensor '%s': data_offsets must be [begin, end]", path,
                       name);
    size_t begin = 0, end = 0;
    int rc = get_count(json_array_get(jo, 0), path, name, "data_offsets", &begin, e);
    if (!rc)
        rc = get_count(json_array_get(jo, 1), path, name, "data_offsets", &end, e);
    if (rc)
        return rc;
    if (begin > end)
        return err_set(e, ERR_FORMAT, "%s: tensor '%s': data_offsets [%zu, %zu] end before begin",
                       path, name, begin, end);
    if (end > f->buf_size)
        return err_set(e, ERR_FORMAT,
                       "%s: tensor '%s': data_offsets [%zu, %zu] outside the %zu-byte data buffer",
                       path, name, begin, end, f->buf_size);
    if (end - begin != t->size_bytes)
        return err_set(e, ERR_FORMAT, "%s: tensor '%s': %zu bytes for %zu %s elements (want %zu)",
                       path, name, end - begin, n, dtype_name(t->dtype), t->size_bytes);
    t->data = f->buf + begin;
    t->aligned = ((uintptr_t)t->data % dtype_size(t->dtype)) == 0;
    t->file = path;
    return 0;
}

/* "__metadata__" must be an object of strings; kept for safetensors_metadata. */
static int parse_metadata(struct st_file *f, json_t *v, struct err *e)
{
    if (!json_is_object(v))
        return err_set(e, ERR_FORMAT, "%s: __metadata__ is not an object", f->path);
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x)
    {
        if (!json_is_string(x))
            return err_set(e, ERR_FORMAT, "%s: __metadata__ '%s' is not a string", f->path, k);
    }
    f->metadata = json_incref(v);
    return 0;
}

static int push_tensor(struct safetensors *st, struct tensor **out, struct err *e)
{
    if (st->n_tensors == st->cap_tensors) {
        size_t cap = st->cap_tensors ? 2 * st->cap_tensors : 64;
        struct tensor *nt = realloc(st->tensors, cap * sizeof *nt);
        if (!nt)
            return err_set(e, ERR_NOMEM, "safetensors: out of memory for tensor list");
        st->tensors = nt;
        st->cap_tensors = cap;
    }
    *out = &st->tensors[st->n_tensors];
    memset(*out, 0, sizeof **out);
    return 0;
}

/* No two non-empty tensors of one file may share a byte; tensors [first, n_tensors) are the
 * ones just read from file f. */
static int check_overlap(struct safetensors *st, size_t first, const struct st_file *f,
                         struct err *e)
{
    size_t n = st->n_tensors - first;
    if (n < 2)
        return 0;
    struct span *sp = malloc(n * sizeof *sp);
    if (!sp)
        return err_set(e, ERR_NOMEM, "%s: out of memory", f->path);
    size_t m = 0;
    for (size_t i = first; i < st->n_tensors; i++) {
        const struct tensor *t = &st->tensors[i];
        if (t->size_bytes == 0)
            continue;
        size_t b = (size_t)((const unsigned char *)t->data - f->buf);
        sp[m++] = (struct span){b, b + t->size_bytes, i};
    }
    qsort(sp, m, sizeof *sp, cmp_span);
    int rc = 0;
    for (size_t i = 1; i < m; i++) {
        if (sp[i].begin < sp[i - 1].end) {
            rc = err_set(e, ERR_FORMAT, "%s: tensors '%s' and '%s' overlap", f->path,
                         st->tensors[sp[i - 1].idx].name, st->tensors[sp[i].idx].name);
            break;
        }
    }
    free(sp);
    return rc;
}

/* Parses and checks the header of mapped file f, appending its tensors to st. */
static int read_header(struct safetensors *st, struct st_file *f, struct err *e)
{
    uint64_t n;
    memcpy(&n, f->map, sizeof n); /* little-endian host, checked in tensor.c */
    if (n > f->map_size - 8)
        return err_set(e, ERR_FORMAT, "%s: header length %llu exceeds the file (%zu bytes)",
                       f->path, (unsigned long long)n, f->map_size);
    if (n > HEADER_MAX_BYTES || n < 2)
        return err_set(e, ERR_FORMAT, "%s: implausible header length %llu", f->path,
                       (unsigned long long)n);
    const char *text = (const char *)f->map + 8;
    f->buf = (const unsigned char *)f->map + 8 + n;
    f->buf_size = f->map_size - 8 - (size_t)n;
    json_error_t je;
    json_t *h = json_loadb(text, (size_t)n, JSON_REJECT_DUPLICATES, &je);
    if (!h)
        return err_set(e, ERR_FORMAT, "%s: header JSON invalid at byte %d: %s", f->path,
                       je.position, je.text);
    int rc = 0;
    if (!json_is_object(h)) {
        rc = err_set(e, ERR_FORMAT, "%s: header is not a JSON object", f->path);
        goto free_json;
    }
    size_t first = st->n_tensors;
    const char *name;
    json_t *v;
    json_object_foreach(h, name, v)
    {
        if (strcmp(name, "__metadata__") == 0) {
            rc = parse_metadata(f, v, e);
        } else if (name[0] == '\0') {
            rc = err_set(e, ERR_FORMAT, "%s: a tensor has an empty name", f->path);
        } else {
            struct tensor *t = NULL;
            rc = push_tensor(st, &t, e);
            if (!rc)
                rc = parse_entry(f, name, v, t, e);
            if (!rc) {
                t->name = strdup(name);
                if (!t->name)
                    rc = err_set(e, ERR_NOMEM, "%s: out of memory", f->path);
            }
            if (!rc)
                st->n_tensors++;
        }
        if (rc)
            goto free_json;
    }
    if (st->n_tensors == first)
        rc = err_set(e, ERR_FORMAT, "%s: no tensors in the safetensors header", f->path);
    else
        rc = check_overlap(st, first, f, e);
free_json:
    json_decref(h);
    return rc;
}

/* Maps path as file number n_files and reads its header. */
static int add_file(struct safetensors *st, const char *path, struct err *e)
{
    struct st_file *nf = realloc(st->files, (st->n_files + 1) * sizeof *nf);
    if (!nf)
        return err_set(e, ERR_NOMEM, "%s: out of memory", path);
    st->files = nf;
    struct st_file *f = &st->files[st->n_files];
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    if (!f->path)
        return err_set(e, ERR_NOMEM, "%s: out of memory", path);
    st->n_files++; /* from here unmap_file cleans it, whatever happens */
    int rc = map_file(path, f, e);
    if (rc)
        return rc;
    return read_header(st, f, e);
}

/* Sorts by name, rejects a name present in two files, and builds the hash. */
static int finish(struct safetensors *st, struct err *e)
{
    if (st->n_tensors >= UINT32_MAX / 2)
        return err_set(e, ERR_FORMAT, "safetensors: too many tensors (%zu)", st->n_tensors);
    qsort(st->tensors, st->n_tensors, sizeof *st->tensors, cmp_by_name);
    for (size_t i = 1; i < st->n_tensors; i++) {
        const struct tensor *a = &st->tensors[i - 1], *b = &st->tensors[i];
        if (strcmp(a->name, b->name) == 0)
            return err_set(e, ERR_FORMAT, "tensor '%s' is in both %s and %s", a->name, a->file,
                           b->file);
    }
    st->n_slots = 16;
    while (st->n_slots < 2 * st->n_tensors)
        st->n_slots *= 2;
    st->slots = calloc(st->n_slots, sizeof *st->slots);
    if (!st->slots)
        return err_set(e, ERR_NOMEM, "safetensors: out of memory for the name table");
    for (size_t i = 0; i < st->n_tensors; i++) {
        size_t s = (size_t)hash_name(st->tensors[i].name) & (st->n_slots - 1);
        while (st->slots[s])
            s = (s + 1) & (st->n_slots - 1);
        st->slots[s] = (uint32_t)(i + 1);
    }
    return 0;
}

/* ---- sharded index ---- */

/* A shard name must be a plain file name inside the model directory. */
static int check_shard_name(const char *index_path, const char *tensor, const char *shard,
                            struct err *e)
{
    if (shard[0] == '\0' || strchr(shard, '/') || strcmp(shard, ".") == 0 ||
        strcmp(shard, "..") == 0)
        return err_set(e, ERR_FORMAT, "%s: tensor '%s': shard '%s' is not a plain file name",
                       index_path, tensor, shard);
    return 0;
}

static int open_index(struct safetensors *st, const char *dir, const char *index_path,
                      struct err *e)
{
    json_error_t je;
    json_t *idx = json_load_file(index_path, JSON_REJECT_DUPLICATES, &je);
    if (!idx)
        return err_set(e, ERR_FORMAT, "%s: invalid JSON at line %d: %s", index_path, je.line,
                       je.text);
    int rc = 0;
    char *path = NULL;
    json_t *wm = json_object_get(idx, "weight_map");
    if (!json_is_object(wm)) {
        rc = err_set(e, ERR_FORMAT, "%s: missing or non-object weight_map", index_path);
        goto free_index;
    }
    if (json_object_size(wm) == 0) {
        rc = err_set(e, ERR_FORMAT, "%s: no tensors in the weight_map", index_path);
        goto free_index;
    }
    /* map each distinct shard once, in order of first mention */
    json_t *seen = json_object();
    if (!seen) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", index_path);
        goto free_index;
    }
    const char *name;
    json_t *v;
    json_object_foreach(wm, name, v)
    {
        if (!json_is_string(v)) {
            rc = err_set(e, ERR_FORMAT, "%s: tensor '%s': shard is not a string", index_path, name);
            break;
        }
        const char *shard = json_string_value(v);
        if (json_object_get(seen, shard))
            continue;
        rc = check_shard_name(index_path, name, shard, e);
        if (rc)
            break;
        json_object_set_new(seen, shard, json_true());
        path = path_join(dir, shard);
        if (!path) {
            rc = err_set(e, ERR_NOMEM, "%s: out of memory", index_path);
            break;
        }
        rc = add_file(st, path, e);
        if (rc == ERR_NOT_FOUND)
            rc = err_set(e, ERR_FORMAT, "%s: tensor '%s': shard '%s' does not exist", index_path,
                         name, shard);
        free(path);
        path = NULL;
        if (rc)
            break;
    }
    json_decref(seen);
    if (rc)
        goto free_index;
    rc = finish(st, e);
    if (rc)
        goto free_index;
    /* every listed tensor is where the index says */
    json_object_foreach(wm, name, v)
    {
        const struct tensor *t = safetensors_get(st, name);
        const char *shard = json_string_value(v);
        if (!t) {
            rc = err_set(e, ERR_FORMAT, "%s: tensor '%s' is not in shard '%s'", index_path, name,
                         shard);
            break;
        }
        size_t dl = strlen(dir);
        if (strncmp(t->file, dir, dl) != 0 || t->file[dl] != '/' ||
            strcmp(t->file + dl + 1, shard) != 0) {
            rc = err_set(e, ERR_FORMAT, "%s: tensor '%s' is listed in '%s' but found in %s",
                         index_path, name, shard, t->file);
            break;
        }
    }
free_index:
    json_decref(idx);
    return rc;
}

/* ---- public ---- */

int safetensors_open_file(const char *path, struct safetensors **out, struct err *e)
{
    struct safetensors *st = calloc(1, sizeof *st);
    if (!st)
        return err_set(e, ERR_NOMEM, "%s: out of memory", path);
    int rc = add_file(st, path, e);
    if (!rc)
        rc = finish(st, e);
    if (rc) {
        safetensors_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

int safetensors_open(const char *dir, struct safetensors **out, struct err *e)
{
    char *single = path_join(dir, "model.safetensors");
    char *index = path_join(dir, "model.safetensors.index.json");
    struct safetensors *st = NULL;
    int rc = 0;
    if (!single || !index) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", dir);
        goto free_paths;
    }
    struct stat sb;
    if (stat(single, &sb) == 0) {
        rc = safetensors_open_file(single, out, e);
        goto free_paths;
    }
    if (stat(index, &sb) != 0) {
        rc = err_set(e, ERR_NOT_FOUND, "%s: no model.safetensors or model.safetensors.index.json",
                     dir);
        goto free_paths;
    }
    st = calloc(1, sizeof *st);
    if (!st) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", dir);
        goto free_paths;
    }
    rc = open_index(st, dir, index, e);
    if (rc)
        safetensors_close(st);
    else
        *out = st;
free_paths:
    free(single);
    free(index);
    return rc;
}

void safetensors_close(struct safetensors *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n_files; i++)
        unmap_file(&st->files[i]);
    for (size_t i = 0; i < st->n_tensors; i++)
        free((char *)st->tensors[i].name);
    free(st->files);
    free(st->tensors);
    free(st->slots);
    free(st);
}

const struct tensor *safetensors_get(const struct safetensors *st, const char *name)
{
    if (!st->slots)
        return NULL;
    size_t s = (size_t)hash_name(name) & (st->n_slots - 1);
    while (st->slots[s]) {
        const struct tensor *t = &st->tensors[st->slots[s] - 1];
        if (strcmp(t->name, name) == 0)
            return t;
        s = (s + 1) & (st->n_slots - 1);
    }
    return NULL;
}

size_t safetensors_count(const struct safetensors *st)
{
    return st->n_tensors;
}

const struct tensor *safetensors_at(const struct safetensors *st, size_t i)
{
    return i < st->n_tensors ? &st->tensors[i] : NULL;
}

size_t safetensors_n_files(const struct safetensors *st)
{
    return st->n_files;
}

const char *safetensors_metadata(const struct safetensors *st, const char *key)
{
    if (st->n_files == 0 || !st->files[0].metadata)
        return NULL;
    return json_string_value(json_object_get(st->files[0].metadata, key));
}
