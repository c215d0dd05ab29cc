"""Loop-by-loop convolutions written straight from the contract's sums: slow, obviously right,
used to check the vectorised reference on small shapes."""

import numpy as np


def out_size(size, k, s):
    return (size + 2 * ((k - 1) // 2) - k) // s + 1


def conv_fwd(x, w, s):
    n, c, h, wd = x.shape
    o, _, k, _ = w.shape
    p = (k - 1) // 2
    ho, wo = out_size(h, k, s), out_size(wd, k, s)
    y = np.zeros((n, o, ho, wo), dtype=np.int64)
    for b in range(n):
        for oc in range(o):
            for r in range(ho):
                for q in range(wo):
                    acc = 0
                    for ic in range(c):
                        for i in range(k):
                            for j in range(k):
                                hh, ww = r * s + i - p, q * s + j - p
                                if 0 <= hh < h and 0 <= ww < wd:
                                    acc += int(x[b, ic, hh, ww]) * int(w[oc, ic, i, j])
                    y[b, oc, r, q] = acc
    return y


def conv_bwd_data(g, w, s, hw):
    n, o, ho, wo = g.shape
    _, c, k, _ = w.shape
    p = (k - 1) // 2
    h, wd = hw
    gx = np.zeros((n, c, h, wd), dtype=np.int64)
    for b in range(n):
        for oc in range(o):
            for r in range(ho):
                for q in range(wo):
                    for ic in range(c):
                        for i in range(k):
                            for j in range(k):
                                hh, ww = r * s + i - p, q * s + j - p
                                if 0 <= hh < h and 0 <= ww < wd:
                                    gx[b, ic, hh, ww] += int(g[b, oc, r, q]) * int(w[oc, ic, i, j])
    return gx


def conv_bwd_weight(x, g, k, s):
    n, c, h, wd = x.shape
    _, o, ho, wo = g.shape
    p = (k - 1) // 2
    gw = np.zeros((o, c, k, k), dtype=np.int64)
    for oc in range(o):
        for ic in range(c):
            for i in range(k):
                for j in range(k):
                    acc = 0
                    for b in range(n):
                        for r in range(ho):
                            for q in range(wo):
                                hh, ww = r * s + i - p, q * s + j - p
                                if 0 <= hh < h and 0 <= ww < wd:
                                    acc += int(g[b, oc, r, q]) * int(x[b, ic, hh, ww])
                    gw[oc, ic, i, j] = acc
    return gw
