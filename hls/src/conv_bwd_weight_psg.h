// conv_bwd_weight_psg: x int8 [N,C,H,W] and g int16 [N,O,H',W'] -> weight-gradient signs int8 [O,C,k,k]
// with predictive sign gradient descent (docs/contracts.md sections 1-2).
//
//   phase 1  every weight: G_msb = sum g_msb * x_msb, int4 x int10 products (narrow LUT
//            multipliers in hardware), 32-bit accumulators, and max |G_msb| over all weights.
//   select   weight i is confident iff G_msb[i] != 0 and |G_msb[i]| * 65536 >= beta_q * max|G_msb|;
//            confident weights take sgn(G_msb) now; each tile with an unconfident weight goes into a
//            stream of phase-2 jobs, with its mask of weights to finish.
//   phase 2  per job, G_full = sum g * x (int8 x int16, 48-bit accumulators) for the masked weights
//            only: the operands of the others are held at zero (no toggling, no energy), and sign =
//            sgn(G_full). Mode full skips phase 1 and runs phase 2 on every weight.
//
// Tiles are PO output x PC input channels x k x k weights; the pipelined loop runs over flat output
// positions q (plane.h) and is unrolled over the tile, one accumulator register per weight.
#ifndef E2_CONV_BWD_WEIGHT_PSG_H
#define E2_CONV_BWD_WEIGHT_PSG_H

#include "conv_fwd.h"
#include "hls_stream.h"
#include "plane.h"

namespace e2 {

const int BETA_ONE = 1 << 16;  // beta_q is Q0.16
const int PSG_CHUNK = 480;     // positions per 32-bit partial sum of phase 2: 480 * 2^22 < 2^31
const int PSG_MAX_JOBS = 4096; // depth of the phase-2 job FIFO in hardware

template <int NW>
struct PsgJob {
    int o0, c0;
    bool need[NW];
};

template <class T, int K, int S, int PO, int PC, bool REP, int PLANE>
void psg_msb_mac(const typename Buf<T>::pg_t (*E2_RESTRICT xmb)[PLANE], const typename Buf<T>::pg_t (*E2_RESTRICT gmb)[PLANE],
                 typename T::acc32_t acc[PO][PC][K * K], const Geometry &g) {
#pragma HLS INLINE off
    int off[K * K];
#pragma HLS ARRAY_PARTITION variable=off complete dim=0
    for (int t = 0; t < K * K; ++t) off[t] = tap_offset<S>(g, t / K, t % K);
    const int nq = g.nq;
    typename T::acc32_t r[PO][PC][K * K];
#pragma HLS ARRAY_PARTITION variable=r complete dim=0
    E2_UNROLL for (int po = 0; po < PO; ++po)
        E2_UNROLL for (int pc = 0; pc < PC; ++pc)
            E2_UNROLL for (int t = 0; t < K * K; ++t) r[po][pc][t] = acc[po][pc][t];
    for (int q = 0; q < nq; ++q) {
#pragma HLS PIPELINE II=1
        E2_UNROLL for (int po = 0; po < PO; ++po) {
#pragma HLS UNROLL
            const typename T::gm_t gv = gmb[po][q];
            E2_UNROLL for (int pc = 0; pc < PC; ++pc) {
#pragma HLS UNROLL
                E2_UNROLL for (int i = 0; i < K; ++i) {
#pragma HLS UNROLL
                    E2_UNROLL for (int j = 0; j < K; ++j) {
#pragma HLS UNROLL
                        const int copy = pc * Copies<K, REP>::n + (REP ? i * K + j : 0);
                        const typename T::xm_t xv = xmb[copy][q + off[i * K + j]];
                        const typename T::pm_t p = gv * xv;  // int10 x int4: a narrow LUT multiplier
#pragma HLS BIND_OP variable=p op=mul impl=fabric
                        r[po][pc][i * K + j] += p;
                    }
                }
            }
        }
    }
    E2_UNROLL for (int po = 0; po < PO; ++po)
        E2_UNROLL for (int pc = 0; pc < PC; ++pc)
            E2_UNROLL for (int t = 0; t < K * K; ++t) acc[po][pc][t] = r[po][pc][t];
}

template <class T, int K, int S, int PO, int PC, bool REP, int PLANE>
void psg_full_mac(const typename Buf<T>::px_t (*E2_RESTRICT xb)[PLANE], const typename Buf<T>::pg_t (*E2_RESTRICT gb)[PLANE],
                  const bool need[PO * PC * K * K], typename T::acc48_t acc[PO][PC][K * K], const Geometry &g) {
#pragma HLS INLINE off
    int off[K * K];
#pragma HLS ARRAY_PARTITION variable=off complete dim=0
    for (int t = 0; t < K * K; ++t) off[t] = tap_offset<S>(g, t / K, t % K);
    const int nq = g.nq;
    // operand isolation: a weight that is not needed multiplies zeros (an AND gate per operand bit)
    typename Buf<T>::px_t mask[PO * PC * K * K];
#pragma HLS ARRAY_PARTITION variable=mask complete dim=0
    E2_UNROLL for (int wi = 0; wi < PO * PC * K * K; ++wi) mask[wi] = need[wi] ? -1 : 0;
    for (int q0 = 0; q0 < nq; q0 += PSG_CHUNK) {
        const int q1 = q0 + PSG_CHUNK < nq ? q0 + PSG_CHUNK : nq;
        typename T::sum32_t s[PO][PC][K * K];
#pragma HLS ARRAY_PARTITION variable=s complete dim=0
        E2_UNROLL for (int po = 0; po < PO; ++po)
            E2_UNROLL for (int pc = 0; pc < PC; ++pc)
                E2_UNROLL for (int t = 0; t < K * K; ++t) s[po][pc][t] = 0;
        for (int q = q0; q < q1; ++q) {
#pragma HLS PIPELINE II=1
            E2_UNROLL for (int po = 0; po < PO; ++po) {
#pragma HLS UNROLL
                const typename Buf<T>::pg_t gv = gb[po][q];
                E2_UNROLL for (int pc = 0; pc < PC; ++pc) {
#pragma HLS UNROLL
                    E2_UNROLL for (int i = 0; i < K; ++i) {
#pragma HLS UNROLL
                        E2_UNROLL for (int j = 0; j < K; ++j) {
#pragma HLS UNROLL
                            const int copy = pc * Copies<K, REP>::n + (REP ? i * K + j : 0);
                            const int wi = (po * PC + pc) * K * K + i * K + j;
                            const typename Buf<T>::px_t xv = xb[copy][q + off[i * K + j]] & mask[wi];
                            const typename T::pgw_t p = gv * xv;
#pragma HLS BIND_OP variable=p op=mul impl=dsp
                            s[po][pc][i * K + j] += p;
                        }
                    }
                }
            }
        }
        E2_UNROLL for (int po = 0; po < PO; ++po)
            E2_UNROLL for (int pc = 0; pc < PC; ++pc)
                E2_UNROLL for (int t = 0; t < K * K; ++t) acc[po][pc][t] += s[po][pc][t];
    }
}

// Phase 1 of one tile as a class: the AVX2 build of g++ puts a register-blocked version in its place
// (hls/csim/mac_avx2.h).
template <class T, int K, int S, int PO, int PC, bool REP, int PLANE>
struct PsgMsbPass {
    static void run(const typename Buf<T>::pg_t (*xmb)[PLANE], const typename Buf<T>::pg_t (*gmb)[PLANE],
                    typename T::acc32_t acc[PO][PC][K * K], const Geometry &g) {
#pragma HLS INLINE
        psg_msb_mac<T, K, S, PO, PC, REP, PLANE>(xmb, gmb, acc, g);
    }
};

// Phase 2 of one job as a class: the g++ build puts a CPU version in its place (hls/csim/psg_cpu.h)
// that skips the weights a job does not need instead of multiplying zeros for them.
template <class T, int K, int S, int PO, int PC, bool REP, int PLANE>
struct PsgFullPass {
    static void run(const typename Buf<T>::px_t (*xb)[PLANE], const typename Buf<T>::pg_t (*gb)[PLANE],
                    const bool need[PO * PC * K * K], typename T::acc48_t acc[PO][PC][K * K], const Geometry &g) {
#pragma HLS INLINE
        psg_full_mac<T, K, S, PO, PC, REP, PLANE>(xb, gb, need, acc, g);
    }
};

template <class V>
inline int sgn(const V &v) {
    return v > 0 ? 1 : (v < 0 ? -1 : 0);
}

// Planes of one pass (the images [nn0, nn0 + g.nb), stacked): input channels [c0, c0 + cnt) as x (or
// x_msb) into slots [0, cnt), and output-gradient channels [o0, o0 + cnt) as g (or g_msb).
template <int S, int K, bool MSB, int COPIES, class Src, class Dst, int PLANE>
void load_x_pass(const Src *x, int c, int c0, int cnt, int nn0, long xplane, Dst (*buf)[PLANE], const Geometry &g) {
    for (int pc = 0; pc < cnt; ++pc)
        for (int b = 0; b < g.nb; ++b)
            load_input<S, K, MSB, COPIES>(x + ((long)(nn0 + b) * c + c0 + pc) * xplane, c0 + pc < c, buf[pc * COPIES],
                                          PLANE, g, b);
}

template <bool MSB, class Src, class Dst, int PLANE>
void load_g_pass(const Src *gy, int o, int o0, int cnt, int nn0, long gplane, Dst (*buf)[PLANE], const Geometry &g) {
    for (int po = 0; po < cnt; ++po)
        for (int b = 0; b < g.nb; ++b)
            load_grad<MSB>(gy + ((long)(nn0 + b) * o + o0 + po) * gplane, o0 + po < o, buf[po], g, b);
}

// The g++ build (!REP) stacks the batch in its buffer planes (plane.h); when the whole batch fits one
// plane, the call is resident: every channel's planes are loaded once per phase into a slot of their
// own, and each tile reads its channels' slots (the hardware loads a tile's planes per image).
template <int PLANE>
inline bool psg_resident(int n, int h, int w, int k, int s) {
    return stack_count<PLANE>(n, h, w, k, s) == n;
}

template <class T, int K, int S, int PO, int PC, bool REP, int PLANE>
void conv_bwd_weight_psg_core(const typename T::x_t *x, const typename T::g_t *gy, typename T::sign_t *sign,
                              typename T::out48_t *g_full, typename T::acc32_t *g_msb, int n, int c, int h, int wd,
                              int o, int beta_q, int mode, int *predicted, int *max_abs_msb,
                              typename Buf<T>::px_t (*xb)[PLANE], typename Buf<T>::pg_t (*xmb)[PLANE],
                              typename Buf<T>::pg_t (*gb)[PLANE], hls::stream<PsgJob<PO * PC * K * K> > &jobs) {
    // Local buffers: PC input planes (COPIES per tap in hardware) for x (phase 2) and x_msb (phase 1),
    // and PO gradient planes reused by both phases (g_msb, then g); resident: every channel's.
    const int KK = K * K;
    const int NW = PO * PC * KK;
    const int COPIES = Copies<K, REP>::n;
    const int nb = REP ? 1 : stack_count<PLANE>(n, h, wd, K, S);  // images per pass
    const bool resident = !REP && nb == n;
    const int cpad = (c + PC - 1) / PC * PC, opad = (o + PO - 1) / PO * PO;
    const Geometry g = geometry(h, wd, K, S, nb);
    const Geometry glast = geometry(h, wd, K, S, n - (n - 1) / nb * nb);
    const long xplane = (long)h * wd, gplane = (long)g.ho * g.wo;
    typename T::acc32_t top = 0;  // max |G_msb|
    int count = 0;
    int njobs = 0;

    if (mode == MODE_PSG) {
        // phase 1: G_msb of every weight, and its largest magnitude
        if (resident) {
            load_x_pass<S, K, true, COPIES>(x, c, 0, cpad, 0, xplane, xmb, g);
            load_g_pass<true>(gy, o, 0, opad, 0, gplane, gb, g);
        }
        for (int o0 = 0; o0 < o; o0 += PO) {
            for (int c0 = 0; c0 < c; c0 += PC) {
                typename T::acc32_t acc[PO][PC][K * K];
#pragma HLS ARRAY_PARTITION variable=acc complete dim=0
                for (int po = 0; po < PO; ++po)
                    for (int pc = 0; pc < PC; ++pc)
                        for (int t = 0; t < KK; ++t) acc[po][pc][t] = 0;
                for (int nn = 0; nn < n; nn += nb) {
                    const Geometry &gp = nn + nb < n ? g : glast;
                    if (!resident) {
                        load_x_pass<S, K, true, COPIES>(x, c, c0, PC, nn, xplane, xmb, gp);
                        load_g_pass<true>(gy, o, o0, PO, nn, gplane, gb, gp);
                    }
                    PsgMsbPass<T, K, S, PO, PC, REP, PLANE>::run(xmb + (resident ? c0 * COPIES : 0), gb + (resident ? o0 : 0),
                                                             acc, gp);
                }
                for (int po = 0; po < PO && o0 + po < o; ++po)
                    for (int pc = 0; pc < PC && c0 + pc < c; ++pc)
                        for (int t = 0; t < KK; ++t) {
#pragma HLS PIPELINE II=1
                            const typename T::acc32_t v = acc[po][pc][t];
                            const typename T::acc32_t mag = v < 0 ? typename T::acc32_t(-v) : v;
                            if (mag > top) top = mag;
                            g_msb[((long)(o0 + po) * c + c0 + pc) * KK + t] = v;
                        }
            }
        }
        // select: confident weights take the predicted sign; tiles with any other weight become jobs
        const long long rhs = (long long)beta_q * (long long)top;
        for (int o0 = 0; o0 < o; o0 += PO) {
            for (int c0 = 0; c0 < c; c0 += PC) {
                PsgJob<PO * PC * K * K> job;
                job.o0 = o0;
                job.c0 = c0;
                bool any = false;
                for (int wi = 0; wi < NW; ++wi) {
#pragma HLS PIPELINE II=1
                    const int po = wi / (PC * KK), pc = (wi / KK) % PC, t = wi % KK;
                    job.need[wi] = false;
                    if (o0 + po >= o || c0 + pc >= c) continue;
                    const long idx = ((long)(o0 + po) * c + c0 + pc) * KK + t;
                    const typename T::acc32_t v = g_msb[idx];
                    const long long mag = v < 0 ? -(long long)v : (long long)v;
                    if (mag != 0 && mag * BETA_ONE >= rhs) {
                        sign[idx] = sgn(v);
                        ++count;
                    } else {
                        job.need[wi] = true;
                        any = true;
                    }
                }
                if (any) {
                    jobs.write(job);
                    ++njobs;
                }
            }
        }
    } else {
        for (int o0 = 0; o0 < o; o0 += PO)
            for (int c0 = 0; c0 < c; c0 += PC) {
                PsgJob<PO * PC * K * K> job;
                job.o0 = o0;
                job.c0 = c0;
                for (int wi = 0; wi < NW; ++wi) {
                    const int po = wi / (PC * KK), pc = (wi / KK) % PC;
                    job.need[wi] = o0 + po < o && c0 + pc < c;
                }
                jobs.write(job);
                ++njobs;
            }
    }

    // phase 2: the full-precision gradient of the weights each job needs
    if (resident && njobs > 0) {
        load_x_pass<S, K, false, COPIES>(x, c, 0, cpad, 0, xplane, xb, g);
        load_g_pass<false>(gy, o, 0, opad, 0, gplane, gb, g);
    }
    for (int jn = 0; jn < njobs; ++jn) {
        const PsgJob<PO * PC * K * K> job = jobs.read();
        typename T::acc48_t acc[PO][PC][K * K];
#pragma HLS ARRAY_PARTITION variable=acc complete dim=0
        for (int po = 0; po < PO; ++po)
            for (int pc = 0; pc < PC; ++pc)
                for (int t = 0; t < KK; ++t) acc[po][pc][t] = 0;
        for (int nn = 0; nn < n; nn += nb) {
            const Geometry &gp = nn + nb < n ? g : glast;
            if (!resident) {
                load_x_pass<S, K, false, COPIES>(x, c, job.c0, PC, nn, xplane, xb, gp);
                load_g_pass<false>(gy, o, job.o0, PO, nn, gplane, gb, gp);
            }
            PsgFullPass<T, K, S, PO, PC, REP, PLANE>::run(xb + (resident ? job.c0 * COPIES : 0),
                                                          gb + (resident ? job.o0 : 0), job.need, acc, gp);
        }
        for (int wi = 0; wi < NW; ++wi) {
#pragma HLS PIPELINE II=1
            if (!job.need[wi]) continue;
            const int po = wi / (PC * KK), pc = (wi / KK) % PC, t = wi % KK;
            const long idx = ((long)(job.o0 + po) * c + job.c0 + pc) * KK + t;
            const typename T::acc48_t v = acc[po][pc][t];
            sign[idx] = sgn(v);
            g_full[idx] = v;
        }
    }
    *predicted = count;
    *max_abs_msb = top;
}

// PO x PC is the tile of the 3x3 kernels, PO1 x PC1 that of the 1x1 kernels (more channels, as each
// weight has one tap instead of nine).
template <class T, int PO, int PC, int PO1, int PC1, bool REP, int PLANE>
int conv_bwd_weight_psg_dispatch(const typename T::x_t *x, const typename T::g_t *gy, typename T::sign_t *sign,
                                 typename T::out48_t *g_full, typename T::acc32_t *g_msb, int n, int c, int h, int wd,
                                 int o, int k, int s, int beta_q, int mode, int *predicted, int *max_abs_msb,
                                 typename Buf<T>::px_t (*xb)[PLANE], typename Buf<T>::pg_t (*xmb)[PLANE],
                                 typename Buf<T>::pg_t (*gb)[PLANE]) {
    if (beta_q < 0 || beta_q > BETA_ONE || (mode != MODE_PSG && mode != MODE_FULL)) return E2_BAD_ARG;
#define E2_PSG_CASE(KV, SV, TO, TC)                                                                              \
    if (k == KV && s == SV) {                                                                                    \
        hls::stream<PsgJob<TO * TC * KV * KV> > jobs("psg_jobs");                                                \
        E2_PRAGMA(HLS STREAM variable=jobs depth=4096)  /* PSG_MAX_JOBS */                                \
        conv_bwd_weight_psg_core<T, KV, SV, TO, TC, REP, PLANE>(x, gy, sign, g_full, g_msb, n, c, h, wd, o, beta_q, \
                                                                 mode, predicted, max_abs_msb, xb, xmb, gb, jobs); \
        return E2_OK;                                                                                            \
    }
    E2_PSG_CASE(3, 1, PO, PC)
    E2_PSG_CASE(3, 2, PO, PC)
    E2_PSG_CASE(1, 1, PO1, PC1)
    E2_PSG_CASE(1, 2, PO1, PC1)
#undef E2_PSG_CASE
    return E2_BAD_ARG;
}

const int PSG_PO = 4;   // 3x3: 4 x 2 x 9 = 72 weights per tile
const int PSG_PC = 2;
const int PSG_PO1 = 8;  // 1x1: 8 x 8 = 64 weights per tile
const int PSG_PC1 = 8;

}  // namespace e2

int conv_bwd_weight_psg_top(const e2::ApTypes::x_t *x, const e2::ApTypes::g_t *gy, e2::ApTypes::sign_t *sign,
                            e2::ApTypes::out48_t *g_full, e2::ApTypes::acc32_t *g_msb, int n, int c, int h, int wd,
                            int o, int k, int stride, int beta_q, int mode, int *predicted, int *max_abs_msb);

#endif
