#!/usr/bin/env python3
"""Summarise an eval's weighted picks: mean CIFAR-10 test accuracy and the share of picks
with dead branches, per strategy and budget. Ground truth is read for reporting only.

usage: scripts/picks-summary.py WEIGHTED_CSV DATA_DIR
"""
import csv
import sys
from collections import defaultdict

from nb201cells import live, ops_of


def has_dead_edge(cell):
    ops = ops_of(cell)
    return any(op != "none" and not keep for op, keep in zip(ops, live(ops)))


def main():
    runs, data = sys.argv[1], sys.argv[2]
    index = {r["arch"]: r["index"] for r in csv.DictReader(open(f"{data}/nb201_archs.csv"))}
    acc = {r["index"]: float(r["cifar10_test"]) for r in csv.DictReader(open(f"{data}/nb201_accuracy.csv"))}
    by = defaultdict(list)
    for r in csv.DictReader(open(runs)):
        if r["arch"]:
            by[(r["strategy"], int(r["budget"]))].append(r["arch"])
    print("| strategy | budget | picks | mean CIFAR-10 test acc | picks with dead branches |")
    print("|---|---:|---:|---:|---:|")
    for (s, b), cells in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        a = sum(acc[index[c]] for c in cells) / len(cells)
        dead = sum(has_dead_edge(c) for c in cells)
        print(f"| {s} | {b} | {len(cells)} | {a:.2f} | {dead} |")


if __name__ == "__main__":
    main()
