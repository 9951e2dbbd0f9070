/* support: helpers shared by the test suites: fixture unpacking and file reading. */
#ifndef INFERD_TEST_SUPPORT_H
#define INFERD_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/* Unpacks tests/data/<archive> (a .tar.xz) into the build directory (again when the
 * archive is newer than the last unpacking) and returns the directory it was unpacked
 * into (static storage). Aborts the test process with a message if tar fails. */
const char *fixture_dir(const char *archive);

/* Path of a tokenizer fixture directory, e.g. fixture_tokenizer("bert-uncased"). */
const char *fixture_tokenizer(const char *name);

/* Parses DIR/FILE as JSON (NUL bytes allowed in strings); fails the test if it cannot. */
struct json_t;
struct json_t *fixture_json(const char *dir, const char *file);

/* Directory of a fixture model, e.g. fixture_model("bert-seqcls") or "spam-bert-tiny",
 * unpacked from tests/data/models-{bert,other}.tar.xz or spam-bert-tiny.tar.xz. */
const char *fixture_model(const char *name);

/* llama-lm with the Llama 3 chat template and its special tokens (tokenizer_config.json of the
 * llama3 fixture tokenizer), BUILD/test-fixtures/llama-lm-chat; built once. */
const char *fixture_chat_model(void);

/* A tool-calling fixture of tests/data/tool-models.tar.xz ("tools-qwen3", "tools-llama3.1"),
 * BUILD/test-fixtures/tool-models/models/NAME, with its tokenizer.json linked from the fixture
 * it came from (qwen3-lm's, the llama3 tokenizer's). */
const char *fixture_tool_model(const char *name);

/* A copy of fixture model src_name in parent/name (static storage until the next call), its
 * files symlinked, without `drop` (may be NULL) and with config.json's model_type replaced by
 * `type` (may be NULL). Fails the test on any error. */
const char *model_link_copy(const char *parent, const char *name, const char *src_name,
                            const char *drop, const char *type);

/* Runs `inferd ARGS < input` (stderr discarded unless ARGS redirects it) and returns its
 * stdout lines as a JSON array of parsed lines (a line that is not JSON becomes a JSON
 * string); *status gets the exit status. */
struct json_t *run_cli(const char *args, const char *input, int *status);

/* Reads a whole file; returns malloc'ed NUL-terminated bytes or NULL. */
char *read_file(const char *path, size_t *len);

/* Path of the built inferd executable. */
const char *inferd_exe(void);

/* A fresh empty temporary directory, BUILD/test-tmp-XXXXXX (static storage until the next
 * call). It goes when the process that made it exits normally: a forked test's process
 * exits so when the test passed, while a failure (Check's _exit), a crash or a timeout keeps
 * it for a post-mortem; the runner's own (unchecked fixtures, every test under CK_FORK=no)
 * stay when any test failed (temp_dirs_keep). */
const char *temp_dir(void);
/* Removes this process's temp dirs now (registered with atexit by the first temp_dir). */
void temp_dirs_remove(void);
/* Keeps them: the runner calls it when a test failed. */
void temp_dirs_keep(void);

/* Decompresses tests/data/<name> (an .xz file) once into the build directory and returns
 * the path of the result (static storage), e.g. fixture_xz("spam-dev.jsonl.xz").
 * Aborts the test process with a message if xz fails. */
const char *fixture_xz(const char *name);

/* Largest error of a last-position logits row (vocab values) against a reference's
 * "last_logits_top20" {"ids", "values"} (refs-dev.json of the decoder fixtures): each listed
 * id's logit, and no other id above the 20th value. */
struct json_t;
double logits_err_top20(const float *last, int vocab, const struct json_t *ref);

/* Largest error of position 0's first logits against a reference's
 * "logits_first_position_first8" (8 values). */
double logits_err_first8(const float *row0, const struct json_t *ref);
/* A JSON list of integers into out (at most cap, else the test fails); returns the count. */
int json_read_ints(const struct json_t *a, int32_t *out, int cap);

/* A recorded beam-search setting (transformers' generate kwargs: row's "params", and its
 * "eos_token_id") over p, with max_new new tokens (tools/refgen/beams.py, bart_family.py). */
struct gen_params;
void beam_params_from_row(struct gen_params *p, const struct json_t *row, uint32_t max_new);

#endif
