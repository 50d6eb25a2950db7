// STAND-IN, not Gemmini's file. Part of dosa's tests: the constants and types of
// ucb-bar/gemmini-rocc-tests include/gemmini_params.h (branch dev) for Gemmini's default
// configuration (16x16 int8, 256 KiB scratchpad in 4 banks, 64 KiB accumulator), so that the
// C that `dosa emit gemmini` writes can be syntax-checked on a host without the Gemmini
// repository or a RISC-V toolchain.
#ifndef DOSA_STANDIN_GEMMINI_PARAMS_H
#define DOSA_STANDIN_GEMMINI_PARAMS_H

#include <stdint.h>
#include <limits.h>

#define DIM 16
#define ADDR_LEN 32
#define BANK_NUM 4
#define BANK_ROWS 4096
#define ACC_ROWS 1024
#define MAX_BYTES 64
#define MAX_BLOCK_LEN (MAX_BYTES/(DIM*1))
#define MAX_BLOCK_LEN_ACC (MAX_BYTES/(DIM*4))

typedef int8_t elem_t;
typedef int32_t acc_t;
typedef int64_t full_t;

typedef float scale_t;
typedef uint32_t scale_t_bits;
typedef int32_t scale_acc_t;
typedef uint32_t scale_acc_t_bits;
typedef float acc_scale_t;
typedef uint32_t acc_scale_t_bits;

#define row_align(blocks) __attribute__((aligned(blocks*DIM*sizeof(elem_t))))
#define row_align_acc(blocks) __attribute__((aligned(blocks*DIM*sizeof(acc_t))))

#define MVIN_SCALE_IDENTITY 1.0
#define ACC_SCALE_IDENTITY 1.0

#endif
