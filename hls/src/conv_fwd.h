// conv_fwd: x int8 [N,C,H,W] (*) w int8 [O,C,k,k] -> int32 [N,O,H',W'] (docs/contracts.md section 2).
//
// Tiling: PO output channels at a time share each loaded input plane; CC input channels are summed per
// pass. The pipelined loop runs over flat output positions q (plane.h) and is unrolled over the
// PO x CC x k x k products of one position, so the accumulator of a position is read and written once
// per pass: no loop-carried dependence, II = 1.
#ifndef E2_CONV_FWD_H
#define E2_CONV_FWD_H

#include "plane.h"

namespace e2 {

// Copies of each input plane in the local buffer: one per tap in hardware (REP), one on the CPU.
template <int K, bool REP> struct Copies { static const int n = REP ? K * K : 1; };

// One pass: acc[po][q] += sum_{cc,i,j} wb[po][cc][i*K+j] * xb[cc][q + tap_offset(i, j)]
// (xb[cc] is copy number cc*COPIES + tap of the buffer when REP).
template <class T, int K, int S, int PO, int CC, bool REP, int PLANE>
void fwd_mac(const typename Buf<T>::x_t (*E2_RESTRICT xb)[PLANE], const typename Buf<T>::w_t wb[PO][CC][K * K],
             typename T::acc32_t (*E2_RESTRICT acc)[PLANE], const Geometry &g) {
#pragma HLS INLINE off
    int off[K * K];
#pragma HLS ARRAY_PARTITION variable=off complete dim=0
    for (int t = 0; t < K * K; ++t) off[t] = tap_offset<S>(g, t / K, t % K);
    const int nq = g.nq;
    for (int q = 0; q < nq; ++q) {
#pragma HLS PIPELINE II=1
        E2_UNROLL for (int po = 0; po < PO; ++po) {
#pragma HLS UNROLL
            typename T::acc32_t s = acc[po][q];
            E2_UNROLL for (int cc = 0; cc < CC; ++cc) {
#pragma HLS UNROLL
                E2_UNROLL for (int i = 0; i < K; ++i) {
#pragma HLS UNROLL
                    E2_UNROLL for (int j = 0; j < K; ++j) {
#pragma HLS UNROLL
                        const int copy = cc * Copies<K, REP>::n + (REP ? i * K + j : 0);
                        const typename T::pxw_t p = wb[po][cc][i * K + j] * xb[copy][q + off[i * K + j]];
#pragma HLS BIND_OP variable=p op=mul impl=fabric
                        s += p;
                    }
                }
            }
            acc[po][q] = s;
        }
    }
}

// Positions per stacked plane in the g++ build without AVX2 (an AVX2 build runs the forward kernel of
// hls/csim/fwd_lanes.h instead): the accumulator planes and every input channel's plane
// of one pass stay in the L2 cache.
const long FWD_STACK_POSITIONS = 2048;

// Images per pass and input-plane slots of the buffer xb (in planes of Copies<K, REP>::n): the hardware
// (REP) loads CC planes of one image per pass; the g++ build stacks images (plane.h) and loads every
// input channel of a pass once, into a slot of its own, for all PO-tiles of output channels.
template <int K, int CC, bool REP, int PLANE>
inline int fwd_images_per_pass(int n, int h, int w, int s) {
    return REP ? 1 : stack_count<PLANE>(n, h, w, K, s, FWD_STACK_POSITIONS);
}
template <int CC, bool REP>
inline int fwd_input_slots(int c) {
    return REP ? CC : (c + CC - 1) / CC * CC;
}

// The whole kernel for one (K, S); the caller owns the local buffers (static arrays in the top,
// heap arrays in the g++ build): xb holds fwd_input_slots planes (each Copies<K, REP>::n), acc PO.
template <class T, int K, int S, int PO, int CC, bool REP, int PLANE>
void conv_fwd_core(const typename T::x_t *x, const typename T::w_t *w, typename T::acc32_t *y, int n, int c,
                   int h, int wd, int o, typename Buf<T>::x_t (*xb)[PLANE], typename T::acc32_t (*acc)[PLANE]) {
    const int COPIES = Copies<K, REP>::n;
    const int nb = fwd_images_per_pass<K, CC, REP, PLANE>(n, h, wd, S);
    const int cslots = fwd_input_slots<CC, REP>(c);
    const long xplane = (long)h * wd;
    typename Buf<T>::w_t wb[PO][CC][K * K];
#pragma HLS ARRAY_PARTITION variable=wb complete dim=0
    for (int a = 0; a < PO; ++a)
        for (int b = 0; b < CC; ++b)
            for (int t = 0; t < K * K; ++t) wb[a][b][t] = 0;
    for (int nn = 0; nn < n; nn += nb) {
        const Geometry g = geometry(h, wd, K, S, nn + nb <= n ? nb : n - nn);
        if (!REP)
            for (int cc = 0; cc < cslots; ++cc)
                for (int b = 0; b < g.nb; ++b)
                    load_input<S, K, false, COPIES>(x + ((long)(nn + b) * c + cc) * xplane, cc < c, xb[cc * COPIES], PLANE, g, b);
        for (int o0 = 0; o0 < o; o0 += PO) {
            for (int po = 0; po < PO; ++po)
                for (int q = 0; q < g.nq; ++q) {
#pragma HLS PIPELINE II=1
                    acc[po][q] = 0;
                }
            for (int c0 = 0; c0 < c; c0 += CC) {
                for (int cc = 0; cc < CC; ++cc) {
                    const bool valid = c0 + cc < c;
                    if (REP)
                        load_input<S, K, false, COPIES>(x + ((long)nn * c + c0 + cc) * xplane, valid, xb[cc * COPIES], PLANE, g);
                    for (int po = 0; po < PO; ++po)
                        for (int t = 0; t < K * K; ++t) {
#pragma HLS PIPELINE II=1
                            const bool in = valid && o0 + po < o;
                            wb[po][cc][t] = in ? typename Buf<T>::w_t(w[((long)(o0 + po) * c + c0 + cc) * K * K + t]) : typename Buf<T>::w_t(0);
                        }
                }
                fwd_mac<T, K, S, PO, CC, REP, PLANE>(xb + (REP ? 0 : c0 * COPIES), wb, acc, g);
            }
            for (int b = 0; b < g.nb; ++b)
                for (int po = 0; po < PO && o0 + po < o; ++po) {
                    typename T::acc32_t *yp = y + ((long)(nn + b) * o + o0 + po) * g.ho * g.wo;
                    for (int r = 0; r < g.ho; ++r)
                        for (int cl = 0; cl < g.wo; ++cl) {
#pragma HLS PIPELINE II=1
                            yp[r * g.wo + cl] = acc[po][b * g.pitch + r * g.qs + cl];
                        }
                }
        }
    }
}

// Picks the (K, S) instance at run time; returns E2_BAD_ARG for a k or stride outside the contract.
template <class T, int PO, int CC, bool REP, int PLANE>
int conv_fwd_dispatch(const typename T::x_t *x, const typename T::w_t *w, typename T::acc32_t *y, int n, int c,
                      int h, int wd, int o, int k, int s, typename Buf<T>::x_t (*xb)[PLANE],
                      typename T::acc32_t (*acc)[PLANE]) {
    if (k == 3 && s == 1) conv_fwd_core<T, 3, 1, PO, CC, REP, PLANE>(x, w, y, n, c, h, wd, o, xb, acc);
    else if (k == 3 && s == 2) conv_fwd_core<T, 3, 2, PO, CC, REP, PLANE>(x, w, y, n, c, h, wd, o, xb, acc);
    else if (k == 1 && s == 1) conv_fwd_core<T, 1, 1, PO, CC, REP, PLANE>(x, w, y, n, c, h, wd, o, xb, acc);
    else if (k == 1 && s == 2) conv_fwd_core<T, 1, 2, PO, CC, REP, PLANE>(x, w, y, n, c, h, wd, o, xb, acc);
    else return E2_BAD_ARG;
    return E2_OK;
}

// Tile sizes of the synthesizable top (hls/README.md says why).
const int FWD_PO = 8;
const int FWD_CC = 1;

}  // namespace e2

// The synthesizable top: m_axi tensors, s_axilite shapes and control, ap_ctrl_hs. Returns E2_OK, or
// E2_BAD_SHAPE / E2_BAD_ARG without touching memory.
int conv_fwd_top(const e2::ApTypes::x_t *x, const e2::ApTypes::w_t *w, e2::ApTypes::acc32_t *y, int n, int c,
                 int h, int wd, int o, int k, int stride);

#endif
