#!/usr/bin/env python3
"""Summarise an eval's weighted picks: mean CIFAR-10 test accuracy and the share of picks
with dead branches, per strategy and budget. Ground truth is read for reporting only.

usage: scripts/picks-summary.py WEIGHTED_CSV DATA_DIR
"""
import csv
import sys
from collections import defaultdict

EDGES = [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]


def ops_of(cell):
    groups = cell.strip("|").split("|+|")
    return [e.split("~")[0] for g in groups for e in g.strip("|").split("|")]


def has_dead_edge(cell):
    ops = ops_of(cell)
    reach_in = [True, False, False, False]
    for (a, b), op in zip(EDGES, ops):
        if op != "none" and reach_in[a]:
            reach_in[b] = True
    reach_out = [False, False, False, True]
    for (a, b), op in reversed(list(zip(EDGES, ops))):
        if op != "none" and reach_out[b]:
            reach_out[a] = True
    return any(op != "none" and not (reach_in[a] and reach_out[b]) for (a, b), op in zip(EDGES, ops))


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
