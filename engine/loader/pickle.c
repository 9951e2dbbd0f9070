/* pickle: the restricted state-dict reader; see pickle.h for what it accepts. A small stack
 * machine over inert values (no value is ever callable): an opcode table maps each accepted
 * opcode to its handler, a globals table maps each accepted global to its meaning. */
#include "loader/pickle.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum vkind { V_NONE, V_BOOL, V_INT, V_STR, V_TUPLE, V_DICT, V_GLOBAL, V_STORAGE, V_TENSOR };

/* What an accepted global stands for. */
enum gkind { G_ODICT, G_REBUILD, G_PARAM, G_DTYPE };

struct value {
    enum vkind kind;
    int64_t i;            /* BOOL, INT; GLOBAL: index into globals[]; STORAGE: storage index */
    const char *s;        /* STR: inside the input, not NUL-terminated */
    size_t len;           /* STR length */
    struct value **items; /* TUPLE items; DICT keys and values interleaved */
    size_t n, cap;
    struct pickle_tensor *t; /* TENSOR: the view (name unset) */
};

static const struct global {
    const char *module, *name;
    enum gkind kind;
    enum dtype dtype;
} globals[] = {
    {"collections", "OrderedDict", G_ODICT, DTYPE_F32},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD, DTYPE_F32},
    {"torch._utils", "_rebuild_parameter", G_PARAM, DTYPE_F32},
    {"torch", "FloatStorage", G_DTYPE, DTYPE_F32},
    {"torch", "HalfStorage", G_DTYPE, DTYPE_F16},
    {"torch", "BFloat16Storage", G_DTYPE, DTYPE_BF16},
    {"torch", "DoubleStorage", G_DTYPE, DTYPE_F64},
    {"torch", "LongStorage", G_DTYPE, DTYPE_I64},
    {"torch", "IntStorage", G_DTYPE, DTYPE_I32},
    {"torch", "ShortStorage", G_DTYPE, DTYPE_I16},
    {"torch", "CharStorage", G_DTYPE, DTYPE_I8},
    {"torch", "ByteStorage", G_DTYPE, DTYPE_U8},
    {"torch", "BoolStorage", G_DTYPE, DTYPE_BOOL},
    {"torch", "float32", G_DTYPE, DTYPE_F32},
    {"torch", "float16", G_DTYPE, DTYPE_F16},
    {"torch", "bfloat16", G_DTYPE, DTYPE_BF16},
    {"torch", "float64", G_DTYPE, DTYPE_F64},
    {"torch", "int64", G_DTYPE, DTYPE_I64},
    {"torch", "int32", G_DTYPE, DTYPE_I32},
    {"torch", "int16", G_DTYPE, DTYPE_I16},
    {"torch", "int8", G_DTYPE, DTYPE_I8},
    {"torch", "uint8", G_DTYPE, DTYPE_U8},
    {"torch", "bool", G_DTYPE, DTYPE_BOOL},
};
#define N_GLOBALS (sizeof globals / sizeof *globals)

struct vm {
    const unsigned char *p;
    size_t size, pos, op_pos;
    const char *what;
    struct err *e;
    struct value **all; /* every value made, for the final free */
    size_t n_all, cap_all;
    struct value **stack;
    size_t sp, cap_stack;
    size_t *marks;
    size_t n_marks, cap_marks;
    struct value **memo;
    size_t n_memo;
    struct pickle_state_dict *sd;
    struct value *result;
};

/* ---- helpers ---- */

static int fail(struct vm *vm, const char *fmt, const char *arg)
{
    char detail[512];
    snprintf(detail, sizeof detail, fmt, arg);
    return err_set(vm->e, ERR_FORMAT, "%s: data.pkl at offset %zu: %s", vm->what, vm->op_pos,
                   detail);
}

static int nomem(struct vm *vm)
{
    return err_set(vm->e, ERR_NOMEM, "%s: out of memory reading data.pkl", vm->what);
}

/* Grows *arr (elements of size el) to hold at least need; 0 or -1. */
static int grow(void *arr, size_t *cap, size_t need, size_t el)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    while (nc < need)
        nc *= 2;
    void *q = realloc(*(void **)arr, nc * el);
    if (!q)
        return -1;
    *(void **)arr = q;
    *cap = nc;
    return 0;
}

static struct value *new_value(struct vm *vm, enum vkind kind)
{
    if (grow(&vm->all, &vm->cap_all, vm->n_all + 1, sizeof *vm->all))
        return NULL;
    struct value *v = calloc(1, sizeof *v);
    if (v) {
        v->kind = kind;
        vm->all[vm->n_all++] = v;
    }
    return v;
}

static int push(struct vm *vm, struct value *v)
{
    if (!v || grow(&vm->stack, &vm->cap_stack, vm->sp + 1, sizeof *vm->stack))
        return nomem(vm);
    vm->stack[vm->sp++] = v;
    return 0;
}

static int pop(struct vm *vm, struct value **out)
{
    size_t floor = vm->n_marks ? vm->marks[vm->n_marks - 1] : 0;
    if (vm->sp <= floor)
        return fail(vm, "%sstack underflow", "");
    *out = vm->stack[--vm->sp];
    return 0;
}

static int need(struct vm *vm, size_t n, const unsigned char **out)
{
    if (vm->size - vm->pos < n)
        return fail(vm, "%struncated", "");
    *out = vm->p + vm->pos;
    vm->pos += n;
    return 0;
}

static uint64_t le(const unsigned char *b, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = v << 8 | b[i];
    return v;
}

static int push_int(struct vm *vm, int64_t i)
{
    struct value *v = new_value(vm, V_INT);
    if (v)
        v->i = i;
    return push(vm, v);
}

/* ---- opcodes: constants ---- */

static int op_proto(struct vm *vm)
{
    const unsigned char *b = NULL;
    int rc = need(vm, 1, &b);
    return rc ? rc : (b[0] > 5 ? fail(vm, "%sunknown protocol", "") : 0);
}

static int op_none(struct vm *vm)
{
    return push(vm, new_value(vm, V_NONE));
}

static int push_bool(struct vm *vm, int64_t b)
{
    struct value *v = new_value(vm, V_BOOL);
    if (v)
        v->i = b;
    return push(vm, v);
}

static int op_true(struct vm *vm)
{
    return push_bool(vm, 1);
}

static int op_false(struct vm *vm)
{
    return push_bool(vm, 0);
}

static int op_binint(struct vm *vm)
{
    const unsigned char *b = NULL;
    int rc = need(vm, 4, &b);
    return rc ? rc : push_int(vm, (int32_t)(uint32_t)le(b, 4));
}

static int op_binint1(struct vm *vm)
{
    const unsigned char *b = NULL;
    int rc = need(vm, 1, &b);
    return rc ? rc : push_int(vm, b[0]);
}

static int op_binint2(struct vm *vm)
{
    const unsigned char *b = NULL;
    int rc = need(vm, 2, &b);
    return rc ? rc : push_int(vm, (int64_t)le(b, 2));
}

static int op_long1(struct vm *vm)
{
    const unsigned char *b = NULL, *d = NULL;
    int rc = need(vm, 1, &b);
    if (rc)
        return rc;
    if (b[0] > 8)
        return fail(vm, "%sLONG1 wider than 64 bits", "");
    if ((rc = need(vm, b[0], &d)))
        return rc;
    uint64_t u = le(d, b[0]);
    if (b[0] > 0 && b[0] < 8 && (d[b[0] - 1] & 0x80)) /* negative: sign-extend */
        u |= ~(uint64_t)0 << (8 * b[0]);
    return push_int(vm, (int64_t)u);
}

static int op_binunicode(struct vm *vm)
{
    const unsigned char *b = NULL, *s = NULL;
    int rc = need(vm, 4, &b);
    if (rc || (rc = need(vm, (size_t)le(b, 4), &s)))
        return rc;
    struct value *v = new_value(vm, V_STR);
    if (v) {
        v->s = (const char *)s;
        v->len = (size_t)le(b, 4);
    }
    return push(vm, v);
}

static int op_empty_dict(struct vm *vm)
{
    return push(vm, new_value(vm, V_DICT));
}

/* ---- opcodes: structure ---- */

static int op_mark(struct vm *vm)
{
    if (grow(&vm->marks, &vm->cap_marks, vm->n_marks + 1, sizeof *vm->marks))
        return nomem(vm);
    vm->marks[vm->n_marks++] = vm->sp;
    return 0;
}

/* A tuple of the n values on top of the stack. */
static int make_tuple(struct vm *vm, size_t n)
{
    size_t floor = vm->n_marks ? vm->marks[vm->n_marks - 1] : 0;
    if (vm->sp - floor < n)
        return fail(vm, "%sstack underflow", "");
    struct value *t = new_value(vm, V_TUPLE);
    if (!t || (n && !(t->items = malloc(n * sizeof *t->items))))
        return nomem(vm);
    if (n)
        memcpy(t->items, vm->stack + vm->sp - n, n * sizeof *t->items);
    t->n = t->cap = n;
    vm->sp -= n;
    return push(vm, t);
}

static int op_empty_tuple(struct vm *vm)
{
    return make_tuple(vm, 0);
}

static int op_tuple1(struct vm *vm)
{
    return make_tuple(vm, 1);
}

static int op_tuple2(struct vm *vm)
{
    return make_tuple(vm, 2);
}

static int op_tuple3(struct vm *vm)
{
    return make_tuple(vm, 3);
}

/* Pops the topmost mark; *n gets how many values sit above it. */
static int pop_mark(struct vm *vm, size_t *n)
{
    if (!vm->n_marks)
        return fail(vm, "%sno MARK", "");
    size_t m = vm->marks[--vm->n_marks];
    *n = vm->sp - m;
    return 0;
}

static int op_tuple(struct vm *vm)
{
    size_t n = 0;
    int rc = pop_mark(vm, &n);
    return rc ? rc : make_tuple(vm, n);
}

static int dict_add(struct vm *vm, struct value *d, struct value *k, struct value *v)
{
    if (grow(&d->items, &d->cap, d->n + 2, sizeof *d->items))
        return nomem(vm);
    d->items[d->n++] = k;
    d->items[d->n++] = v;
    return 0;
}

static int op_setitems(struct vm *vm)
{
    size_t n = 0;
    int rc = pop_mark(vm, &n);
    if (rc)
        return rc;
    if (n % 2 || vm->sp - n == 0 || vm->stack[vm->sp - n - 1]->kind != V_DICT)
        return fail(vm, "%sSETITEMS needs a dict and key/value pairs", "");
    struct value *d = vm->stack[vm->sp - n - 1];
    for (size_t i = vm->sp - n; i < vm->sp && rc == 0; i += 2)
        rc = dict_add(vm, d, vm->stack[i], vm->stack[i + 1]);
    vm->sp -= n;
    return rc;
}

static int op_setitem(struct vm *vm)
{
    struct value *k = NULL, *v = NULL;
    int rc = pop(vm, &v);
    if (rc || (rc = pop(vm, &k)))
        return rc;
    if (vm->sp == 0 || vm->stack[vm->sp - 1]->kind != V_DICT)
        return fail(vm, "%sSETITEM needs a dict", "");
    return dict_add(vm, vm->stack[vm->sp - 1], k, v);
}

/* BUILD on a dict: the OrderedDict's state (its _metadata attribute), dropped. */
static int op_build(struct vm *vm)
{
    struct value *state = NULL;
    int rc = pop(vm, &state);
    if (rc)
        return rc;
    if (vm->sp == 0 || vm->stack[vm->sp - 1]->kind != V_DICT)
        return fail(vm, "%sBUILD of anything but a dict", "");
    return 0;
}

/* ---- opcodes: memo ---- */

static int memo_put(struct vm *vm, uint64_t idx)
{
    if (vm->sp == 0)
        return fail(vm, "%sPUT on an empty stack", "");
    if (idx > vm->size) /* memo indices count up from 0, one per value at most */
        return fail(vm, "%smemo index out of range", "");
    if (idx >= vm->n_memo) {
        size_t cap = vm->n_memo;
        if (grow(&vm->memo, &cap, idx + 1, sizeof *vm->memo))
            return nomem(vm);
        memset(vm->memo + vm->n_memo, 0, (cap - vm->n_memo) * sizeof *vm->memo);
        vm->n_memo = cap;
    }
    vm->memo[idx] = vm->stack[vm->sp - 1];
    return 0;
}

static int memo_get(struct vm *vm, uint64_t idx)
{
    if (idx >= vm->n_memo || !vm->memo[idx])
        return fail(vm, "%sGET of an unset memo slot", "");
    return push(vm, vm->memo[idx]);
}

static int op_binput(struct vm *vm)
{
    const unsigned char *b = NULL;
    int rc = need(vm, 1, &b);
    return rc ? rc : memo_put(vm, b[0]);
}

static int op_long_binput(struct vm *vm)
{
    const unsigned char *b = NULL;
    int rc = need(vm, 4, &b);
    return rc ? rc : memo_put(vm, le(b, 4));
}

static int op_binget(struct vm *vm)
{
    const unsigned char *b = NULL;
    int rc = need(vm, 1, &b);
    return rc ? rc : memo_get(vm, b[0]);
}

static int op_long_binget(struct vm *vm)
{
    const unsigned char *b = NULL;
    int rc = need(vm, 4, &b);
    return rc ? rc : memo_get(vm, le(b, 4));
}

/* ---- opcodes: globals, persistent ids, REDUCE ---- */

/* One '\n'-terminated line of GLOBAL's argument. */
static int read_line(struct vm *vm, const char **s, size_t *len)
{
    const unsigned char *start = vm->p + vm->pos;
    const unsigned char *nl = memchr(start, '\n', vm->size - vm->pos);
    if (!nl || nl - start > 200)
        return fail(vm, "%sGLOBAL name not terminated", "");
    *s = (const char *)start;
    *len = (size_t)(nl - start);
    vm->pos += *len + 1;
    return 0;
}

static int op_global(struct vm *vm)
{
    const char *m = NULL, *n = NULL;
    size_t ml = 0, nl = 0;
    int rc = read_line(vm, &m, &ml);
    if (rc || (rc = read_line(vm, &n, &nl)))
        return rc;
    for (size_t i = 0; i < N_GLOBALS; i++)
        if (strlen(globals[i].module) == ml && !memcmp(globals[i].module, m, ml) &&
            strlen(globals[i].name) == nl && !memcmp(globals[i].name, n, nl)) {
            struct value *v = new_value(vm, V_GLOBAL);
            if (v)
                v->i = (int64_t)i;
            return push(vm, v);
        }
    char full[200];
    snprintf(full, sizeof full, "%.*s.%.*s", (int)(ml > 90 ? 90 : ml), m, (int)(nl > 90 ? 90 : nl), n);
    return fail(vm, "global '%s' is not allowed (a state dict only needs OrderedDict, "
                    "torch's tensor rebuilders and storage types)", full);
}

static bool is_str(const struct value *v, const char *s)
{
    return v->kind == V_STR && v->len == strlen(s) && !memcmp(v->s, s, v->len);
}

/* A persistent id ('storage', TYPE, key, location, numel) -> the storage (shared by key). */
static int op_binpersid(struct vm *vm)
{
    struct value *pid = NULL;
    int rc = pop(vm, &pid);
    if (rc)
        return rc;
    struct value **it = pid->items;
    if (pid->kind != V_TUPLE || pid->n != 5 || !is_str(it[0], "storage") ||
        it[1]->kind != V_GLOBAL || globals[it[1]->i].kind != G_DTYPE || it[2]->kind != V_STR ||
        it[2]->len == 0 || it[2]->len > 64 || it[4]->kind != V_INT || it[4]->i < 0)
        return fail(vm, "%spersistent id is not ('storage', TYPE, key, location, numel)", "");
    for (size_t k = 0; k < it[2]->len; k++)
        if (!strchr("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_", it[2]->s[k]))
            return fail(vm, "%sstorage key is not alphanumeric", "");
    struct pickle_state_dict *sd = vm->sd;
    enum dtype dt = globals[it[1]->i].dtype;
    size_t idx = 0;
    while (idx < sd->n_storages &&
           (strlen(sd->storages[idx].key) != it[2]->len ||
            memcmp(sd->storages[idx].key, it[2]->s, it[2]->len)))
        idx++;
    if (idx < sd->n_storages) {
        if (sd->storages[idx].dtype != dt || sd->storages[idx].numel != (uint64_t)it[4]->i)
            return fail(vm, "%sstorage named twice with different types or sizes", "");
    } else {
        size_t cap = sd->n_storages; /* exact-size growth: storages are few */
        if (grow(&sd->storages, &cap, idx + 1, sizeof *sd->storages))
            return nomem(vm);
        struct pickle_storage *s = &sd->storages[idx];
        if (!(s->key = strndup(it[2]->s, it[2]->len)))
            return nomem(vm);
        s->dtype = dt;
        s->numel = (uint64_t)it[4]->i;
        sd->n_storages++;
    }
    struct value *v = new_value(vm, V_STORAGE);
    if (v)
        v->i = (int64_t)idx;
    return push(vm, v);
}

/* A tuple of non-negative ints of at most TENSOR_MAX_DIMS into dims; its length or -1. */
static int int_tuple(const struct value *v, int64_t *dims)
{
    if (v->kind != V_TUPLE || v->n > TENSOR_MAX_DIMS)
        return -1;
    for (size_t i = 0; i < v->n; i++) {
        if (v->items[i]->kind != V_INT || v->items[i]->i < 0)
            return -1;
        dims[i] = v->items[i]->i;
    }
    return (int)v->n;
}

/* The view fits its storage: element count and furthest element without overflow. */
static int check_view(struct vm *vm, struct pickle_tensor *t, int ns)
{
    uint64_t count = 1, last = t->offset;
    for (int d = 0; d < t->n_dims; d++) {
        uint64_t step;
        if (__builtin_mul_overflow(count, (uint64_t)t->shape[d], &count))
            return fail(vm, "%stensor size overflows", "");
        if (t->shape[d] == 0)
            continue;
        if (__builtin_mul_overflow((uint64_t)(t->shape[d] - 1), (uint64_t)t->stride[d], &step) ||
            __builtin_add_overflow(last, step, &last))
            return fail(vm, "%stensor view overflows", "");
    }
    if (ns != t->n_dims)
        return fail(vm, "%ssize and stride differ in length", "");
    uint64_t bytes;
    if (count > SIZE_MAX || __builtin_mul_overflow(count, dtype_size(vm->sd->storages[t->storage].dtype), &bytes))
        return fail(vm, "%stensor size overflows", "");
    if (count > 0 && last >= vm->sd->storages[t->storage].numel)
        return fail(vm, "%stensor view reaches past the end of its storage", "");
    t->n_elements = (size_t)count;
    return 0;
}

static int rebuild_tensor(struct vm *vm, const struct value *args, struct value **out)
{
    struct value **a = args->items;
    if (args->n < 6 || args->n > 7 || a[0]->kind != V_STORAGE || a[1]->kind != V_INT ||
        a[1]->i < 0 || a[4]->kind != V_BOOL)
        return fail(vm, "%s_rebuild_tensor_v2 with unexpected arguments", "");
    struct value *v = new_value(vm, V_TENSOR);
    if (!v || !(v->t = calloc(1, sizeof *v->t)))
        return nomem(vm);
    v->t->storage = (size_t)a[0]->i;
    v->t->offset = (uint64_t)a[1]->i;
    v->t->n_dims = int_tuple(a[2], v->t->shape);
    int ns = int_tuple(a[3], v->t->stride);
    if (v->t->n_dims < 0 || ns < 0)
        return fail(vm, "%s_rebuild_tensor_v2: size or stride is not a tuple of ints", "");
    *out = v;
    return check_view(vm, v->t, ns);
}

static int op_reduce(struct vm *vm)
{
    struct value *args = NULL, *fn = NULL, *r = NULL;
    int rc = pop(vm, &args);
    if (rc || (rc = pop(vm, &fn)))
        return rc;
    if (fn->kind != V_GLOBAL)
        return fail(vm, "%sREDUCE of something that is not an allowed global", "");
    if (args->kind != V_TUPLE)
        return fail(vm, "%sREDUCE arguments are not a tuple", "");
    const struct global *g = &globals[fn->i];
    if (g->kind == G_ODICT && args->n == 0)
        r = new_value(vm, V_DICT);
    else if (g->kind == G_REBUILD && (rc = rebuild_tensor(vm, args, &r)))
        return rc;
    else if (g->kind == G_PARAM && args->n >= 2 && args->n <= 3 &&
             args->items[0]->kind == V_TENSOR)
        r = args->items[0];
    else if (!r) {
        char full[96];
        snprintf(full, sizeof full, "%s.%s", g->module, g->name);
        return fail(vm, "REDUCE of '%s' with these arguments is not allowed", full);
    }
    return push(vm, r);
}

static int op_stop(struct vm *vm)
{
    if (vm->sp != 1 || vm->n_marks)
        return fail(vm, "%sSTOP with more than one value left", "");
    vm->result = vm->stack[0];
    return 0;
}

/* ---- the tables ---- */

typedef int op_fn(struct vm *vm);
static const struct op {
    unsigned char code;
    op_fn *fn;
} ops[] = {
    {0x80, op_proto},         {'N', op_none},        {0x88, op_true},
    {0x89, op_false},         {'J', op_binint},      {'K', op_binint1},
    {'M', op_binint2},        {0x8a, op_long1},      {'X', op_binunicode},
    {'}', op_empty_dict},     {'(', op_mark},        {')', op_empty_tuple},
    {0x85, op_tuple1},        {0x86, op_tuple2},     {0x87, op_tuple3},
    {'t', op_tuple},          {'u', op_setitems},    {'s', op_setitem},
    {'b', op_build},          {'q', op_binput},      {'r', op_long_binput},
    {'h', op_binget},         {'j', op_long_binget}, {'c', op_global},
    {'Q', op_binpersid},      {'R', op_reduce},      {'.', op_stop},
};

/* ---- the result ---- */

static int collect(struct vm *vm)
{
    const struct value *d = vm->result;
    if (d->kind != V_DICT)
        return fail(vm, "%sthe pickle is not a dict (not a state dict)", "");
    struct pickle_state_dict *sd = vm->sd;
    if (!(sd->tensors = calloc(d->n / 2 + 1, sizeof *sd->tensors)))
        return nomem(vm);
    for (size_t i = 0; i < d->n; i += 2) {
        const struct value *k = d->items[i], *v = d->items[i + 1];
        if (k->kind != V_STR || k->len == 0 || k->len > 255 || memchr(k->s, 0, k->len))
            return fail(vm, "%sa state dict key is not a tensor name", "");
        if (v->kind != V_TENSOR) {
            char name[260];
            snprintf(name, sizeof name, "%.*s", (int)k->len, k->s);
            return fail(vm, "'%s' is not a tensor", name);
        }
        struct pickle_tensor *t = &sd->tensors[sd->n_tensors];
        *t = *v->t;
        if (!(t->name = strndup(k->s, k->len)))
            return nomem(vm);
        sd->n_tensors++;
    }
    return 0;
}

static void vm_free(struct vm *vm)
{
    for (size_t i = 0; i < vm->n_all; i++) {
        free(vm->all[i]->items);
        free(vm->all[i]->t);
        free(vm->all[i]);
    }
    free(vm->all);
    free(vm->stack);
    free(vm->marks);
    free(vm->memo);
}

int pickle_read_state_dict(const void *data, size_t size, const char *what,
                           struct pickle_state_dict *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    op_fn *table[256] = {0};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        table[ops[i].code] = ops[i].fn;
    struct vm vm = {.p = data, .size = size, .what = what, .e = e, .sd = out};
    int rc = 0;
    while (rc == 0 && !vm.result) {
        if (vm.pos >= size) {
            rc = err_set(e, ERR_FORMAT, "%s: data.pkl ends without STOP", what);
            break;
        }
        vm.op_pos = vm.pos;
        unsigned char op = vm.p[vm.pos++];
        if (!table[op])
            rc = err_set(e, ERR_FORMAT,
                         "%s: data.pkl at offset %zu: opcode 0x%02x ('%c') is not allowed in a "
                         "state dict", what, vm.op_pos, op, op >= 32 && op < 127 ? op : '?');
        else
            rc = table[op](&vm);
    }
    if (rc == 0)
        rc = collect(&vm);
    vm_free(&vm);
    return rc;
}

void pickle_state_dict_free(struct pickle_state_dict *sd)
{
    for (size_t i = 0; i < sd->n_storages; i++)
        free(sd->storages[i].key);
    for (size_t i = 0; i < sd->n_tensors; i++)
        free(sd->tensors[i].name);
    free(sd->storages);
    free(sd->tensors);
    memset(sd, 0, sizeof *sd);
}
