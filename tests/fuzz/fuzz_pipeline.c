/* fuzz_pipeline: the encoder routes' request bodies ({"inputs", "parameters"} of POST
 * /models/{name}), through pipelines/runner.c's pipeline_prepare for every task: validation of
 * the inputs' shape and the task parameters, tokenization, QA windows, zero-shot hypothesis
 * pairs. The small BERT fixtures of tests/data/models-bert.tar.xz are loaded once from the
 * directory in INFERD_FUZZ_MODELS (make fuzz unpacks them there). */
#include <jansson.h>
#include <stdio.h>

#include "fuzz.h"
#include "pipelines/runner.h"

static const struct {
    const char *task, *model;
} tasks[] = {
    {"text-classification", "bert-seqcls"},
    {"token-classification", "bert-tokcls"},
    {"question-answering", "bert-qa"},
    {"fill-mask", "bert-mlm"},
    {"zero-shot-classification", "bert-nli"},
    {"feature-extraction", "bert-embed"},
    {"sentence-embeddings", "bert-embed"},
};
#define N_TASKS (sizeof tasks / sizeof *tasks)
static struct pipeline *pipelines[N_TASKS];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *root = getenv("INFERD_FUZZ_MODELS");
    if (!root) {
        fprintf(stderr, "fuzz_pipeline: set INFERD_FUZZ_MODELS to the unpacked "
                        "models-bert.tar.xz's models/ directory\n");
        exit(2);
    }
    struct err e = {0};
    for (size_t i = 0; i < N_TASKS; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", root, tasks[i].model);
        if (pipeline_open(dir, tasks[i].task, DTYPE_COMPUTE_F32, 1, &pipelines[i], &e) != 0) {
            fprintf(stderr, "fuzz_pipeline: %s: %s\n", dir, e.msg);
            exit(2);
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *body = json_loadb((const char *)data, size, JSON_ALLOW_NUL, NULL);
    if (!json_is_object(body)) {
        json_decref(body);
        return 0;
    }
    const json_t *inputs = json_object_get(body, "inputs");
    const json_t *parameters = json_object_get(body, "parameters");
    for (size_t i = 0; i < N_TASKS; i++) {
        struct pipeline_request *r = NULL;
        struct err e = {0};
        if (fuzz_report(pipeline_prepare(pipelines[i], inputs, parameters, &r, &e), &e) == 0) {
            pipeline_request_items(r);
            pipeline_request_tokens(r);
            pipeline_request_max_len(r);
            pipeline_request_free(r);
        }
    }
    json_decref(body);
    return 0;
}
