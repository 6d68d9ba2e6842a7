"""Which BLAS PyTorch's CPU GEMM runs on, for bench/torch-python.ts.

Debian's python3-torch links the generic libblas.so.3, which is the netlib
reference BLAS (about 50x slower) unless an optimised one such as
libopenblas0-pthread is installed. Prints one JSON object: the torch version,
the BLAS-like libraries mapped into this process after a matmul (null where
/proc/self/maps does not exist), and one thread's GFLOP/s on a 512^3 GEMM.
"""
import json
import time

import torch


def mapped_blas_libraries():
    try:
        with open("/proc/self/maps") as maps:
            lines = maps.read().splitlines()
    except OSError:
        return None
    found = []
    for line in lines:
        parts = line.split()
        if len(parts) < 6:
            continue
        path = parts[-1]
        name = path.rsplit("/", 1)[-1].lower()
        if any(key in name for key in ("blas", "mkl", "blis", "lapack", "accelerate", "armpl")) and path not in found:
            found.append(path)
    return found


def main():
    torch.set_num_threads(1)
    a, b = torch.rand(512, 512), torch.rand(512, 512)
    torch.mm(a, b)  # loads the BLAS
    libs = mapped_blas_libraries()
    calls, t0 = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - t0 < 0.2:
        torch.mm(a, b)
        calls += 1
    gflops = 2.0 * 512 ** 3 * calls / (time.perf_counter() - t0) / 1e9
    print(json.dumps({"torch": torch.__version__, "blas_libraries": libs, "gemm512_gflops": gflops}))


if __name__ == "__main__":
    main()
