/* cli: the offline subcommands of the inferd executable (run, batch, bench, tokenize,
 * detokenize, help, --version); main.c also starts the daemon (server/daemon.h). */
#ifndef INFERD_CLI_H
#define INFERD_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "config.h"

/* `inferd tokenize` and `inferd detokenize`: JSON lines in, JSON lines out.
 * Return the process exit status. */
int cli_tokenize(int argc, char **argv, FILE *in, FILE *out);
int cli_detokenize(int argc, char **argv, FILE *in, FILE *out);

/* `inferd run --model DIR --task TASK`: {"inputs", "parameters"} lines in, the pipeline's
 * result (or an error object) per line out. Returns the process exit status. */
int cli_run(int argc, char **argv, FILE *in, FILE *out);
/* `inferd run` for text-generation and text2text-generation (generate.c): the same
 * lines in, [{"generated_text": ...}] out; exit status as cli_run. langs: --src-lang and
 * --tgt-lang (NULL: not given), each line's defaults for a translation task. */
int cli_run_generate(const char *dir, const char *task, enum config_dtype dtype, int threads,
                     const char *const langs[2], FILE *in, FILE *out);

/* `inferd batch`: a model over a data set file (OpenAI batch format, JSONL or CSV) into an
 * output file, through the daemon run in-process; resumable (batch.c). Returns the exit
 * status. */
int cli_batch(int argc, char **argv);

/* ---- io.c: JSON-lines helpers ---- */

/* Reads one line of any length into *buf (grown as needed); NULL at EOF. *len excludes the
 * newline, which is removed. */
char *cli_read_line(FILE *in, char **buf, size_t *cap, size_t *len);
/* Writes j as one compact JSON line and flushes. */
void cli_print_json(FILE *out, const json_t *j);
/* Writes {"error": msg, "error_type": type} as one line. */
void cli_print_error(FILE *out, const char *msg, const char *type);

/* `inferd bench --model DIR --batch B --seq S --threads T [--dtype fp32|bf16|int8|int4]
 * [--min-seconds N] [--min-runs N] [--warmup N]`: times the encoder's forward pass on one
 * shape and prints one JSON line (bench.c). Returns the process exit status. */
int cli_bench(int argc, char **argv);

/* ---- pull.c ---- */

/* `inferd pull ORG/NAME[@REVISION] [--include GLOB]... [--exclude GLOB]...`: the model's
 * serving files into the Hub cache; prints the snapshot directory. Returns the exit status. */
int cli_pull(int argc, char **argv);
/* The model directory spec names into dir: a local path as it is, a model id (hf://ORG/NAME,
 * or ORG/NAME with no such path) fetched into the Hub cache (tokenizer_only: its tokenizer
 * files only; otherwise the directory must also pass engine_check_dir as "--model"). On
 * failure prints "inferd CMD: why" and returns -1. */
int cli_model_dir(const char *cmd, const char *spec, bool tokenizer_only, char *dir,
                  size_t cap);

/* ---- help.c ---- */

/* Prints command's usage (its options; the task list where it takes a task) to f; command
 * NULL or unknown: the list of commands (then returns -1 for an unknown one, else 0). */
int cli_usage(FILE *f, const char *command);
/* `inferd --version`: version, git revision, oneDNN version and ISA, native dtypes. */
int cli_version(FILE *f);

#endif
