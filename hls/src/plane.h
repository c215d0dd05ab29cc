// Moving planes between DDR (m_axi) and local buffers, shared by the three kernels.
//
// Every local plane is stored flat, so that a convolution is one pipelined loop over flat output
// positions q = h*qs + w with constant tap offsets and no border tests inside it.
//
// Stride 1: an input plane is the zero-padded image, row-major with row stride xs = W + p: each row
// holds its p left padding columns and its W pixels, and the right padding of a row is the left
// padding of the next (flat reads run on into it), so a row costs one junk output column, not 2p. Tap
// (i, j) of output q reads element q + i*xs + j.
// Stride 2: an input plane is stored polyphase, as four sub-planes (row parity a, column parity b),
// each row-major with row stride xs = ceil((W + 2p) / 2); padded pixel (r, c) sits in sub-plane
// (r % 2, c % 2) at (r / 2) * xs + c / 2, so tap (i, j) of output q reads sub-plane (i % 2, j % 2)
// at q + (i / 2) * xs + j / 2: unit-stride reads again, and one or two junk columns per row.
// Output planes have row stride qs = xs; positions with w >= W' are junk: computed and never stored
// (forward) or multiplied by a zero gradient (weight gradient). Reads run up to two rows past a
// (sub-)plane, hence two rows of slack (MAX_PLANE).
// Stacking: nb images may share one buffer plane, image b at offset b * pitch in every sub-plane and
// output plane (pitch = the rows of one (sub-)plane image; at stride 1 the bottom padding rows of an
// image are the top padding rows of the next, so pitch is H + p rows); the loop over q then runs
// through all of them at once, and the rows between two images' outputs are junk like the junk
// columns. The hardware holds one image (nb = 1); the g++ build stacks images (plane.h users).
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
    int nb;        // images stacked in one plane
    int pitch;     // elements from one stacked image to the next (whole rows of xs)
    int nq;        // flat output positions per plane: ho rows of qs after nb - 1 pitches
    int sub;       // elements of one (sub-)plane; an input plane holds s * s of them
};

inline Geometry geometry(int h, int w, int k, int s, int nb = 1) {
    Geometry g;
    g.h = h; g.w = w; g.k = k; g.s = s; g.p = (k - 1) / 2;
    g.ho = (h + 2 * g.p - k) / s + 1;
    g.wo = (w + 2 * g.p - k) / s + 1;
    g.hp = h + 2 * g.p;
    g.wp = w + 2 * g.p;
    // stride 2 keeps whole padded rows and images: the polyphase split needs their parity
    g.xs = s == 1 ? w + g.p : (g.wp + 1) / 2;
    g.qs = g.xs;
    g.nb = nb;
    g.pitch = (s == 1 ? h + g.p : (g.hp + 1) / 2) * g.xs;
    g.nq = (nb - 1) * g.pitch + g.ho * g.qs;
    g.sub = nb * g.pitch + 2 * g.xs;
    return g;
}

// How many images to stack in one buffer plane of PLANE elements: as many as fit (an input plane holds
// s * s sub-planes when k >= s, else one) and as keep a plane within max_positions, at least 1, at most n.
template <int PLANE>
inline int stack_count(int n, int h, int w, int k, int s, long max_positions = PLANE) {
    const Geometry g = geometry(h, w, k, s);
    const int nsub = k >= s ? s * s : 1;
    long fit = ((long)PLANE / nsub - 2L * g.xs) / g.pitch;
    if (max_positions / g.pitch < fit) fit = max_positions / g.pitch;
    return fit < 1 ? 1 : (fit > n ? n : (int)fit);
}

// Offset of tap (i, j) in an input plane, relative to the output position q.
template <int S>
inline int tap_offset(const Geometry &g, int i, int j) {
    return ((i % S) * S + j % S) * g.sub + (i / S) * g.xs + j / S;
}

// activations src [h][w] -> image slot img of an input plane of geometry g (zero padding, polyphase
// for S = 2), each value whole or, for MSB, as x_msb (e2_types.h: rounded here, once per element);
// valid = false loads zeros (a channel past the end). Only the sub-planes that K taps read are written (one
// for K = 1); the last slot also writes the two slack rows.
// COPIES identical planes, `stride` elements apart, are written in parallel: the hardware keeps one
// copy per tap so that the k*k reads of a position hit k*k different BRAMs.
template <int S, int K, bool MSB, int COPIES, class Src, class Dst>
void load_input(const Src *src, bool valid, Dst *dst, long stride, const Geometry &g, int img = 0) {
#pragma HLS INLINE off
    const int A = K < S ? K : S;  // phases read along each axis
    const int rows = g.pitch / g.xs + (img == g.nb - 1 ? 2 : 0);
    dst += (long)img * g.pitch;
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
                        const Dst v = MSB ? x_msb_of(srow[m * S]) : srow[m * S];
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

// Output gradient g [ho][wo] -> image slot img of an output plane of geometry g: ho rows of qs (zeros
// in the junk columns w >= wo), and zero rows up to the next slot when one follows. Each value whole or,
// for MSB, as g_msb (rounded here, once per element).
template <bool MSB, class Src, class Dst>
void load_grad(const Src *src, bool valid, Dst *dst, const Geometry &g, int img = 0) {
#pragma HLS INLINE off
    const int ho = g.ho, wo = g.wo, qs = g.qs;
    const int rows = img == g.nb - 1 ? ho : g.pitch / qs;
    dst += (long)img * g.pitch;
    for (int r = 0; r < rows; ++r) {
        Dst *drow = dst + r * qs;
        if (valid && r < ho) {
            const Src *srow = src + r * wo;
            for (int c = 0; c < wo; ++c) {
#pragma HLS PIPELINE II=1
                drow[c] = MSB ? g_msb_of(srow[c]) : srow[c];
            }
        } else {
            for (int c = 0; c < wo; ++c) drow[c] = 0;
        }
        for (int c = wo; c < qs; ++c) drow[c] = 0;
    }
}

// Stride-1 backward data: output gradient g [h][w] -> image slot img of the padded plane of geometry g
// (k, stride 1; rows of xs = w + p, as the input planes): element (r, c) holds g[r - p][c - p] where in
// range, else 0; the last slot also writes the two slack rows. Backward-data is then a correlation of
// this plane with the flipped kernel.
template <int COPIES, class Src, class Dst>
void load_padded(const Src *src, bool valid, Dst *dst, long stride, const Geometry &g, int img = 0) {
#pragma HLS INLINE off
    const int rows = g.pitch / g.xs + (img == g.nb - 1 ? 2 : 0);
    dst += (long)img * g.pitch;
    for (int r = 0; r < rows; ++r) {
        const int y = r - g.p;
        const bool row_in = valid && y >= 0 && y < g.h;
        Dst *drow = dst + r * g.xs;
        for (int c = 0; c < g.p; ++c)
            for (int t = 0; t < COPIES; ++t) {
#pragma HLS UNROLL
                drow[t * stride + c] = 0;
            }
        if (row_in) {
            const Src *srow = src + y * g.w;
            for (int c = 0; c < g.w; ++c) {
#pragma HLS PIPELINE II=1
                const Dst v = srow[c];
                for (int t = 0; t < COPIES; ++t) {
#pragma HLS UNROLL
                    drow[t * stride + g.p + c] = v;
                }
            }
        } else {
            for (int c = 0; c < g.w; ++c)
                for (int t = 0; t < COPIES; ++t) {
#pragma HLS UNROLL
                    drow[t * stride + g.p + c] = 0;
                }
        }
        for (int c = g.p + g.w; c < g.xs; ++c)
            for (int t = 0; t < COPIES; ++t) {
#pragma HLS UNROLL
                drow[t * stride + c] = 0;
            }
    }
}

}  // namespace e2

#endif
