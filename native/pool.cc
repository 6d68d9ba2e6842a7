#include "pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void cpu_relax() { _mm_pause(); }
#elif defined(__aarch64__)
static inline void cpu_relax() { __asm__ __volatile__("yield"); }
#else
static inline void cpu_relax() {}
#endif

namespace untie {
namespace {

// How long an idle worker spins before it sleeps on the condition variable:
// by default not at all. Since the caller never waits for a worker that has
// not claimed a chunk, a worker that wakes late (tens of microseconds) costs
// only its share of a short region. Spinning, on the other hand, costs on a
// shared machine: the scheduler charges a spinning worker for its CPU time
// and then runs it last when the next region needs it. Measured on the
// 2-core Zen 3 machine at a load average of ~12, tiny preset step, 2 threads,
// median of 5: spinning 300 us 3.31 s, 30 us 2.93 s, not at all 2.28 s
// (1 thread: 3.10 s). UNTIE_SPIN_US sets it, for a machine of one's own.
std::chrono::microseconds spin_time() {
  const char* env = std::getenv("UNTIE_SPIN_US");
  const long us = env ? std::strtol(env, nullptr, 10) : 0;
  return std::chrono::microseconds(us > 0 ? us : 0);
}

// The claim word: which region (its generation, 22 bits), the next chunk to
// hand out and the region's chunk count (21 bits each). A thread claims a
// chunk by one compare-and-swap of the whole word, which succeeds only while
// the region it read is still the current one: a worker that wakes late
// cannot claim a chunk of a region it never saw, nor one that has ended.
constexpr int kCountBits = 21;
constexpr uint64_t kCountMask = ((uint64_t)1 << kCountBits) - 1;
constexpr uint64_t kGenMask = ((uint64_t)1 << (64 - 2 * kCountBits)) - 1;
static_assert(kMaxChunks <= (int64_t)kCountMask, "chunk count must fit the claim word");

inline uint64_t claim_word(uint64_t gen, uint64_t next, uint64_t n) {
  return ((gen & kGenMask) << (2 * kCountBits)) | (next << kCountBits) | n;
}
inline uint64_t word_gen(uint64_t w) { return w >> (2 * kCountBits); }
inline uint64_t word_next(uint64_t w) { return (w >> kCountBits) & kCountMask; }
inline uint64_t word_n(uint64_t w) { return w & kCountMask; }

struct Pool {
  std::mutex run_mu;  // one region at a time
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::thread> workers;
  std::atomic<uint64_t> gen{0};  // bumped once per region: wakes the workers
  std::atomic<int> sleepers{0};
  std::atomic<bool> stop{false};
  // The current region. fn and ctx are written before the claim word is
  // published, and stay valid until every claimed chunk is done.
  ChunkFn fn = nullptr;
  void* ctx = nullptr;
  std::atomic<int> active{1};  // threads (caller included) asked to take part
  int threads = 1;
  alignas(64) std::atomic<uint64_t> claim{0};
  alignas(64) std::atomic<int64_t> done{0};
};

// Never destroyed: worker threads may still be parked in it when the
// process exits, and destroying joinable std::threads would abort.
Pool* pool() {
  static Pool* p = [] {
    Pool* q = new Pool();
    unsigned hc = std::thread::hardware_concurrency();
    q->threads = hc == 0 ? 1 : (int)hc;
    return q;
  }();
  return p;
}

thread_local bool in_region = false;

// Waits for done() by spinning, then (if the wait drags on, as when the
// machine is oversubscribed and the thread we wait for is not running)
// yielding the core between checks.
template <class Done>
inline void spin_until(Done done) {
  for (int spins = 0; !done(); spins++) {
    if (spins < (1 << 10)) cpu_relax();
    else std::this_thread::yield();
  }
}

// Claims and runs chunks of region `g` until none is left (or the region is
// no longer current).
void run_chunks(Pool* P, uint64_t g) {
  uint64_t w = P->claim.load(std::memory_order_acquire);
  for (;;) {
    if (word_gen(w) != (g & kGenMask)) return;
    const uint64_t next = word_next(w), n = word_n(w);
    if (next >= n) return;
    if (!P->claim.compare_exchange_weak(w, claim_word(g, next + 1, n), std::memory_order_acq_rel,
                                        std::memory_order_acquire))
      continue;  // w now holds the current word
    P->fn(P->ctx, (int64_t)next);
    P->done.fetch_add(1, std::memory_order_acq_rel);
    w = P->claim.load(std::memory_order_acquire);
  }
}

// `seen` is the generation current when the worker was created: a region
// published after that is one the worker may join.
void worker_main(Pool* P, int tid, uint64_t seen) {
  in_region = true;  // a worker never starts a region of its own
  static const std::chrono::microseconds spin = spin_time();
  for (;;) {
    uint64_t g;
    auto until = std::chrono::steady_clock::now() + spin;
    int spins = 0;
    while ((g = P->gen.load(std::memory_order_acquire)) == seen && spin.count() > 0) {
      cpu_relax();
      if (++spins == 128) {
        spins = 0;
        if (std::chrono::steady_clock::now() > until) break;
      }
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lk(P->mu);
      P->sleepers.fetch_add(1, std::memory_order_seq_cst);
      while ((g = P->gen.load(std::memory_order_seq_cst)) == seen) P->cv.wait(lk);
      P->sleepers.fetch_sub(1, std::memory_order_relaxed);
    }
    seen = g;
    if (P->stop.load(std::memory_order_acquire)) return;
    // A hint only: any thread may run any chunk.
    if (tid < P->active.load(std::memory_order_relaxed)) run_chunks(P, g);
  }
}

void wake_all(Pool* P) {
  if (P->sleepers.load(std::memory_order_seq_cst) > 0) {
    { std::lock_guard<std::mutex> g(P->mu); }
    P->cv.notify_all();
  }
}

void start_workers(Pool* P) {
  const uint64_t g = P->gen.load(std::memory_order_acquire);
  for (int t = 1; t < P->threads; t++) P->workers.emplace_back(worker_main, P, t, g);
}

void stop_workers(Pool* P) {
  if (P->workers.empty()) return;
  P->stop.store(true, std::memory_order_release);
  P->gen.fetch_add(1, std::memory_order_seq_cst);
  { std::lock_guard<std::mutex> g(P->mu); }
  P->cv.notify_all();
  for (auto& w : P->workers) w.join();
  P->workers.clear();
  P->stop.store(false, std::memory_order_release);
}

void run_inline(ChunkFn fn, void* ctx, int64_t nchunks) {
  for (int64_t c = 0; c < nchunks; c++) fn(ctx, c);
}

}  // namespace

int pool_get_threads() { return pool()->threads; }

void pool_set_threads(int n) {
  Pool* P = pool();
  if (n < 1) n = 1;
  if (n > 512) n = 512;
  std::lock_guard<std::mutex> lk(P->run_mu);
  if (n == P->threads) return;
  stop_workers(P);
  P->threads = n;
}

void pool_run(ChunkFn fn, void* ctx, int64_t nchunks, int want) {
  if (nchunks <= 0) return;
  Pool* P = pool();
  const int T = want < P->threads ? want : P->threads;
  if (T <= 1 || nchunks == 1 || nchunks > kMaxChunks || in_region) { run_inline(fn, ctx, nchunks); return; }
  std::unique_lock<std::mutex> lk(P->run_mu, std::try_to_lock);
  if (!lk.owns_lock()) { run_inline(fn, ctx, nchunks); return; }
  if ((int)P->workers.size() != P->threads - 1) start_workers(P);
  P->fn = fn;
  P->ctx = ctx;
  P->active.store(T, std::memory_order_relaxed);
  P->done.store(0, std::memory_order_relaxed);
  const uint64_t g = P->gen.load(std::memory_order_relaxed) + 1;
  P->claim.store(claim_word(g, 0, (uint64_t)nchunks), std::memory_order_release);
  P->gen.store(g, std::memory_order_seq_cst);
  wake_all(P);
  in_region = true;
  run_chunks(P, g);
  in_region = false;
  // Every chunk is claimed; wait for those that workers are still running.
  spin_until([P, nchunks] { return P->done.load(std::memory_order_acquire) == nchunks; });
}

}  // namespace untie
