/* params: struct gen_params' life: neutral values, the stop strings it owns, deep copies. The
 * API dialects that fill it from a request live in server/ (params_*.c); see params.h. */
#include "generate/params.h"

#include "generate/grammar.h"

#include <stdlib.h>
#include <string.h>

void gen_params_init(struct gen_params *p, const struct gen_config *cfg)
{
    memset(p, 0, sizeof *p);
    p->temperature = 1.0;
    p->top_p = 1.0;
    p->typical_p = 1.0;
    p->repetition_penalty = 1.0;
    p->best_of = 1;
    p->n = 1;
    p->num_beams = 1;
    p->num_return_sequences = 1;
    p->length_penalty = 1.0;
    p->forced_bos_token_id = -1;
    p->forced_eos_token_id = -1;
    if (cfg) {
        memcpy(p->eos_token_ids, cfg->eos_token_ids, sizeof p->eos_token_ids);
        p->n_eos_token_ids = cfg->n_eos_token_ids;
    }
}

void gen_params_fini(struct gen_params *p)
{
    for (size_t i = 0; i < p->n_stop; i++)
        free(p->stop[i]);
    p->n_stop = 0;
    free(p->bad_words);
    p->bad_words = NULL;
    p->bad_words_size = 0;
    grammar_unref(p->grammar);
    p->grammar = NULL;
}

int gen_params_set_bad_words(struct gen_params *p, const int32_t *words, size_t n,
                             struct err *e)
{
    int32_t *c = n ? malloc(n * sizeof *c) : NULL;
    if (n && !c)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (n)
        memcpy(c, words, n * sizeof *c);
    free(p->bad_words);
    p->bad_words = c;
    p->bad_words_size = n;
    return 0;
}

int gen_params_add_stop(struct gen_params *p, const char *s, size_t len, struct err *e)
{
    if (len == 0)
        return err_set(e, ERR_INVALID, "`stop` sequences must not be empty");
    if (p->n_stop >= GEN_MAX_STOP)
        return err_set(e, ERR_INVALID, "`stop` supports up to %d stop sequences", GEN_MAX_STOP);
    char *c = malloc(len + 1);
    if (!c)
        return err_set(e, ERR_NOMEM, "out of memory");
    memcpy(c, s, len);
    c[len] = '\0';
    p->stop[p->n_stop] = c;
    p->stop_len[p->n_stop++] = len;
    return 0;
}

int gen_params_copy(struct gen_params *dst, const struct gen_params *src, struct err *e)
{
    *dst = *src;
    dst->n_stop = 0;
    grammar_ref(dst->grammar);
    dst->bad_words = NULL;
    dst->bad_words_size = 0;
    int brc = gen_params_set_bad_words(dst, src->bad_words, src->bad_words_size, e);
    if (brc) {
        gen_params_fini(dst);
        return brc;
    }
    for (size_t i = 0; i < src->n_stop; i++) {
        int rc = gen_params_add_stop(dst, src->stop[i], src->stop_len[i], e);
        if (rc) {
            gen_params_fini(dst);
            return rc;
        }
    }
    return 0;
}
