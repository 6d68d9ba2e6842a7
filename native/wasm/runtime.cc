// What the kernels need from a runtime when compiled to wasm32, with no C or
// C++ library: memory (from the JavaScript allocator), log and tanh (the
// JavaScript Math functions the reference kernels use), and the thread pool
// of pool.h, here on one thread: pool_run runs every chunk on the caller, in
// order. (The kernels cut work so that what a chunk computes never depends on
// the thread count: see pool.h.)
#include <stddef.h>
#include <stdint.h>

#include "../pool.h"

#define UNTIE_IMPORT(name) __attribute__((import_module("env"), import_name(name)))

extern "C" {
UNTIE_IMPORT("alloc") void* js_alloc(size_t bytes);
UNTIE_IMPORT("free") void js_free(void* p);
UNTIE_IMPORT("log") double js_log(double x);
UNTIE_IMPORT("tanh") double js_tanh(double x);

void* untie_wasm_alloc(size_t bytes) { return js_alloc(bytes); }
void untie_wasm_free(void* p) {
  if (p) js_free(p);
}
double log(double x) { return js_log(x); }
double tanh(double x) { return js_tanh(x); }

// Static and thread_local destructors are registered but never run: the
// module lives as long as the page or process (and has one thread).
void* __dso_handle = nullptr;
int __cxa_atexit(void (*)(void*), void*, void*) { return 0; }
int __cxa_thread_atexit(void (*)(void*), void*, void*) { return 0; }
}

namespace untie {

int pool_get_threads() { return 1; }
void pool_set_threads(int) {}
void pool_run(ChunkFn fn, void* ctx, int64_t nchunks, int) {
  for (int64_t c = 0; c < nchunks; c++) fn(ctx, c);
}

}  // namespace untie
