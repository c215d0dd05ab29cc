// The synthesizable tops of hls/src (ApTypes, hardware tile sizes, 32x32 local buffers) on plain C
// arrays: slow, for the tests that prove the fast path (e2_csim.cpp) gives the same bits.
#include <stdint.h>

#include <vector>

#include "conv_bwd_data.h"
#include "conv_bwd_weight_psg.h"
#include "conv_fwd.h"

namespace {

template <class A, class S>
std::vector<A> to_ap(const S *src, long count) {
    std::vector<A> v((size_t)count);
    for (long i = 0; i < count; ++i) v[(size_t)i] = src[i];
    return v;
}

}  // namespace

extern "C" {

int e2_ap_max_hw(void) { return e2::MAX_HW; }

// The MSB predictors of n values in ApTypes (the tops' loaders), as e2_x_msb / e2_g_msb.
void e2_ap_x_msb(const int8_t *x, int8_t *m, int n) {
    for (int i = 0; i < n; ++i) m[i] = (int8_t)e2::x_msb_of(e2::ApTypes::x_t(x[i])).to_int();
}
void e2_ap_g_msb(const int16_t *g, int16_t *m, int n) {
    for (int i = 0; i < n; ++i) m[i] = (int16_t)e2::g_msb_of(e2::ApTypes::g_t(g[i])).to_int();
}

int e2_ap_conv_fwd(const int8_t *x, const int8_t *w, int32_t *y, int n, int c, int h, int wd, int o, int k, int s) {
    const int p = (k - 1) / 2, ho = (h + 2 * p - k) / s + 1, wo = (wd + 2 * p - k) / s + 1;
    std::vector<e2::ApTypes::x_t> xa = to_ap<e2::ApTypes::x_t>(x, (long)n * c * h * wd);
    std::vector<e2::ApTypes::w_t> wa = to_ap<e2::ApTypes::w_t>(w, (long)o * c * k * k);
    std::vector<e2::ApTypes::acc32_t> ya((size_t)n * o * ho * wo);
    const int rc = conv_fwd_top(xa.data(), wa.data(), ya.data(), n, c, h, wd, o, k, s);
    for (size_t i = 0; rc == e2::E2_OK && i < ya.size(); ++i) y[i] = (int32_t)ya[i].to_int();
    return rc;
}

int e2_ap_conv_bwd_data(const int16_t *g, const int8_t *w, int64_t *gx, int n, int c, int h, int wd, int o, int k,
                        int s) {
    const int p = (k - 1) / 2, ho = (h + 2 * p - k) / s + 1, wo = (wd + 2 * p - k) / s + 1;
    std::vector<e2::ApTypes::g_t> ga = to_ap<e2::ApTypes::g_t>(g, (long)n * o * ho * wo);
    std::vector<e2::ApTypes::w_t> wa = to_ap<e2::ApTypes::w_t>(w, (long)o * c * k * k);
    std::vector<e2::ApTypes::out48_t> xa((size_t)n * c * h * wd);
    const int rc = conv_bwd_data_top(ga.data(), wa.data(), xa.data(), n, c, h, wd, o, k, s);
    for (size_t i = 0; rc == e2::E2_OK && i < xa.size(); ++i) gx[i] = (int64_t)xa[i].to_int64();
    return rc;
}

int e2_ap_conv_bwd_weight_psg(const int8_t *x, const int16_t *g, int8_t *sign, int64_t *g_full, int32_t *g_msb,
                              int n, int c, int h, int wd, int o, int k, int s, int beta_q, int mode, int *predicted,
                              int *max_abs_msb) {
    const int p = (k - 1) / 2, ho = (h + 2 * p - k) / s + 1, wo = (wd + 2 * p - k) / s + 1;
    const long nw = (long)o * c * k * k;
    std::vector<e2::ApTypes::x_t> xa = to_ap<e2::ApTypes::x_t>(x, (long)n * c * h * wd);
    std::vector<e2::ApTypes::g_t> ga = to_ap<e2::ApTypes::g_t>(g, (long)n * o * ho * wo);
    std::vector<e2::ApTypes::sign_t> sa = to_ap<e2::ApTypes::sign_t>(sign, nw);
    std::vector<e2::ApTypes::out48_t> fa = to_ap<e2::ApTypes::out48_t>(g_full, nw);
    std::vector<e2::ApTypes::acc32_t> ma = to_ap<e2::ApTypes::acc32_t>(g_msb, nw);
    const int rc = conv_bwd_weight_psg_top(xa.data(), ga.data(), sa.data(), fa.data(), ma.data(), n, c, h, wd, o, k,
                                           s, beta_q, mode, predicted, max_abs_msb);
    for (long i = 0; rc == e2::E2_OK && i < nw; ++i) {
        sign[i] = (int8_t)sa[(size_t)i].to_int();
        g_full[i] = (int64_t)fa[(size_t)i].to_int64();
        g_msb[i] = (int32_t)ma[(size_t)i].to_int();
    }
    return rc;
}

}  // extern "C"
