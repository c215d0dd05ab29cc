// C testbench of conv_bwd_weight_psg_top: every golden case (modes psg and full, PSG threshold ties)
// through the synthesizable top, bit for bit.
//   tb_conv_bwd_weight_psg [golden/conv_bwd_weight_psg.txt]
//     exit 0: all match, 1: a mismatch or a bad file, 3: a golden file of another contract version
#include "conv_bwd_weight_psg.h"
#include "tb_golden.h"

static long check(const tb::Case &t, int i) {
    const std::vector<long long> &xv = t.get("x"), &gv = t.get("g"), &sv = t.get("sign");
    std::vector<e2::ApTypes::x_t> x(xv.begin(), xv.end());
    std::vector<e2::ApTypes::g_t> g(gv.begin(), gv.end());
    std::vector<e2::ApTypes::sign_t> sign(sv.size(), 0);
    std::vector<e2::ApTypes::out48_t> g_full(sv.size(), 0);
    std::vector<e2::ApTypes::acc32_t> g_msb(sv.size(), 0);
    int predicted = -1, top = -1;
    const std::vector<long> &p = t.params;  // n c h w o k s beta_q mode
    const int rc = conv_bwd_weight_psg_top(x.data(), g.data(), sign.data(), g_full.data(), g_msb.data(), p[0], p[1],
                                           p[2], p[3], p[4], p[5], p[6], p[7], p[8], &predicted, &top);
    if (rc) return tb::top_failed(rc, i);
    long bad = tb::compare("sign", i, tb::to_ll(sign), sv);
    bad += tb::compare("predicted", i, std::vector<long long>(1, predicted), t.get("predicted"));
    if (p[8] == e2::MODE_FULL) return bad + tb::compare("g_full", i, tb::to_ll(g_full), t.get("g_full"));
    bad += tb::compare("g_msb", i, tb::to_ll(g_msb), t.get("g_msb"));
    return bad + tb::compare("max_abs_msb", i, std::vector<long long>(1, top), t.get("max_abs_msb"));
}

int main(int argc, char **argv) { return tb::run_cases(argc, argv, "conv_bwd_weight_psg", check); }
