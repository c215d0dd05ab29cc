"""The computational-savings column of E2-Train's Table 3 (ResNet-74, CIFAR-10), rebuilt from its parts.

The three techniques remove computation independently, so their remaining fractions multiply:

    savings = 1 - r_SMD x r_SLU x r_PSG

* r_SMD = (1 - p) x T_SMD / T_SGD: half the mini-batches dropped (p = 0.5) over 4/3 as many
  iterations (85,333 against 64,000) leaves 2/3 of the baseline's mini-batches computed;
* r_SLU = 1 - skip: the fraction of residual-block computation the gates let through;
* r_PSG = 0.37: PSG's computational cost relative to 32-bit SGD. The paper does not print this factor
  beside Table 3; 0.37 is what its three rows imply (each row pins r_PSG to an interval; all three
  intersect in (0.36994, 0.37003]), and ``e2train energy table3`` prints that interval as a check.
  Our own energy model's PSG factor (printed alongside) is a different quantity: energy, not
  computation, from an energy table; docs/energy.md compares the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

PAPER_ROWS = ((0.20, 80.27), (0.40, 85.20), (0.60, 90.13))  # (SLU skip ratio, computational savings %)
SMD_DROP = 0.5
SMD_ITERATIONS = 85333
SGD_ITERATIONS = 64000
PSG_COST_RATIO = 0.37


@dataclass
class Row:
    skip: float
    r_smd: float
    r_slu: float
    r_psg: float
    paper_percent: float

    @property
    def savings_percent(self) -> float:
        return 100.0 * (1.0 - self.r_smd * self.r_slu * self.r_psg)

    def formula(self) -> str:
        return (f"1 - [(1 - {SMD_DROP}) x {SMD_ITERATIONS}/{SGD_ITERATIONS}] x (1 - {self.skip:.2f}) x {self.r_psg}"
                f" = 1 - {self.r_smd:.5f} x {self.r_slu:.2f} x {self.r_psg} = {self.savings_percent:.2f} %")


def rows(r_psg: float = PSG_COST_RATIO) -> list[Row]:
    r_smd = (1 - SMD_DROP) * SMD_ITERATIONS / SGD_ITERATIONS
    return [Row(skip, r_smd, 1 - skip, r_psg, paper) for skip, paper in PAPER_ROWS]


def implied_psg_interval() -> tuple[Fraction, Fraction]:
    """The r_PSG values for which all three rows round to the paper's figures (open below, closed above)."""
    lo, hi = Fraction(0), Fraction(1)
    r_smd = Fraction(1) - Fraction(SMD_DROP).limit_denominator()
    r_smd *= Fraction(SMD_ITERATIONS, SGD_ITERATIONS)
    for skip, paper in PAPER_ROWS:
        s = Fraction(paper).limit_denominator(10000) / 100
        half = Fraction(1, 20000)  # two decimals of a percentage
        keep = r_smd * (1 - Fraction(skip).limit_denominator(100))
        # 1 - keep*r in [s - half, s + half)  <=>  r in ((1 - s - half)/keep, (1 - s + half)/keep]
        lo = max(lo, (1 - s - half) / keep)
        hi = min(hi, (1 - s + half) / keep)
    return lo, hi
