// Number formats of docs/contracts.md as C++ types, in two families with the same values:
//   ApTypes      ap_int / ap_uint at the contract's real widths: what the synthesizable tops use,
//                so that the int4 x int10 predictor becomes a narrow LUT multiplier in synthesis.
//   NativeTypes  plain integers wide enough for every value: what the fast g++ build uses.
// The kernel templates in hls/src are written once over either family; tests prove both give the
// same bits (tests/test_csim_ap_path.py).
#ifndef E2_TYPES_H
#define E2_TYPES_H

#include <stdint.h>

#include "ap_int.h"

#ifdef __GNUC__
#define E2_RESTRICT __restrict__
#else
#define E2_RESTRICT
#endif

// The g++ build must unroll the small tap/channel loops before it vectorises the loop over positions
// (HLS UNROLL pragmas mean nothing to g++); Vitis HLS takes its own pragmas and ignores this one.
#if defined(__GNUC__) && !defined(__clang__) && !defined(__SYNTHESIS__)
#define E2_UNROLL _Pragma("GCC unroll 64")
#else
#define E2_UNROLL
#endif

// The contract these kernels implement (docs/contracts.md; e2train.fixed.CONTRACT_VERSION). 2: the MSB
// predictors round to nearest and saturate (msb_round below). The csim library exports it and the host
// refuses a library of another version; the testbenches refuse golden files of another version.
#define E2_CONTRACT_VERSION 2

namespace e2 {

// Sizes the synthesizable tops are built for: their local buffers are static arrays (BRAM).
const int MAX_HW = 32;                 // input height and width (CIFAR)
const int MAX_K = 3;                   // kernel size
const int MAX_PAD_HW = MAX_HW + 2;     // padded height/width
// A padded plane plus the slack rows that flat indexing reads past its end (see plane.h), for
// either layout: (hp + 2) * wp at stride 1, 4 * (ceil(hp / 2) + 2) * ceil(wp / 2) at stride 2.
const int MAX_PLANE = (MAX_PAD_HW + 4) * (MAX_PAD_HW + 2);

// Return codes of the tops (the ap_return register) and of the csim library's entry points; the host
// states the same in e2train/contract.py (tests/test_contract_header.py holds the two equal).
const int E2_OK = 0;
const int E2_BAD_SHAPE = 1;    // a size the local buffers cannot hold, or not in the contract
const int E2_BAD_ARG = 2;      // k, stride, mode or beta_q outside the contract
const int E2_NO_MEMORY = -1;   // the g++ build's heap planes could not be allocated (never from a top)

// The checks every top makes before it touches memory (the host driver checks too; the kernel
// must not trust it).
inline bool shape_ok(int n, int c, int h, int w, int o) {
    return n >= 1 && c >= 1 && o >= 1 && h >= 1 && w >= 1 && h <= MAX_HW && w <= MAX_HW;
}
inline bool conv_args_ok(int k, int stride) { return (k == 1 || k == 3) && (stride == 1 || stride == 2); }

// The s_axilite ports of the shape arguments and the return code, and ap_ctrl_hs: the same in every top.
#define E2_PRAGMA(x) _Pragma(#x)
#define E2_SHAPE_INTERFACE                                 \
    E2_PRAGMA(HLS INTERFACE mode=s_axilite port=n)         \
    E2_PRAGMA(HLS INTERFACE mode=s_axilite port=c)         \
    E2_PRAGMA(HLS INTERFACE mode=s_axilite port=h)         \
    E2_PRAGMA(HLS INTERFACE mode=s_axilite port=wd)        \
    E2_PRAGMA(HLS INTERFACE mode=s_axilite port=o)         \
    E2_PRAGMA(HLS INTERFACE mode=s_axilite port=k)         \
    E2_PRAGMA(HLS INTERFACE mode=s_axilite port=stride)    \
    E2_PRAGMA(HLS INTERFACE mode=s_axilite port=return)    \
    E2_PRAGMA(HLS INTERFACE mode=ap_ctrl_hs port=return)

// The MSB predictor of a BITS-bit value (contract v2): its top BITS - SHIFT bits rounded to nearest,
// ties toward +inf, the top code saturated: min((v + 2^(SHIFT-1)) >> SHIFT, 2^(BITS-SHIFT-1) - 1).
// Hardware: an incrementer on the top bits, carried in by bit SHIFT-1 unless v is in the saturated band
// (v >= 2^(BITS-1) - 2^(SHIFT-1), top bits 01...1). The kernels apply it once per element as it enters
// a buffer (plane.h), never per MAC, in every build. Written as that carry, not as a min(): of the forms
// tried, g++ vectorised this one best (phase-1 loads 1.35x the time of v1's shift; min() forms 1.4-1.6x).
template <int BITS, int SHIFT, class V>
inline V msb_round(const V &v) {
    const bool up = ((v >> (SHIFT - 1)) & 1) != 0 && v < (1 << (BITS - 1)) - (1 << (SHIFT - 1));
    return V((v >> SHIFT) + up);
}
template <class V>
inline V x_msb_of(const V &x) { return msb_round<8, 4>(x); }    // int8 -> int4 in [-8, 7]
template <class V>
inline V g_msb_of(const V &g) { return msb_round<16, 6>(g); }   // int16 -> int10 in [-512, 511]

// Mode of conv_bwd_weight_psg.
const int MODE_PSG = 0;
const int MODE_FULL = 1;

struct ApTypes {
    typedef ap_int<8> x_t;        // activation (DDR and local buffers)
    typedef ap_int<8> w_t;        // weight
    typedef ap_int<16> g_t;       // output gradient
    typedef ap_int<4> xm_t;       // x_msb
    typedef ap_int<10> gm_t;      // g_msb
    typedef ap_int<16> pxw_t;     // x * w, |.| <= 2^14
    typedef ap_int<24> pgw_t;     // g * w and g * x, |.| <= 2^22
    typedef ap_int<14> pm_t;      // x_msb * g_msb, |.| <= 2^12
    typedef ap_int<32> acc32_t;   // forward and MSB accumulators
    typedef ap_int<48> acc48_t;   // backward-data and full weight-gradient accumulators
    typedef ap_int<32> sum32_t;   // bounded partial sums (each use states its bound)
    typedef ap_int<64> out48_t;   // 48-bit results as stored in DDR (sign-extended to 64)
    typedef ap_int<8> sign_t;
};

struct NativeTypes {
    typedef int8_t x_t;
    typedef int8_t w_t;
    typedef int16_t g_t;
    typedef int16_t xm_t;   // int16 lanes vectorise better than int8 on x86
    typedef int16_t gm_t;
    typedef int32_t pxw_t;
    typedef int32_t pgw_t;
    typedef int32_t pm_t;
    typedef int32_t acc32_t;
    typedef int64_t acc48_t;
    typedef int32_t sum32_t;
    typedef int64_t out48_t;
    typedef int8_t sign_t;
};

// Local-buffer element types. Hardware: the narrowest type that holds the value. CPU: whatever makes
// g++ emit the best AVX2 code for the loop that reads the buffer (a choice of the g++ build only; the
// values are the same):
//   x_t, w_t, g_t  forward and backward-data planes and weights: the pipelined loop makes one product
//                  per lane per tap, so 32-bit lanes (vpmulld: 8 products per instruction; int16 lanes
//                  need mullw + mulhw + two unpacks + two lane permutes to widen the same 16). An
//                  AVX2 build has no forward planes (hls/csim/fwd_lanes.h packs its own).
//   px_t, pg_t     weight-gradient planes (x or x_msb, and g or g_msb): the loop over positions is a
//                  sum per weight, which g++ turns into vpmaddwd (16 int16 products per instruction)
//                  when the operands are int16.
template <class T> struct Buf;
template <> struct Buf<ApTypes> {
    typedef ap_int<8> x_t;
    typedef ap_int<8> w_t;
    typedef ap_int<16> g_t;
    typedef ap_int<8> px_t;
    typedef ap_int<16> pg_t;
};
template <> struct Buf<NativeTypes> {
    typedef int32_t x_t;
    typedef int32_t w_t;
    typedef int32_t g_t;
    typedef int16_t px_t;
    typedef int16_t pg_t;
};

}  // namespace e2

#endif
