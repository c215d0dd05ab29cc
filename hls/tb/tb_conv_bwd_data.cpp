// C testbench of conv_bwd_data_top: every golden case through the synthesizable top, bit for bit.
//   tb_conv_bwd_data [golden/conv_bwd_data.txt]      exit 0 when every case matches, 1 otherwise
#include <cstdio>

#include "conv_bwd_data.h"
#include "tb_golden.h"

int main(int argc, char **argv) {
    std::vector<tb::Case> cases;
    if (!tb::read_cases(tb::golden_path(argc, argv, "conv_bwd_data"), "conv_bwd_data", cases)) return 1;
    long bad = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
        const tb::Case &t = cases[i];
        const int n = t.params[0], c = t.params[1], h = t.params[2], w = t.params[3], o = t.params[4],
                  k = t.params[5], s = t.params[6];
        const std::vector<long long> &gv = t.get("g"), &wv = t.get("w"), &xv = t.get("gx");
        std::vector<e2::ApTypes::g_t> g(gv.begin(), gv.end());
        std::vector<e2::ApTypes::w_t> wt(wv.begin(), wv.end());
        std::vector<e2::ApTypes::out48_t> gx(xv.size());
        const int rc = conv_bwd_data_top(g.data(), wt.data(), gx.data(), n, c, h, w, o, k, s);
        std::vector<long long> got(gx.size());
        for (size_t j = 0; j < gx.size(); ++j) got[j] = gx[j].to_int64();
        if (rc != e2::E2_OK) std::fprintf(stderr, "case %zu: top returned %d\n", i, rc);
        bad += rc != e2::E2_OK ? 1 : tb::compare("gx", (int)i, got, xv);
    }
    std::printf("tb_conv_bwd_data: %zu cases, %s\n", cases.size(), bad ? "MISMATCH" : "all match");
    return bad ? 1 : 0;
}
