/* config: the daemon's configuration as plain C data (no YAML types), read from a YAML file
 * (config/example.yaml shows every key with its default) or built for one model from the
 * command line. Loading validates everything it can without opening the models: unknown keys,
 * types, ranges, names, tasks; each mistake is reported as "FILE:LINE:COL: message". Whether a
 * model directory exists and fits its task is the engine's check, at load time. Loading does
 * read outside the file for the server: server.tls's files must be readable, and the keys of
 * server.api_keys_file and server.api_keys_env are read into server.api_keys. */
#ifndef INFERD_CONFIG_H
#define INFERD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

enum config_dtype { CONFIG_DTYPE_FP32, CONFIG_DTYPE_BF16, CONFIG_DTYPE_INT8, CONFIG_DTYPE_INT4 };

struct batching_config {
    size_t max_batch_size;   /* encoder rows per batch; default 32 (>= 1) */
    size_t max_batch_tokens; /* padded tokens (rows x longest) per batch; default 16384 */
    long max_queue_delay_us; /* wait for a fuller batch up to this; default 2000; 0 allowed */
    size_t max_queue_size;   /* queued requests before 429; default 1024 */
};

/* generation: the YAML section of the continuous batching of a text-generation model
 * (server/gen_sched.h); not the model's generation_config.json (struct gen_config of
 * engine/generate/params.h). Its running sequences are limited by batching.max_batch_size and
 * its queue by batching.max_queue_size; batching.max_batch_tokens and max_queue_delay_us do not
 * apply. */
struct generation_section {
    size_t max_total_tokens;         /* prompt + new tokens of one request; default 0 = the
                                        model's max positions, at most 4096 and at most
                                        max_batch_total_tokens (resolved at load); 0..1048576 */
    size_t max_batch_total_tokens;   /* tokens reserved (prompt + max_new_tokens) by all
                                        running sequences together; default 16384, >= 1 */
    size_t max_batch_prefill_tokens; /* prompt tokens fed per step; default 512, 1..1048576 */
    bool prefix_cache; /* keep finished requests' KV caches and reuse the longest common
                          prompt prefix (decoders); default true */
};

/* limits: what one request to an encoder model may ask for (422 naming the key beyond it),
 * so that a small request cannot buy unbounded work or memory. 0 = no limit. */
struct limits_config {
    size_t max_client_batch_size; /* inputs per request (TEI's flag); default 32 */
    size_t max_request_tokens;    /* tokens of all the request's encoder rows (QA windows,
                                     zero-shot pairs included); default 0 = the model's
                                     batching.max_batch_tokens (one batch's budget) */
    size_t max_results;           /* results returned (fill-mask masks x top_k, QA answers,
                                     zero-shot and text-classification inputs x labels);
                                     default 1024 */
};

struct model_config {
    char *name;              /* required; [A-Za-z0-9._-]{1,64}, unique */
    char *path;              /* required; relative paths are joined to the config file's dir
                              * (an hf:// id is kept as written) */
    char *model_id;          /* path as written when it names a Hub model: hf://ORG/NAME[@REV],
                              * or ORG/NAME[@REV] with no such path at load; else NULL */
    char *revision;          /* optional: the Hub revision of a model id (branch, tag, commit) */
    char *task;              /* required; as written: a name or alias config_tasks.id takes */
    int task_id;             /* config_tasks.id(task), resolved once at load; -1 without one */
    enum config_dtype dtype; /* default fp32 */
    int workers;             /* default 1, 1..64 */
    int threads;             /* default 0 = auto (online CPUs / workers, at least 1); 1..1024 */
    size_t max_input_tokens; /* default 0 = the model's own maximum */
    char *tool_parser;       /* how a chat model's tool calls are read from its text:
                              * llama3_json | hermes | mistral; default NULL = from the chat
                              * template (server/tool_parse.h) */
    struct batching_config batching;
    struct generation_section generation;
    struct limits_config limits;
    int line, column; /* where this model's entry starts (for messages); 0 if none */
};

/* server.tls: HTTPS in the daemon itself, for deployments without a terminating proxy. Both
 * paths or neither; relative ones are joined to the config file's directory. Loading checks
 * that both files exist and can be read (their content is libmicrohttpd's to judge). */
struct tls_config {
    char *cert; /* PEM certificate (chain); NULL: plain HTTP */
    char *key;  /* PEM private key, unencrypted */
};

struct server_config {
    char *host;              /* default "0.0.0.0" */
    int port;                /* default 8080; 0 = any free port; 0..65535 */
    size_t max_body_bytes;   /* default 4194304 (4 MiB), >= 1024 */
    long request_timeout_ms; /* default 30000, 1..86400000 (a day) */
    /* Every accepted key, merged from api_keys, api_keys_file and api_keys_env (in that
     * order, each key once), read at load; none: no key needed. Non-empty, no spaces or
     * control characters. */
    char **api_keys;
    size_t n_api_keys;
    char *api_keys_file;    /* default none: one key a line; blank lines and #-comments ignored */
    char *api_keys_env;     /* default none: a variable holding keys split by commas or spaces */
    int http_threads;       /* default 2, 1..64: libmicrohttpd's thread pool */
    size_t max_connections; /* default 1024, 1..1000000 */
    int work_threads;       /* default 2, 1..64: request threads (bodies, tokenizing, replies) */
    size_t max_connections_per_ip; /* default 256, 0..1000000 (0 = no limit) */
    long idle_timeout_ms;          /* default 60000, 1000..3600000: a silent connection closes */
    long read_timeout_ms; /* default 30000, 100..3600000: request line to body's end, at most */
    struct tls_config tls;  /* default none */
    char *log_format;       /* default "text": text | json (server/log.h) */
    char *log_level;        /* default "info": debug | info | warn | error */
    /* default false: a model that fails to load at start stops the daemon (exit 1); true
     * serves the others (the failed one answers 503, /ready stays 503) */
    bool allow_partial_start;
};

struct config {
    char *path; /* the file it came from (NULL for config_parse and config_single) */
    struct server_config server;
    struct model_config *models; /* at least one */
    size_t n_models;
};

/* The tasks a config may name. config/ knows none itself: the caller hands its table (the
 * daemon, the engine's task table). tasks NULL: any name is taken (task_id -1). */
struct config_tasks {
    int (*id)(const char *name);          /* a task name or alias -> its id (>= 0); -1: none */
    void (*list)(char *buf, size_t size); /* the canonical names, "a, b, ...", for messages */
};

/* Parses and validates FILE into *out (zeroed first; left zeroed on error). Errors: ERR_IO
 * when FILE cannot be read ("FILE: cannot read: reason"), ERR_INVALID for bad content with
 * "FILE:LINE:COL: message" (1-based line and column of the offending key or value), e.g.
 * "inferd.yaml:9:14: models[0].dtype must be fp32, bf16, int8 or int4, not 'fp64'"; ERR_NOMEM. */
int config_load(const char *path, const struct config_tasks *tasks, struct config *out,
                struct err *e);

/* The same from yaml[0..len): `name` stands for the file in messages; relative model paths
 * are joined to base_dir (NULL: left relative, i.e. to the working directory). */
int config_parse(const char *yaml, size_t len, const char *name, const char *base_dir,
                 const struct config_tasks *tasks, struct config *out, struct err *e);

/* One model with every default (`inferd serve --model DIR --task TASK [--name NAME]`); the
 * strings are copied. name NULL = the last component of model_dir (a model id's NAME, without
 * @REV). ERR_INVALID for an unknown task or a bad name. */
int config_single(const char *model_dir, const char *task, const char *name,
                  const struct config_tasks *tasks, struct config *out, struct err *e);

/* Frees what c owns and zeroes it; safe on a zeroed config. */
void config_free(struct config *c);

/* True when two entries would load the same thing (path, task, dtype, workers, threads,
 * max_input_tokens, batching, generation, limits; not the name): a reload keeps such a model
 * running. */
bool model_config_same(const struct model_config *a, const struct model_config *b);

/* "fp32", "bf16" or "int8". */
const char *config_dtype_name(enum config_dtype d);
/* The dtype of one of those names into *out: 0, or -1 for any other name. */
int config_dtype_by_name(const char *name, enum config_dtype *out);

#endif
