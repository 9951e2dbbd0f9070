/* amx: may this process use Intel AMX's tiles (AMX-TILE and AMX-INT8), and the tile
 * configuration engine/ops' AMX kernels load (matmul_int8_amx.c, matmul_q4_dot.c). The permission
 * to use the tile data (Linux arch_prctl ARCH_REQ_XCOMP_PERM for XTILEDATA) is asked once per
 * process, as oneDNN asks it too; each thread then loads a configuration (ldtilecfg) before its
 * first tile instruction and releases it after its last. */
#ifndef INFERD_OPS_AMX_H
#define INFERD_OPS_AMX_H

#include <stdint.h>

/* The 64-byte operand of ldtilecfg (palette 1). */
struct amx_cfg {
    uint8_t palette, start;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

/* Tiles 0-7 each 16 rows of 64 bytes, what both kernels use. A constant in memory: GCC 12
 * drops the stores of a configuration built on the stack before ldtilecfg (it does not see
 * the builtin read them: SIGILL at the first tile instruction). */
extern const struct amx_cfg amx_cfg_16x64;

/* 1 when the CPU has AMX-TILE and AMX-INT8 and the kernel lets this process use the tile
 * data; the first call asks (call it once from one thread before any parallel use). */
int amx_int8_available(void);

#endif
