/* fuzz_config_yaml: the daemon's YAML configuration (config/config.c) from untrusted bytes. */
#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config c;
    struct err e = {0};
    if (fuzz_report(config_parse((const char *)data, size, "fuzz.yaml", "/nonexistent", &c, &e),
                    &e) == 0)
        config_free(&c);
    return 0;
}
