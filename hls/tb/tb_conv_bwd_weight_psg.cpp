// C testbench of conv_bwd_weight_psg_top: every golden case (modes psg and full, PSG threshold ties)
// through the synthesizable top, bit for bit.
//   tb_conv_bwd_weight_psg [golden/conv_bwd_weight_psg.txt]      exit 0 when every case matches
#include <cstdio>

#include "conv_bwd_weight_psg.h"
#include "tb_golden.h"

int main(int argc, char **argv) {
    std::vector<tb::Case> cases;
    if (!tb::read_cases(tb::golden_path(argc, argv, "conv_bwd_weight_psg"), "conv_bwd_weight_psg", cases)) return 1;
    long bad = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
        const tb::Case &t = cases[i];
        const int n = t.params[0], c = t.params[1], h = t.params[2], w = t.params[3], o = t.params[4],
                  k = t.params[5], s = t.params[6], beta_q = t.params[7], mode = t.params[8];
        const std::vector<long long> &xv = t.get("x"), &gv = t.get("g"), &sv = t.get("sign");
        std::vector<e2::ApTypes::x_t> x(xv.begin(), xv.end());
        std::vector<e2::ApTypes::g_t> g(gv.begin(), gv.end());
        std::vector<e2::ApTypes::sign_t> sign(sv.size(), 0);
        std::vector<e2::ApTypes::out48_t> g_full(sv.size(), 0);
        std::vector<e2::ApTypes::acc32_t> g_msb(sv.size(), 0);
        int predicted = -1, top = -1;
        const int rc = conv_bwd_weight_psg_top(x.data(), g.data(), sign.data(), g_full.data(), g_msb.data(), n, c, h,
                                               w, o, k, s, beta_q, mode, &predicted, &top);
        if (rc != e2::E2_OK) {
            std::fprintf(stderr, "case %zu: top returned %d\n", i, rc);
            ++bad;
            continue;
        }
        std::vector<long long> s64(sign.size()), f64(g_full.size()), m64(g_msb.size());
        for (size_t j = 0; j < sign.size(); ++j) {
            s64[j] = sign[j].to_int64();
            f64[j] = g_full[j].to_int64();
            m64[j] = g_msb[j].to_int64();
        }
        bad += tb::compare("sign", (int)i, s64, sv);
        bad += tb::compare("predicted", (int)i, std::vector<long long>(1, predicted), t.get("predicted"));
        if (mode == e2::MODE_FULL) {
            bad += tb::compare("g_full", (int)i, f64, t.get("g_full"));
        } else {
            bad += tb::compare("g_msb", (int)i, m64, t.get("g_msb"));
            bad += tb::compare("max_abs_msb", (int)i, std::vector<long long>(1, top), t.get("max_abs_msb"));
        }
    }
    std::printf("tb_conv_bwd_weight_psg: %zu cases, %s\n", cases.size(), bad ? "MISMATCH" : "all match");
    return bad ? 1 : 0;
}
