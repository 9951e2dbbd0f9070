/* spam_emails: see spam_emails.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "spam_emails.h"

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve_expect.h"
#include "support/support.h"

/* refs-dev.json's prediction for email id, or NULL. */
static const json_t *find_pred(const json_t *preds, const char *id)
{
    for (size_t i = 0; i < json_array_size(preds); i++) {
        const json_t *p = json_array_get(preds, i);
        if (strcmp(json_string_value(json_object_get(p, "id")), id) == 0)
            return p;
    }
    return NULL;
}

size_t emails_load(size_t n_ham, size_t n_spam, struct email **out)
{
    json_t *refs = fixture_json(fixture_model("spam-bert-tiny"), "refs-dev.json");
    const json_t *preds = json_object_get(json_object_get(refs, "dev"), "pred");
    FILE *f = fopen(fixture_xz("spam-dev.jsonl.xz"), "rb");
    ck_assert_ptr_nonnull(f);
    struct email *v = calloc(n_ham + n_spam, sizeof *v);
    ck_assert_ptr_nonnull(v);
    size_t n = 0, ham = 0, spam = 0;
    char *line = NULL;
    size_t cap = 0;
    while (n < n_ham + n_spam && getline(&line, &cap, f) > 0) {
        json_t *x = json_loads(line, JSON_ALLOW_NUL, NULL);
        ck_assert_ptr_nonnull(x);
        bool is_spam = strcmp(json_string_value(json_object_get(x, "label")), "spam") == 0;
        if (is_spam ? spam++ < n_spam : ham++ < n_ham) {
            const char *id = json_string_value(json_object_get(x, "id"));
            const json_t *pred = find_pred(preds, id);
            ck_assert_msg(pred != NULL, "no Hugging Face answer for email %s", id);
            json_t *body =
                json_pack("{s:O, s:{s:b, s:i, s:n}}", "inputs", json_object_get(x, "text"),
                          "parameters", "truncation", 1, "max_length", 256, "top_k");
            v[n].body = json_dumps(body, JSON_COMPACT);
            json_decref(body);
            const char *label = json_string_value(json_object_get(pred, "label"));
            v[n].label = label && strcmp(label, "spam") == 0 ? "spam" : "ham";
            v[n].p_spam = json_number_value(json_object_get(pred, "p_spam"));
            n++;
        }
        json_decref(x);
    }
    free(line);
    fclose(f);
    json_decref(refs);
    *out = v;
    return n;
}

void emails_free(struct email *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].body);
    free(v);
}

void expect_email(const struct http_reply *r, const struct email *m, const char *what)
{
    expect_status(r, 200, what);
    ck_assert_msg(json_is_array(r->json) && json_array_size(r->json) == 2, "%s: %s", what, r->body);
    double p_spam = -1, best = -1;
    const char *top = "";
    for (size_t i = 0; i < 2; i++) {
        const json_t *s = json_array_get(r->json, i);
        const char *label = json_string_value(json_object_get(s, "label"));
        double score = json_number_value(json_object_get(s, "score"));
        ck_assert_msg(label != NULL, "%s: %s", what, r->body);
        if (strcmp(label, "spam") == 0)
            p_spam = score;
        if (score > best) {
            best = score;
            top = label;
        }
    }
    ck_assert_msg(fabs(p_spam - m->p_spam) <= SPAM_TOL && strcmp(top, m->label) == 0,
                  "%s: p_spam %.5f (%s), Hugging Face %.5f (%s)", what, p_spam, top, m->p_spam,
                  m->label);
}
