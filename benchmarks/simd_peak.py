"""The multiply throughput of one core, the ceiling for the csim kernels' inner loops.

    .venv/bin/python benchmarks/simd_peak.py

Compiles a stand-alone loop of ten independent AVX2 multiplies (no loads, no adds, nothing else) with
g++ and prints how many it retires per second: ``vpmaddwd`` (16 int16 products, summed in pairs: the
AVX2 passes of hls/csim/mac_avx2.h and the weight-gradient sums) and ``vpmulld`` (8 int32 products:
what g++ emits for the kernels' own map loops). A real pass also loads operands, broadcasts weights
and adds into accumulators, so it reaches a fraction of these; benchmarks/csim_speed.py measures that.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = r"""
#include <immintrin.h>
#include <chrono>
#include <cstdio>
static double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
#define TEN(OP) OP(a0) OP(a1) OP(a2) OP(a3) OP(a4) OP(a5) OP(a6) OP(a7) OP(a8) OP(a9)
#define MADD(a) asm volatile("vpmaddwd %1, %0, %0" : "+x"(a) : "x"(b));
#define MULL(a) asm volatile("vpmulld %1, %0, %0" : "+x"(a) : "x"(b));
int main() {
    const long m = 100000000;
    __m256i b = _mm256_set1_epi32(0x00030002);
    __m256i a0 = b, a1 = b, a2 = b, a3 = b, a4 = b, a5 = b, a6 = b, a7 = b, a8 = b, a9 = b;
    double best_madd = 0, best_mull = 0;
    for (int round = 0; round < 3; ++round) {
        double t0 = now();
        for (long i = 0; i < m; ++i) { TEN(MADD) }
        double r = 10.0 * m / (now() - t0);
        if (r > best_madd) best_madd = r;
        t0 = now();
        for (long i = 0; i < m; ++i) { TEN(MULL) }
        r = 10.0 * m / (now() - t0);
        if (r > best_mull) best_mull = r;
    }
    printf("%.4g %.4g\n", best_madd, best_mull);
    return 0;
}
"""


def cpu_has_avx2() -> bool:
    try:
        return any(line.startswith("flags") and " avx2" in line for line in open("/proc/cpuinfo"))
    except OSError:
        return False


def main() -> int:
    if not cpu_has_avx2():
        print("this CPU has no AVX2: nothing to measure (the csim library runs its portable loops)")
        return 0
    cxx = shutil.which(os.environ.get("CXX", "g++"))
    if cxx is None:
        print("g++ not found (set CXX)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp) / "probe.cpp", Path(tmp) / "probe"
        src.write_text(PROBE)
        subprocess.run([cxx, "-O2", "-mavx2", str(src), "-o", str(exe)], check=True)
        madd, mull = map(float, subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split())
    print(f"vpmaddwd: {madd / 1e9:.2f} G/s = {madd * 16 / 1e9:.1f} GMAC/s of bare int16 products (one core, best of 3)")
    print(f"vpmulld:  {mull / 1e9:.2f} G/s = {mull * 8 / 1e9:.1f} GMAC/s of bare int32 products")
    return 0


if __name__ == "__main__":
    sys.exit(main())
