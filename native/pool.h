// A persistent thread pool. The calling (JS) thread takes part as thread 0.
// Work is always split statically (by shapes and thread count only), and every
// kernel is written so that what a thread computes does not depend on which
// thread computes it: results are reproducible run to run.
#pragma once
#include <cstdint>

namespace untie {

typedef void (*RegionFn)(void* ctx, int tid, int nthreads);

int pool_get_threads();
void pool_set_threads(int n);
// Runs fn(ctx, tid, T) on T = min(want, threads) threads; the caller is tid 0.
// If the pool is already in use (another JS thread, or nested use), runs
// fn(ctx, 0, 1) on the caller alone.
void pool_run(RegionFn fn, void* ctx, int want);
// Waits until all nthreads threads of the current region arrive. nthreads is
// the T passed to the region function; a no-op when it is 1.
void pool_barrier(int nthreads);

template <class F>
inline void parallel_region(int want, F& f) {
  pool_run([](void* c, int t, int n) { (*static_cast<F*>(c))(t, n); }, &f, want);
}

// Calls f(begin, end) on contiguous static ranges of [0, ntasks), one range
// per thread. `want` caps the number of threads.
template <class F>
inline void parallel_for(int64_t ntasks, int want, F f) {
  if (ntasks <= 0) return;
  if (want > ntasks) want = (int)ntasks;
  if (want <= 1) { f((int64_t)0, ntasks); return; }
  auto body = [&](int t, int T) {
    int64_t b = ntasks * t / T, e = ntasks * (t + 1) / T;
    if (b < e) f(b, e);
  };
  parallel_region(want, body);
}

}  // namespace untie
