"""NB201 cell strings for the scripts: ops per edge, live edges, the executed network.
The same rule as `Arch::live_edges` (shared/src/space.rs): an edge is live when it lies on a
path of non-`none` edges from the input to the output."""

EDGES = [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]


def ops_of(cell):
    """The six ops of a NATS-Bench cell string, edge by edge."""
    return [e.split("~")[0] for g in cell.strip("|").split("|+|") for e in g.strip("|").split("|")]


def live(ops):
    """Which of the six edges are live."""
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
    """The cell with its dead edges set to `none`."""
    ops = ops_of(cell)
    kept = [op if keep else "none" for op, keep in zip(ops, live(ops))]
    return "|%s~0|+|%s~0|%s~1|+|%s~0|%s~1|%s~2|" % tuple(kept)
