// Moving planes between DDR (m_axi) and local buffers, shared by the three kernels.
//
// Every local plane is stored flat, so that a convolution is one pipelined loop over flat output
// positions q = h*qs + w with constant tap offsets and no border tests inside it.
//
// Stride 1: an input plane is the zero-padded image, row-major with row stride xs = W + 2p; tap
// (i, j) of output q reads element q + i*xs + j.
// Stride 2: an input plane is stored polyphase, as four sub-planes (row parity a, column parity b),
// each row-major with row stride xs = ceil((W + 2p) / 2); padded pixel (r, c) sits in sub-plane
// (r % 2, c % 2) at (r / 2) * xs + c / 2, so tap (i, j) of output q reads sub-plane (i % 2, j % 2)
// at q + (i / 2) * xs + j / 2: unit-stride reads again, and one or two junk columns per row.
// Output planes have row stride qs = xs; positions with w >= W' are junk: computed and never stored
// (forward) or multiplied by a zero gradient (weight gradient). Reads run up to two rows past a
// (sub-)plane, hence two rows of slack (MAX_PLANE).
#ifndef E2_PLANE_H
#define E2_PLANE_H

#include "e2_types.h"

namespace e2 {

struct Geometry {
    int h, w;      // input size
    int k, s, p;   // kernel, stride, padding
    int ho, wo;    // output size
    int hp, wp;    // padded input size
    int xs;        // row stride inside an input (sub-)plane
    int qs;        // row stride of output planes (= xs)
    int nq;        // flat output positions per plane: ho rows of qs
    int sub;       // elements of one (sub-)plane; an input plane holds s * s of them
};

inline Geometry geometry(int h, int w, int k, int s) {
    Geometry g;
    g.h = h; g.w = w; g.k = k; g.s = s; g.p = (k - 1) / 2;
    g.ho = (h + 2 * g.p - k) / s + 1;
    g.wo = (w + 2 * g.p - k) / s + 1;
    g.hp = h + 2 * g.p;
    g.wp = w + 2 * g.p;
    g.xs = (g.wp + s - 1) / s;
    g.qs = g.xs;
    g.nq = g.ho * g.qs;
    g.sub = ((g.hp + s - 1) / s + 2) * g.xs;
    return g;
}

// Offset of tap (i, j) in an input plane, relative to the output position q.
template <int S>
inline int tap_offset(const Geometry &g, int i, int j) {
    return ((i % S) * S + j % S) * g.sub + (i / S) * g.xs + j / S;
}

// image src [h][w] -> an input plane of geometry g (zero padding, polyphase for S = 2), each value
// arithmetic-shifted right by SHIFT (0 for the full value, 4 for x_msb); valid = false loads zeros
// (a channel past the end). Only the sub-planes that K taps read are written (one for K = 1).
// COPIES identical planes, `stride` elements apart, are written in parallel: the hardware keeps one
// copy per tap so that the k*k reads of a position hit k*k different BRAMs.
template <int S, int K, int SHIFT, int COPIES, class Src, class Dst>
void load_input(const Src *src, bool valid, Dst *dst, long stride, const Geometry &g) {
#pragma HLS INLINE off
    const int A = K < S ? K : S;  // phases read along each axis
    const int rows = g.sub / g.xs;
    for (int a = 0; a < A; ++a) {
        for (int rr = 0; rr < rows; ++rr) {
            const int y = rr * S + a - g.p;  // image row of this sub-plane row
            const bool row_in = valid && y >= 0 && y < g.h;
            for (int b = 0; b < A; ++b) {
                Dst *drow = dst + (a * S + b) * g.sub + rr * g.xs;
                // entry m holds padded column m*S + b: interior for m in [lo, hi)
                const int lo = row_in ? (g.p - b + S - 1) / S : g.xs;
                const int hi = row_in ? (g.p + g.w - b + S - 1) / S : g.xs;
                for (int m = 0; m < lo; ++m)
                    for (int t = 0; t < COPIES; ++t) {
#pragma HLS UNROLL
                        drow[t * stride + m] = 0;
                    }
                if (row_in) {
                    const Src *srow = src + y * g.w + (lo * S + b - g.p);
                    for (int m = 0; m < hi - lo; ++m) {
#pragma HLS PIPELINE II=1
                        const Dst v = srow[m * S] >> SHIFT;
                        for (int t = 0; t < COPIES; ++t) {
#pragma HLS UNROLL
                            drow[t * stride + lo + m] = v;
                        }
                    }
                }
                for (int m = hi; m < g.xs; ++m)
                    for (int t = 0; t < COPIES; ++t) {
#pragma HLS UNROLL
                        drow[t * stride + m] = 0;
                    }
            }
        }
    }
}

// Output gradient g [ho][wo] -> dst [ho][qs] (row stride qs >= wo, zeros in the junk columns w >= wo).
template <int SHIFT, class Src, class Dst>
void load_grad(const Src *src, bool valid, Dst *dst, int ho, int wo, int qs) {
#pragma HLS INLINE off
    for (int r = 0; r < ho; ++r) {
        Dst *drow = dst + r * qs;
        if (valid) {
            const Src *srow = src + r * wo;
            for (int c = 0; c < wo; ++c) {
#pragma HLS PIPELINE II=1
                drow[c] = srow[c] >> SHIFT;
            }
        } else {
            for (int c = 0; c < wo; ++c) drow[c] = 0;
        }
        for (int c = wo; c < qs; ++c) drow[c] = 0;
    }
}

// Output gradient g [ho][wo] -> the zero-upsampled, padded plane [hp + 2][wp] of the transposed
// convolution: element (r, c) holds g[(r-p)/S][(c-p)/S] where both are whole and in range, else 0.
// Backward-data is then a stride-1 correlation of this plane with the flipped kernel.
template <int S, int COPIES, class Src, class Dst>
void load_upsampled(const Src *src, bool valid, Dst *dst, long stride, const Geometry &g) {
#pragma HLS INLINE off
    for (int r = 0; r < g.hp + 2; ++r) {
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
