// The forward kernel of the g++ build on AVX2: the sums of conv_fwd (hls/src/conv_fwd.h) on a CPU
// schedule of its own, with images in the vector lanes. Included by e2_csim.cpp only; synthesis, the
// ApTypes path and builds without AVX2 run conv_fwd_core.
//
// Why: the kernel's flat planes (plane.h) put positions in the lanes. Their junk positions (a padding
// column per row, a padding row per stacked image) are computed like the others: 3 % of the positions
// of a 32 x 32 layer, 11 % of a 16 x 16 one, 21 % of an 8 x 8 one; and a stride-2 layer reads four
// polyphase sub-planes, at half the speed of stride 1. With 8 images in the lanes, one vector holds
// one position, so a register block of two positions may sit anywhere: only real outputs are
// computed, and stride 2 just steps two columns. Every output keeps its whole sum (all channels and
// taps) in a register: no accumulator planes to load, store and zero per channel tile. Measured on the
// ResNet-20 layers at batch 32: 0.71 of the plane schedule's time (hls/README.md).
//
// Layout of a band of input rows, per group of 8 images: X[row][col][pair][lane] (int32), row and col
// padded, pair = input channels (2p, 2p + 1) as int16 halves (mac_avx2.h's pack), lane = image. Tap
// (i, j) of output (r, q) for pair p is X[r*s + i][q*s + j][p]. Integer sums, so the order does not
// change a bit (tests/test_csim_fabric.py holds the library to the reference).
#ifndef E2_FWD_LANES_H
#define E2_FWD_LANES_H

#include "mac_avx2.h"

#ifdef E2_AVX2_PASSES

#include <string.h>

namespace e2 {
namespace avx2 {

const int LANES = 8;                       // images per vector
const long FWD_BAND_BYTES = 512L * 1024;   // input rows of a band: well inside the 1 MB L2 of a core

// r[i][j] -> r[j][i] for an 8 x 8 block of int32.
inline void transpose8(__m256i (&r)[8]) {
    __m256i t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);      // rows i, i+1: cols 0 1 | 4 5
        t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);  // cols 2 3 | 6 7
    }
    for (int i = 0; i < 8; i += 4) {  // rows i..i+3, by column: (0|4), (1|5), (2|6), (3|7)
        u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
        u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
        u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
        u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int i = 0; i < 4; ++i) {
        r[i] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x31);
    }
}

struct LaneGeometry {
    int n, c, h, w, o, k, s, pad;
    int ho, wo, wp;  // output size, padded input width
    int np;          // channel pairs
    long cs, rs;     // int32 elements per padded column (np lanes vectors) and per padded row
};

inline LaneGeometry lane_geometry(int n, int c, int h, int w, int o, int k, int s) {
    const Geometry pg = geometry(h, w, k, s);  // padding and output size as the kernel's planes (plane.h)
    LaneGeometry g;
    g.n = n; g.c = c; g.h = h; g.w = w; g.o = o; g.k = k; g.s = s;
    g.pad = pg.p;
    g.ho = pg.ho;
    g.wo = pg.wo;
    g.wp = pg.wp;
    g.np = (c + 1) / 2;
    g.cs = (long)g.np * LANES;
    g.rs = g.wp * g.cs;
    return g;
}

// Padded rows [row0, row0 + rows) of images n0 .. n0 + 7 -> X (layout above); images past n and the
// channel past an odd c are zeros.
inline void pack_band(const int8_t *x, const LaneGeometry &g, int n0, int row0, int rows, int32_t *X) {
    const long plane = (long)g.h * g.w;
    const int w8 = g.w / 8 * 8;
    for (int rr = 0; rr < rows; ++rr) {
        int32_t *xr = X + rr * g.rs;
        const int y = row0 + rr - g.pad;
        if (y < 0 || y >= g.h) {
            memset(xr, 0, sizeof(int32_t) * g.rs);
            continue;
        }
        memset(xr, 0, sizeof(int32_t) * g.pad * g.cs);
        memset(xr + (g.pad + g.w) * g.cs, 0, sizeof(int32_t) * (g.wp - g.pad - g.w) * g.cs);
        for (int p = 0; p < g.np; ++p) {
            const int8_t *a[LANES], *b[LANES];  // rows of channels 2p and 2p + 1, null for zeros
            for (int l = 0; l < LANES; ++l) {
                const bool img = n0 + l < g.n;
                a[l] = img ? x + ((long)(n0 + l) * g.c + 2 * p) * plane + (long)y * g.w : nullptr;
                b[l] = img && 2 * p + 1 < g.c ? a[l] + plane : nullptr;
            }
            int32_t *dst = xr + g.pad * g.cs + p * LANES;
            for (int xc = 0; xc < w8; xc += 8) {
                __m256i v[8];  // v[l]: 8 columns of image l, then v[col]: 8 images of one column
                for (int l = 0; l < LANES; ++l) {
                    const __m128i va = a[l] ? _mm_loadl_epi64((const __m128i *)(a[l] + xc)) : _mm_setzero_si128();
                    const __m128i vb = b[l] ? _mm_loadl_epi64((const __m128i *)(b[l] + xc)) : _mm_setzero_si128();
                    v[l] = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(va, vb));  // int16 pairs (a, b)
                }
                transpose8(v);
                for (int j = 0; j < 8; ++j) _mm256_storeu_si256((__m256i *)(dst + (xc + j) * g.cs), v[j]);
            }
            for (int xc = w8; xc < g.w; ++xc)
                for (int l = 0; l < LANES; ++l)
                    dst[xc * g.cs + l] = pack(a[l] ? a[l][xc] : 0, b[l] ? b[l][xc] : 0);
        }
    }
}

// w [o][c][k][k] -> WT[ob][j][4]: the weight pairs of output block ob (outputs 4ob .. 4ob + 3, zero past
// o) for step j = tap * np + pair, in the order madd_block runs the steps.
inline void pack_weights(const int8_t *w, const LaneGeometry &g, int32_t *WT) {
    const int kk = g.k * g.k, nj = kk * g.np;
    for (int o0 = 0; o0 < g.o; o0 += 4)
        for (int j = 0; j < nj; ++j) {
            const int t = j / g.np, p = j % g.np;
            for (int r = 0; r < 4; ++r) {
                const int o = o0 + r;
                const int8_t *wo = w + (long)o * g.c * kk + t;
                const int lo = o < g.o ? wo[2 * p * kk] : 0;
                const int hi = o < g.o && 2 * p + 1 < g.c ? wo[(2 * p + 1) * kk] : 0;
                WT[((long)(o0 / 4) * nj + j) * 4 + r] = pack(lo, hi);
            }
        }
}

// One register block: outputs of 4 output channels at 2 positions (second elements apart in X), all
// steps j, into out[po * out_stride + h * LANES]. Not inlined, so that the loop around madd_block has
// the general-purpose registers to itself (inlined into fwd_band, g++ reloads two of its pointers from
// the stack on every step).
__attribute__((noinline)) inline void lanes_block(const int32_t *xb, const long *base, const int32_t (*wt)[4], int nj,
                                                  long second, int32_t *out, long out_stride) {
    __m256i a[4][2];
    E2_UNROLL for (int po = 0; po < 4; ++po) a[po][0] = a[po][1] = _mm256_setzero_si256();
    madd_block<4>(xb, base, wt, 0, nj, 0, a, second);
    E2_UNROLL for (int po = 0; po < 4; ++po) {
        _mm256_storeu_si256((__m256i *)(out + po * out_stride), a[po][0]);
        _mm256_storeu_si256((__m256i *)(out + po * out_stride + LANES), a[po][1]);
    }
}

// Outputs of rows [r0, r1) of images n0 .. n0 + 7, from the band X holding padded rows r0*s onwards.
inline void fwd_band(const int32_t *X, const int32_t *WT, const long *base, const LaneGeometry &g, int n0, int r0,
                     int r1, int32_t *stage, int32_t *y) {
    const int nj = g.k * g.k * g.np, wo8 = g.wo / 8 * 8;
    const int nl = g.n - n0 < LANES ? g.n - n0 : LANES;  // images of the group (the last may be short)
    const long out_plane = (long)g.ho * g.wo;
    for (int o0 = 0; o0 < g.o; o0 += 4) {
        const int32_t(*wt)[4] = reinterpret_cast<const int32_t(*)[4]>(WT + (long)(o0 / 4) * nj * 4);
        for (int r = r0; r < r1; ++r) {
            const int32_t *xr = X + (long)(r - r0) * g.s * g.rs;
            // stage[po][q][lane], po rows of wo + 1 positions (an odd wo's last block writes one more)
            for (int q = 0; q + 1 < g.wo; q += 2)
                lanes_block(xr + q * g.s * g.cs, base, wt, nj, g.s * g.cs, stage + q * LANES, (g.wo + 1L) * LANES);
            if (g.wo % 2)  // an odd last column: the block's second position is the same one again
                lanes_block(xr + (g.wo - 1) * g.s * g.cs, base, wt, nj, 0, stage + (g.wo - 1) * LANES, (g.wo + 1L) * LANES);
            // stage -> y: 8 x 8 transposes (columns x images -> images x columns)
            for (int po = 0; po < 4 && o0 + po < g.o; ++po) {
                const int32_t *sp = stage + po * (g.wo + 1L) * LANES;
                int32_t *yp = y + ((long)n0 * g.o + o0 + po) * out_plane + (long)r * g.wo;
                for (int q = 0; q < wo8; q += 8) {
                    __m256i v[8];
                    for (int j = 0; j < 8; ++j) v[j] = _mm256_loadu_si256((const __m256i *)(sp + (q + j) * LANES));
                    transpose8(v);
                    for (int l = 0; l < nl; ++l) _mm256_storeu_si256((__m256i *)(yp + l * g.o * out_plane + q), v[l]);
                }
                for (int q = wo8; q < g.wo; ++q)
                    for (int l = 0; l < nl; ++l) yp[l * g.o * out_plane + q] = sp[q * LANES + l];
            }
        }
    }
}

// The whole forward kernel: y [n][o][ho][wo] = conv(x [n][c][h][w], w [o][c][k][k]), zero padding
// (k - 1) / 2, as conv_fwd_core computes it.
inline int conv_fwd_lanes(const int8_t *x, const int8_t *w, int32_t *y, int n, int c, int h, int wd, int o, int k,
                          int s) {
    if (!conv_args_ok(k, s)) return E2_BAD_ARG;
    const LaneGeometry g = lane_geometry(n, c, h, wd, o, k, s);
    const int kk = k * k, nj = kk * g.np, nob = (o + 3) / 4;
    // output rows per band: as many as keep the band's input rows within FWD_BAND_BYTES
    long fit = (FWD_BAND_BYTES / (long)sizeof(int32_t) / g.rs - k) / s + 1;
    const int rb = fit < 1 ? 1 : (fit > g.ho ? g.ho : (int)fit);
    const int band_rows = (rb - 1) * s + k;
    int32_t *X = scratch<2>(band_rows * g.rs);
    int32_t *WT = scratch<3>((long)nob * nj * 4);
    int32_t *stage = scratch<4>(4L * (g.wo + 1) * LANES);
    long *base = scratch<5, long>(nj);
    for (int j = 0; j < nj; ++j) {
        const int t = j / g.np, p = j % g.np;
        base[j] = (t / k) * g.rs + (t % k) * g.cs + (long)p * LANES;
    }
    pack_weights(w, g, WT);
    for (int n0 = 0; n0 < n; n0 += LANES)
        for (int r0 = 0; r0 < g.ho; r0 += rb) {
            const int r1 = r0 + rb < g.ho ? r0 + rb : g.ho;
            pack_band(x, g, n0, r0 * s, (r1 - r0 - 1) * s + k, X);
            fwd_band(X, WT, base, g, n0, r0, r1, stage, y);
        }
    return E2_OK;
}

}  // namespace avx2
}  // namespace e2

#endif  // E2_AVX2_PASSES
#endif
