/* csv: a small RFC 4180 reader for `inferd batch --text-column` (batch_input.c): one record at
 * a time from a stream, comma-separated, a field in double quotes may hold commas, line breaks
 * and doubled quotes (""), records end with LF or CRLF. Like Python's csv module (its default
 * dialect, strict off) it is lenient where RFC 4180 is silent: a quote inside an unquoted field
 * is kept as it is, text after a closing quote joins the field; only a quoted field still open
 * at the end of the input is an error. Blank lines are no records. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"

/* Appends byte ch to r's text (grown as needed); -1 when out of memory. */
static int put(struct csv_record *r, char ch)
{
    if (r->len + 1 >= r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 256;
        char *t = realloc(r->text, cap);
        if (!t)
            return -1;
        r->text = t;
        r->cap = cap;
    }
    r->text[r->len++] = ch;
    return 0;
}

/* Ends the current field: NUL-terminates it in text and records where it starts. */
static int end_field(struct csv_record *r, size_t start)
{
    if (put(r, '\0'))
        return -1;
    if (r->n == r->fcap) {
        size_t cap = r->fcap ? 2 * r->fcap : 16;
        size_t *f = realloc(r->start, cap * sizeof *f);
        if (!f)
            return -1;
        r->start = f;
        r->fcap = cap;
    }
    r->start[r->n++] = start;
    return 0;
}

const char *csv_field(const struct csv_record *r, size_t i)
{
    return i < r->n ? r->text + r->start[i] : NULL;
}

void csv_record_free(struct csv_record *r)
{
    free(r->text);
    free(r->start);
    *r = (struct csv_record){0};
}

/* The states of one record's scan. */
enum csv_state { AT_START, IN_FIELD, IN_QUOTES, QUOTE_IN_QUOTES };

int csv_read(FILE *f, struct csv_record *r, long *lines)
{
    r->n = r->len = 0;
    enum csv_state st = AT_START;
    size_t start = 0;
    bool any = false; /* a byte of this record was read (a blank line is none) */
    for (;;) {
        int ch = getc_unlocked(f);
        if (ch == EOF) {
            if (ferror(f))
                return CSV_IO;
            if (!any)
                return CSV_EOF;
            if (st == IN_QUOTES)
                return end_field(r, start) ? CSV_NOMEM : CSV_OPEN_QUOTE;
            return end_field(r, start) ? CSV_NOMEM : CSV_RECORD;
        }
        if (ch == '\n')
            (*lines)++;
        if (st == IN_QUOTES) {
            if (ch == '"')
                st = QUOTE_IN_QUOTES;
            else if (put(r, (char)ch))
                return CSV_NOMEM;
            continue;
        }
        if (st == QUOTE_IN_QUOTES && ch == '"') { /* "" inside quotes: one quote */
            st = IN_QUOTES;
            if (put(r, '"'))
                return CSV_NOMEM;
            continue;
        }
        if (ch == '\r') {
            int next = getc_unlocked(f);
            if (next == '\n') {
                ch = '\n';
                (*lines)++;
            } else if (next != EOF) {
                ungetc(next, f);
            }
        }
        if (ch == '\n') {
            if (!any) /* a blank line */
                continue;
            return end_field(r, start) ? CSV_NOMEM : CSV_RECORD;
        }
        any = true;
        if (ch == ',') {
            if (end_field(r, start))
                return CSV_NOMEM;
            start = r->len;
            st = AT_START;
        } else if (ch == '"' && st == AT_START) {
            st = IN_QUOTES;
        } else {
            st = IN_FIELD; /* after a closing quote too: the text joins the field */
            if (put(r, (char)ch))
                return CSV_NOMEM;
        }
    }
}
