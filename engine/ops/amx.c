/* amx: the CPU and kernel check for Intel AMX (ops/amx.h): CPUID leaf 7 EDX bits 24
 * (AMX-TILE) and 25 (AMX-INT8), then arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)
 * once per process (0 off x86-64 Linux); the tile configuration both kernels load. */
#include "ops/amx.h"
#include "ops/cpu.h"

const struct amx_cfg amx_cfg_16x64 = {
    .palette = 1,
    .colsb = {64, 64, 64, 64, 64, 64, 64, 64},
    .rows = {16, 16, 16, 16, 16, 16, 16, 16},
};

#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

int amx_int8_available(void)
{
    static int have = -1;
    if (have < 0) {
        unsigned a = 0, b = 0, c = 0, d = 0;
        int ok = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 24 & 1) && (d >> 25 & 1) &&
                 cpu_avx512f();
        have = ok && syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
    }
    return have;
}
#else
int amx_int8_available(void)
{
    return 0;
}
#endif
