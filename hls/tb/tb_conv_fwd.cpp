// C testbench of conv_fwd_top: every golden case through the synthesizable top, bit for bit.
//   tb_conv_fwd [golden/conv_fwd.txt]      exit 0 when every case matches, 1 otherwise
#include <cstdio>

#include "conv_fwd.h"
#include "tb_golden.h"

int main(int argc, char **argv) {
    std::vector<tb::Case> cases;
    if (!tb::read_cases(tb::golden_path(argc, argv, "conv_fwd"), "conv_fwd", cases)) return 1;
    long bad = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
        const tb::Case &t = cases[i];
        const int n = t.params[0], c = t.params[1], h = t.params[2], w = t.params[3], o = t.params[4],
                  k = t.params[5], s = t.params[6];
        const std::vector<long long> &xv = t.get("x"), &wv = t.get("w"), &yv = t.get("y");
        std::vector<e2::ApTypes::x_t> x(xv.begin(), xv.end());
        std::vector<e2::ApTypes::w_t> wt(wv.begin(), wv.end());
        std::vector<e2::ApTypes::acc32_t> y(yv.size());
        const int rc = conv_fwd_top(x.data(), wt.data(), y.data(), n, c, h, w, o, k, s);
        std::vector<long long> got(y.size());
        for (size_t j = 0; j < y.size(); ++j) got[j] = y[j].to_int64();
        const long b = rc != e2::E2_OK ? 1 : tb::compare("y", (int)i, got, yv);
        if (rc != e2::E2_OK) std::fprintf(stderr, "case %zu: top returned %d\n", i, rc);
        bad += b;
    }
    std::printf("tb_conv_fwd: %zu cases, %s\n", cases.size(), bad ? "MISMATCH" : "all match");
    return bad ? 1 : 0;
}
