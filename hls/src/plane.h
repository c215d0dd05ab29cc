// Moving planes between DDR (m_axi) and local buffers, shared by the three kernels.
//
// Every local plane is stored flat, row-major, with row stride wp = W + 2p (the padded width), so that
// a convolution tap (i, j) of output position q = h*wp + w reads input element S*q + i*wp + j: one
// pipelined loop over q with constant tap offsets, and no border tests inside it. Positions with
// w >= W' are junk: computed and never stored (forward, backward-data), or multiplied by a zero
// gradient (weight gradient). The flat reads go at most two rows past the padded plane, hence the
// two rows of slack in every buffer (MAX_PLANE).
#ifndef E2_PLANE_H
#define E2_PLANE_H

#include "e2_types.h"

namespace e2 {

struct Geometry {
    int h, w;      // input size
    int k, s, p;   // kernel, stride, padding
    int ho, wo;    // output size
    int hp, wp;    // padded input size; wp is also the row stride of every local plane
    int nq;        // flat output positions per plane: ho rows of wp
    int rows;      // rows held by an input buffer: hp + 2 of slack
};

inline Geometry geometry(int h, int w, int k, int s) {
    Geometry g;
    g.h = h; g.w = w; g.k = k; g.s = s; g.p = (k - 1) / 2;
    g.ho = (h + 2 * g.p - k) / s + 1;
    g.wo = (w + 2 * g.p - k) / s + 1;
    g.hp = h + 2 * g.p;
    g.wp = w + 2 * g.p;
    g.nq = g.ho * g.wp;
    g.rows = g.hp + 2;
    return g;
}

inline int plane_size(const Geometry &g) { return g.rows * g.wp; }

// src [h][w] -> dst padded [rows][wp] with a zero border, each value arithmetic-shifted right by SHIFT
// (0 for the full value, 4 for x_msb, 6 for g_msb); valid = false loads zeros (a channel past the end).
// COPIES identical copies, `stride` elements apart, are written in parallel: the hardware keeps one
// copy per kernel tap so that the k*k reads of one output position hit k*k different BRAMs.
template <int SHIFT, int COPIES, class Src, class Dst>
void load_padded(const Src *src, bool valid, Dst *dst, long stride, int h, int w, int pad, int wp, int rows) {
#pragma HLS INLINE off
    // Three loops per row (left border, interior burst, right border) rather than one loop with a
    // test per element: the interior is a plain burst read in hardware and a vector copy on the CPU.
    for (int r = 0; r < rows; ++r) {
        const int y = r - pad;
        const bool row_in = valid && y >= 0 && y < h;
        Dst *drow = dst + r * wp;
        const int left = row_in ? pad : wp;
        for (int c = 0; c < left; ++c)
            for (int t = 0; t < COPIES; ++t) {
#pragma HLS UNROLL
                drow[t * stride + c] = 0;
            }
        if (!row_in) continue;
        const Src *srow = src + y * w;
        for (int c = 0; c < w; ++c) {
#pragma HLS PIPELINE II=1
            const Dst v = srow[c] >> SHIFT;
            for (int t = 0; t < COPIES; ++t) {
#pragma HLS UNROLL
                drow[t * stride + pad + c] = v;
            }
        }
        for (int c = pad + w; c < wp; ++c)
            for (int t = 0; t < COPIES; ++t) {
#pragma HLS UNROLL
                drow[t * stride + c] = 0;
            }
    }
}

// Output gradient g [ho][wo] -> dst [ho][wp] (row stride wp, zeros in the junk columns w >= wo).
template <int SHIFT, class Src, class Dst>
void load_grad(const Src *src, bool valid, Dst *dst, int ho, int wo, int wp) {
#pragma HLS INLINE off
    for (int r = 0; r < ho; ++r) {
        Dst *drow = dst + r * wp;
        if (valid) {
            const Src *srow = src + r * wo;
            for (int c = 0; c < wo; ++c) {
#pragma HLS PIPELINE II=1
                drow[c] = srow[c] >> SHIFT;
            }
        } else {
            for (int c = 0; c < wo; ++c) drow[c] = 0;
        }
        for (int c = wo; c < wp; ++c) drow[c] = 0;
    }
}

// Output gradient g [ho][wo] -> the zero-upsampled, padded plane [rows][wp] of the transposed
// convolution: element (r, c) holds g[(r-p)/S][(c-p)/S] where both are whole and in range, else 0.
// Backward-data is then a stride-1 correlation of this plane with the flipped kernel.
template <int S, int COPIES, class Src, class Dst>
void load_upsampled(const Src *src, bool valid, Dst *dst, long stride, const Geometry &g) {
#pragma HLS INLINE off
    for (int r = 0; r < g.rows; ++r) {
        const int y = r - g.p;
        const bool row_in = valid && y >= 0 && y % S == 0 && y / S < g.ho;
        Dst *drow = dst + r * g.wp;
        for (int c = 0; c < g.wp; ++c)
            for (int t = 0; t < COPIES; ++t) {
#pragma HLS UNROLL
                drow[t * stride + c] = 0;
            }
        if (!row_in) continue;
        const Src *srow = src + (y / S) * g.wo;
        for (int c = 0; c < g.wo; ++c) {
#pragma HLS PIPELINE II=1
            const Dst v = srow[c];
            for (int t = 0; t < COPIES; ++t) {
#pragma HLS UNROLL
                drow[t * stride + g.p + c * S] = v;
            }
        }
    }
}

}  // namespace e2

#endif
