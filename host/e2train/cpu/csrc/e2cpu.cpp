// The integer CPU training engine: the three kernels of contract v2 (docs/contracts.md) on int8 / int16
// operands, for training on a CPU rather than for checking the HLS sources (that is the csim backend).
//
// Every convolution is read directly from zero-padded planes (no im2col), cut into parity planes at
// stride 2 so that each tap (i, j) is one plane read at a fixed offset from the output position q:
//
//   forward          y[o][q]   = sum_{c, t} w[o][c][t] * x[c][q + off(t)]           channel pairs in lanes
//   backward data    g_x[c][q] = sum_{o, t} w[o][c][t] * g[o][q + off'(t)]          per parity class of g_x
//   weight gradient  G[o][c][t] = sum_{n, q} g[n][o][q] * x_n[c][q + off(t)]        (x_msb, g_msb for G_msb)
//
// computed with vpmaddwd (two int16 products summed into an int32 lane; vpdpwssd where AVX-512 VNNI or
// AVX-VNNI is there), or with plain C++ loops in the portable build (-DE2CPU_PORTABLE, or a compiler
// without AVX2). Integer sums: the order never changes a bit. Where a sum could leave 32 bits (backward
// data over more than 255 (channel pair, tap) terms; the full weight gradient) it is cut into pieces that cannot,
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
const int kLanes = 16;           // positions per register block (two 8-lane int32 vectors)
const long kChunk = 255 * 16;    // int16 products per int32 lane-pair run that cannot overflow: 510 * 2^22 < 2^31
const int kMaxPairs = 255;       // (pair, tap) terms per backward-data run (same bound)

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

// ---- frames: planes zero-padded and cut into stride parity classes (no im2col) ------------------------
// A k x k, stride s convolution read as shifted planes: the padded image (hp x wp) is cut into s * s
// parity planes of hq x wq (plane (a, b) holds padded pixel (s * y + a, s * x + b)), so that tap (i, j)
// reads plane (i % s, j % s) at offset (i / s) * wq + j / s from output position q = oy * wq + ox. The
// domain of q is ho rows of wq: the columns ox >= wo are computed and dropped (or hold zero gradients).
struct Frame {
    int s, pad, hq, wq, ho, wo;
    long plane() const { return (long)hq * wq; }
    long offset(int i, int j, long pstride) const { return ((i % s) * s + j % s) * pstride + (i / s) * wq + j / s; }
};

Frame frame_of(const Shape &sh) {
    const int hp = sh.h + 2 * sh.pad(), wp = sh.w + 2 * sh.pad();
    return Frame{sh.s, sh.pad(), (hp + sh.s - 1) / sh.s, (wp + sh.s - 1) / sh.s, sh.ho(), sh.wo()};
}

const long kSlack = 64;  // zeros after a frame buffer: what the last register block may read past it

// Writes the h x w values f(y * w + x) into their places in the parity planes at dst (plane p at
// dst + p * pstride); the frame's padding is left as it is (zero), and so are the planes no tap of a
// k x k kernel reads (parity >= k: the odd planes of a 1 x 1 kernel at stride 2).
template <class T, class F>
void to_frame(int h, int w, const Frame &fr, long pstride, T *dst, F f, int k = 3) {
    const int s = fr.s;
    for (int y = 0; y < h; ++y) {
        const int py = y + fr.pad;
        if (py % s >= k) continue;
        T *row = dst + (long)(py % s) * s * pstride + (long)(py / s) * fr.wq;
        const long at = (long)y * w;
        if (s == 1) {
            for (int x = 0; x < w; ++x) row[x + fr.pad] = f(at + x);
            continue;
        }
        for (int b = 0; b < std::min(s, k); ++b) {  // the columns of parity b, one contiguous run
            const int x0 = ((b - fr.pad) % s + s) % s;
            T *d = row + b * pstride + (x0 + fr.pad) / s;
            const int cnt = x0 < w ? (w - x0 + s - 1) / s : 0;
            for (int t = 0; t < cnt; ++t) d[t] = f(at + x0 + (long)s * t);
        }
    }
}

#ifdef E2CPU_AVX2
inline __m256i load16(const int8_t *p) { return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p)); }
inline __m256i load16(const int16_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
#endif

// The planes of a channel pair (a, b; b null: zeros) into one plane of pairs, as to_frame writes them;
// at stride 1 each row is interleaved 16 values at a time (the generic fill stays scalar there).
template <class S>
void pair_frame(const S *a, const S *b, int h, int w, const Frame &fr, long pstride, int32_t *dst, int k) {
    if (fr.s != 1) {  // the parity planes: contiguous runs per parity
        if (b)
            to_frame(h, w, fr, pstride, dst, [=](long i) { return pack(a[i], b[i]); }, k);
        else
            to_frame(h, w, fr, pstride, dst, [=](long i) { return pack(a[i], 0); }, k);
        return;
    }
    int x0 = 0;
#ifdef E2CPU_AVX2
    if (fr.s == 1) {
        for (int y = 0; y < h; ++y) {
            int32_t *row = dst + (long)(y + fr.pad) * fr.wq + fr.pad;
            const long at = (long)y * w;
            for (int x = 0; x + 16 <= w; x += 16) {
                const __m256i va = load16(a + at + x), vb = b ? load16(b + at + x) : _mm256_setzero_si256();
                const __m256i lo = _mm256_unpacklo_epi16(va, vb), hi = _mm256_unpackhi_epi16(va, vb);
                _mm256_storeu_si256((__m256i *)(row + x), _mm256_permute2x128_si256(lo, hi, 0x20));
                _mm256_storeu_si256((__m256i *)(row + x + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
            }
        }
        x0 = w / 16 * 16;
        if (x0 == w) return;
    }
#endif
    (void)pstride;
    (void)k;
    for (int y = 0; y < h; ++y) {  // the last w % 16 columns (all of them without AVX2)
        int32_t *row = dst + (long)(y + fr.pad) * fr.wq + fr.pad;
        for (int x = x0; x < w; ++x) row[x] = pack(a[(long)y * w + x], b ? b[(long)y * w + x] : 0);
    }
}

// ---- the shifted-plane product: out[m][l] = sum_j madd(w[j][m], pairs[base[j] + q + l]), 16 positions ------
// pairs: planes of channel pairs (two int16 in an int32 lane), base[j]: where term j (a pair at a tap)
// starts, w[j * ldw + m]: the term's weight pair for output row m. Each loaded input vector feeds MR rows.
#ifdef E2CPU_AVX2
// VNNI written out: from the intrinsic g++ 12 copies every accumulator into a fresh register and back
// (and reloads operands to make room); the tied operand keeps each in place.
inline __m256i madd(__m256i acc, __m256i a, __m256i b) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    asm("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
    return acc;
#elif defined(__AVXVNNI__)
    asm("{vex} vpdpwssd %2, %1, %0" : "+x"(acc) : "x"(a), "x"(b));
    return acc;
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}

template <int MR>
void shift_rows(const int32_t *pairs, const long *base, const int32_t *w, long ldw, long nj, long q,
                int32_t (*out)[kLanes]) {
    __m256i c0[MR], c1[MR];
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) c0[m] = c1[m] = _mm256_setzero_si256();
    for (long j = 0; j < nj; ++j) {
        const int32_t *x = pairs + base[j] + q;
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)x);
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(x + 8));
        const int32_t *wj = w + j * ldw;
#pragma GCC unroll 8
        for (int m = 0; m < MR; ++m) {
            const __m256i a = _mm256_set1_epi32(wj[m]);
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
#if defined(__AVX512VL__)
const int kRows = 8;  // 16 accumulators, two inputs, a broadcast: of the 32 ymm registers AVX-512VL gives
#else
const int kRows = 6;  // 12 accumulators, two inputs, a broadcast, a product: the 16 ymm registers
#endif
#else
template <int MR>
void shift_rows(const int32_t *pairs, const long *base, const int32_t *w, long ldw, long nj, long q,
                int32_t (*out)[kLanes]) {
    for (int m = 0; m < MR; ++m) {
        uint32_t acc[kLanes] = {0};  // wraps like vpaddd (unsigned: no undefined overflow)
        for (long j = 0; j < nj; ++j) {
            const int32_t a = w[j * ldw + m], *x = pairs + base[j] + q;
            const int32_t alo = (int16_t)(a & 0xFFFF), ahi = (int16_t)((uint32_t)a >> 16);
            for (int l = 0; l < kLanes; ++l)
                acc[l] += (uint32_t)(alo * (int16_t)(x[l] & 0xFFFF) + ahi * (int16_t)((uint32_t)x[l] >> 16));
        }
        std::memcpy(out[m], acc, sizeof acc);
    }
}
const int kRows = 4;
#endif

// rows [m0, m0 + mr) of the product, mr <= kRows
void shift_block(const int32_t *pairs, const long *base, const int32_t *w, long ldw, long nj, long q, int mr,
                 int32_t (*out)[kLanes]) {
    switch (mr) {
        case 1: return shift_rows<1>(pairs, base, w, ldw, nj, q, out);
        case 2: return shift_rows<2>(pairs, base, w, ldw, nj, q, out);
        case 3: return shift_rows<3>(pairs, base, w, ldw, nj, q, out);
        case 4: return shift_rows<4>(pairs, base, w, ldw, nj, q, out);
#ifdef E2CPU_AVX2
        case 5: return shift_rows<5>(pairs, base, w, ldw, nj, q, out);
        case 6: return shift_rows<6>(pairs, base, w, ldw, nj, q, out);
#if defined(__AVX512VL__)
        case 7: return shift_rows<7>(pairs, base, w, ldw, nj, q, out);
        case 8: return shift_rows<8>(pairs, base, w, ldw, nj, q, out);
#endif
#endif
    }
}

// ---- the weight-gradient dot products: out[m][r] += sum_l g[m][l] * t[r][l], l < L (a multiple of 16) -----
// g rows at g + m * ld, t rows anywhere (taps of the shifted planes); chunk: positions per int32 run
// that cannot overflow.
#ifdef E2CPU_AVX2
inline int64_t hsum64(__m256i v) {
    const __m256i w = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)),
                                       _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1)));
    const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    return _mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1);
}

template <int MR, int NR>
void dot_tile(const int16_t *g, long ld, const int16_t *const *t, long L, long chunk, int64_t *out, long ldo) {
    for (long l0 = 0; l0 < L; l0 += chunk) {
        const long l1 = std::min(L, l0 + chunk);
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
                const __m256i tv = _mm256_loadu_si256((const __m256i *)(t[r] + l));
#pragma GCC unroll 8
                for (int m = 0; m < MR; ++m) acc[m][r] = madd(acc[m][r], gv[m], tv);
            }
        }
        // unrolled, so that acc[][] is indexed by constants only and stays in registers through the loop
#pragma GCC unroll 8
        for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
            for (int r = 0; r < NR; ++r) out[m * ldo + r] += hsum64(acc[m][r]);
    }
}
#if defined(__AVX512VL__)
const int kTileM = 4, kTileR = 6;  // 24 accumulators, 4 gradient rows, one x row: of the 32 registers
#elif defined(__AVX512VNNI__) || defined(__AVXVNNI__)
const int kTileM = 3, kTileR = 4;  // 12 accumulators, 3 gradient rows, one x row: 16 registers
#else
const int kTileM = 2, kTileR = 6;  // 12 accumulators, 2 gradient rows, one x row, one product
#endif
#else
template <int MR, int NR>
void dot_tile(const int16_t *g, long ld, const int16_t *const *t, long L, long chunk, int64_t *out, long ldo) {
    (void)chunk;
    for (int m = 0; m < MR; ++m)
        for (int r = 0; r < NR; ++r) {
            int64_t s = 0;
            for (long l0 = 0; l0 < L; l0 += 256) {  // 256 products of at most 2^22 fit an int32
                int32_t part = 0;
                const long l1 = std::min(L, l0 + 256);
                for (long l = l0; l < l1; ++l) part += (int32_t)g[m * ld + l] * t[r][l];
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

// out[at + i * step] for i < count: v[i] (v null: 0) as int64 (kind 0), or v[i] * 2^e into float32 (1) or
// float64 (2): the backward-data results, written straight from the pass's rows.
template <class Out, class Acc>
void put_as(Out *d, long step, const Acc *v, long count, double scale, bool exact) {
    if (!v) {
        for (long i = 0; i < count; ++i) d[i * step] = 0;
    } else if (step == 1) {  // contiguous: vectorised
        for (long i = 0; i < count; ++i) d[i] = exact ? (Out)v[i] : (Out)((double)v[i] * scale);
    } else {
        for (long i = 0; i < count; ++i) d[i * step] = exact ? (Out)v[i] : (Out)((double)v[i] * scale);
    }
}

template <class Acc>
void put(void *out, int kind, long at, long step, const Acc *v, long count, double scale) {
    switch (kind) {
        case 0: return put_as((int64_t *)out + at, step, v, count, scale, true);
        case 1: return put_as((float *)out + at, step, v, count, scale, false);
        default: return put_as((double *)out + at, step, v, count, scale, false);
    }
}

int check(const Shape &sh) {
    if ((sh.k != 1 && sh.k != 3) || (sh.s != 1 && sh.s != 2)) return 2;
    if (sh.n < 0 || sh.c < 1 || sh.o < 1 || sh.h < 1 || sh.w < 1 || sh.ho() < 1 || sh.wo() < 1) return 1;
    return 0;
}

// ---- conv_fwd: y[o][q] = sum_{c pair, tap} w * x, read from padded pair planes at tap offsets --------------
int conv_fwd(const int8_t *x, const int8_t *w, void *y, int kind, int e, const Shape &sh, int nt) {
    const Frame fr = frame_of(sh);
    const int k = sh.k, T = k * k, O = sh.o;
    const long CK = sh.ck(), HW = (long)sh.h * sh.w, np = (sh.c + 1) / 2, F = fr.plane() * sh.s * sh.s;
    const long nj = np * T, nq = round_up((long)fr.ho * fr.wq, kLanes), P = sh.p();
    std::vector<int32_t> wq(nj * O);  // wq[j][o], term j = (pair p, tap t): (w[o][2p][t], w[o][2p + 1][t])
    std::vector<long> base(nj);
    for (long p = 0; p < np; ++p)
        for (int t = 0; t < T; ++t) {
            base[p * T + t] = p * F + fr.offset(t / k, t % k, fr.plane());
            for (int o = 0; o < O; ++o)
                wq[(p * T + t) * O + o] = pack(w[o * CK + 2 * p * T + t], 2 * p + 1 < sh.c ? w[o * CK + (2 * p + 1) * T + t] : 0);
        }
    const double scale = std::ldexp(1.0, e);
#pragma omp parallel num_threads(nt)
    {
        int32_t *pairs = scratch<0, int32_t>(np * F + kSlack);
        int32_t *res = scratch<1, int32_t>(O * nq);
        std::memset(pairs, 0, sizeof(int32_t) * (np * F + kSlack));  // the padding: never written after this
#pragma omp for schedule(dynamic, 1)
        for (int n = 0; n < sh.n; ++n) {
            const int8_t *xn = x + (long)n * sh.c * HW;
            for (long p = 0; p < np; ++p) {
                const int8_t *a = xn + 2 * p * HW, *b = 2 * p + 1 < sh.c ? a + HW : nullptr;
                pair_frame(a, b, sh.h, sh.w, fr, fr.plane(), pairs + p * F, k);
            }
            int32_t out[kRows][kLanes];
            for (int o0 = 0; o0 < O; o0 += kRows) {
                const int mr = std::min(kRows, O - o0);
                for (long q = 0; q < nq; q += kLanes) {
                    shift_block(pairs, base.data(), wq.data() + o0, O, nj, q, mr, out);
                    for (int m = 0; m < mr; ++m) std::memcpy(res + (o0 + m) * nq + q, out[m], sizeof out[m]);
                }
            }
            for (int o = 0; o < O; ++o)  // the domain's rows, less their dropped columns
                for (int oy = 0; oy < fr.ho; ++oy)
                    store<int32_t>(y, kind, ((long)n * O + o) * P + (long)oy * fr.wo, res + o * nq + (long)oy * fr.wq, fr.wo, scale);
        }
    }
    return 0;
}

// ---- conv_bwd_data: the transposed convolution, one pass per stride parity class of g_x -------------------
// g_x[c][s u + a][s v + b] = sum_{o, taps of the class} w[o][c][i][j] g[o][u + di][v + dj]: g's planes of
// output-channel pairs, padded so that every offset is >= 0, read at the class's offsets. Terms go in
// runs of at most 255 (510 products of at most 2^22: the int32 sum cannot overflow), each widened into int64.
struct BwdClass {
    std::vector<long> base;     // per term (pair, tap)
    std::vector<int32_t> wq;    // wq[term][c]
    int a = 0, b = 0, rows = 0, cols = 0;  // the class: g_x[s u + a][s v + b], u < rows, v < cols
    long nq = 0;
};

int conv_bwd_data(const int16_t *g, const int8_t *w, void *gx, int kind, int e, const Shape &sh, int nt) {
    const int k = sh.k, s = sh.s, pad = sh.pad(), T = k * k, C = sh.c, O = sh.o;
    const int top = s == 1 ? k - 1 - pad : 0;  // g's zero border above and left (stride 2: offsets are >= 0)
    const Frame gf{1, top, sh.ho() + 2 * top + s - 1, sh.wo() + 2 * top + s - 1, 0, 0};
    const long F = gf.plane(), np = (O + 1) / 2, P = sh.p(), HW = (long)sh.h * sh.w, CK = sh.ck();
    std::vector<BwdClass> cls;
    for (int a = 0; a < s; ++a)
        for (int b = 0; b < s; ++b) {
            BwdClass cl;
            const int rows = (sh.h - a + s - 1) / s, cols = (sh.w - b + s - 1) / s;
            cl.nq = round_up((long)rows * gf.wq, kLanes);
            for (long p = 0; p < np; ++p)
                for (int i = 0; i < k; ++i)
                    for (int j = 0; j < k; ++j) {
                        const int di = a + pad - i, dj = b + pad - j;
                        if ((di % s + s) % s || (dj % s + s) % s) continue;  // a tap of another class
                        cl.base.push_back(p * F + (long)(di / s + top) * gf.wq + dj / s + top);
                        for (int c = 0; c < C; ++c)
                            cl.wq.push_back(pack(w[2 * p * CK + c * T + i * k + j], 2 * p + 1 < O ? w[(2 * p + 1) * CK + c * T + i * k + j] : 0));
                    }
            cl.a = a, cl.b = b, cl.rows = rows, cl.cols = cols;
            if (!cl.base.empty()) cls.push_back(std::move(cl));
        }
    long nqmax = 0, njmax = 0;
    for (const BwdClass &cl : cls) nqmax = std::max(nqmax, cl.nq), njmax = std::max<long>(njmax, cl.base.size());
    const bool wide = njmax > kMaxPairs;  // more than one 32-bit run per output: sum the runs in int64
    const double scale = std::ldexp(1.0, e);
#pragma omp parallel num_threads(nt)
    {
        int32_t *pairs = scratch<0, int32_t>(np * F + kSlack);
        int32_t *res = scratch<1, int32_t>(C * nqmax);
        int64_t *dom = wide ? scratch<3, int64_t>(C * nqmax) : nullptr;
        std::memset(pairs, 0, sizeof(int32_t) * (np * F + kSlack));
#pragma omp for schedule(dynamic, 1)
        for (int n = 0; n < sh.n; ++n) {
            const int16_t *gn = g + (long)n * O * P;
            for (long p = 0; p < np; ++p) {
                const int16_t *a = gn + 2 * p * P, *b = 2 * p + 1 < O ? a + P : nullptr;
                pair_frame(a, b, sh.ho(), sh.wo(), gf, F, pairs + p * F, 3);
            }
            const long at = (long)n * C * HW;
            if (cls.size() < (size_t)s * s) put<int32_t>(gx, kind, at, 1, nullptr, C * HW, scale);  // pixels no tap reaches
            int32_t out[kRows][kLanes];
            for (const BwdClass &cl : cls) {
                const long nj = (long)cl.base.size();
                if (wide) std::memset(dom, 0, sizeof(int64_t) * C * cl.nq);
                for (int c0 = 0; c0 < C; c0 += kRows) {
                    const int mr = std::min(kRows, C - c0);
                    for (long q = 0; q < cl.nq; q += kLanes)
                        for (long j0 = 0; j0 < nj; j0 += kMaxPairs) {
                            const long cnt = std::min<long>(kMaxPairs, nj - j0);
                            shift_block(pairs, cl.base.data() + j0, cl.wq.data() + j0 * C + c0, C, cnt, q, mr, out);
                            for (int m = 0; m < mr; ++m) {
                                if (!wide) {
                                    std::memcpy(res + (c0 + m) * cl.nq + q, out[m], sizeof out[m]);
                                    continue;
                                }
                                int64_t *d = dom + (c0 + m) * cl.nq + q;
                                for (int l = 0; l < kLanes; ++l) d[l] += out[m][l];
                            }
                        }
                }
                for (int c = 0; c < C; ++c)  // the class's rows of g_x: every s-th pixel of every s-th row
                    for (int u = 0; u < cl.rows; ++u) {
                        const long from = c * cl.nq + (long)u * gf.wq, to = at + c * HW + (long)(s * u + cl.a) * sh.w + cl.b;
                        if (wide)
                            put<int64_t>(gx, kind, to, s, dom + from, cl.cols, scale);
                        else
                            put<int32_t>(gx, kind, to, s, res + from, cl.cols, scale);
                    }
            }
        }
    }
    return 0;
}

// ---- conv_bwd_weight: G[o][c][t] = sum_{n, q} g[n][o][q] X_n[c][q + offset(t)], of the MSBs or the full operands --
// Samples go in groups, their planes one after another (x: per channel and parity plane; g: on the
// output domain, zero in the dropped columns), so that one long dot product per weight runs over the
// group; a tap read past a sample's plane meets only zero gradients. msb: samples whose x_msb or g_msb is
// all zero add nothing and are left out. unsure (full only, may be null): [O][CK], compute only the tiles
// holding a nonzero entry.
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
    const Frame fr = frame_of(sh);
    const int k = sh.k, T = k * k, s = sh.s;
    const long P = sh.p(), CK = sh.ck(), O = sh.o, xs = (long)sh.c * sh.h * sh.w, pl = fr.plane();
    std::memset(G, 0, sizeof(int64_t) * O * CK);
    const long to = (O + kTileM - 1) / kTileM, tr = (CK + kTileR - 1) / kTileR;
    std::vector<uint8_t> tile(to * tr, 1);
    if (unsure) {
        std::fill(tile.begin(), tile.end(), 0);
        bool anything = false;
        for (long o = 0; o < O; ++o)
            for (long r = 0; r < CK; ++r)
                if (unsure[o * CK + r]) tile[(o / kTileM) * tr + r / kTileR] = 1, anything = true;
        if (!anything) return 0;
    }
    std::vector<int> samples;
    for (int n = 0; n < sh.n; ++n)
        if (!msb || (any_msb_x(x + n * xs, xs) && any_msb_g(g + n * O * P, O * P))) samples.push_back(n);
    if (samples.empty()) return 0;
    // a group's gradient and x planes in about 256 KiB: long runs, operands that stay in L2
    const long per = std::max<long>(1, (128L << 10) / ((O + (long)sh.c * s * s) * pl)), groups = ((long)samples.size() + per - 1) / per;
    const long ps = per * pl, ld = round_up(ps, kLanes), cs = s * s * ps + fr.wq + kSlack;
    // |x_msb g_msb| <= 2^12: 2^17 steps of two products fit an int32 lane; full operands 2^22: 255 steps
    const long chunk = msb ? (1L << 17) * kLanes : kChunk;
    const Frame gfr{1, 0, fr.ho, fr.wq, 0, 0};
    nt = (int)std::min<long>(nt, groups);
    std::vector<int64_t> parts((size_t)nt * O * CK, 0);
#pragma omp parallel num_threads(nt)
    {
        int64_t *part = parts.data() + (size_t)thread_id() * O * CK;
        int16_t *gs = scratch<4, int16_t>(O * ld);
        int16_t *xb = scratch<5, int16_t>(sh.c * cs);
        std::memset(gs, 0, sizeof(int16_t) * O * ld);
        std::memset(xb, 0, sizeof(int16_t) * sh.c * cs);
        std::vector<const int16_t *> rows(CK);
        for (long r = 0; r < CK; ++r) rows[r] = xb + (r / T) * cs + fr.offset((int)(r % T) / k, (int)(r % T) % k, ps);
#pragma omp for schedule(dynamic, 1)
        for (long gi = 0; gi < groups; ++gi) {
            const long first = gi * per, count = std::min<long>(per, (long)samples.size() - first);
            for (long j = 0; j < count; ++j) {
                const int n = samples[first + j];
                const int16_t *gn = g + (long)n * O * P;
                const int8_t *xn = x + n * xs;
                for (long o = 0; o < O; ++o) {
                    const int16_t *src = gn + o * P;
                    if (msb)
                        to_frame(fr.ho, fr.wo, gfr, pl, gs + o * ld + j * pl, [=](long i) { return g_msb(src[i]); });
                    else
                        to_frame(fr.ho, fr.wo, gfr, pl, gs + o * ld + j * pl, [=](long i) { return src[i]; });
                }
                for (int c = 0; c < sh.c; ++c) {
                    const int8_t *src = xn + (long)c * sh.h * sh.w;
                    if (msb)
                        to_frame(sh.h, sh.w, fr, ps, xb + c * cs + j * pl, [=](long i) { return x_msb(src[i]); }, k);
                    else
                        to_frame(sh.h, sh.w, fr, ps, xb + c * cs + j * pl, [=](long i) { return (int16_t)src[i]; }, k);
                }
            }
            for (long o = 0; o < O; ++o) std::fill(gs + o * ld + count * pl, gs + (o + 1) * ld, 0);  // a short group
            const long L = round_up(count * pl, kLanes);
            for (long b = 0; b < tr; ++b)
                for (long a = 0; a < to; ++a) {
                    if (!tile[a * tr + b]) continue;
                    const long o0 = a * kTileM, r0 = b * kTileR;
                    if (o0 + kTileM <= O && r0 + kTileR <= CK) {
                        dot_tile<kTileM, kTileR>(gs + o0 * ld, ld, rows.data() + r0, L, chunk, part + o0 * CK + r0, CK);
                        continue;
                    }
                    for (long o = o0; o < std::min(O, o0 + kTileM); ++o)  // the edges, one weight at a time
                        for (long r = r0; r < std::min(CK, r0 + kTileR); ++r)
                            dot_tile<1, 1>(gs + o * ld, ld, rows.data() + r, L, chunk, part + o * CK + r, CK);
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
