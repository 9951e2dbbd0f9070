/* fuzz_safetensors: a .safetensors file (loader/safetensors.c): the 8-byte header length, the
 * header JSON and the data buffer, validated at open; then every tensor is looked up by name
 * and the small float ones are converted, as a model loader would. The input is written to a
 * memfd and opened through /proc/self/fd, so the parser maps it as it maps a real file. */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "loader/safetensors.h"

static void use_tensors(const struct safetensors *st)
{
    float buf[4096];
    for (size_t i = 0; i < safetensors_count(st); i++) {
        const struct tensor *t = safetensors_at(st, i);
        if (safetensors_get(st, t->name) != t)
            abort(); /* the name table must find every tensor it lists */
        struct err e = {0};
        if (t->n_elements <= sizeof buf / sizeof *buf)
            tensor_to_f32(t, buf, t->n_elements, &e);
    }
    safetensors_metadata(st, "format");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    if (fd < 0)
        fd = memfd_create("fuzz.safetensors", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    struct safetensors *st = NULL;
    struct err e = {0};
    if (fuzz_report(safetensors_open_file(path, &st, &e), &e) == 0) {
        use_tensors(st);
        safetensors_close(st);
    }
    return 0;
}
