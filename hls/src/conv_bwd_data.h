// conv_bwd_data: g int16 [N,O,H',W'] and w int8 [O,C,k,k] -> int64 [N,C,H,W], the transposed
// convolution (docs/contracts.md section 2), 48-bit accumulators.
//
// The output gradient is loaded as a zero-upsampled, padded plane (plane.h: load_upsampled), so the
// kernel is a stride-1 correlation with the flipped kernel whatever the forward stride: one pipelined
// loop over flat input positions q, unrolled over PC input channels x OC output channels x k x k taps.
// The OC x k x k products of a position are summed in 32 bits (|sum| <= OC*k*k*2^22 < 2^31, checked
// below) and added once into the 48-bit accumulator: narrower adders, one accumulator access per pass.
#ifndef E2_CONV_BWD_DATA_H
#define E2_CONV_BWD_DATA_H

#include "conv_fwd.h"
#include "plane.h"

namespace e2 {

template <class T, int K, int PC, int OC, bool REP, int PLANE>
void bwd_data_mac(const typename Buf<T>::g_t (*E2_RESTRICT gb)[PLANE], const typename Buf<T>::w_t wb[OC][PC][K * K],
                  typename T::acc48_t (*E2_RESTRICT acc)[PLANE], int nq, int wp) {
#pragma HLS INLINE off
    // OC*k*k products of |g*w| <= 2^15 * 2^7 each must fit the 32-bit partial sum.
    typedef char partial_sum_fits_32_bits[(OC * K * K) * (1L << 22) < (1L << 31) ? 1 : -1];
    (void)sizeof(partial_sum_fits_32_bits);
    for (int q = 0; q < nq; ++q) {
#pragma HLS PIPELINE II=1
        E2_UNROLL for (int pc = 0; pc < PC; ++pc) {
#pragma HLS UNROLL
            typename T::sum32_t s = 0;
            E2_UNROLL for (int oc = 0; oc < OC; ++oc) {
#pragma HLS UNROLL
                E2_UNROLL for (int i = 0; i < K; ++i) {
#pragma HLS UNROLL
                    E2_UNROLL for (int j = 0; j < K; ++j) {
#pragma HLS UNROLL
                        const int copy = oc * Copies<K, REP>::n + (REP ? i * K + j : 0);
                        const typename T::pgw_t p = wb[oc][pc][i * K + j] * gb[copy][q + i * wp + j];
#pragma HLS BIND_OP variable=p op=mul impl=dsp
                        s += p;
                    }
                }
            }
            acc[pc][q] += s;
        }
    }
}

template <class T, int K, int S, int PC, int OC, bool REP, int PLANE>
void conv_bwd_data_core(const typename T::g_t *gy, const typename T::w_t *w, typename T::out48_t *gx, int n, int c,
                        int h, int wd, int o, typename Buf<T>::g_t (*gb)[PLANE], typename T::acc48_t (*acc)[PLANE]) {
    const Geometry g = geometry(h, wd, K, S);
    const int nq = h * g.wp;  // input positions, flat with row stride wp
    typename Buf<T>::w_t wb[OC][PC][K * K];
#pragma HLS ARRAY_PARTITION variable=wb complete dim=0
    for (int a = 0; a < OC; ++a)
        for (int b = 0; b < PC; ++b)
            for (int t = 0; t < K * K; ++t) wb[a][b][t] = 0;
    for (int nn = 0; nn < n; ++nn) {
        for (int c0 = 0; c0 < c; c0 += PC) {
            for (int pc = 0; pc < PC; ++pc)
                for (int q = 0; q < nq; ++q) {
#pragma HLS PIPELINE II=1
                    acc[pc][q] = 0;
                }
            for (int o0 = 0; o0 < o; o0 += OC) {
                for (int oc = 0; oc < OC; ++oc) {
                    const bool valid = o0 + oc < o;
                    load_upsampled<S, Copies<K, REP>::n>(gy + ((long)nn * o + o0 + oc) * g.ho * g.wo, valid,
                                                         gb[oc * Copies<K, REP>::n], PLANE, g);
                    for (int pc = 0; pc < PC; ++pc)
                        for (int t = 0; t < K * K; ++t) {
#pragma HLS PIPELINE II=1
                            // flipped kernel: tap (i, j) of the correlation is w[K-1-i][K-1-j]
                            const bool in = valid && c0 + pc < c;
                            wb[oc][pc][t] = in ? typename Buf<T>::w_t(w[((long)(o0 + oc) * c + c0 + pc) * K * K + (K * K - 1 - t)])
                                               : typename Buf<T>::w_t(0);
                        }
                }
                bwd_data_mac<T, K, PC, OC, REP, PLANE>(gb, wb, acc, nq, g.wp);
            }
            for (int pc = 0; pc < PC && c0 + pc < c; ++pc) {
                typename T::out48_t *gp = gx + ((long)nn * c + c0 + pc) * h * wd;
                for (int r = 0; r < h; ++r)
                    for (int cl = 0; cl < wd; ++cl) {
#pragma HLS PIPELINE II=1
                        gp[r * wd + cl] = acc[pc][r * g.wp + cl];
                    }
            }
        }
    }
}

template <class T, int PC, int OC, bool REP, int PLANE>
int conv_bwd_data_dispatch(const typename T::g_t *gy, const typename T::w_t *w, typename T::out48_t *gx, int n, int c,
                           int h, int wd, int o, int k, int s, typename Buf<T>::g_t (*gb)[PLANE],
                           typename T::acc48_t (*acc)[PLANE]) {
    if (k == 3 && s == 1) conv_bwd_data_core<T, 3, 1, PC, OC, REP, PLANE>(gy, w, gx, n, c, h, wd, o, gb, acc);
    else if (k == 3 && s == 2) conv_bwd_data_core<T, 3, 2, PC, OC, REP, PLANE>(gy, w, gx, n, c, h, wd, o, gb, acc);
    else if (k == 1 && s == 1) conv_bwd_data_core<T, 1, 1, PC, OC, REP, PLANE>(gy, w, gx, n, c, h, wd, o, gb, acc);
    else if (k == 1 && s == 2) conv_bwd_data_core<T, 1, 2, PC, OC, REP, PLANE>(gy, w, gx, n, c, h, wd, o, gb, acc);
    else return E2_BAD_ARG;
    return E2_OK;
}

const int BWD_PC = 8;
const int BWD_OC = 1;

}  // namespace e2

int conv_bwd_data_top(const e2::ApTypes::g_t *gy, const e2::ApTypes::w_t *w, e2::ApTypes::out48_t *gx, int n, int c,
                      int h, int wd, int o, int k, int stride);

#endif
