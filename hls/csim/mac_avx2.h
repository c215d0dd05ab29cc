// Passes of the g++ build written for AVX2 (intrinsics, and the register block in inline asm): the
// same sums as the kernels' pipelined loops (hls/src), in the order a CPU runs fastest. Included by
// e2_csim.cpp (and fwd_lanes.h, the forward kernel, which shares the register block) only; synthesis
// never sees it.
//
// Why: backward data is a map over positions (one product per lane per tap), for which g++ emits
// vpmulld, 8 products per instruction. vpmaddwd makes 16 (two int16 products summed into each int32
// lane) but g++ only emits it for sums; here it is written out. Two channels share a lane: their
// planes are interleaved into pairs (g[o][q], g[o+1][q]) and each weight pair (w[o][c][t], w[o+1][c][t])
// is broadcast, so one vpmaddwd adds both channels' products for 8 positions. Integer sums, so the
// order does not change a bit (tests/test_csim_fabric.py holds them to the reference).
#ifndef E2_MAC_AVX2_H
#define E2_MAC_AVX2_H

#if defined(__AVX2__) && !defined(__SYNTHESIS__)
#include <immintrin.h>

#include <memory>

#include "conv_bwd_data.h"
#include "conv_bwd_weight_psg.h"

#define E2_AVX2_PASSES 1

namespace e2 {
namespace avx2 {

// A scratch buffer of V per thread and slot, grown on demand and kept between calls.
template <int SLOT, class V = int32_t>
V *scratch(long count) {
    thread_local std::unique_ptr<V[]> buf;
    thread_local long have = 0;
    if (count > have) {
        buf.reset(new V[count]);
        have = count;
    }
    return buf.get();
}

// One lane of pairs: lo in the low half, hi in the high half (both int16 values).
inline int32_t pack(int32_t lo, int32_t hi) { return (int32_t)(uint16_t)(int16_t)lo | (int32_t)((uint32_t)hi << 16); }

// dst[i] = (uint16) a[i] | b[i] << 16 for i in [0, n): two int32 planes holding int16 values (the
// backward-data gradient planes) -> one plane of pairs.
inline void interleave(const int32_t *a, const int32_t *b, int32_t *dst, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i va = _mm256_loadu_si256((const __m256i *)(a + i));
        const __m256i vb = _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(b + i)), 16);
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_blend_epi16(va, vb, 0xAA));
    }
    for (; i < n; ++i) dst[i] = pack(a[i], b[i]);
}

// The register block of the passes: a[r][h] += sum_j vpmaddwd(pairs[base[j] + q + h * second ...],
// w[j][r0 + r] broadcast) for 4 rows r and two vectors h (16 consecutive positions when second = 8):
// 8 accumulators, two operands, a broadcast and a product, 12 of the 16 ymm registers. Inlined, so
// that a[][] lives in registers.
template <int W>
__attribute__((always_inline)) inline void madd_block(const int32_t *pairs, const long *base, const int32_t (*w)[W],
                                                      int r0, int nj, long q, __m256i (&a)[4][2], long second = 8) {
#pragma GCC unroll 1
    for (int j = 0; j < nj; ++j) {
        const int32_t *x = pairs + base[j] + q;
        const __m256i x0 = _mm256_loadu_si256((const __m256i *)x);
        const __m256i x1 = _mm256_loadu_si256((const __m256i *)(x + second));
        const int32_t *wj = w[j] + r0;
        // Written out: from intrinsics g++ computes all eight products into fresh registers, then
        // adds and copies them back (8 vmovdqa and a spill per step); here each product goes through
        // one scratch register into its accumulator in place.
        __m256i wv, p;
        asm("vpbroadcastd %[w0], %[wv]\n\t"
            "vpmaddwd %[wv], %[x0], %[p]\n\t"
            "vpaddd %[p], %[a00], %[a00]\n\t"
            "vpmaddwd %[wv], %[x1], %[p]\n\t"
            "vpaddd %[p], %[a01], %[a01]\n\t"
            "vpbroadcastd %[w1], %[wv]\n\t"
            "vpmaddwd %[wv], %[x0], %[p]\n\t"
            "vpaddd %[p], %[a10], %[a10]\n\t"
            "vpmaddwd %[wv], %[x1], %[p]\n\t"
            "vpaddd %[p], %[a11], %[a11]\n\t"
            "vpbroadcastd %[w2], %[wv]\n\t"
            "vpmaddwd %[wv], %[x0], %[p]\n\t"
            "vpaddd %[p], %[a20], %[a20]\n\t"
            "vpmaddwd %[wv], %[x1], %[p]\n\t"
            "vpaddd %[p], %[a21], %[a21]\n\t"
            "vpbroadcastd %[w3], %[wv]\n\t"
            "vpmaddwd %[wv], %[x0], %[p]\n\t"
            "vpaddd %[p], %[a30], %[a30]\n\t"
            "vpmaddwd %[wv], %[x1], %[p]\n\t"
            "vpaddd %[p], %[a31], %[a31]"
            : [a00] "+x"(a[0][0]), [a01] "+x"(a[0][1]), [a10] "+x"(a[1][0]), [a11] "+x"(a[1][1]),
              [a20] "+x"(a[2][0]), [a21] "+x"(a[2][1]), [a30] "+x"(a[3][0]), [a31] "+x"(a[3][1]),
              [wv] "=&x"(wv), [p] "=&x"(p)
            : [x0] "x"(x0), [x1] "x"(x1), [w0] "m"(wj[0]), [w1] "m"(wj[1]), [w2] "m"(wj[2]), [w3] "m"(wj[3]));
    }
}

// Elements a register block may read past the last pair plane (the tail block, see add_lanes).
const int SLACK = 16;

// Interleaves NP pairs of planes (plane i at first + i * stride) into scratch SLOT, one plane of pairs
// per pair holding every element that nq positions read through the T tap offsets off[], followed by
// SLACK zeros, and sets base[p * T + t] to where (pair p, tap t) starts in them.
template <int SLOT, int NP, int T>
const int32_t *pair_up(const int32_t *first, long stride, const int *off, long nq, long *base) {
    int reach = 0;
    for (int t = 0; t < T; ++t)
        if (off[t] > reach) reach = off[t];
    const long span = nq + reach;
    int32_t *pairs = scratch<SLOT>(NP * span + SLACK);
    for (int p = 0; p < NP; ++p) {
        interleave(first + 2 * p * stride, first + (2 * p + 1) * stride, pairs + p * span, span);
        for (int t = 0; t < T; ++t) base[p * T + t] = p * span + off[t];
    }
    for (int i = 0; i < SLACK; ++i) pairs[NP * span + i] = 0;
    return pairs;
}

// The last positions of a pass, fewer than 16: a whole register block computes them (its other lanes
// read the next pair's plane or the slack: garbage that is never stored), and the first rem lanes of
// each row are added to the accumulators one by one.
template <class Acc>
void add_lanes(Acc *acc, const __m256i (&a)[2], int rem) {
    alignas(32) int32_t v[16];
    _mm256_store_si256((__m256i *)v, a[0]);
    _mm256_store_si256((__m256i *)(v + 8), a[1]);
    for (int l = 0; l < rem; ++l) acc[l] += v[l];
}

}  // namespace avx2

// Backward data, one pass of a tap set (conv_bwd_data.h: all k x k taps at stride 1, a parity class at
// stride 2): acc[pc][base + q] += sum_{oc,n} wb[oc][pc][tap(n)] * gb[oc][q + offset(n)], output channels
// in pairs. The pass's sums stay in 32 bits (|sum| <= OC*k*k*2^22 < 2^31, as bwd_data_mac checks) and
// are widened once into the 64-bit accumulator planes.
template <class Taps, int K, int PC, int OC, int PLANE>
struct BwdDataPass<NativeTypes, Taps, K, PC, OC, false, PLANE> {
    static_assert(OC % 2 == 0 && PC % 4 == 0, "the AVX2 backward-data pass takes output channels in pairs, input channels in fours");
    static_assert((OC * K * K) * (1L << 22) < (1L << 31), "the pass's sums must fit 32 bits");
    static const int NP = OC / 2, NT = Taps::count > 0 ? Taps::count : 1;

    static void add64(int64_t *acc, __m256i s) {
        const __m256i lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(s));
        const __m256i hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(s, 1));
        _mm256_storeu_si256((__m256i *)acc, _mm256_add_epi64(_mm256_loadu_si256((const __m256i *)acc), lo));
        _mm256_storeu_si256((__m256i *)(acc + 4), _mm256_add_epi64(_mm256_loadu_si256((const __m256i *)(acc + 4)), hi));
    }

    static void run(const int32_t (*gb)[PLANE], const int32_t wb[OC][PC][K * K], int64_t (*acc)[PLANE], int base0,
                    int nq, int row) {
        if (Taps::count == 0) return;
        int off[NT];
        for (int n = 0; n < NT; ++n) off[n] = Taps::offset(n, row);
        long base[NP * NT];
        const int32_t *pairs = avx2::pair_up<1, NP, NT>(gb[0], PLANE, off, nq, base);
        int32_t wq[NP * NT][PC];
        for (int j = 0; j < NP * NT; ++j) {
            const int t = Taps::tap(j % NT), p = j / NT;
            for (int pc = 0; pc < PC; ++pc) wq[j][pc] = avx2::pack(wb[2 * p][pc][t], wb[2 * p + 1][pc][t]);
        }
        const long nq16 = (long)nq / 16 * 16;
        for (int p0 = 0; p0 < PC; p0 += 4)
            for (long q = 0; q < nq16; q += 16) {
                __m256i a[4][2];
                E2_UNROLL for (int pc = 0; pc < 4; ++pc) a[pc][0] = a[pc][1] = _mm256_setzero_si256();
                avx2::madd_block<PC>(pairs, base, wq, p0, NP * NT, q, a);
                E2_UNROLL for (int pc = 0; pc < 4; ++pc) {
                    add64(acc[p0 + pc] + base0 + q, a[pc][0]);
                    add64(acc[p0 + pc] + base0 + q + 8, a[pc][1]);
                }
            }
        if (nq > nq16)
            for (int p0 = 0; p0 < PC; p0 += 4) {
                __m256i a[4][2];
                E2_UNROLL for (int pc = 0; pc < 4; ++pc) a[pc][0] = a[pc][1] = _mm256_setzero_si256();
                avx2::madd_block<PC>(pairs, base, wq, p0, NP * NT, nq16, a);
                for (int pc = 0; pc < 4; ++pc) avx2::add_lanes(acc[p0 + pc] + base0 + nq16, a[pc], (int)(nq - nq16));
            }
    }
};

// Weight gradient, phase 1 of a 3 x 3 tile of 2 output channels x 1 input channel:
// acc[po][0][t] += sum_q gmb[po][q] * xmb[0][q + off[t]] (x_msb and g_msb). A sum per weight, so
// vpmaddwd pairs neighbouring positions. g++ makes one accumulator per weight from the kernel's own
// loop, which reads nine unaligned operand streams per product row (one per tap); here one kernel row
// at a time (three taps) serves both output channels: 3 unaligned loads per 6 vpmaddwd instead of 9
// per 9, at the price of three passes over the gradient planes.
template <int S, int PLANE>
struct PsgMsbPass<NativeTypes, 3, S, 2, 1, false, PLANE> {
    static int32_t hsum(__m256i v) {
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
        return _mm_cvtsi128_si32(s);
    }

    static void run(const int16_t (*xmb)[PLANE], const int16_t (*gmb)[PLANE], int32_t acc[2][1][9], const Geometry &g) {
        const long nq = g.nq, nq16 = nq / 16 * 16;
        const int16_t *g0 = gmb[0], *g1 = gmb[1];
        for (int i = 0; i < 3; ++i) {
            const int16_t *x0 = xmb[0] + tap_offset<S>(g, i, 0), *x1 = xmb[0] + tap_offset<S>(g, i, 1),
                          *x2 = xmb[0] + tap_offset<S>(g, i, 2);
            __m256i a00 = _mm256_setzero_si256(), a01 = a00, a02 = a00, a10 = a00, a11 = a00, a12 = a00;
            for (long q = 0; q < nq16; q += 16) {
                // written out for the same reason as madd_block: one scratch register per product
                __m256i gv0, gv1, xv, p;
                asm("vmovdqu %[g0], %[gv0]\n\t"
                    "vmovdqu %[g1], %[gv1]\n\t"
                    "vmovdqu %[x0], %[xv]\n\t"
                    "vpmaddwd %[gv0], %[xv], %[p]\n\t"
                    "vpaddd %[p], %[a00], %[a00]\n\t"
                    "vpmaddwd %[gv1], %[xv], %[p]\n\t"
                    "vpaddd %[p], %[a10], %[a10]\n\t"
                    "vmovdqu %[x1], %[xv]\n\t"
                    "vpmaddwd %[gv0], %[xv], %[p]\n\t"
                    "vpaddd %[p], %[a01], %[a01]\n\t"
                    "vpmaddwd %[gv1], %[xv], %[p]\n\t"
                    "vpaddd %[p], %[a11], %[a11]\n\t"
                    "vmovdqu %[x2], %[xv]\n\t"
                    "vpmaddwd %[gv0], %[xv], %[p]\n\t"
                    "vpaddd %[p], %[a02], %[a02]\n\t"
                    "vpmaddwd %[gv1], %[xv], %[p]\n\t"
                    "vpaddd %[p], %[a12], %[a12]"
                    : [a00] "+x"(a00), [a01] "+x"(a01), [a02] "+x"(a02), [a10] "+x"(a10), [a11] "+x"(a11),
                      [a12] "+x"(a12), [gv0] "=&x"(gv0), [gv1] "=&x"(gv1), [xv] "=&x"(xv), [p] "=&x"(p)
                    : [g0] "m"(*(const __m256i *)(g0 + q)), [g1] "m"(*(const __m256i *)(g1 + q)),
                      [x0] "m"(*(const __m256i *)(x0 + q)), [x1] "m"(*(const __m256i *)(x1 + q)),
                      [x2] "m"(*(const __m256i *)(x2 + q)));
            }
            int32_t s[2][3] = {{hsum(a00), hsum(a01), hsum(a02)}, {hsum(a10), hsum(a11), hsum(a12)}};
            for (long q = nq16; q < nq; ++q)  // the last positions, fewer than a vector
                for (int j = 0; j < 3; ++j) {
                    const int32_t xq = (j == 0 ? x0 : j == 1 ? x1 : x2)[q];
                    s[0][j] += g0[q] * xq;
                    s[1][j] += g1[q] * xq;
                }
            for (int po = 0; po < 2; ++po)
                for (int j = 0; j < 3; ++j) acc[po][0][i * 3 + j] += s[po][j];
        }
    }
};

}  // namespace e2

#endif  // __AVX2__
#endif
