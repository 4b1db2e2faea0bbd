// How the hand-written CPU kernels are compiled: each entry point marked CONVKIT_CLONES is built
// for AVX-512, AVX2+FMA and baseline x86-64, and the loader picks the one this CPU runs; the
// helpers it calls are forced inline so that each clone gets its own vector code.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CONVKIT_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CONVKIT_CLONES
#endif
#define CONVKIT_INLINE inline __attribute__((always_inline))
