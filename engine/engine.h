/* engine: the one door into the engine. server/ (the daemon) includes this header and no
 * other of engine/; everything it needs is declared here or in the public headers below, which
 * in turn include nothing of the engine's insides (no model, op, loader or chat header:
 * scripts/check-layers.sh checks both). Through it:
 *   - encoder tasks (pipelines/runner.h): open a model directory for a task, prepare requests,
 *     run them in batches on a worker (struct pipeline_worker: its oneDNN context and
 *     activations), finish them into the pipeline's result;
 *   - generation (generate/generator.h): load a generation model (struct gen_model), step a
 *     generator over its sequences and hear token events; generate/params.h, sampling.h and
 *     stop.h are the value types a request's parameters and events are made of;
 *   - the task table (pipelines/task_table.h): task ids, names, kinds;
 *   - the tokenizer (tokenizer/tokenizer.h), as the /tokenize routes and `inferd tokenize`
 *     expose it;
 *   - the dtypes (dtype.h) and the engine-wide functions below.
 * Errors are common/err.h's kinds; the clock is common/clock.h. The CLI tools (cli/), the
 * tests and the benchmarks may reach further in: they measure and check the insides. */
#ifndef INFERD_ENGINE_H
#define INFERD_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

#include "dtype.h"
#include "err.h"
#include "generate/generator.h"
#include "pipelines/runner.h"
#include "pipelines/task_table.h"
#include "tokenizer/tokenizer.h"

/* "2.6.3 OpenMP avx512_core_bf16": oneDNN's version, runtime and the ISA it dispatches to. */
const char *engine_describe(void);
/* oneDNN's version numbers. */
void engine_onednn_version(int *major, int *minor, int *patch);
/* "OpenMP", "TBB", "threadpool" or "sequential": the CPU runtime oneDNN was built with. */
const char *engine_runtime_name(void);
/* The ISA oneDNN dispatches to on this CPU ("avx512_core_bf16", "avx2", ...). */
const char *engine_isa_name(void);
/* Whether this CPU runs dt with instructions of its own (fp32 always, bf16 with AVX512-BF16
 * or AMX, int8 with VNNI); otherwise oneDNN emulates it, slower than fp32. */
bool engine_dtype_native(enum dtype_compute dt);

/* 0 when dir is a directory this process may list and read; otherwise ERR_NOT_FOUND or
 * ERR_IO with "LABEL 'DIR': no such directory" (or "not a directory", "permission denied");
 * label names where dir came from ("models[0].path", "--model"). */
int engine_check_dir(const char *dir, const char *label, struct err *e);

/* Load progress: fn(arg, taken, total) each time a loader on this thread takes one more tensor
 * of its checkpoint's total; fn NULL turns it off. Per thread. */
typedef void engine_progress_fn(void *arg, size_t taken, size_t total);
void engine_set_load_progress(engine_progress_fn *fn, void *arg);

#endif
