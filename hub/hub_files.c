/* hub_files: which files of a repo a pull fetches. By default what serving needs, from two
 * tables: the files taken whenever present (configs, tokenizer files, sentence-transformers
 * module files) and the weights, one format in order of preference (safetensors, sharded
 * with its index, over pytorch_model.bin); --include / --exclude globs as huggingface_hub's
 * allow_patterns / ignore_patterns (fnmatch, '*' crossing '/', a trailing "/" matching
 * everything under the directory). Names that would leave the snapshot directory are
 * refused here, before anything is fetched. */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "hub_impl.h"

/* the tokenizer's files (tokenizer.json, or the slow tokenizers' vocabularies) */
static const char *const tokenizer_files[] = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "vocab.txt", "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model",
    "spm.model", "tokenizer.model", "chat_template.json", "chat_template.jinja",
};

/* the rest of what serving reads (globs): the model's configs and sentence-transformers'
 * modules (modules.json names directories such as 1_Pooling/ with their own configs) */
static const char *const serving_globs[] = {
    "config.json", "generation_config.json", "modules.json", "config_sentence_transformers.json",
    "sentence_bert_config.json", "[0-9]*_*/config.json", "[0-9]*_*/*.safetensors",
    "[0-9]*_*/pytorch_model.bin",
};

/* The weights, best first: a single file, or an index and its shards. */
static const struct {
    const char *single, *index, *shards;
} weights[] = {
    {"model.safetensors", "model.safetensors.index.json", "model-*-of-*.safetensors"},
    {"pytorch_model.bin", "pytorch_model.bin.index.json", "pytorch_model-*-of-*.bin"},
};

bool safe_repo_path(const char *name)
{
    if (!*name || name[0] == '/' || strchr(name, '\\'))
        return false;
    for (const char *part = name; *part;) {
        const char *end = strchr(part, '/');
        size_t n = end ? (size_t)(end - part) : strlen(part);
        if (n == 0 || (n == 1 && part[0] == '.') || (n == 2 && part[0] == '.' && part[1] == '.'))
            return false;
        if (!end)
            break;
        part = end + 1;
        if (!*part)
            return false; /* a trailing '/' */
    }
    return true;
}

/* Whether name matches a glob of v (a trailing "/": everything under the directory). */
static bool matches(const char *name, const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char pat[512];
        size_t len = strlen(v[i]);
        snprintf(pat, sizeof pat, "%s%s", v[i], len && v[i][len - 1] == '/' ? "*" : "");
        if (fnmatch(pat, name, 0) == 0)
            return true;
    }
    return false;
}

static bool in_list(const char *name, const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, v[i]) == 0)
            return true;
    return false;
}

#define N_OF(a) (sizeof a / sizeof a[0])

/* Marks the best weights format present; returns whether there was one. */
static bool pick_weights(const char *const *names, size_t n, bool *keep)
{
    for (size_t w = 0; w < N_OF(weights); w++) {
        bool single = in_list(weights[w].single, names, n);
        bool index = in_list(weights[w].index, names, n);
        if (!single && !index)
            continue;
        for (size_t i = 0; i < n; i++) {
            if (single)
                keep[i] |= strcmp(names[i], weights[w].single) == 0;
            else
                keep[i] |= strcmp(names[i], weights[w].index) == 0 ||
                           fnmatch(weights[w].shards, names[i], FNM_PATHNAME) == 0;
        }
        return true;
    }
    return false;
}

int select_files(const char *const *names, size_t n, const struct hub_opts *o, const char *what,
                 bool *keep, struct err *e)
{
    for (size_t i = 0; i < n; i++) {
        if (!safe_repo_path(names[i]))
            return err_set(e, ERR_FORMAT,
                           "%s: the repo's file list names '%.80s', a path outside the "
                           "repo: refused",
                           what, names[i]);
        keep[i] = o->n_include ? matches(names[i], o->include, o->n_include)
                               : in_list(names[i], tokenizer_files, N_OF(tokenizer_files));
        if (!o->n_include && o->files == HUB_FILES_SERVING)
            keep[i] |= matches(names[i], serving_globs, N_OF(serving_globs));
    }
    if (!o->n_include && o->files == HUB_FILES_SERVING && !pick_weights(names, n, keep))
        return err_set(e, ERR_NOT_FOUND,
                       "%s: no supported weights in the repo (model.safetensors, sharded "
                       "model-*.safetensors with model.safetensors.index.json, or "
                       "pytorch_model.bin)",
                       what);
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        if (keep[i] && o->n_exclude && matches(names[i], o->exclude, o->n_exclude))
            keep[i] = false;
        count += keep[i];
    }
    return count;
}
