"""Multiply-accumulates by operand bit width, and the bit-weighted savings figure.

Quantised convs (``QuantConv2d``) count their own MACs by width: forward int8 x int8; backward-data
int16 x int8; backward-weight int4 x int10 (the predictor, every weight) plus int8 x int16 (only the
weights that fell back), or int8 x int16 for every weight in the 8-bit baseline. Every other layer
that multiplies (float convs, the classifier, the gates, depthwise convs) is fp32: its
MACs are the loop's per-layer counts. The bit-weighted MACs weigh each MAC by bits_a * bits_b / 32**2,
a first-order proxy for multiplier energy and area; the baseline (fp32 SGD) weighs 1 per MAC. The
MAC-count savings (``mac_savings``, the loop's) stay beside it; neither is an energy measurement.
"""

from __future__ import annotations

from ..models.macs import PHASES

FLOAT_KEY = "32x32"


def _weight(key: str) -> float:
    a, b = (int(v) for v in key.split("x"))
    return a * b / 32**2


def quant_layers(model) -> dict:
    return {name: m for name, m in model.layer_modules().items() if hasattr(m, "bit_macs")}


def bit_width_report(model, report: dict) -> dict:
    """``macs_by_bits``, ``bit_weighted_macs``, ``bit_weighted_savings``, ``psg_predicted_ratio``."""
    quant = quant_layers(model)
    by_bits = {ph: {} for ph in PHASES}
    for name, row in report["macs_per_layer"].items():
        if name in quant:
            continue
        for ph in PHASES:
            if row.get(ph):
                by_bits[ph][FLOAT_KEY] = by_bits[ph].get(FLOAT_KEY, 0) + row[ph]
    predicted = weights = 0
    for m in quant.values():
        for ph, widths in m.bit_macs().items():
            for key, n in widths.items():
                by_bits[ph][key] = by_bits[ph].get(key, 0) + n
        if getattr(m, "mode", None) == "psg":
            predicted += int(m.predicted)
            weights += m.weights_seen
    weighted = sum(n * _weight(k) for widths in by_bits.values() for k, n in widths.items())
    baseline = report["baseline_macs"]
    return {
        "macs_by_bits": {ph: dict(sorted(w.items())) for ph, w in by_bits.items()},
        "bit_weighted_macs": weighted,
        "bit_weighted_savings": 1.0 - weighted / baseline if baseline else None,
        "psg_predicted_ratio": predicted / weights if weights else None,
    }
