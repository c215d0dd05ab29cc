// Synthesizable top of conv_fwd for the xc7z020 at 100 MHz (hls/tcl/conv_fwd.tcl).
#include "conv_fwd.h"

int conv_fwd_top(const e2::ApTypes::x_t *x, const e2::ApTypes::w_t *w, e2::ApTypes::acc32_t *y, int n, int c,
                 int h, int wd, int o, int k, int stride) {
#pragma HLS INTERFACE mode=m_axi port=x offset=slave bundle=gmem0 depth=32768 max_read_burst_length=64
#pragma HLS INTERFACE mode=m_axi port=w offset=slave bundle=gmem1 depth=36864 max_read_burst_length=64
#pragma HLS INTERFACE mode=m_axi port=y offset=slave bundle=gmem0 depth=32768 max_write_burst_length=64
    E2_SHAPE_INTERFACE
    using namespace e2;
    if (!shape_ok(n, c, h, wd, o)) return E2_BAD_SHAPE;
    if (!conv_args_ok(k, stride)) return E2_BAD_ARG;
    // One copy of the padded input plane per tap (9 BRAM18 for 3x3: the 9 reads of a position in one
    // cycle) and PO accumulator planes (one BRAM each: the PO writes of a position in one cycle).
    Buf<ApTypes>::x_t xb[FWD_CC * MAX_K * MAX_K][MAX_PLANE];
#pragma HLS ARRAY_PARTITION variable=xb complete dim=1
#pragma HLS BIND_STORAGE variable=xb type=ram_t2p impl=bram
    ApTypes::acc32_t acc[FWD_PO][MAX_PLANE];
#pragma HLS ARRAY_PARTITION variable=acc complete dim=1
#pragma HLS BIND_STORAGE variable=acc type=ram_t2p impl=bram
    return conv_fwd_dispatch<ApTypes, FWD_PO, FWD_CC, true, MAX_PLANE>(x, w, y, n, c, h, wd, o, k, stride, xb, acc);
}
