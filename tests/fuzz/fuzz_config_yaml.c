/* fuzz_config_yaml: the daemon's YAML configuration (config/config.c) from untrusted bytes. */
#include "config.h"
#include "fuzz.h"
#include "pipelines/task_table.h"

/* the daemon's task names: the engine's task table */
static const struct config_tasks tasks = {.id = task_by_name, .list = task_list};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config c;
    struct err e = {0};
    if (fuzz_report(config_parse((const char *)data, size, "fuzz.yaml", "/nonexistent", &tasks, &c,
                                 &e),
                    &e) == 0)
        config_free(&c);
    return 0;
}
