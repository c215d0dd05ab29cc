// The integer CPU training engine: the three kernels of contract v2 (docs/contracts.md) on int8 / int16
// operands, for training on a CPU rather than for checking the HLS sources (that is the csim backend).
//
// Every convolution is a product of small integer matrices:
//
//   forward          y[o][p]  = sum_r w[o][r] * X[r][p]          X = im2col(x), r = (c, i, j), p = (h', w')
//   backward data    C[r][p]  = sum_o w[o][r] * g[o][p]          then col2im(C) -> g_x
//   weight gradient  G[o][r] = sum_{n,p} g[n][o][p] * X_n[r][p]   (x_msb, g_msb for G_msb; x, g_y for G_full)
//
// computed with vpmaddwd (two int16 products summed into an int32 lane; vpdpwssd where AVX-512 VNNI or
// AVX-VNNI is there), or with plain C++ loops in the portable build (-DE2CPU_PORTABLE, or a compiler
// without AVX2). Integer sums: the order never changes a bit. Where a sum could leave 32 bits (backward
// data over more than 510 output channels; the full weight gradient) it is cut into pieces that cannot,
// each widened into 64 bits. The forward accumulator is int32 as in the contract: its additions wrap
// modulo 2^32, so the result is exact whenever the true sum fits, which the contract's bound guarantees.
//
// Samples are spread over OpenMP threads (forward, backward data) or sample groups with one partial
// weight gradient per thread, summed at the end. Scratch buffers live per thread between calls.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#if defined(__AVX2__) && !defined(E2CPU_PORTABLE)
#define E2CPU_AVX2 1
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

const int kContractVersion = 2;
const int kLanes = 16;           // positions per panel (two 8-lane int32 vectors of pairs)
const long kChunk = 255 * 16;    // int16 products per int32 lane-pair run that cannot overflow: 510 * 2^22 < 2^31
const int kMaxPairs = 255;       // output-channel pairs per backward-data pass (same bound)

long round_up(long v, long m) { return (v + m - 1) / m * m; }

// A per-thread scratch buffer of T, grown on demand and kept between calls.
template <int SLOT, class T>
T *scratch(long count) {
    thread_local std::unique_ptr<T[]> buf;
    thread_local long have = 0;
    if (count > have) {
        buf.reset(new T[count]);
        have = count;
    }
    return buf.get();
}

// One int32 lane holding two int16 values: lo in the low half.
inline int32_t pack(int32_t lo, int32_t hi) { return (int32_t)((uint32_t)(uint16_t)(int16_t)lo | ((uint32_t)hi << 16)); }

// The contract's MSB predictors (v2): round to nearest (ties up), saturate the top code.
inline int16_t x_msb(int v) { return (int16_t)std::min((v + 8) >> 4, 7); }
inline int16_t g_msb(int v) { return (int16_t)std::min((v + 32) >> 6, 511); }

struct Shape {
    int n, c, h, w, o, k, s;
    int pad() const { return (k - 1) / 2; }
    int ho() const { return (h + 2 * pad() - k) / s + 1; }
    int wo() const { return (w + 2 * pad() - k) / s + 1; }
    long p() const { return (long)ho() * wo(); }
    long ck() const { return (long)c * k * k; }
};

int threads_for(int requested) {
#ifdef _OPENMP
    return requested > 0 ? requested : omp_get_max_threads();
#else
    (void)requested;
    return 1;
#endif
}

int thread_id() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

// ---- quantisation: q = clamp(floor(x * 2^-e + 1/2)), exactly ---------------------------------------
// v = x * 2^-e is exact (a power of two, in the input's own type while 2^-e is a normal number of it);
// floor(v) and the fraction v - floor(v) are exact, so comparing the fraction with 1/2 rounds half up
// without the error of adding 1/2 (e2train.fixed.round_half_up). inf (an overflowed v) saturates.
template <class T, class Q>
long quantize(const T *x, long n, int e, Q *q, int lo, int hi, int nt) {
    long sat = 0;
    const bool narrow = sizeof(T) == 4 && (e < -126 || e > 126);
    if (narrow) {  // 2^-e is not a normal float: scale in double instead
        const double s = std::ldexp(1.0, -e);
#pragma omp parallel for num_threads(nt) reduction(+ : sat) schedule(static) if (n > 32768)
        for (long i = 0; i < n; ++i) {
            const double v = (double)x[i] * s, f = std::floor(v) + (v - std::floor(v) >= 0.5 ? 1.0 : 0.0);
            const double c = f < lo ? lo : f > hi ? hi : f;
            sat += c != f;
            q[i] = (Q)c;
        }
        return sat;
    }
    const T s = (T)std::ldexp(1.0, -e), half = (T)0.5, tlo = (T)lo, thi = (T)hi;
#pragma omp parallel for num_threads(nt) reduction(+ : sat) schedule(static) if (n > 32768)
    for (long i = 0; i < n; ++i) {
        const T v = x[i] * s, fl = std::floor(v);
        const T f = fl + (v - fl >= half ? (T)1 : (T)0);
        const T c = f < tlo ? tlo : f > thi ? thi : f;
        sat += c != f;
        q[i] = (Q)c;
    }
    return sat;
}

// ---- im2col rows ---------------------------------------------------------------------------------
// rows[r * ld + p] for r = (c, i, j) (OIHW order) and the P output positions of one sample, of x (MSB = 0)
// or of x_msb (MSB = 1); rows with use[r] == 0 are left alone (use == nullptr: all).
template <int MSB>
inline int16_t xval(int8_t v) {
    return MSB ? x_msb(v) : (int16_t)v;
}

template <int MSB>
void build_rows(const int8_t *x, const Shape &sh, int16_t *rows, long ld, const uint8_t *use) {
    const int k = sh.k, s = sh.s, pad = sh.pad(), ho = sh.ho(), wo = sh.wo();
    for (int c = 0; c < sh.c; ++c)
        for (int i = 0; i < k; ++i)
            for (int j = 0; j < k; ++j) {
                const long r = ((long)c * k + i) * k + j;
                if (use && !use[r]) continue;
                int lo = 0, hi = wo;  // output columns whose input column is inside the image
                while (lo < wo && lo * s + j - pad < 0) ++lo;
                while (hi > lo && (hi - 1) * s + j - pad >= sh.w) --hi;
                for (int oy = 0; oy < ho; ++oy) {
                    int16_t *d = rows + r * ld + (long)oy * wo;
                    const int iy = oy * s + i - pad;
                    if (iy < 0 || iy >= sh.h) {
                        std::memset(d, 0, sizeof(int16_t) * wo);
                        continue;
                    }
                    const int8_t *src = x + ((long)c * sh.h + iy) * sh.w + (j - pad);
                    for (int ox = 0; ox < lo; ++ox) d[ox] = 0;
                    if (s == 1)
                        for (int ox = lo; ox < hi; ++ox) d[ox] = xval<MSB>(src[ox]);
                    else
                        for (int ox = lo; ox < hi; ++ox) d[ox] = xval<MSB>(src[2 * ox]);
                    for (int ox = hi; ox < wo; ++ox) d[ox] = 0;
                }
            }
}

// ---- panels: pairs of rows interleaved, 16 positions at a time --------------------------------------
// dst[(b * np + q) * 16 + l] = pack(src[2q][16b + l], src[2q + 1][16b + l]) for the nrows rows of src
// (stride ld, P valid columns; a missing odd row and the columns past P read as 0), np = ceil(nrows / 2).
void panelize(const int16_t *src, long nrows, long ld, long P, int32_t *dst) {
    const long np = (nrows + 1) / 2, nb = round_up(P, kLanes) / kLanes;
    for (long b = 0; b < nb; ++b)
        for (long q = 0; q < np; ++q) {
            const int16_t *a = src + 2 * q * ld + b * kLanes;
            const int16_t *c = 2 * q + 1 < nrows ? a + ld : nullptr;
            int32_t *d = dst + (b * np + q) * kLanes;
#ifdef E2CPU_AVX2
            if ((b + 1) * kLanes <= P) {
                // 64-bit quarters 0 2 1 3, then unpack within 128-bit halves: positions 0-7, then 8-15
                const __m256i va = _mm256_permute4x64_epi64(_mm256_loadu_si256((const __m256i *)a), 0xD8);
                const __m256i vc = c ? _mm256_permute4x64_epi64(_mm256_loadu_si256((const __m256i *)c), 0xD8)
                                     : _mm256_setzero_si256();
                _mm256_storeu_si256((__m256i *)d, _mm256_unpacklo_epi16(va, vc));
                _mm256_storeu_si256((__m256i *)(d + 8), _mm256_unpackhi_epi16(va, vc));
                continue;
            }
#endif
            const long valid = std::min<long>(kLanes, P - b * kLanes);
            for (long l = 0; l < kLanes; ++l) d[l] = l < valid ? pack(a[l], c ? c[l] : 0) : 0;
        }
}

// ---- the panel product: out[m][l] = sum_q madd(A[m][q], panel[q][l]) for MR rows of A -------------
#ifdef E2CPU_AVX2
inline __m256i madd(__m256i acc, __m256i a, __m256i b) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpwssd_epi32(acc, a, b);
#elif defined(__AVXVNNI__)
    return _mm256_dpwssd_avx_epi32(acc, a, b);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}

template <int MR>
void panel_rows(const int32_t *A, long lda, const int32_t *panel, long np, int32_t (*out)[kLanes]) {
    __m256i c0[MR], c1[MR];
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) c0[m] = c1[m] = _mm256_setzero_si256();
    for (long q = 0; q < np; ++q) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(panel + q * kLanes));
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(panel + q * kLanes + 8));
#pragma GCC unroll 8
        for (int m = 0; m < MR; ++m) {
            const __m256i a = _mm256_set1_epi32(A[m * lda + q]);
            c0[m] = madd(c0[m], a, b0);
            c1[m] = madd(c1[m], a, b1);
        }
    }
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
        _mm256_storeu_si256((__m256i *)out[m], c0[m]);
        _mm256_storeu_si256((__m256i *)(out[m] + 8), c1[m]);
    }
}
const int kRows = 6;  // rows of A per register block: 12 accumulators, two panel vectors, a broadcast
#else
template <int MR>
void panel_rows(const int32_t *A, long lda, const int32_t *panel, long np, int32_t (*out)[kLanes]) {
    for (int m = 0; m < MR; ++m) {
        int32_t acc[kLanes] = {0};
        for (long q = 0; q < np; ++q) {
            const int32_t a = A[m * lda + q];
            const int32_t alo = (int16_t)(a & 0xFFFF), ahi = (int16_t)((uint32_t)a >> 16);
            for (int l = 0; l < kLanes; ++l) {
                const int32_t b = panel[q * kLanes + l];
                // wraps like vpaddd (unsigned arithmetic: no undefined overflow)
                acc[l] = (int32_t)((uint32_t)acc[l] + (uint32_t)(alo * (int16_t)(b & 0xFFFF) + ahi * (int16_t)((uint32_t)b >> 16)));
            }
        }
        std::memcpy(out[m], acc, sizeof acc);
    }
}
const int kRows = 4;
#endif

// out rows [m0, m0 + mr) of the panel product, mr <= kRows
void panel_block(const int32_t *A, long lda, const int32_t *panel, long np, int mr, int32_t (*out)[kLanes]) {
    switch (mr) {
        case 1: return panel_rows<1>(A, lda, panel, np, out);
        case 2: return panel_rows<2>(A, lda, panel, np, out);
        case 3: return panel_rows<3>(A, lda, panel, np, out);
        case 4: return panel_rows<4>(A, lda, panel, np, out);
#ifdef E2CPU_AVX2
        case 5: return panel_rows<5>(A, lda, panel, np, out);
        case 6: return panel_rows<6>(A, lda, panel, np, out);
#endif
    }
}

// ---- the weight-gradient dot products: out[m][r] += sum_l g[m][l] * t[r][l], rows of L (a multiple of 16)
#ifdef E2CPU_AVX2
inline int64_t hsum64(__m256i v) {
    const __m256i w = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)),
                                       _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1)));
    const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    return _mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1);
}

template <int MR, int NR>
void dot_tile(const int16_t *g, const int16_t *t, long ld, long L, int64_t *out, long ldo) {
    for (long l0 = 0; l0 < L; l0 += kChunk) {
        const long l1 = std::min(L, l0 + kChunk);
        __m256i acc[MR][NR];
#pragma GCC unroll 8
        for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
            for (int r = 0; r < NR; ++r) acc[m][r] = _mm256_setzero_si256();
        for (long l = l0; l < l1; l += 16) {
            __m256i gv[MR];
#pragma GCC unroll 8
            for (int m = 0; m < MR; ++m) gv[m] = _mm256_loadu_si256((const __m256i *)(g + m * ld + l));
#pragma GCC unroll 8
            for (int r = 0; r < NR; ++r) {
                const __m256i tv = _mm256_loadu_si256((const __m256i *)(t + r * ld + l));
#pragma GCC unroll 8
                for (int m = 0; m < MR; ++m) acc[m][r] = madd(acc[m][r], gv[m], tv);
            }
        }
        for (int m = 0; m < MR; ++m)
            for (int r = 0; r < NR; ++r) out[m * ldo + r] += hsum64(acc[m][r]);
    }
}
#if defined(__AVX512VNNI__) || defined(__AVXVNNI__)
const int kTileM = 3, kTileR = 4;  // 12 accumulators, 3 gradient rows, one x row: 16 registers
#else
const int kTileM = 2, kTileR = 6;  // 12 accumulators, 2 gradient rows, one x row, one product
#endif
#else
template <int MR, int NR>
void dot_tile(const int16_t *g, const int16_t *t, long ld, long L, int64_t *out, long ldo) {
    for (int m = 0; m < MR; ++m)
        for (int r = 0; r < NR; ++r) {
            int64_t s = 0;
            for (long l0 = 0; l0 < L; l0 += 256) {  // 256 products of at most 2^22 fit an int32
                int32_t part = 0;
                const long l1 = std::min(L, l0 + 256);
                for (long l = l0; l < l1; ++l) part += (int32_t)g[m * ld + l] * t[r * ld + l];
                s += part;
            }
            out[m * ldo + r] += s;
        }
}
const int kTileM = 2, kTileR = 4;
#endif

// ---- output conversion -------------------------------------------------------------------------------
// 0: the integer itself (int32 forward, int64 backward data), 1: float32, 2: float64 of acc * 2^e
// (the integer is exact in double, the power of two too; one rounding into float32).
template <class Acc>
void store(void *out, int kind, long at, const Acc *v, long count, double scale) {
    switch (kind) {
        case 0: std::memcpy((Acc *)out + at, v, sizeof(Acc) * count); return;
        case 1: {
            float *d = (float *)out + at;
            for (long i = 0; i < count; ++i) d[i] = (float)((double)v[i] * scale);
            return;
        }
        default: {
            double *d = (double *)out + at;
            for (long i = 0; i < count; ++i) d[i] = (double)v[i] * scale;
        }
    }
}

int check(const Shape &sh) {
    if ((sh.k != 1 && sh.k != 3) || (sh.s != 1 && sh.s != 2)) return 2;
    if (sh.n < 0 || sh.c < 1 || sh.o < 1 || sh.h < 1 || sh.w < 1 || sh.ho() < 1 || sh.wo() < 1) return 1;
    return 0;
}

// ---- conv_fwd -----------------------------------------------------------------------------------------
int conv_fwd(const int8_t *x, const int8_t *w, void *y, int kind, int e, const Shape &sh, int nt) {
    const long P = sh.p(), Pp = round_up(P, kLanes), CK = sh.ck(), np = (CK + 1) / 2, nb = Pp / kLanes;
    std::vector<int32_t> A(sh.o * np);  // weight pairs along r
    for (int o = 0; o < sh.o; ++o)
        for (long q = 0; q < np; ++q)
            A[o * np + q] = pack(w[o * CK + 2 * q], 2 * q + 1 < CK ? w[o * CK + 2 * q + 1] : 0);
    const double scale = std::ldexp(1.0, e);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int n = 0; n < sh.n; ++n) {
        int16_t *rows = scratch<0, int16_t>(CK * Pp);
        int32_t *panels = scratch<1, int32_t>(nb * np * kLanes);
        build_rows<0>(x + (long)n * sh.c * sh.h * sh.w, sh, rows, Pp, nullptr);
        panelize(rows, CK, Pp, P, panels);
        int32_t out[kRows][kLanes];
        for (long b = 0; b < nb; ++b) {
            const long cnt = std::min<long>(kLanes, P - b * kLanes);
            for (int o0 = 0; o0 < sh.o; o0 += kRows) {
                const int mr = std::min(kRows, sh.o - o0);
                panel_block(A.data() + o0 * np, np, panels + b * np * kLanes, np, mr, out);
                for (int m = 0; m < mr; ++m)
                    store<int32_t>(y, kind, ((long)n * sh.o + o0 + m) * P + b * kLanes, out[m], cnt, scale);
            }
        }
    }
    return 0;
}

// ---- conv_bwd_data: C = w^T g (pairs of output channels), then col2im into int64 -------------------------
int conv_bwd_data(const int16_t *g, const int8_t *w, void *gx, int kind, int e, const Shape &sh, int nt) {
    const long P = sh.p(), Pp = round_up(P, kLanes), CK = sh.ck(), np = (sh.o + 1) / 2, nb = Pp / kLanes;
    const long HW = (long)sh.h * sh.w;
    std::vector<int32_t> A(CK * np);  // A[r][q] = (w[2q][r], w[2q + 1][r])
    for (long r = 0; r < CK; ++r)
        for (long q = 0; q < np; ++q) A[r * np + q] = pack(w[2 * q * CK + r], 2 * q + 1 < sh.o ? w[(2 * q + 1) * CK + r] : 0);
    const double scale = std::ldexp(1.0, e);
    const int k = sh.k, s = sh.s, pad = sh.pad(), ho = sh.ho(), wo = sh.wo();
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int n = 0; n < sh.n; ++n) {
        int32_t *panels = scratch<1, int32_t>(nb * np * kLanes);
        int32_t *cols = scratch<2, int32_t>(CK * Pp);
        int64_t *acc = scratch<3, int64_t>(sh.c * HW);
        std::memset(acc, 0, sizeof(int64_t) * sh.c * HW);
        panelize(g + (long)n * sh.o * P, sh.o, P, P, panels);
        for (long q0 = 0; q0 < np; q0 += kMaxPairs) {  // sums over at most 510 channels stay in 32 bits
            const long nq = std::min<long>(kMaxPairs, np - q0);
            int32_t out[kRows][kLanes];
            for (long b = 0; b < nb; ++b)
                for (long r0 = 0; r0 < CK; r0 += kRows) {
                    const int mr = (int)std::min<long>(kRows, CK - r0);
                    panel_block(A.data() + r0 * np + q0, np, panels + (b * np + q0) * kLanes, nq, mr, out);
                    for (int m = 0; m < mr; ++m) std::memcpy(cols + (r0 + m) * Pp + b * kLanes, out[m], sizeof out[m]);
                }
            for (int c = 0; c < sh.c; ++c)  // col2im: every column back to its input pixel
                for (int i = 0; i < k; ++i)
                    for (int j = 0; j < k; ++j) {
                        const int32_t *col = cols + (((long)c * k + i) * k + j) * Pp;
                        int lo = 0, hi = wo;
                        while (lo < wo && lo * s + j - pad < 0) ++lo;
                        while (hi > lo && (hi - 1) * s + j - pad >= sh.w) --hi;
                        for (int oy = 0; oy < ho; ++oy) {
                            const int iy = oy * s + i - pad;
                            if (iy < 0 || iy >= sh.h) continue;
                            int64_t *d = acc + ((long)c * sh.h + iy) * sh.w + (j - pad);
                            const int32_t *v = col + (long)oy * wo;
                            if (s == 1)
                                for (int ox = lo; ox < hi; ++ox) d[ox] += v[ox];
                            else
                                for (int ox = lo; ox < hi; ++ox) d[2 * ox] += v[ox];
                        }
                    }
        }
        store<int64_t>(gx, kind, (long)n * sh.c * HW, acc, sh.c * HW, scale);
    }
    return 0;
}

// ---- conv_bwd_weight: G[o][r] = sum_{n,p} g[n][o][p] X_n[r][p], of the MSBs or of the full operands ------
// Samples go in groups (about 512 positions, so short rows of the later stages still make long dot
// products); msb: samples whose x_msb or g_msb is all zero add nothing and are left out. unsure
// (full only, may be null): [O][CK], compute only the tiles that hold a nonzero entry.
bool any_msb_x(const int8_t *x, long count) {
    for (long i = 0; i < count; ++i)
        if (x[i] >= 8 || x[i] <= -9) return true;
    return false;
}

bool any_msb_g(const int16_t *g, long count) {
    for (long i = 0; i < count; ++i)
        if (g[i] >= 32 || g[i] <= -33) return true;
    return false;
}

int conv_bwd_weight(const int8_t *x, const int16_t *g, int msb, const uint8_t *unsure, int64_t *G, const Shape &sh,
                    int nt) {
    const long P = sh.p(), CK = sh.ck(), O = sh.o, xs = (long)sh.c * sh.h * sh.w;
    std::memset(G, 0, sizeof(int64_t) * O * CK);
    // which tiles and which rows of X are needed
    const long to = (O + kTileM - 1) / kTileM, tr = (CK + kTileR - 1) / kTileR;
    std::vector<uint8_t> tile(to * tr, 1), use(CK, 1);
    if (unsure) {
        std::fill(tile.begin(), tile.end(), 0);
        std::fill(use.begin(), use.end(), 0);
        for (long o = 0; o < O; ++o)
            for (long r = 0; r < CK; ++r)
                if (unsure[o * CK + r]) tile[(o / kTileM) * tr + r / kTileR] = 1;
        for (long a = 0; a < to; ++a)
            for (long b = 0; b < tr; ++b)
                if (tile[a * tr + b])
                    for (long r = b * kTileR; r < std::min(CK, (b + 1) * kTileR); ++r) use[r] = 1;
        bool anything = false;
        for (uint8_t t : tile) anything |= t != 0;
        if (!anything) return 0;
    }
    std::vector<int> samples;
    for (int n = 0; n < sh.n; ++n)
        if (!msb || (any_msb_x(x + n * xs, xs) && any_msb_g(g + n * O * P, O * P))) samples.push_back(n);
    if (samples.empty()) return 0;
    const long per = std::max<long>(1, 512 / P), groups = ((long)samples.size() + per - 1) / per;
    nt = (int)std::min<long>(nt, groups);
    std::vector<int64_t> parts((size_t)nt * O * CK, 0);
#pragma omp parallel num_threads(nt)
    {
        int64_t *part = parts.data() + (size_t)thread_id() * O * CK;
#pragma omp for schedule(dynamic, 1)
        for (long gi = 0; gi < groups; ++gi) {
            const long first = gi * per, count = std::min<long>(per, (long)samples.size() - first);
            const long L = round_up(count * P, 16);
            int16_t *gs = scratch<4, int16_t>(O * L);
            int16_t *ts = scratch<5, int16_t>(CK * L);
            for (long j = 0; j < count; ++j) {
                const int n = samples[first + j];
                const int16_t *gn = g + (long)n * O * P;
                for (long o = 0; o < O; ++o) {
                    int16_t *d = gs + o * L + j * P;
                    if (msb)
                        for (long p = 0; p < P; ++p) d[p] = g_msb(gn[o * P + p]);
                    else
                        std::memcpy(d, gn + o * P, sizeof(int16_t) * P);
                }
                if (msb)
                    build_rows<1>(x + n * xs, sh, ts + j * P, L, use.data());
                else
                    build_rows<0>(x + n * xs, sh, ts + j * P, L, use.data());
            }
            for (long o = 0; o < O; ++o) std::fill(gs + o * L + count * P, gs + (o + 1) * L, 0);
            for (long r = 0; r < CK; ++r)
                if (use[r]) std::fill(ts + r * L + count * P, ts + (r + 1) * L, 0);
            for (long b = 0; b < tr; ++b)
                for (long a = 0; a < to; ++a) {
                    if (!tile[a * tr + b]) continue;
                    const long o0 = a * kTileM, r0 = b * kTileR;
                    int64_t *out = part + o0 * CK + r0;
                    if (o0 + kTileM <= O && r0 + kTileR <= CK) {
                        dot_tile<kTileM, kTileR>(gs + o0 * L, ts + r0 * L, L, L, out, CK);
                        continue;
                    }
                    for (long o = o0; o < std::min(O, o0 + kTileM); ++o)  // the edges, one weight at a time
                        for (long r = r0; r < std::min(CK, r0 + kTileR); ++r)
                            dot_tile<1, 1>(gs + o * L, ts + r * L, L, L, part + o * CK + r, CK);
                }
        }
    }
    for (int t = 0; t < nt; ++t)
        for (long i = 0; i < O * CK; ++i) G[i] += parts[(size_t)t * O * CK + i];
    return 0;
}

}  // namespace

extern "C" {

int e2cpu_contract_version() { return kContractVersion; }

// 0: portable C++, 1: AVX2 (vpmaddwd), 2: AVX2 with VNNI (vpdpwssd)
int e2cpu_simd() {
#if defined(E2CPU_AVX2) && (defined(__AVX512VNNI__) || defined(__AVXVNNI__))
    return 2;
#elif defined(E2CPU_AVX2)
    return 1;
#else
    return 0;
#endif
}

// kind of x: 1 float32, 2 float64; bits 8 -> int8 q, 16 -> int16 q. Returns the number of saturated values.
long e2cpu_quantize(const void *x, int kind, long n, int e, int bits, void *q, int nt) {
    nt = threads_for(nt);
    const int lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;
    if (bits == 8)
        return kind == 1 ? quantize((const float *)x, n, e, (int8_t *)q, lo, hi, nt)
                         : quantize((const double *)x, n, e, (int8_t *)q, lo, hi, nt);
    return kind == 1 ? quantize((const float *)x, n, e, (int16_t *)q, lo, hi, nt)
                     : quantize((const double *)x, n, e, (int16_t *)q, lo, hi, nt);
}

// y [N,O,H',W']: kind 0 int32 accumulators (e ignored), 1 float32, 2 float64 of acc * 2^e
int e2cpu_conv_fwd(const int8_t *x, const int8_t *w, void *y, int kind, int e, int n, int c, int h, int wd, int o,
                   int k, int s, int nt) {
    const Shape sh{n, c, h, wd, o, k, s};
    if (int rc = check(sh)) return rc;
    return conv_fwd(x, w, y, kind, e, sh, threads_for(nt));
}

// g_x [N,C,H,W]: kind 0 int64 accumulators, 1 float32, 2 float64 of acc * 2^e
int e2cpu_conv_bwd_data(const int16_t *g, const int8_t *w, void *gx, int kind, int e, int n, int c, int h, int wd,
                        int o, int k, int s, int nt) {
    const Shape sh{n, c, h, wd, o, k, s};
    if (int rc = check(sh)) return rc;
    return conv_bwd_data(g, w, gx, kind, e, sh, threads_for(nt));
}

// G [O,C,k,k] int64: msb = 1 the predictor G_msb (of x_msb, g_msb), 0 G_full (only the tiles holding an
// entry of unsure when it is not null)
int e2cpu_conv_bwd_weight(const int8_t *x, const int16_t *g, int msb, const uint8_t *unsure, int64_t *G, int n,
                          int c, int h, int wd, int o, int k, int s, int nt) {
    const Shape sh{n, c, h, wd, o, k, s};
    if (int rc = check(sh)) return rc;
    return conv_bwd_weight(x, g, msb, msb ? nullptr : unsure, G, sh, threads_for(nt));
}

}  // extern "C"
