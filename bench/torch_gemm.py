"""GEMM GFLOP/s in PyTorch, for bench/gemm.ts.

Usage: torch_gemm.py '{"threads": 1, "shapes": [[batch, m, k, n, op?], ...], "reps": 7, "min_s": 0.05}'
(op: "NN", "TN" = A stored (k, m), or "NT" = B stored (n, k))
Prints one JSON object: {"torch": version, "gflops": [per shape], "cpu_gflops": [per shape]}.
Each figure is the median over `reps` timed runs (after warm-up) of a loop of
calls lasting at least `min_s`, by wall time and by this process's CPU time;
outputs are preallocated (out=), as untie's are.
Thread limits come from the caller's environment (OPENBLAS_NUM_THREADS etc.)
and torch.set_num_threads.
"""
import json
import statistics
import sys
import time

import torch


def main():
    opts = json.loads(sys.argv[1])
    torch.set_num_threads(int(opts["threads"]))
    reps = int(opts.get("reps", 7))
    min_s = float(opts.get("min_s", 0.05))
    gen = torch.Generator().manual_seed(0)
    results, cpu_results = [], []
    for shape in opts["shapes"]:
        batch, m, k, n = shape[:4]
        op = shape[4] if len(shape) > 4 else "NN"
        # Transposed operands are stored transposed and passed as transposed
        # views, which BLAS takes without a copy (as untie's transA/transB).
        a = torch.rand(batch, k, m, generator=gen) * 2 - 1 if op == "TN" else torch.rand(batch, m, k, generator=gen) * 2 - 1
        b = torch.rand(batch, n, k, generator=gen) * 2 - 1 if op == "NT" else torch.rand(batch, k, n, generator=gen) * 2 - 1
        if op == "TN":
            a = a.transpose(1, 2)
        if op == "NT":
            b = b.transpose(1, 2)
        c = torch.empty(batch, m, n)
        if batch == 1:
            a2, b2, c2 = a[0], b[0], c[0]
            call = lambda: torch.mm(a2, b2, out=c2)
        else:
            call = lambda: torch.bmm(a, b, out=c)
        flops = 2.0 * batch * m * n * k
        # warm-up, and the loop length for about min_s per timed run
        t0 = time.perf_counter()
        calls = 0
        while calls < 3 or time.perf_counter() - t0 < min_s:
            call()
            calls += 1
        per = (time.perf_counter() - t0) / calls
        loop = max(1, int(min_s / per))
        times, cpu_times = [], []
        for _ in range(reps):
            c0, t0 = time.process_time(), time.perf_counter()
            for _ in range(loop):
                call()
            times.append((time.perf_counter() - t0) / loop)
            cpu_times.append((time.process_time() - c0) / loop)
        results.append(flops / statistics.median(times) / 1e9)
        cpu_results.append(flops / max(statistics.median(cpu_times), 1e-12) / 1e9)
    print(json.dumps({"torch": torch.__version__, "gflops": results, "cpu_gflops": cpu_results}))


if __name__ == "__main__":
    main()
