// Reading the golden vectors of tools/gen_golden.py in the C++ testbenches.
//
//   contract <version>                 first line: the contract the expected values follow
//   case <kernel> <integer parameters...>
//   <name> <count> <values...>
//   end
#ifndef E2_TB_GOLDEN_H
#define E2_TB_GOLDEN_H

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "e2_types.h"

namespace tb {

// Exit codes of a testbench.
const int EXIT_MISMATCH = 1;   // a result differs from the golden one, or the file is missing or malformed
const int EXIT_CONTRACT = 3;   // the golden file is of another contract version than the kernels

struct Case {
    std::string kernel;
    std::vector<long> params;
    std::map<std::string, std::vector<long long> > arrays;

    const std::vector<long long> &get(const std::string &name) const {
        static const std::vector<long long> empty;
        std::map<std::string, std::vector<long long> >::const_iterator it = arrays.find(name);
        return it == arrays.end() ? empty : it->second;
    }
};

// Reads every case of `path`; returns 0, or (with one message) EXIT_CONTRACT when the file is not of
// E2_CONTRACT_VERSION (a file without the `contract` line predates the versions: v1), EXIT_MISMATCH
// when it is missing or malformed. Another version's expected values would fail case after case.
inline int read_cases(const std::string &path, const std::string &kernel, std::vector<Case> &cases) {
    std::ifstream in(path.c_str());
    if (!in) {
        std::fprintf(stderr, "cannot open golden file %s (run tools/gen_golden.py)\n", path.c_str());
        return EXIT_MISMATCH;
    }
    std::string line;
    Case cur;
    bool open = false;
    int lineno = 0;
    long version = 0;  // 0: the contract line not read yet
    while (std::getline(in, line)) {
        ++lineno;
        std::istringstream ls(line);
        std::string word;
        if (!(ls >> word)) continue;
        if (version == 0) {
            if (word != "contract" || !(ls >> version)) version = 1;
            if (version != E2_CONTRACT_VERSION) {
                std::fprintf(stderr, "golden file %s is of contract v%ld%s, the kernels of v%d: regenerate it "
                             "(python tools/gen_golden.py)\n", path.c_str(), version,
                             word == "contract" ? "" : " (no 'contract' line)", E2_CONTRACT_VERSION);
                return EXIT_CONTRACT;
            }
            if (word == "contract") continue;
        }
        if (word == "case") {
            cur = Case();
            ls >> cur.kernel;
            long v;
            while (ls >> v) cur.params.push_back(v);
            if (cur.kernel != kernel) {
                std::fprintf(stderr, "%s:%d: case of kernel %s in the file of %s\n", path.c_str(), lineno,
                             cur.kernel.c_str(), kernel.c_str());
                return EXIT_MISMATCH;
            }
            open = true;
        } else if (word == "end") {
            if (!open) {
                std::fprintf(stderr, "%s:%d: 'end' without 'case'\n", path.c_str(), lineno);
                return EXIT_MISMATCH;
            }
            cases.push_back(cur);
            open = false;
        } else {
            long count = -1;
            ls >> count;
            std::vector<long long> values;
            long long v;
            while (ls >> v) values.push_back(v);
            if (!open || count < 0 || (long)values.size() != count) {
                std::fprintf(stderr, "%s:%d: malformed array line '%s'\n", path.c_str(), lineno, word.c_str());
                return EXIT_MISMATCH;
            }
            cur.arrays[word] = values;
        }
    }
    if (open || cases.empty()) {
        std::fprintf(stderr, "%s: %s\n", path.c_str(), open ? "last case has no 'end'" : "no cases");
        return EXIT_MISMATCH;
    }
    return 0;
}

// Counts and reports (the first few) differences between got and want.
template <class T>
long compare(const char *what, int case_no, const std::vector<T> &got, const std::vector<long long> &want) {
    if (got.size() != want.size()) {
        std::fprintf(stderr, "case %d: %s has %zu values, golden %zu\n", case_no, what, got.size(), want.size());
        return 1;
    }
    long bad = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        if ((long long)got[i] != want[i]) {
            if (bad < 5)
                std::fprintf(stderr, "case %d: %s[%zu] = %lld, golden %lld\n", case_no, what, i, (long long)got[i],
                             want[i]);
            ++bad;
        }
    }
    return bad;
}

inline std::string golden_path(int argc, char **argv, const char *kernel) {
    if (argc > 1) return argv[1];
    return std::string("golden/") + kernel + ".txt";
}

// The main of every testbench: read the golden file named on the command line (default
// golden/<kernel>.txt), run `check(case, index)` on each case (it returns its number of mismatches),
// print a summary, and return the exit status: 0 when everything matches, EXIT_MISMATCH otherwise,
// EXIT_CONTRACT for a file of another contract version (read_cases).
template <class Check>
int run_cases(int argc, char **argv, const char *kernel, Check check) {
    std::vector<Case> cases;
    const int rc = read_cases(golden_path(argc, argv, kernel), kernel, cases);
    if (rc) return rc;
    long bad = 0;
    for (size_t i = 0; i < cases.size(); ++i) bad += check(cases[i], (int)i);
    std::printf("tb_%s: %zu cases, %s\n", kernel, cases.size(), bad ? "MISMATCH" : "all match");
    return bad ? EXIT_MISMATCH : 0;
}

// A top's return code: 0 mismatches when it is E2_OK (0), else one, reported.
inline long top_failed(int rc, int case_no) {
    if (rc == 0) return 0;
    std::fprintf(stderr, "case %d: top returned %d\n", case_no, rc);
    return 1;
}

template <class A>
std::vector<long long> to_ll(const std::vector<A> &v) {
    std::vector<long long> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) out[i] = v[i].to_int64();
    return out;
}

}  // namespace tb

#endif
