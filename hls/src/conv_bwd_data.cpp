// Synthesizable top of conv_bwd_data for the xc7z020 at 100 MHz (hls/tcl/conv_bwd_data.tcl).
#include "conv_bwd_data.h"

int conv_bwd_data_top(const e2::ApTypes::g_t *gy, const e2::ApTypes::w_t *w, e2::ApTypes::out48_t *gx, int n, int c,
                      int h, int wd, int o, int k, int stride) {
#pragma HLS INTERFACE mode=m_axi port=gy offset=slave bundle=gmem0 depth=32768 max_read_burst_length=64
#pragma HLS INTERFACE mode=m_axi port=w offset=slave bundle=gmem1 depth=36864 max_read_burst_length=64
#pragma HLS INTERFACE mode=m_axi port=gx offset=slave bundle=gmem0 depth=32768 max_write_burst_length=64
    E2_SHAPE_INTERFACE
    using namespace e2;
    if (!shape_ok(n, c, h, wd, o)) return E2_BAD_SHAPE;
    if (!conv_args_ok(k, stride)) return E2_BAD_ARG;
    // One copy of the gradient plane per tap (9 BRAM18 of 16 bit for 3x3) and PC 48-bit
    // accumulator planes (two BRAM36 each, one bank per channel).
    Buf<ApTypes>::g_t gb[BWD_OC * MAX_K * MAX_K][MAX_PLANE];
#pragma HLS ARRAY_PARTITION variable=gb complete dim=1
#pragma HLS BIND_STORAGE variable=gb type=ram_t2p impl=bram
    ApTypes::acc48_t acc[BWD_PC][MAX_PLANE];
#pragma HLS ARRAY_PARTITION variable=acc complete dim=1
#pragma HLS BIND_STORAGE variable=acc type=ram_t2p impl=bram
    return conv_bwd_data_dispatch<ApTypes, BWD_PC, BWD_OC, true, MAX_PLANE>(gy, w, gx, n, c, h, wd, o, k, stride, gb, acc);
}
