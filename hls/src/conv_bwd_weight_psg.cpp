// Synthesizable top of conv_bwd_weight_psg for the xc7z020 at 100 MHz (hls/tcl/conv_bwd_weight_psg.tcl).
#include "conv_bwd_weight_psg.h"

int conv_bwd_weight_psg_top(const e2::ApTypes::x_t *x, const e2::ApTypes::g_t *gy, e2::ApTypes::sign_t *sign,
                            e2::ApTypes::out48_t *g_full, e2::ApTypes::acc32_t *g_msb, int n, int c, int h, int wd,
                            int o, int k, int stride, int beta_q, int mode, int *predicted, int *max_abs_msb) {
#pragma HLS INTERFACE mode=m_axi port=x offset=slave bundle=gmem0 depth=32768 max_read_burst_length=64
#pragma HLS INTERFACE mode=m_axi port=gy offset=slave bundle=gmem1 depth=32768 max_read_burst_length=64
#pragma HLS INTERFACE mode=m_axi port=sign offset=slave bundle=gmem2 depth=36864
#pragma HLS INTERFACE mode=m_axi port=g_full offset=slave bundle=gmem2 depth=36864
#pragma HLS INTERFACE mode=m_axi port=g_msb offset=slave bundle=gmem2 depth=36864
    E2_SHAPE_INTERFACE
#pragma HLS INTERFACE mode=s_axilite port=beta_q
#pragma HLS INTERFACE mode=s_axilite port=mode
#pragma HLS INTERFACE mode=s_axilite port=predicted
#pragma HLS INTERFACE mode=s_axilite port=max_abs_msb
    using namespace e2;
    if (!shape_ok(n, c, h, wd, o)) return E2_BAD_SHAPE;
    if (!conv_args_ok(k, stride)) return E2_BAD_ARG;
    const int to = k == 3 ? PSG_PO : PSG_PO1, tc = k == 3 ? PSG_PC : PSG_PC1;
    if ((long)((o + to - 1) / to) * ((c + tc - 1) / tc) > PSG_MAX_JOBS) return E2_BAD_SHAPE;
    // PC input planes, one copy per tap (18 BRAM18 for 3x3), for x (8 bit) and x_msb (phase 1), and
    // PO gradient planes (one BRAM18 each), reused by both phases.
    // (the 1x1 tile has PC1 = 8 planes of one copy: fewer than PC * 9 = 18)
    Buf<ApTypes>::px_t xb[PSG_PC * MAX_K * MAX_K][MAX_PLANE];
#pragma HLS ARRAY_PARTITION variable=xb complete dim=1
#pragma HLS BIND_STORAGE variable=xb type=ram_t2p impl=bram
    Buf<ApTypes>::pg_t xmb[PSG_PC * MAX_K * MAX_K][MAX_PLANE];
#pragma HLS ARRAY_PARTITION variable=xmb complete dim=1
#pragma HLS BIND_STORAGE variable=xmb type=ram_t2p impl=bram
    Buf<ApTypes>::pg_t gb[PSG_PO1][MAX_PLANE];
#pragma HLS ARRAY_PARTITION variable=gb complete dim=1
#pragma HLS BIND_STORAGE variable=gb type=ram_t2p impl=bram
    return conv_bwd_weight_psg_dispatch<ApTypes, PSG_PO, PSG_PC, PSG_PO1, PSG_PC1, true, MAX_PLANE>(
        x, gy, sign, g_full, g_msb, n, c, h, wd, o, k, stride, beta_q, mode, predicted, max_abs_msb, xb, xmb, gb);
}
