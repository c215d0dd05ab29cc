// conv_bwd_data: g int16 [N,O,H',W'] and w int8 [O,C,k,k] -> int64 [N,C,H,W], the transposed
// convolution (docs/contracts.md section 2), 48-bit accumulators.
//
// Stride 1: the output gradient is loaded as a padded plane (plane.h: load_padded), and the kernel
// is a stride-1 correlation with the flipped kernel: one pipelined loop over flat input positions q,
// unrolled over PC input channels x OC output channels x k x k taps.
// Stride 2: split by input parity (polyphase). Input position (2u + a, 2v + b) takes only the taps
// (i, j) with i = a + p, j = b + p (mod 2), and each reads the gradient at (u + (a + p - i) / 2,
// v + (b + p - j) / 2), an offset of 0 or 1: four stride-1 correlations of the plain gradient plane
// with 1x1, 1x2, 2x1 and 2x2 sub-kernels (k = 3; k = 1 has class (0, 0) only, one tap), each over a
// quarter of the positions. The zeros of a zero-upsampled plane (3/4 of its products) never reach a
// multiplier, and the four passes together take as many cycles as one pass over the whole plane.
// Both strides run the same pass (bwd_data_mac), over a tap set (BwdTaps): all k x k taps of the
// padded plane at stride 1, one parity class at stride 2.
// The OC x k x k products of a position are summed in 32 bits (|sum| <= OC*k*k*2^22 < 2^31, checked
// below) and added once into the 48-bit accumulator: narrower adders, one accumulator access per pass.
#ifndef E2_CONV_BWD_DATA_H
#define E2_CONV_BWD_DATA_H

#include "conv_fwd.h"
#include "plane.h"

namespace e2 {

// Taps of parity class A along one axis (k = K): the first tap, and how many (every other one).
template <int K, int A> struct ParityTaps {
    static const int first = (A + (K - 1) / 2) % 2;
    static const int count = (K - first + 1) / 2;
};

// The taps one pass sums: count of them; tap(n) indexes the pass's k x k weights, offset(n, row) is
// where it reads the gradient plane relative to the position (row: the plane's row stride).
// Stride 1: every tap of the flipped kernel over the padded plane.
// Stride 2, parity class (A, B): the taps (i, j) with i = A + p, j = B + p (mod 2), reading the plain
// gradient plane at ((A + p - i) / 2, (B + p - j) / 2).
template <int K, int S, int A = 0, int B = 0> struct BwdTaps;
template <int K> struct BwdTaps<K, 1, 0, 0> {
    static const int count = K * K;
    static constexpr int tap(int n) { return n; }
    static constexpr int offset(int n, int row) { return n / K * row + n % K; }
};
template <int K, int A, int B> struct BwdTaps<K, 2, A, B> {
    static const int P = (K - 1) / 2;
    static const int I0 = ParityTaps<K, A>::first, TI = ParityTaps<K, A>::count;
    static const int J0 = ParityTaps<K, B>::first, TJ = ParityTaps<K, B>::count;
    static const int count = TI * TJ;  // 0 for the odd classes of k = 1: the pass is not called
    static const int TJ1 = TJ > 0 ? TJ : 1;
    static constexpr int tap(int n) { return (I0 + 2 * (n / TJ1)) * K + J0 + 2 * (n % TJ1); }
    static constexpr int offset(int n, int row) {
        return (A + P - (I0 + 2 * (n / TJ1))) / 2 * row + (B + P - (J0 + 2 * (n % TJ1))) / 2;
    }
};

// One pass: acc[pc][base + q] += sum_{oc, n} wb[oc][pc][tap(n)] * gb[oc][q + offset(n)] for q < nq.
template <class T, class Taps, int K, int PC, int OC, bool REP, int PLANE>
void bwd_data_mac(const typename Buf<T>::g_t (*E2_RESTRICT gb)[PLANE], const typename Buf<T>::w_t wb[OC][PC][K * K],
                  typename T::acc48_t (*E2_RESTRICT acc)[PLANE], int base, int nq, int row) {
#pragma HLS INLINE off
    // OC*k*k products of |g*w| <= 2^15 * 2^7 each must fit the 32-bit partial sum.
    typedef char partial_sum_fits_32_bits[(OC * K * K) * (1L << 22) < (1L << 31) ? 1 : -1];
    (void)sizeof(partial_sum_fits_32_bits);
    const int NT = Taps::count;
    int off[NT > 0 ? NT : 1];
#pragma HLS ARRAY_PARTITION variable=off complete dim=0
    for (int t = 0; t < NT; ++t) off[t] = Taps::offset(t, row);
    for (int q = 0; q < nq; ++q) {
#pragma HLS PIPELINE II=1
        E2_UNROLL for (int pc = 0; pc < PC; ++pc) {
#pragma HLS UNROLL
            typename T::sum32_t s = 0;
            E2_UNROLL for (int oc = 0; oc < OC; ++oc) {
#pragma HLS UNROLL
                E2_UNROLL for (int t = 0; t < NT; ++t) {
#pragma HLS UNROLL
                    const int copy = oc * Copies<K, REP>::n + (REP ? Taps::tap(t) : 0);
                    const typename T::pgw_t p = wb[oc][pc][Taps::tap(t)] * gb[copy][q + off[t]];
#pragma HLS BIND_OP variable=p op=mul impl=dsp
                    s += p;
                }
            }
            acc[pc][base + q] += s;
        }
    }
}

// The pass as a class: the g++ build puts a vpmaddwd version with the same sums in its place for
// NativeTypes (hls/csim/mac_avx2.h, channel pairs through vpmaddwd, which g++ does not emit for a map);
// synthesis, the ApTypes path and builds without AVX2 run bwd_data_mac itself.
template <class T, class Taps, int K, int PC, int OC, bool REP, int PLANE>
struct BwdDataPass {
    static void run(const typename Buf<T>::g_t (*gb)[PLANE], const typename Buf<T>::w_t wb[OC][PC][K * K],
                    typename T::acc48_t (*acc)[PLANE], int base, int nq, int row) {
#pragma HLS INLINE
        bwd_data_mac<T, Taps, K, PC, OC, REP, PLANE>(gb, wb, acc, base, nq, row);
    }
};

// Positions per stacked plane in the g++ build (plane.h): the accumulator planes and every gradient
// channel's plane of one pass stay in the L2 cache.
const long BWD_STACK_POSITIONS = 2048;

// Gradient-plane slots of the buffer gb (in planes of Copies<K, REP>::n): the hardware loads the OC
// planes of a pass; the g++ build loads every output channel of a pass once, into a slot of its own,
// for all PC-tiles of input channels.
template <int OC, bool REP>
inline int bwd_grad_slots(int o) {
    return REP ? OC : (o + OC - 1) / OC * OC;
}

// Stride 1 (the plane of the gradient is the padded image of the forward geometry; the g++ build stacks
// images in it).
template <class T, int K, int PC, int OC, bool REP, int PLANE>
void conv_bwd_data_core(const typename T::g_t *gy, const typename T::w_t *w, typename T::out48_t *gx, int n, int c,
                        int h, int wd, int o, typename Buf<T>::g_t (*gb)[PLANE], typename T::acc48_t (*acc)[PLANE]) {
    const int COPIES = Copies<K, REP>::n;
    const int nb = REP ? 1 : stack_count<PLANE>(n, h, wd, K, 1, BWD_STACK_POSITIONS);
    const int oslots = bwd_grad_slots<OC, REP>(o);
    const long gplane = (long)h * wd;
    typename Buf<T>::w_t wb[OC][PC][K * K];
#pragma HLS ARRAY_PARTITION variable=wb complete dim=0
    for (int a = 0; a < OC; ++a)
        for (int b = 0; b < PC; ++b)
            for (int t = 0; t < K * K; ++t) wb[a][b][t] = 0;
    for (int nn = 0; nn < n; nn += nb) {
        // input positions, flat with row stride wp: the output positions of the forward geometry
        const Geometry g = geometry(h, wd, K, 1, nn + nb <= n ? nb : n - nn);
        if (!REP)
            for (int oo = 0; oo < oslots; ++oo)
                for (int b = 0; b < g.nb; ++b)
                    load_padded<COPIES>(gy + ((long)(nn + b) * o + oo) * gplane, oo < o, gb[oo * COPIES], PLANE, g, b);
        for (int c0 = 0; c0 < c; c0 += PC) {
            for (int pc = 0; pc < PC; ++pc)
                for (int q = 0; q < g.nq; ++q) {
#pragma HLS PIPELINE II=1
                    acc[pc][q] = 0;
                }
            for (int o0 = 0; o0 < o; o0 += OC) {
                for (int oc = 0; oc < OC; ++oc) {
                    const bool valid = o0 + oc < o;
                    if (REP)
                        load_padded<COPIES>(gy + ((long)nn * o + o0 + oc) * gplane, valid, gb[oc * COPIES], PLANE, g);
                    for (int pc = 0; pc < PC; ++pc)
                        for (int t = 0; t < K * K; ++t) {
#pragma HLS PIPELINE II=1
                            // flipped kernel: tap (i, j) of the correlation is w[K-1-i][K-1-j]
                            const bool in = valid && c0 + pc < c;
                            wb[oc][pc][t] = in ? typename Buf<T>::w_t(w[((long)(o0 + oc) * c + c0 + pc) * K * K + (K * K - 1 - t)])
                                               : typename Buf<T>::w_t(0);
                        }
                }
                BwdDataPass<T, BwdTaps<K, 1>, K, PC, OC, REP, PLANE>::run(gb + (REP ? 0 : o0 * COPIES), wb, acc, 0, g.nq, g.xs);
            }
            for (int b = 0; b < g.nb; ++b)
                for (int pc = 0; pc < PC && c0 + pc < c; ++pc) {
                    typename T::out48_t *gp = gx + ((long)(nn + b) * c + c0 + pc) * h * wd;
                    for (int r = 0; r < h; ++r)
                        for (int cl = 0; cl < wd; ++cl) {
#pragma HLS PIPELINE II=1
                            gp[r * wd + cl] = acc[pc][b * g.pitch + r * g.xs + cl];
                        }
                }
        }
    }
}

// Stride 2. Gradient plane: [ho + 2][gs = wo + 1], zeros in column wo and rows ho, ho + 1 (the taps read
// one row and column past g, and the junk columns of the last row one more).
template <int COPIES, class Src, class Dst>
void load_grad_s2(const Src *src, bool valid, Dst *dst, long stride, int ho, int wo) {
#pragma HLS INLINE off
    const int gs = wo + 1;
    for (int r = 0; r < ho + 2; ++r) {
        Dst *drow = dst + r * gs;
        if (valid && r < ho) {
            for (int cl = 0; cl < wo; ++cl) {
#pragma HLS PIPELINE II=1
                const Dst v = src[r * wo + cl];
                for (int t = 0; t < COPIES; ++t) {
#pragma HLS UNROLL
                    drow[t * stride + cl] = v;
                }
            }
        } else {
            for (int cl = 0; cl < wo; ++cl)
                for (int t = 0; t < COPIES; ++t) {
#pragma HLS UNROLL
                    drow[t * stride + cl] = 0;
                }
        }
        for (int t = 0; t < COPIES; ++t) {
#pragma HLS UNROLL
            drow[t * stride + wo] = 0;
        }
    }
}

template <class T, int K, int PC, int OC, bool REP, int PLANE>
void conv_bwd_data_core_s2(const typename T::g_t *gy, const typename T::w_t *w, typename T::out48_t *gx, int n, int c,
                           int h, int wd, int o, typename Buf<T>::g_t (*gb)[PLANE], typename T::acc48_t (*acc)[PLANE]) {
    const Geometry g = geometry(h, wd, K, 2);
    const int gs = g.wo + 1;
    const int csub = g.ho * gs;  // accumulator region of one parity class: at most ho rows of gs
    const int hu0 = (h + 1) / 2, hu1 = h / 2;  // rows of the classes a = 0 and a = 1
    typename Buf<T>::w_t wb[OC][PC][K * K];
#pragma HLS ARRAY_PARTITION variable=wb complete dim=0
    for (int a = 0; a < OC; ++a)
        for (int b = 0; b < PC; ++b)
            for (int t = 0; t < K * K; ++t) wb[a][b][t] = 0;
    const int COPIES = Copies<K, REP>::n;
    const int oslots = bwd_grad_slots<OC, REP>(o);
    const long gplane = (long)g.ho * g.wo;
    for (int nn = 0; nn < n; ++nn) {
        if (!REP)
            for (int oo = 0; oo < oslots; ++oo)
                load_grad_s2<COPIES>(gy + ((long)nn * o + oo) * gplane, oo < o, gb[oo * COPIES], PLANE, g.ho, g.wo);
        for (int c0 = 0; c0 < c; c0 += PC) {
            for (int pc = 0; pc < PC; ++pc)
                for (int q = 0; q < 4 * csub; ++q) {
#pragma HLS PIPELINE II=1
                    acc[pc][q] = 0;
                }
            for (int o0 = 0; o0 < o; o0 += OC) {
                const typename Buf<T>::g_t (*gbo)[PLANE] = gb + (REP ? 0 : o0 * COPIES);
                for (int oc = 0; oc < OC; ++oc) {
                    const bool valid = o0 + oc < o;
                    if (REP)
                        load_grad_s2<COPIES>(gy + ((long)nn * o + o0 + oc) * gplane, valid, gb[oc * COPIES], PLANE, g.ho,
                                             g.wo);
                    for (int pc = 0; pc < PC; ++pc)
                        for (int t = 0; t < K * K; ++t) {
#pragma HLS PIPELINE II=1
                            const bool in = valid && c0 + pc < c;
                            wb[oc][pc][t] = in ? typename Buf<T>::w_t(w[((long)(o0 + oc) * c + c0 + pc) * K * K + t])
                                               : typename Buf<T>::w_t(0);
                        }
                }
                // a class with no taps (k = 1, odd rows or columns) keeps its zeros
                if (ParityTaps<K, 0>::count > 0)
                    BwdDataPass<T, BwdTaps<K, 2, 0, 0>, K, PC, OC, REP, PLANE>::run(gbo, wb, acc, 0, hu0 * gs, gs);
                if (ParityTaps<K, 1>::count > 0) {
                    BwdDataPass<T, BwdTaps<K, 2, 0, 1>, K, PC, OC, REP, PLANE>::run(gbo, wb, acc, csub, hu0 * gs, gs);
                    BwdDataPass<T, BwdTaps<K, 2, 1, 0>, K, PC, OC, REP, PLANE>::run(gbo, wb, acc, 2 * csub, hu1 * gs, gs);
                    BwdDataPass<T, BwdTaps<K, 2, 1, 1>, K, PC, OC, REP, PLANE>::run(gbo, wb, acc, 3 * csub, hu1 * gs, gs);
                }
            }
            for (int pc = 0; pc < PC && c0 + pc < c; ++pc) {
                typename T::out48_t *gp = gx + ((long)nn * c + c0 + pc) * h * wd;
                for (int r = 0; r < h; ++r)
                    for (int cl = 0; cl < wd; ++cl) {
#pragma HLS PIPELINE II=1
                        gp[r * wd + cl] = acc[pc][((r % 2) * 2 + cl % 2) * csub + (r / 2) * gs + cl / 2];
                    }
            }
        }
    }
}

template <class T, int PC, int OC, bool REP, int PLANE>
int conv_bwd_data_dispatch(const typename T::g_t *gy, const typename T::w_t *w, typename T::out48_t *gx, int n, int c,
                           int h, int wd, int o, int k, int s, typename Buf<T>::g_t (*gb)[PLANE],
                           typename T::acc48_t (*acc)[PLANE]) {
    if (k == 3 && s == 1) conv_bwd_data_core<T, 3, PC, OC, REP, PLANE>(gy, w, gx, n, c, h, wd, o, gb, acc);
    else if (k == 3 && s == 2) conv_bwd_data_core_s2<T, 3, PC, OC, REP, PLANE>(gy, w, gx, n, c, h, wd, o, gb, acc);
    else if (k == 1 && s == 1) conv_bwd_data_core<T, 1, PC, OC, REP, PLANE>(gy, w, gx, n, c, h, wd, o, gb, acc);
    else if (k == 1 && s == 2) conv_bwd_data_core_s2<T, 1, PC, OC, REP, PLANE>(gy, w, gx, n, c, h, wd, o, gb, acc);
    else return E2_BAD_ARG;
    return E2_OK;
}

const int BWD_PC = 8;
const int BWD_OC = 1;

}  // namespace e2

int conv_bwd_data_top(const e2::ApTypes::g_t *gy, const e2::ApTypes::w_t *w, e2::ApTypes::out48_t *gx, int n, int c,
                      int h, int wd, int o, int k, int stride);

#endif
