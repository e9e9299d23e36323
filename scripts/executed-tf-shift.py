#!/usr/bin/env python3
"""How much higher a cell with dead branches scores than its executed network, in the raw
score table's own normalisation (TF = mean of the three min-max normalised metrics).

usage: scripts/executed-tf-shift.py [SCORES_CSV]   (default artifacts/scores/cifar10_scores.csv)
"""
import csv
import sys

from nb201cells import executed, live, ops_of

METRICS = ["naswot", "logsynflow", "skip"]


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "artifacts/scores/cifar10_scores.csv"
    rows = {r["arch"]: r for r in csv.DictReader(open(path))}
    rng = {m: (min(float(r[m]) for r in rows.values()), max(float(r[m]) for r in rows.values())) for m in METRICS}

    def tf(r):
        return sum((float(r[m]) - rng[m][0]) / (rng[m][1] - rng[m][0]) for m in METRICS) / 3

    shift = [tf(r) - tf(rows[executed(a)]) for a, r in rows.items() if executed(a) != a and any(live(ops_of(a)))]
    print(f"{len(shift)} connected cells with dead branches: TF minus the executed network's TF "
          f"mean {sum(shift) / len(shift):+.3f}, max {max(shift):+.3f}, min {min(shift):+.3f}")


if __name__ == "__main__":
    main()
