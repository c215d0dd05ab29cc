"""Our hls::stream (hls/include/sim/hls_stream.h), compiled with g++: FIFO order, the non-blocking
forms, and a loud abort on a read from an empty stream (a deadlock in hardware)."""

import subprocess

from e2train.fabric import csim_build

PROGRAM = r"""
#include <cstdio>
#include <cstring>
#include "hls_stream.h"

int main(int argc, char **argv) {
    hls::stream<int> s("fifo");
    for (int i = 0; i < 5; ++i) s.write(i * i);
    s << 100;
    int v = -1;
    s >> v;
    std::printf("first %d size %zu\n", v, s.size());
    int sum = 0;
    while (!s.empty()) sum += s.read();
    std::printf("sum %d empty %d\n", sum, (int)s.empty());
    std::printf("read_nb %d\n", (int)s.read_nb(v));
    if (argc > 1 && std::strcmp(argv[1], "deadlock") == 0) s.read();
    return 0;
}
"""


def build(tmp_path):
    src = tmp_path / "stream_test.cpp"
    src.write_text(PROGRAM)
    exe = tmp_path / "stream_test"
    cmd = [csim_build.compiler(), *csim_build.common_flags(), str(src), "-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return exe


def test_fifo_order_and_nonblocking_read(tmp_path):
    exe = build(tmp_path)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "first 0 size 5"
    assert out[1] == f"sum {1 + 4 + 9 + 16 + 100} empty 1"
    assert out[2] == "read_nb 0"


def test_read_from_empty_stream_aborts_with_its_name(tmp_path):
    exe = build(tmp_path)
    proc = subprocess.run([str(exe), "deadlock"], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "hls::stream 'fifo': read from an empty stream" in proc.stderr
