// Which SIMD instruction set the kernels use, chosen once at run time.
// One build runs on any x86-64: AVX2 and AVX-512 code lives in functions
// compiled with target attributes and is only called when the CPU has it.
#pragma once

// x86 SIMD code is compiled only where UNTIE_X86 is set; building with
// -DUNTIE_FORCE_PORTABLE checks the portable path (as on arm64) on x86.
#if defined(__x86_64__) && !defined(UNTIE_FORCE_PORTABLE)
#define UNTIE_X86 1
#endif

namespace untie {

enum SimdLevel { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

// The best level this CPU supports (UNTIE_SIMD=scalar|avx2|avx512 can lower it).
SimdLevel simd_detect();
// The level in use; set_simd refuses (returns false) a level the CPU lacks.
SimdLevel simd_level();
bool set_simd(SimdLevel level);
const char* simd_name(SimdLevel level);

}  // namespace untie
