// STAND-IN, not Gemmini's library. Part of dosa's tests: it declares, with the exact signatures
// of ucb-bar/gemmini-rocc-tests include/gemmini.h (branch dev), everything the C written by
// `dosa emit gemmini` calls, so that the emitted program can be checked with
// `cc -fsyntax-only` on a host without the Gemmini repository or a RISC-V toolchain. The
// bodies are empty: nothing here runs a layer. With DOSA_LOOP_ORDER_API defined it declares the
// research variant instead (DOSA's branch: tiled_conv and tiled_matmul take one more argument,
// the loop-order string over N Q P K S R C, first letter innermost).
#ifndef DOSA_STANDIN_GEMMINI_H
#define DOSA_STANDIN_GEMMINI_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "include/gemmini_params.h"

#define NO_ACTIVATION 0
#define RELU 1

// Upstream these issue RoCC instructions.
#define gemmini_flush(skip) ((void)(skip))
#define gemmini_fence() ((void)0)

enum tiled_matmul_type_t {OS, WS, CPU};

#ifdef DOSA_LOOP_ORDER_API
#define DOSA_ORDER_PARAM , const char * loop_order
#else
#define DOSA_ORDER_PARAM
#endif

__attribute__((unused)) static void tiled_matmul(size_t dim_I, size_t dim_J, size_t dim_K,
        const elem_t* A, const elem_t* B,
        const void * D, void* C,
        size_t stride_A, size_t stride_B, size_t stride_D, size_t stride_C,
        scale_t A_scale_factor, scale_t B_scale_factor, scale_acc_t D_scale_factor,
        int act, acc_scale_t scale, acc_scale_t bert_scale,
        bool repeating_bias,
        size_t tile_I, size_t tile_J, size_t tile_K,
        bool transpose_A, bool transpose_B,
        bool full_C, bool low_D,
        uint8_t weightA,
        enum tiled_matmul_type_t tiled_matmul_type DOSA_ORDER_PARAM) {
}

__attribute__((unused)) static void tiled_matmul_auto(size_t dim_I, size_t dim_J, size_t dim_K,
        const elem_t* A, const elem_t* B,
        const void * D, void * C,
        size_t stride_A, size_t stride_B, size_t stride_D, size_t stride_C,
        scale_t A_scale_factor, scale_t B_scale_factor, scale_acc_t D_scale_factor,
        int act, acc_scale_t scale, acc_scale_t bert_scale,
        bool repeating_bias,
        bool transpose_A, bool transpose_B,
        bool full_C, bool low_D,
        uint8_t weightA,
        enum tiled_matmul_type_t tiled_matmul_type) {
}

__attribute__((unused)) static void tiled_conv(
        int batch_size,
        int in_row_dim, int in_col_dim, int in_channels,
        int out_channels, int out_row_dim, int out_col_dim,
        int stride, int input_dilation, int kernel_dilation, int padding, int kernel_dim,
        int in_stride, int weight_stride, int out_stride,
        bool wrot180, bool trans_output_1203, bool trans_input_3120,
        bool trans_weight_1203, bool trans_weight_0132,

        int batches,
        int porows, int pocols, int pochs,
        int krows, int kcols, int kchs,

        const elem_t * input,
        const elem_t * weights,
        const acc_t * bias,
        elem_t * output,

        int act, acc_scale_t scale,
        int pool_size, int pool_stride, int pool_padding,

        enum tiled_matmul_type_t tiled_conv_type DOSA_ORDER_PARAM) {
}

__attribute__((unused)) static void tiled_conv_auto(
        int batch_size, int in_row_dim, int in_col_dim, int in_channels,
        int out_channels, int out_row_dim, int out_col_dim,
        int stride, int input_dilation, int kernel_dilation, int padding, int kernel_dim,
        bool wrot180, bool trans_output_1203, bool trans_input_3120,
        bool trans_weight_1203, bool trans_weight_0132,

        const elem_t * input,
        const elem_t * weights,
        const acc_t * bias,
        elem_t * output,

        int act, acc_scale_t scale,
        int pool_size, int pool_stride, int pool_padding,

        enum tiled_matmul_type_t tiled_conv_type) {
}

#endif
