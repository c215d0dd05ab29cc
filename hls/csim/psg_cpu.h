// Phase 2 of the weight-gradient kernel for the g++ build (NativeTypes): the same sums as
// psg_full_mac (hls/src/conv_bwd_weight_psg.h), for the weights a job needs only. Included by
// e2_csim.cpp; synthesis never sees it.
//
// Why: the hardware runs a job's whole tile and holds the operands of the weights it does not need at
// zero (no toggling: that is where PSG saves energy), so its time does not depend on how many weights
// fell back. A CPU pays for every product it makes, zero or not: with 85 % of the weights predicted, a
// 9-weight tile still has an unconfident weight 3 times in 4, and the whole tile would run again. Here
// each needed weight is one dot product over the positions (g++ makes it vpmaddwd), unless most of the
// tile is needed, when the tile's own loop (which shares the gradient loads) is faster.
#ifndef E2_PSG_CPU_H
#define E2_PSG_CPU_H

#include "conv_bwd_weight_psg.h"

namespace e2 {

template <int K, int S, int PO, int PC, int PLANE>
struct PsgFullPass<NativeTypes, K, S, PO, PC, false, PLANE> {
    static const int KK = K * K, NW = PO * PC * KK;

    static void run(const int16_t (*xb)[PLANE], const int16_t (*gb)[PLANE], const bool need[NW],
                    int64_t acc[PO][PC][KK], const Geometry &g) {
        int needed = 0;
        for (int wi = 0; wi < NW; ++wi) needed += need[wi];
        if (3 * needed > 2 * NW) {  // most of the tile: its own loop
            psg_full_mac<NativeTypes, K, S, PO, PC, false, PLANE>(xb, gb, need, acc, g);
            return;
        }
        const int nq = g.nq;
        for (int wi = 0; wi < NW; ++wi) {
            if (!need[wi]) continue;
            const int po = wi / (PC * KK), pc = (wi / KK) % PC, t = wi % KK;
            const int16_t *E2_RESTRICT gv = gb[po];
            const int16_t *E2_RESTRICT xv = xb[pc] + tap_offset<S>(g, t / K, t % K);
            int64_t total = 0;
            for (int q0 = 0; q0 < nq; q0 += PSG_CHUNK) {  // 32-bit partial sums, as psg_full_mac
                const int q1 = q0 + PSG_CHUNK < nq ? q0 + PSG_CHUNK : nq;
                int32_t s = 0;
                for (int q = q0; q < q1; ++q) s += gv[q] * xv[q];
                total += s;
            }
            acc[po][pc][t] += total;
        }
    }
};

}  // namespace e2

#endif
