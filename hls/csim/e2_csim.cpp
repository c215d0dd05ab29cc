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
#include "fwd_lanes.h"
#include "mac_avx2.h"
#include "psg_cpu.h"

namespace {

using e2::NativeTypes;

// CPU tile sizes (measured on an AVX2 core; hls/README.md), and the planes the heap buffers are laid
// out for: two instances of forward and backward-data, for inputs up to 128 x 128 (compact planes, the
// common case) and up to 512 x 512; the weight gradient takes the large planes only (it stacks the batch).
const int SMALL_HW = 128, LARGE_HW = 512;
template <int MAX_HW_>
struct Plane {
    static const int size = (MAX_HW_ + 2 + 4) * (MAX_HW_ + 2 + 2);  // as MAX_PLANE (e2_types.h)
};
#ifdef __AVX2__
// mac_avx2.h: backward-data eight output-channel pairs per pass; the forward kernel is fwd_lanes.h
const int BWD_PC = 8, BWD_OC = 16;
#else
const int FWD_PO = 8, FWD_CC = 1;
const int BWD_PC = 8, BWD_OC = 1;
#endif
// The weight gradient keeps a plane for every channel (resident), so a small tile costs no reloads: it
// keeps its sums in registers (g++ makes one vpmaddwd accumulator per weight, 16 ymm registers) and
// lets more tiles skip phase 2.
#ifdef __AVX2__
const int PSG_PO = 2, PSG_PC = 1, PSG_PO1 = 4, PSG_PC1 = 2;  // mac_avx2.h: phase 1 by kernel rows, 2 outputs
#else
const int PSG_PO = 1, PSG_PC = 1, PSG_PO1 = 4, PSG_PC1 = 2;
#endif

bool cpu_shape_ok(int n, int c, int h, int w, int o) {
    return n >= 1 && c >= 1 && o >= 1 && h >= 1 && w >= 1 && h <= LARGE_HW && w <= LARGE_HW;
}

bool small(int h, int w) { return h <= SMALL_HW && w <= SMALL_HW; }

// Heap planes, kept per thread between calls (no allocation or page faults per call) and left
// uninitialised: every kernel writes a plane region before it reads it.
template <class V, int SLOT, int PLANE>
V (*planes(int count))[PLANE] {
    thread_local std::unique_ptr<V[]> buf;
    thread_local int have = 0;
    if (count > have) {
        buf.reset(new V[(size_t)count * PLANE]);
        have = count;
    }
    return reinterpret_cast<V(*)[PLANE]>(buf.get());
}

// With AVX2 the forward kernel runs on a CPU schedule of its own (fwd_lanes.h: images in the lanes,
// no planes), for every image size the fast path takes; otherwise the kernel's core on the planes.
template <int PLANE>
int fwd(const int8_t *x, const int8_t *w, int32_t *y, int n, int c, int h, int wd, int o, int k, int s) {
#ifdef E2_AVX2_PASSES
    return e2::avx2::conv_fwd_lanes(x, w, y, n, c, h, wd, o, k, s);
#else
    return e2::conv_fwd_dispatch<NativeTypes, FWD_PO, FWD_CC, false, PLANE>(
        x, w, y, n, c, h, wd, o, k, s, planes<e2::Buf<NativeTypes>::x_t, 0, PLANE>(e2::fwd_input_slots<FWD_CC, false>(c)),
        planes<int32_t, 1, PLANE>(FWD_PO));
#endif
}

template <int PLANE>
int bwd_data(const int16_t *g, const int8_t *w, int64_t *gx, int n, int c, int h, int wd, int o, int k, int s) {
    return e2::conv_bwd_data_dispatch<NativeTypes, BWD_PC, BWD_OC, false, PLANE>(
        g, w, gx, n, c, h, wd, o, k, s, planes<e2::Buf<NativeTypes>::g_t, 2, PLANE>(e2::bwd_grad_slots<BWD_OC, false>(o)), planes<int64_t, 0, PLANE>(BWD_PC));
}

// The weight-gradient kernel stacks the batch in its planes (conv_bwd_weight_psg.h), so it takes the
// large planes whatever the image size; when the whole batch fits, it keeps a slot for every channel.
template <int PLANE>
int psg(const int8_t *x, const int16_t *g, int8_t *sign, int64_t *g_full, int32_t *g_msb, int n, int c, int h,
        int wd, int o, int k, int s, int beta_q, int mode, int *predicted, int *max_abs_msb) {
    if (!e2::conv_args_ok(k, s)) return e2::E2_BAD_ARG;
    const int pc = k == 1 ? PSG_PC1 : PSG_PC, po = k == 1 ? PSG_PO1 : PSG_PO;
    const bool resident = e2::psg_resident<PLANE>(n, h, wd, k, s);
    const int xslots = resident ? (c + pc - 1) / pc * pc : pc, gslots = resident ? (o + po - 1) / po * po : po;
    return e2::conv_bwd_weight_psg_dispatch<NativeTypes, PSG_PO, PSG_PC, PSG_PO1, PSG_PC1, false, PLANE>(
        x, g, sign, g_full, g_msb, n, c, h, wd, o, k, s, beta_q, mode, predicted, max_abs_msb,
        planes<e2::Buf<NativeTypes>::px_t, 3, PLANE>(xslots), planes<e2::Buf<NativeTypes>::pg_t, 4, PLANE>(xslots),
        planes<e2::Buf<NativeTypes>::pg_t, 5, PLANE>(gslots));
}

}  // namespace

extern "C" {

// The contract version the kernels implement (E2_CONTRACT_VERSION): the host refuses a library whose
// version differs from e2train.fixed.CONTRACT_VERSION (a stale build would give other bits).
int e2_contract_version(void) { return E2_CONTRACT_VERSION; }

// Largest input height/width the fast path accepts.
int e2_max_hw(void) { return LARGE_HW; }

// The MSB predictors of n values in NativeTypes, as the plane loaders compute them (e2_types.h), for
// the tests to compare with e2train.fixed.msb on every int8 and int16 value.
void e2_x_msb(const int8_t *x, int8_t *m, int n) {
    for (int i = 0; i < n; ++i) m[i] = e2::x_msb_of(x[i]);
}
void e2_g_msb(const int16_t *g, int16_t *m, int n) {
    for (int i = 0; i < n; ++i) m[i] = e2::g_msb_of(g[i]);
}

// 1 on an AVX2 build (the forward kernel of fwd_lanes.h, the backward-data and weight-gradient
// passes of mac_avx2.h), 0 when the kernels' own loops run.
int e2_avx2_passes(void) {
#ifdef E2_AVX2_PASSES
    return 1;
#else
    return 0;
#endif
}

int e2_conv_fwd(const int8_t *x, const int8_t *w, int32_t *y, int n, int c, int h, int wd, int o, int k, int s) {
    if (!cpu_shape_ok(n, c, h, wd, o)) return e2::E2_BAD_SHAPE;
    try {
        return small(h, wd) ? fwd<Plane<SMALL_HW>::size>(x, w, y, n, c, h, wd, o, k, s)
                            : fwd<Plane<LARGE_HW>::size>(x, w, y, n, c, h, wd, o, k, s);
    } catch (const std::bad_alloc &) {
        return e2::E2_NO_MEMORY;
    }
}

int e2_conv_bwd_data(const int16_t *g, const int8_t *w, int64_t *gx, int n, int c, int h, int wd, int o, int k,
                     int s) {
    if (!cpu_shape_ok(n, c, h, wd, o)) return e2::E2_BAD_SHAPE;
    try {
        return small(h, wd) ? bwd_data<Plane<SMALL_HW>::size>(g, w, gx, n, c, h, wd, o, k, s)
                            : bwd_data<Plane<LARGE_HW>::size>(g, w, gx, n, c, h, wd, o, k, s);
    } catch (const std::bad_alloc &) {
        return e2::E2_NO_MEMORY;
    }
}

int e2_conv_bwd_weight_psg(const int8_t *x, const int16_t *g, int8_t *sign, int64_t *g_full, int32_t *g_msb, int n,
                           int c, int h, int wd, int o, int k, int s, int beta_q, int mode, int *predicted,
                           int *max_abs_msb) {
    if (!cpu_shape_ok(n, c, h, wd, o)) return e2::E2_BAD_SHAPE;
    try {
        return psg<Plane<LARGE_HW>::size>(x, g, sign, g_full, g_msb, n, c, h, wd, o, k, s, beta_q, mode, predicted,
                                          max_abs_msb);
    } catch (const std::bad_alloc &) {
        return e2::E2_NO_MEMORY;
    }
}

}  // extern "C"
