// The C-simulation library behind the `csim` fabric backend (host/e2train/fabric/csim.py).
//
// e2_<kernel>: the kernel templates of hls/src instantiated with NativeTypes and CPU tile sizes, on
// plain C arrays: the fast path that the backend uses. The synthesizable tops themselves are exported
// by e2_csim_ap.cpp (e2_ap_<kernel>), which the tests use to prove both paths give the same bits.
#include <stdint.h>

#include <memory>
#include <new>

#include "conv_bwd_data.h"
#include "conv_bwd_weight_psg.h"
#include "conv_fwd.h"

namespace {

using e2::NativeTypes;

// CPU tile sizes (measured on an AVX2 core; hls/README.md) and the largest plane the heap buffers
// are laid out for: inputs up to 128 x 128.
const int CPU_MAX_HW = 128;
const int CPU_PLANE = (CPU_MAX_HW + 2 + 4) * (CPU_MAX_HW + 2 + 2);  // as MAX_PLANE (e2_types.h)
const int FWD_PO = 8, FWD_CC = 1;
const int BWD_PC = 8, BWD_OC = 1;
const int PSG_PO = 4, PSG_PC = 4, PSG_PO1 = 8, PSG_PC1 = 8;

bool cpu_shape_ok(int n, int c, int h, int w, int o) {
    return n >= 1 && c >= 1 && o >= 1 && h >= 1 && w >= 1 && h <= CPU_MAX_HW && w <= CPU_MAX_HW;
}

// Heap planes, kept per thread between calls (no allocation or page faults per call) and left
// uninitialised: every kernel writes a plane region before it reads it.
template <class V, int SLOT>
V (*planes(int count))[CPU_PLANE] {
    thread_local std::unique_ptr<V[]> buf;
    thread_local int have = 0;
    if (count > have) {
        buf.reset(new V[(size_t)count * CPU_PLANE]);
        have = count;
    }
    return reinterpret_cast<V(*)[CPU_PLANE]>(buf.get());
}

}  // namespace

extern "C" {

// Largest input height/width the fast path accepts.
int e2_max_hw(void) { return CPU_MAX_HW; }

int e2_conv_fwd(const int8_t *x, const int8_t *w, int32_t *y, int n, int c, int h, int wd, int o, int k, int s) {
    if (!cpu_shape_ok(n, c, h, wd, o)) return e2::E2_BAD_SHAPE;
    try {
        return e2::conv_fwd_dispatch<NativeTypes, FWD_PO, FWD_CC, false, CPU_PLANE>(
            x, w, y, n, c, h, wd, o, k, s, planes<int16_t, 0>(FWD_CC), planes<int32_t, 0>(FWD_PO));
    } catch (const std::bad_alloc &) {
        return -1;
    }
}

int e2_conv_bwd_data(const int16_t *g, const int8_t *w, int64_t *gx, int n, int c, int h, int wd, int o, int k,
                     int s) {
    if (!cpu_shape_ok(n, c, h, wd, o)) return e2::E2_BAD_SHAPE;
    try {
        return e2::conv_bwd_data_dispatch<NativeTypes, BWD_PC, BWD_OC, false, CPU_PLANE>(
            g, w, gx, n, c, h, wd, o, k, s, planes<int16_t, 1>(BWD_OC), planes<int64_t, 0>(BWD_PC));
    } catch (const std::bad_alloc &) {
        return -1;
    }
}

int e2_conv_bwd_weight_psg(const int8_t *x, const int16_t *g, int8_t *sign, int64_t *g_full, int32_t *g_msb, int n,
                           int c, int h, int wd, int o, int k, int s, int beta_q, int mode, int *predicted,
                           int *max_abs_msb) {
    if (!cpu_shape_ok(n, c, h, wd, o)) return e2::E2_BAD_SHAPE;
    try {
        e2::PsgBuffers<NativeTypes, CPU_PLANE> buf;
        buf.xb = planes<int16_t, 2>(PSG_PC > PSG_PC1 ? PSG_PC : PSG_PC1);
        buf.xmb = planes<int16_t, 3>(PSG_PC > PSG_PC1 ? PSG_PC : PSG_PC1);
        buf.gb = planes<int16_t, 4>(PSG_PO > PSG_PO1 ? PSG_PO : PSG_PO1);
        return e2::conv_bwd_weight_psg_dispatch<NativeTypes, PSG_PO, PSG_PC, PSG_PO1, PSG_PC1, false, CPU_PLANE>(
            x, g, sign, g_full, g_msb, n, c, h, wd, o, k, s, beta_q, mode, predicted, max_abs_msb, buf);
    } catch (const std::bad_alloc &) {
        return -1;
    }
}

}  // extern "C"
