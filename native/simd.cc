#include "simd.h"

#include <cstdlib>
#include <cstring>

namespace untie {

static SimdLevel cpu_best() {
#if defined(UNTIE_X86)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("fma"))
    return kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return kAvx2;
#endif
  return kScalar;
}

SimdLevel simd_detect() {
  SimdLevel best = cpu_best();
  const char* env = std::getenv("UNTIE_SIMD");
  if (env) {
    if (!std::strcmp(env, "scalar")) best = kScalar;
    else if (!std::strcmp(env, "avx2") && best >= kAvx2) best = kAvx2;
  }
  return best;
}

static SimdLevel current = simd_detect();

SimdLevel simd_level() { return current; }

bool set_simd(SimdLevel level) {
  if (level > cpu_best()) return false;
  current = level;
  return true;
}

const char* simd_name(SimdLevel level) {
  return level == kAvx512 ? "avx512" : level == kAvx2 ? "avx2" : "scalar";
}

}  // namespace untie
