// C testbench of conv_bwd_data_top: every golden case through the synthesizable top, bit for bit.
//   tb_conv_bwd_data [golden/conv_bwd_data.txt]
//     exit 0: all match, 1: a mismatch or a bad file, 3: a golden file of another contract version
#include "conv_bwd_data.h"
#include "tb_golden.h"

static long check(const tb::Case &t, int i) {
    const std::vector<long long> &gv = t.get("g"), &wv = t.get("w"), &xv = t.get("gx");
    std::vector<e2::ApTypes::g_t> g(gv.begin(), gv.end());
    std::vector<e2::ApTypes::w_t> w(wv.begin(), wv.end());
    std::vector<e2::ApTypes::out48_t> gx(xv.size());
    const std::vector<long> &p = t.params;  // n c h w o k s
    const int rc = conv_bwd_data_top(g.data(), w.data(), gx.data(), p[0], p[1], p[2], p[3], p[4], p[5], p[6]);
    return rc ? tb::top_failed(rc, i) : tb::compare("gx", i, tb::to_ll(gx), xv);
}

int main(int argc, char **argv) { return tb::run_cases(argc, argv, "conv_bwd_data", check); }
