/* vocab: the token string <-> id map (see vocab.h). Strings live in tokens[id];
 * the hash table is open addressing with linear probing over id+1 values, so a
 * lookup touches the slot array and then the candidate string only. */
#include "vocab.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

/* FNV-1a, 64-bit: cheap for the short strings tokens are. */
static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h ^ (h >> 29);
}

void vocab_init(struct vocab *v)
{
    memset(v, 0, sizeof *v);
}

void vocab_fini(struct vocab *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n_ids; i++)
        free(v->tokens[i]);
    free(v->tokens);
    free(v->lens);
    free(v->slots);
    vocab_init(v);
}

/* Capacity of the id arrays is implied by n_ids: the next power of two. */
static size_t ids_cap(size_t n)
{
    size_t c = 16;
    while (c < n)
        c *= 2;
    return n ? c : 0;
}

static int grow_ids(struct vocab *v, size_t n_ids)
{
    size_t old_cap = ids_cap(v->n_ids), cap = ids_cap(n_ids);
    if (cap > old_cap) {
        char **t = realloc(v->tokens, cap * sizeof *t);
        if (!t)
            return ERR_NOMEM;
        v->tokens = t;
        uint32_t *l = realloc(v->lens, cap * sizeof *l);
        if (!l)
            return ERR_NOMEM;
        v->lens = l;
    }
    for (size_t i = v->n_ids; i < n_ids; i++) {
        v->tokens[i] = NULL;
        v->lens[i] = 0;
    }
    v->n_ids = n_ids;
    return 0;
}

static void slot_insert(uint32_t *slots, size_t n_slots, uint64_t h, uint32_t val)
{
    size_t mask = n_slots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask)
        if (slots[i] == 0) {
            slots[i] = val;
            return;
        }
}

/* Keeps the load factor at or below one half. */
static int grow_slots(struct vocab *v)
{
    if ((v->n_entries + 1) * 2 <= v->n_slots)
        return 0;
    size_t n = v->n_slots ? v->n_slots * 2 : 64;
    uint32_t *s = calloc(n, sizeof *s);
    if (!s)
        return ERR_NOMEM;
    for (size_t i = 0; i < v->n_slots; i++) {
        uint32_t val = v->slots[i];
        if (val)
            slot_insert(s, n, hash_bytes(v->tokens[val - 1], v->lens[val - 1]), val);
    }
    free(v->slots);
    v->slots = s;
    v->n_slots = n;
    return 0;
}

int vocab_add(struct vocab *v, const char *s, size_t len, int32_t id)
{
    if (id < 0 || id >= VOCAB_MAX_ID || len > UINT32_MAX)
        return ERR_FORMAT;
    if ((size_t)id < v->n_ids && v->tokens[id])
        return ERR_FORMAT;
    if (vocab_find(v, s, len) >= 0)
        return ERR_FORMAT;
    if ((size_t)id >= v->n_ids && grow_ids(v, (size_t)id + 1) != 0)
        return ERR_NOMEM;
    if (grow_slots(v) != 0)
        return ERR_NOMEM;
    char *copy = malloc(len + 1);
    if (!copy)
        return ERR_NOMEM;
    memcpy(copy, s, len);
    copy[len] = '\0';
    v->tokens[id] = copy;
    v->lens[id] = (uint32_t)len;
    slot_insert(v->slots, v->n_slots, hash_bytes(s, len), (uint32_t)id + 1);
    v->n_entries++;
    return 0;
}

int32_t vocab_find(const struct vocab *v, const char *s, size_t len)
{
    if (!v->n_slots)
        return -1;
    size_t mask = v->n_slots - 1;
    for (size_t i = (size_t)hash_bytes(s, len) & mask;; i = (i + 1) & mask) {
        uint32_t val = v->slots[i];
        if (val == 0)
            return -1;
        uint32_t id = val - 1;
        if (v->lens[id] == len && memcmp(v->tokens[id], s, len) == 0)
            return (int32_t)id;
    }
}
