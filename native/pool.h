// A persistent thread pool. The calling (JS) thread takes part.
//
// Work is cut into chunks that threads claim one at a time from a shared
// counter, so a thread that the OS deschedules (the machine is shared) holds
// up at most the one chunk it claimed: the others, the caller included, take
// the rest. The caller never waits for a worker that has not claimed a chunk.
// There are no barriers.
//
// Reproducibility: how a kernel cuts its work into chunks may depend on the
// thread count, but what a chunk computes for an element never depends on
// which thread runs it or on where the chunk starts (see ops.cc and gemm.cc),
// so results are the same run to run and for every thread count.
#pragma once
#include <cstdint>

// Per-thread state (packing buffers, scratch). The wasm build (native/wasm/)
// runs on one thread, and wasm32 has thread-local storage only with shared
// memory and atomics, so there it is a plain global.
#if defined(__wasm__)
#define UNTIE_THREAD_LOCAL
#else
#define UNTIE_THREAD_LOCAL thread_local
#endif

namespace untie {

typedef void (*ChunkFn)(void* ctx, int64_t chunk);

int pool_get_threads();
void pool_set_threads(int n);

// The most chunks one call may have; more run on the caller alone.
constexpr int64_t kMaxChunks = (int64_t)1 << 20;

// Runs fn(ctx, c) for every c in [0, nchunks), each exactly once, on up to
// `want` threads (the caller and pool workers), and returns when all are
// done. Runs everything on the caller when want <= 1, when nchunks <= 1, or
// when the pool is already in use (another JS thread, or a nested call).
void pool_run(ChunkFn fn, void* ctx, int64_t nchunks, int want);

template <class F>
inline void parallel_chunks(int64_t nchunks, int want, F& f) {
  pool_run([](void* c, int64_t i) { (*static_cast<F*>(c))(i); }, &f, nchunks, want);
}

// Chunks per thread that parallel_for cuts a range into: enough that a
// descheduled thread's chunk is a small part of the work, few enough that
// claiming costs nothing measurable.
constexpr int64_t kChunksPerThread = 4;

// Calls f(begin, end) on contiguous ranges covering [0, ntasks), each range
// once, on up to `want` threads. f's results must not depend on where a
// range starts or ends (every caller in ops.cc is written that way).
template <class F>
inline void parallel_for(int64_t ntasks, int want, F f) {
  if (ntasks <= 0) return;
  if (want > ntasks) want = (int)ntasks;
  if (want <= 1) { f((int64_t)0, ntasks); return; }
  int64_t chunks = (int64_t)want * kChunksPerThread;
  if (chunks > ntasks) chunks = ntasks;
  auto body = [&](int64_t c) {
    const int64_t b = ntasks * c / chunks, e = ntasks * (c + 1) / chunks;
    if (b < e) f(b, e);
  };
  parallel_chunks(chunks, want, body);
}

}  // namespace untie
