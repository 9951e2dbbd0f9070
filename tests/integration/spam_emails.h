/* spam_emails: the spam classifier's dev emails (tests/data/spam-dev.jsonl.xz) as request
 * bodies for POST /models/{name}, each with Hugging Face's answer for it (the fixture's
 * refs-dev.json, computed with truncation to 256 tokens), for the suites that check the
 * daemon over HTTPS and behind nginx. */
#ifndef INFERD_SPAM_EMAILS_H
#define INFERD_SPAM_EMAILS_H

#include <stddef.h>

#include "serve_http.h"

/* |p_spam - HF| allowed in fp32 (as the parity suite). */
#define SPAM_TOL 5e-3

struct email {
    char *body; /* {"inputs": TEXT, "parameters": {truncation, max_length 256, top_k null}} */
    const char *label; /* HF's: "spam" or "ham" */
    double p_spam;     /* HF's */
};

/* The first n_ham ham and n_spam spam emails of the dev set, in file order; returns how many
 * (*out: malloc'ed, freed by emails_free). */
size_t emails_load(size_t n_ham, size_t n_spam, struct email **out);
void emails_free(struct email *v, size_t n);

/* Fails the test ("what: ...") unless r is 200 with [{label, score}, ...] for both labels
 * whose top label is HF's and whose p_spam is within SPAM_TOL of HF's. */
void expect_email(const struct http_reply *r, const struct email *m, const char *what);

#endif
