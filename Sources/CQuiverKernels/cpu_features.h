// The run-time choice among kernel variants, written once for every kernel family of CQuiverKernels
// (the float32 distances, the int8 matrix products and, through the int8 family, the sq8 distances):
// which CPU features this process may use, which variant of a family runs here, and the parsing of
// an environment variable that forces one (not part of the public header).
#ifndef CQUIVERKERNELS_CPU_FEATURES_H
#define CQUIVERKERNELS_CPU_FEATURES_H

#include <stddef.h>

#if defined(__x86_64__) || defined(__i386__)
#define QK_X86 1
#endif

/// CPU features, as bits.
enum {
    QK_CPU_AVX2 = 1u << 0,
    QK_CPU_FMA = 1u << 1,
    QK_CPU_AVX512F = 1u << 2,
    QK_CPU_AVX512BW = 1u << 3,
    QK_CPU_AVX512VL = 1u << 4,
    QK_CPU_AVX512VNNI = 1u << 5,
};

/// The features this CPU has and the OS saves the registers of (cpuid through
/// __builtin_cpu_supports); 0 on a CPU that is not x86.
unsigned qk_cpu_features(void);

/// A family of variants, narrowest first: variant v is called names[v] and needs the features
/// needs[v] (variant 0, the portable one, needs none).
typedef struct {
    const char *const *names;
    const unsigned *needs;
    int count;
} qk_variants;

/// Whether variant `v` of `family` is one and runs on this CPU.
int qk_variant_supported(const qk_variants *family, int v);
/// The widest variant of `family` this CPU runs.
int qk_variant_best(const qk_variants *family);
/// The variant `$variable` forces, or the widest this CPU runs when it is unset or empty. A value
/// that names no variant, or a variant this CPU lacks, leaves the widest in place and writes why into
/// note (note_size bytes, "" otherwise).
int qk_variant_from_environment(const qk_variants *family, const char *variable, char *note, size_t note_size);

#endif
