// C testbench of conv_fwd_top: every golden case through the synthesizable top, bit for bit.
//   tb_conv_fwd [golden/conv_fwd.txt]
//     exit 0: all match, 1: a mismatch or a bad file, 3: a golden file of another contract version
#include "conv_fwd.h"
#include "tb_golden.h"

static long check(const tb::Case &t, int i) {
    const std::vector<long long> &xv = t.get("x"), &wv = t.get("w"), &yv = t.get("y");
    std::vector<e2::ApTypes::x_t> x(xv.begin(), xv.end());
    std::vector<e2::ApTypes::w_t> w(wv.begin(), wv.end());
    std::vector<e2::ApTypes::acc32_t> y(yv.size());
    const std::vector<long> &p = t.params;  // n c h w o k s
    const int rc = conv_fwd_top(x.data(), w.data(), y.data(), p[0], p[1], p[2], p[3], p[4], p[5], p[6]);
    return rc ? tb::top_failed(rc, i) : tb::compare("y", i, tb::to_ll(y), yv);
}

int main(int argc, char **argv) { return tb::run_cases(argc, argv, "conv_fwd", check); }
