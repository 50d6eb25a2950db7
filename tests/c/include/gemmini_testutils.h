// STAND-IN, not Gemmini's file (see gemmini.h here): the part of ucb-bar/gemmini-rocc-tests
// include/gemmini_testutils.h that the C written by `dosa emit gemmini` uses. Upstream,
// read_cycles() reads the RISC-V cycle CSR; here it returns 0.
#ifndef DOSA_STANDIN_GEMMINI_TESTUTILS_H
#define DOSA_STANDIN_GEMMINI_TESTUTILS_H

#include <stdint.h>
#include "include/gemmini.h"

__attribute__((unused)) static uint64_t read_cycles() {
    return 0;
}

#endif
