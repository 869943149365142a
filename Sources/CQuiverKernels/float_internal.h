// Shared by the float32 kernels of CQuiverKernels (not part of the public header).
#ifndef CQUIVERKERNELS_FLOAT_INTERNAL_H
#define CQUIVERKERNELS_FLOAT_INTERNAL_H

#include "qk_float.h"

/// The tables of each variant (the x86 ones exist only on x86; float_kernels.c hands them out only
/// when the CPU runs them).
extern const qk_float_ops qk_float_portable;
extern const qk_float_ops qk_float_avx2;
extern const qk_float_ops qk_float_avx512;

#endif
