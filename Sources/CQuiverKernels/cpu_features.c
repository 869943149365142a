// The run-time choice among kernel variants (cpu_features.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cpu_features.h"

/// The features read from cpuid; bit 31 marks them read (a race reads the same bits twice).
static unsigned qk_features_read;

unsigned qk_cpu_features(void) {
    unsigned f = __atomic_load_n(&qk_features_read, __ATOMIC_RELAXED);
    if (f) return f & ~(1u << 31);
    f = 1u << 31;
#ifdef QK_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) f |= QK_CPU_AVX2;
    if (__builtin_cpu_supports("fma")) f |= QK_CPU_FMA;
    if (__builtin_cpu_supports("avx512f")) f |= QK_CPU_AVX512F;
    if (__builtin_cpu_supports("avx512bw")) f |= QK_CPU_AVX512BW;
    if (__builtin_cpu_supports("avx512vl")) f |= QK_CPU_AVX512VL;
    if (__builtin_cpu_supports("avx512vnni")) f |= QK_CPU_AVX512VNNI;
#endif
    __atomic_store_n(&qk_features_read, f, __ATOMIC_RELAXED);
    return f & ~(1u << 31);
}

int qk_variant_supported(const qk_variants *family, int v) {
    if (v < 0 || v >= family->count) return 0;
    unsigned needs = family->needs[v];
    return (qk_cpu_features() & needs) == needs;
}

int qk_variant_best(const qk_variants *family) {
    int v = family->count - 1;
    while (v > 0 && !qk_variant_supported(family, v)) v--;
    return v;
}

int qk_variant_from_environment(const qk_variants *family, const char *variable, char *note, size_t note_size) {
    int best = qk_variant_best(family);
    note[0] = 0;
    const char *want = getenv(variable);
    if (!want || !*want) return best;
    int found = -1;
    for (int v = 0; v < family->count; v++) if (strcmp(want, family->names[v]) == 0) found = v;
    if (found < 0) {
        char list[96] = "";
        for (int v = 0; v < family->count; v++) {
            const char *sep = v == 0 ? "" : v == family->count - 1 ? " or " : ", ";
            size_t used = strlen(list);
            snprintf(list + used, sizeof list - used, "%s%s", sep, family->names[v]);
        }
        snprintf(note, note_size, "$%s is '%.40s', which is not %s; using %s", variable, want, list, family->names[best]);
        return best;
    }
    if (!qk_variant_supported(family, found)) {
        snprintf(note, note_size, "$%s is '%s', which this CPU does not run; using %s", variable, want, family->names[best]);
        return best;
    }
    return found;
}
