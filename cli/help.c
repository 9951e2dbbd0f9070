/* help: what the inferd executable says about itself: every subcommand's usage (its
 * options, the tasks and dtypes it takes), the top-level list of subcommands, and
 * `inferd --version` (version, git revision, oneDNN version and ISA, the dtypes this CPU runs
 * natively). The README's CLI section shows the same texts. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "dtypes.h"
#include "engine.h"
#include "version.h"

#ifndef INFERD_VERSION
#define INFERD_VERSION "unknown"
#endif

struct usage {
    const char *command;
    const char *summary; /* one line for the top-level list */
    const char *text;    /* the options; "%TASKS%" stands for the task list */
};

static const struct usage usages[] = {
    {"serve", "the HTTP daemon",
     "usage: inferd serve --config FILE [--host H] [--port P]\n"
     "       inferd serve --model DIR --task TASK [--name NAME] [--host H] [--port P]\n"
     "                    [--dtype fp32|bf16|int8|int4] [--workers W] [--threads T]\n"
     "                    [--max-batch-size N]\n"
     "Serves the models over HTTP until SIGTERM (drains, then exits 0); SIGHUP reloads\n"
     "the config file. Port 0 picks a free port. A model that fails to load at start\n"
     "stops the daemon with exit status 1 (server.allow_partial_start: true serves the\n"
     "others); a bad config or command line exits 2.\n"
     "  --config FILE         the YAML config (config/example.yaml lists every key)\n"
     "  --model DIR           one model directory (Hugging Face layout) or Hub model id\n"
     "                        (ORG/NAME[@REV], see inferd pull) instead of a config\n"
     "  --task TASK           its task (below)\n"
     "  --name NAME           its name in the routes (default: the directory's name)\n"
     "  --host H, --port P    address and port to listen on (override the config's)\n"
     "  --dtype D             fp32 (default), bf16, int8 or int4 (with --model)\n"
     "  --workers W           model replicas (with --model; default 1)\n"
     "  --threads T           oneDNN threads per worker (with --model; default CPUs/workers)\n"
     "  --max-batch-size N    encoder rows per batch (with --model; default 32)\n"
     "tasks: %TASKS%\n"},
    {"run", "a model over JSON lines, as transformers.pipeline(TASK)",
     "usage: inferd run --model DIR --task TASK [--dtype fp32|bf16|int8|int4] [--threads T]\n"
     "                  [--batch N] [--src-lang L] [--tgt-lang L]\n"
     "Reads {\"inputs\": ..., \"parameters\": {...}} JSON lines on stdin and writes the\n"
     "pipeline's result for each on stdout (or {\"error\", \"error_type\"}); exit status 1\n"
     "when a line failed or the model cannot load, 2 for a bad command line. The\n"
     "generation tasks answer [{\"generated_text\": ...}] with the pipeline's parameters\n"
     "(max_new_tokens, do_sample, seed, return_full_text, ...).\n"
     "  --model DIR           the model directory (Hugging Face layout) or a Hub model id\n"
     "  --task TASK           the task (below)\n"
     "  --dtype D             fp32 (default), bf16, int8 or int4\n"
     "  --threads T           oneDNN threads, 1..1024 (default: every CPU)\n"
     "  --batch N             encoder tasks: lines forwarded together, 1..4096 (default 1)\n"
     "  --src-lang L, --tgt-lang L  translation with language codes (NLLB, M2M100, mBART):\n"
     "                        every line's src_lang / tgt_lang unless its parameters give them\n"
     "tasks: %TASKS%\n"},
    {"batch", "a model over a data set file, resumable, at full throughput",
     "usage: inferd batch --model DIR --task TASK --input FILE --output FILE [OPTIONS]\n"
     "       inferd batch --config FILE [--name MODEL] --input FILE --output FILE [OPTIONS]\n"
     "Runs the daemon in-process (loopback, a one-time API key) and sends it every record of\n"
     "FILE, many in flight so its batcher groups them on every core. Formats:\n"
     "  openai  OpenAI's batch file: {\"custom_id\", \"method\": \"POST\", \"url\", \"body\"} lines\n"
     "          for /v1/chat/completions, /v1/completions, /v1/embeddings; each answered with\n"
     "          {\"id\", \"custom_id\", \"response\": {\"status_code\", \"request_id\", \"body\"},\n"
     "          \"error\"} (in the order they finish)\n"
     "  jsonl   a POST /models/NAME body {\"inputs\", \"parameters\"} or a bare JSON string a\n"
     "          line; each answered, in input order, with what that route answers (as\n"
     "          inferd run), or {\"error\", \"error_type\"}\n"
     "  csv     RFC 4180 with a header; --text-column names the text (answered as jsonl)\n"
     "A bad line is answered by an error line and the job goes on. A rerun with the same\n"
     "--output resumes: it skips the custom_ids (openai) or the lines (jsonl, csv) the output\n"
     "holds and drops a last line cut by a kill. Progress: a bar on a terminal, else a line\n"
     "every --log-every seconds; a summary at the end. Exit status 0 when every line is\n"
     "answered (error lines included), 1 for a job-level failure (model, input or output\n"
     "file, the daemon not answering: rerun to resume), 2 for a bad command line, 128+N after\n"
     "signal N (SIGINT, SIGTERM: the lines in flight are written first; a second one ends\n"
     "the job at once).\n"
     "  --model DIR, --task T  one model directory or Hub model id and its task (below)\n"
     "  --config FILE         a daemon config instead (its models, batching and limits)\n"
     "  --name NAME           the model jsonl and csv lines go to (with --config: needed when\n"
     "                        it has several; with --model: its name for openai's \"model\")\n"
     "  --input FILE          the data set\n"
     "  --output FILE         the answers (appended to when resuming)\n"
     "  --format F            auto (default: .csv is csv, a first line with custom_id is\n"
     "                        openai, else jsonl), openai, jsonl or csv\n"
     "  --text-column NAME    csv: the column of the texts; jsonl: the field of each object\n"
     "  --parameters JSON     jsonl and csv: parameters for every line (a line's own win)\n"
     "  --concurrency N       requests in flight (default 4 x max_batch_size x workers,\n"
     "                        within max_queue_size)\n"
     "  --progress P          auto (default), bar, log or off\n"
     "  --log-every S         seconds between progress lines off a terminal (default 5)\n"
     "  --dtype D, --workers W, --threads T, --max-batch-size N   with --model, as serve\n"
     "tasks: %TASKS%\n"},
    {"bench", "forward-pass speed of a model, as JSON lines",
     "usage: inferd bench --model DIR [--batch B] [--seq S] [--threads T]\n"
     "                    [--dtype fp32|bf16|int8|int4] [--min-seconds N] [--min-runs N]\n"
     "                    [--max-runs N] [--warmup N] [--steps N]\n"
     "An encoder: one forward pass of B rows of S tokens, timed; one JSON line with\n"
     "seq_per_s and the median, p90 and fastest run. A decoder (text-generation): prefill of\n"
     "an S-token prompt and greedy decode steps of B sequences, one JSON line each with\n"
     "tokens_per_s (as bench/bench_generate.c). T5 (text2text-generation): the encoder over\n"
     "S input tokens (prefill) and decode steps of B sequences.\n"
     "  --model DIR           the model directory (Hugging Face layout) or a Hub model id\n"
     "  --batch B             rows (encoder) or sequences decoding together (default 1)\n"
     "  --seq S               tokens per row or prompt (default 128)\n"
     "  --threads T           oneDNN threads, 0 = every CPU (default 2)\n"
     "  --dtype D             fp32 (default), bf16, int8 or int4\n"
     "  --min-seconds N       time for at least N seconds (default 5)\n"
     "  --min-runs N, --max-runs N   runs timed at least / at most (default 5 / 2000)\n"
     "  --warmup N            untimed runs first (default 2)\n"
     "  --steps N             generation models: decode steps timed (default 32)\n"},
    {"tokenize", "text to token ids, as JSON lines",
     "usage: inferd tokenize --tokenizer DIR [--no-special] [--pair]\n"
     "Reads {\"text\": ..., \"pair\"?: ...} JSON lines (optional \"max_length\", \"stride\",\n"
     "\"truncation\", \"padding\") and writes {\"ids\", \"tokens\", \"offsets\", \"type_ids\"}\n"
     "for each (or {\"error\", \"error_type\"}; exit status 1 when a line failed).\n"
     "  --tokenizer DIR       a directory with tokenizer.json (and tokenizer_config.json), or a\n"
     "                        Hub model id (its tokenizer files only are fetched)\n"
     "  --no-special          without the special tokens ([CLS], [SEP], <s>, ...)\n"
     "  --pair                the lines are pairs\n"},
    {"detokenize", "token ids back to text, as JSON lines",
     "usage: inferd detokenize --tokenizer DIR [--keep-special]\n"
     "Reads {\"ids\": [...]} JSON lines and writes {\"text\": ...} for each.\n"
     "  --tokenizer DIR       a directory with tokenizer.json (and tokenizer_config.json), or a\n"
     "                        Hub model id (its tokenizer files only are fetched)\n"
     "  --keep-special        keep the special tokens in the text\n"},
    {"pull", "fetch a model from the Hugging Face Hub into its cache",
     "usage: inferd pull ORG/NAME[@REVISION] [--include GLOB]... [--exclude GLOB]...\n"
     "Fetches what serving needs of a Hub model (configs, tokenizer and sentence-transformers\n"
     "files, the weights: safetensors, sharded or not, over pytorch_model.bin) into the\n"
     "huggingface_hub cache, shared with Python's transformers, and prints the snapshot\n"
     "directory. Files already there are not fetched again; an interrupted file resumes.\n"
     "Exit status 1 when the pull fails (the message says what to do), 2 for a bad command\n"
     "line. Every --model DIR and --tokenizer DIR takes a model id too: hf://ORG/NAME[@REV],\n"
     "or ORG/NAME[@REV] when no such directory exists.\n"
     "  --include GLOB        fetch the files matching GLOB instead (fnmatch; \"dir/\": all under\n"
     "                        dir), as huggingface-cli download's --include\n"
     "  --exclude GLOB        leave out the files matching GLOB\n"
     "environment: HF_ENDPOINT (default https://huggingface.co), HF_TOKEN (else the file\n"
     "HF_HOME/token), HF_HUB_CACHE (default HF_HOME/hub, HF_HOME default ~/.cache/huggingface),\n"
     "HF_HUB_OFFLINE=1 (the cache only), HF_HUB_DISABLE_PROGRESS_BARS=1 (log lines instead)\n"},
    {"version", "version, git revision, oneDNN and the CPU's native dtypes",
     "usage: inferd version    (also inferd --version, inferd -V)\n"
     "Prints the version, the git revision it was built from, oneDNN's version and the\n"
     "ISA it uses on this CPU, and which dtypes this CPU runs natively.\n"},
    {"help", "this text, or a command's options", "usage: inferd help [COMMAND]\n"},
};

#define N_USAGES (sizeof usages / sizeof usages[0])

/* text with %TASKS% replaced by the task list. */
static void print_text(FILE *f, const char *text)
{
    const char *mark = strstr(text, "%TASKS%");
    if (!mark) {
        fputs(text, f);
        return;
    }
    char tasks[300];
    task_list(tasks, sizeof tasks);
    fprintf(f, "%.*s%s%s", (int)(mark - text), text, tasks, mark + strlen("%TASKS%"));
}

int cli_usage(FILE *f, const char *command)
{
    for (size_t i = 0; command && i < N_USAGES; i++)
        if (strcmp(usages[i].command, command) == 0) {
            print_text(f, usages[i].text);
            return 0;
        }
    fputs("usage: inferd COMMAND [OPTIONS]   (inferd COMMAND --help: its options)\n\n"
          "commands:\n",
          f);
    for (size_t i = 0; i < N_USAGES; i++)
        fprintf(f, "  %-11s %s\n", usages[i].command, usages[i].summary);
    char tasks[300];
    task_list(tasks, sizeof tasks);
    fprintf(f, "\noptions: -h, --help (this text), -V, --version\ntasks: %s\n", tasks);
    return command ? -1 : 0;
}

/* "native dtypes: fp32 bf16 int8 int4", then a line per dtype this CPU has no instructions for. */
static void print_dtypes(FILE *f)
{
    static const struct {
        enum config_dtype d;
        const char *needs;
    } dtypes[] = {
        {CONFIG_DTYPE_FP32, ""},
        {CONFIG_DTYPE_BF16, "AVX512-BF16 or AMX"},
        {CONFIG_DTYPE_INT8, "VNNI"},
        {CONFIG_DTYPE_INT4, "AVX2 and FMA"},
    };
    fputs("native dtypes:", f);
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (engine_dtype_native(dtype_of_config(dtypes[i].d)))
            fprintf(f, " %s", config_dtype_name(dtypes[i].d));
    fputc('\n', f);
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (!engine_dtype_native(dtype_of_config(dtypes[i].d)))
            fprintf(f, "not native: %s (needs %s; use fp32 here)\n",
                    config_dtype_name(dtypes[i].d), dtypes[i].needs);
}

int cli_version(FILE *f)
{
    int major, minor, patch;
    engine_onednn_version(&major, &minor, &patch);
    fprintf(f, "inferd %s\n", INFERD_VERSION);
    fprintf(f, "git revision: %s\n", INFERD_GIT_REVISION);
    fprintf(f, "oneDNN: %d.%d.%d (%s runtime)\n", major, minor, patch, engine_runtime_name());
    fprintf(f, "cpu isa: %s\n", engine_isa_name());
    print_dtypes(f);
    return 0;
}
