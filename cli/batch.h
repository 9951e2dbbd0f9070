/* batch: the parts of `inferd batch` (batch.c: options, the job loop, progress and summary;
 * batch_input.c: input formats into requests, answers into output lines, resuming;
 * batch_http.c: the requests in flight to the in-process daemon; csv.c: the CSV reader). */
#ifndef INFERD_BATCH_H
#define INFERD_BATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "err.h"

/* ---- csv.c ---- */

/* One CSV record: its fields NUL-terminated in text, field i at text + start[i]. Reused from
 * record to record; zero-initialize, free with csv_record_free. */
struct csv_record {
    char *text;
    size_t len, cap;
    size_t *start;
    size_t n, fcap;
};
enum { CSV_RECORD = 1, CSV_EOF = 0, CSV_OPEN_QUOTE = -1, CSV_IO = -2, CSV_NOMEM = -3 };
/* Reads the next record into r, adding the line breaks it consumed to *lines. Returns
 * CSV_RECORD, CSV_EOF, CSV_OPEN_QUOTE (a quoted field still open at the end of the input: r
 * holds what was read), CSV_IO or CSV_NOMEM. */
int csv_read(FILE *f, struct csv_record *r, long *lines);
/* Field i of r, or NULL when the record has fewer fields. */
const char *csv_field(const struct csv_record *r, size_t i);
void csv_record_free(struct csv_record *r);

/* ---- batch_input.c ---- */

enum batch_format { BATCH_AUTO, BATCH_OPENAI, BATCH_JSONL, BATCH_CSV };

/* What turns records into requests. */
struct batch_input_opts {
    enum batch_format format;  /* not BATCH_AUTO once the input is opened */
    const char *text_column;   /* CSV: the column; JSONL: the field of each object; or NULL */
    const json_t *parameters;  /* merged into every plain request's "parameters"; or NULL */
    const char *hf_path;       /* plain formats' route: "/models/NAME" */
};

/* One record of the input: the request it makes, or its answer at once (a bad line), and
 * then its output line. */
struct item {
    long seq;        /* 0-based among the records of the input (plain formats' identity) */
    long line;       /* 1-based input line where the record starts (OpenAI's identity) */
    char *custom_id; /* OpenAI format; NULL when the line has none */
    char *path;      /* the request's path, or NULL: answered already (out is set) */
    char *body;      /* the request's body */
    size_t body_len;
    char *out;       /* the output line, without its newline, once answered */
    bool ok;         /* answered with a 2xx status */
};
void item_free(struct item *it);

struct batch_reader;
/* Opens path for o (BATCH_AUTO: .csv is CSV; a first line with "custom_id" is OpenAI's
 * format; else JSONL; o->format gets the choice). A CSV's header must name o->text_column.
 * NULL with e set. */
struct batch_reader *reader_open(const char *path, struct batch_input_opts *o, struct err *e);
/* The next record into *it (zeroed first). 1: a record, 0: the end, -1: a read error (e). */
int reader_next(struct batch_reader *r, struct item *it, struct err *e);
void reader_close(struct batch_reader *r);
/* The records of the input (a quick count, for the progress line), or -1 when unknown. */
long reader_count(const char *path, const struct batch_input_opts *o);

/* Sets it->out from the daemon's answer (status, body[0..len), request id). */
int item_answer(struct item *it, enum batch_format f, int status, const char *body, size_t len,
                const char *request_id);

/* What an existing output holds already (resume). */
struct batch_done {
    long lines;    /* complete lines */
    json_t *ids;   /* OpenAI: custom_ids answered (an object used as a set) */
    json_t *lines_answered; /* OpenAI: lines answered without a custom_id ("batch_req_N") */
};
/* Reads the output at path (absent: nothing done), cutting a last line left partial by a
 * killed run. 0, or -1 with e set. */
int done_scan(const char *path, enum batch_format f, struct batch_done *d, struct err *e);
bool done_has(const struct batch_done *d, enum batch_format f, const struct item *it);
void done_free(struct batch_done *d);

/* ---- batch_http.c ---- */

struct batch_client;
/* A client of the local daemon on 127.0.0.1:port with the bearer key; at most max requests
 * in flight. NULL when out of memory. */
struct batch_client *client_new(int port, const char *key, int max);
void client_free(struct batch_client *c);
/* Sends it's request (the client keeps it until done reports it). 0, or -1. */
int client_send(struct batch_client *c, struct item *it);
/* Requests in flight. */
int client_in_flight(const struct batch_client *c);
/* Waits up to timeout_ms for progress, then reports each finished request: done(arg, item,
 * status, body, len, request_id, transport_error) with status 0 and transport_error set when no
 * answer came. */
typedef void (*client_done_fn)(void *arg, struct item *it, int status, const char *body,
                               size_t len, const char *request_id, const char *transport_error);
void client_poll(struct batch_client *c, int timeout_ms, client_done_fn done, void *arg);

#endif
