#include "pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
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

// How long an idle worker spins before it sleeps on the condition variable.
// Kernels come in quick succession during a training step, and waking a
// sleeping thread costs tens of microseconds.
constexpr auto kSpin = std::chrono::microseconds(300);

struct Pool {
  std::mutex run_mu;  // one region at a time
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::thread> workers;
  std::atomic<uint64_t> gen{0};
  std::atomic<int> sleepers{0};
  std::atomic<int> pending{0};
  std::atomic<bool> stop{false};
  RegionFn fn = nullptr;
  void* ctx = nullptr;
  int active = 1;
  int threads = 1;
  alignas(64) std::atomic<int> bar_count{0};
  alignas(64) std::atomic<int> bar_phase{0};
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

// `seen` is the generation current when the worker was created: a job
// published after that is the worker's to run.
void worker_main(Pool* P, int tid, uint64_t seen) {
  in_region = true;  // a worker never starts a region of its own
  for (;;) {
    uint64_t g;
    auto until = std::chrono::steady_clock::now() + kSpin;
    int spins = 0;
    while ((g = P->gen.load(std::memory_order_acquire)) == seen) {
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
    if (tid < P->active) {
      P->fn(P->ctx, tid, P->active);
      P->pending.fetch_sub(1, std::memory_order_acq_rel);
    }
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

void pool_run(RegionFn fn, void* ctx, int want) {
  Pool* P = pool();
  int T = want < P->threads ? want : P->threads;
  if (T <= 1 || in_region) { fn(ctx, 0, 1); return; }
  std::unique_lock<std::mutex> lk(P->run_mu, std::try_to_lock);
  if (!lk.owns_lock()) { fn(ctx, 0, 1); return; }
  if ((int)P->workers.size() != P->threads - 1) start_workers(P);
  P->fn = fn;
  P->ctx = ctx;
  P->active = T;
  P->bar_count.store(0, std::memory_order_relaxed);
  P->pending.store(T - 1, std::memory_order_relaxed);
  P->gen.fetch_add(1, std::memory_order_seq_cst);
  wake_all(P);
  in_region = true;
  fn(ctx, 0, T);
  in_region = false;
  spin_until([P] { return P->pending.load(std::memory_order_acquire) == 0; });
}

void pool_barrier(int nthreads) {
  if (nthreads <= 1) return;
  Pool* P = pool();
  int phase = P->bar_phase.load(std::memory_order_acquire);
  if (P->bar_count.fetch_add(1, std::memory_order_acq_rel) + 1 == nthreads) {
    P->bar_count.store(0, std::memory_order_relaxed);
    P->bar_phase.store(phase + 1, std::memory_order_release);
  } else {
    spin_until([P, phase] { return P->bar_phase.load(std::memory_order_acquire) != phase; });
  }
}

}  // namespace untie
