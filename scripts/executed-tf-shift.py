#!/usr/bin/env python3
"""How much higher a cell with dead branches scores than its executed network, in the raw
score table's own normalisation (TF = mean of the three min-max normalised metrics).

usage: scripts/executed-tf-shift.py [SCORES_CSV]   (default artifacts/scores/cifar10_scores.csv)
"""
import csv
import sys

EDGES = [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
METRICS = ["naswot", "logsynflow", "skip"]


def ops_of(cell):
    return [e.split("~")[0] for g in cell.strip("|").split("|+|") for e in g.strip("|").split("|")]


def live(ops):
    reach_in = [True, False, False, False]
    for (a, b), op in zip(EDGES, ops):
        if op != "none" and reach_in[a]:
            reach_in[b] = True
    reach_out = [False, False, False, True]
    for (a, b), op in reversed(list(zip(EDGES, ops))):
        if op != "none" and reach_out[b]:
            reach_out[a] = True
    return [op != "none" and reach_in[a] and reach_out[b] for (a, b), op in zip(EDGES, ops)]


def executed(cell):
    ops = ops_of(cell)
    kept = [op if keep else "none" for op, keep in zip(ops, live(ops))]
    return "|%s~0|+|%s~0|%s~1|+|%s~0|%s~1|%s~2|" % tuple(kept)


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
