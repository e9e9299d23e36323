#!/usr/bin/env python3
"""The edge-runtime executor against ONNX Runtime on one x86 core, side by side.

For each of the four showcase cells (all skip_connect, NATS-Bench index 1, conv1x1+conv3x3
with a dead node, all nor_conv_3x3) on the CIFAR-10 network (batch 1):

* `simnas export --arch CELL --seed S` writes the cell's executed network as ONNX;
* ONNX Runtime runs it with one thread (`intra_op_num_threads=1`, `inter_op_num_threads=1`,
  sequential execution, all graph optimisations);
* `simnas bench --serve --arch CELL --seed S --input IMAGE` runs the same executed network
  with the same weights in the executor (one thread) and times each forward pass itself;
* the two are interleaved repeat by repeat (ORT then executor, then executor then ORT, ...)
  so that a noisy, shared machine slows both alike; the logits of both are compared (max
  abs diff, and relative to the largest logit); medians and executor / ORT are printed.

ORT's time is `session.run` measured from Python (perf_counter around the call); the
executor's is `Executor::run` measured inside the process.

    pip install onnxruntime numpy
    cargo build --release -p host-trainer --features train
    python3 scripts/bench-vs-ort.py --repeats 201
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

CELLS = [
    ("all skip_connect",
     "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"),
    ("NATS-Bench index 1",
     "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"),
    ("conv1x1+conv3x3, dead node",
     "|nor_conv_1x1~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"),
    ("all nor_conv_3x3",
     "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"),
]

# Largest difference of the logits, relative to their largest magnitude, that still counts
# as the same network in F32 (relative: the all-skip network's logits are ~1e8, each of
# its 15 cells triples its input).
MAX_REL_DIFF = 1e-4


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--simnas", default="target/release/simnas", help="the simnas binary")
    ap.add_argument("--repeats", type=int, default=201, help="timed runs of each, interleaved")
    ap.add_argument("--warmup", type=int, default=20, help="untimed runs of each before timing")
    ap.add_argument("--seed", type=int, default=0, help="weight seed (simnas export --seed)")
    ap.add_argument("--resolution", type=int, default=32, help="input side of the CIFAR-10 network")
    args = ap.parse_args()

    res = args.resolution
    rng = np.random.default_rng(args.seed)
    hwc = rng.uniform(-1.0, 1.0, size=(res, res, 3)).astype("<f4")
    nchw = np.ascontiguousarray(hwc.transpose(2, 0, 1)[None])

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL

    print(f"onnxruntime {ort.__version__} (1 thread) vs the executor ({args.simnas}, 1 thread), "
          f"CIFAR-10 network {res}x{res}, batch 1, seed {args.seed}: "
          f"{args.repeats} interleaved repeats after {args.warmup} warm-up runs, medians")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "input.f32"
        hwc.tofile(image)
        for name, cell in CELLS:
            onnx = Path(tmp) / "cell.onnx"
            subprocess.run([args.simnas, "export", "--arch", cell, "--seed", str(args.seed),
                            "--resolution", str(res), "--out", str(onnx)],
                           check=True, stdout=subprocess.DEVNULL)
            sess = ort.InferenceSession(str(onnx), opts, providers=["CPUExecutionProvider"])
            feed = {sess.get_inputs()[0].name: nchw}
            ort_logits = sess.run(None, feed)[0].ravel()

            ex = subprocess.Popen([args.simnas, "bench", "--serve", "--arch", cell, "--seed", str(args.seed),
                                   "--resolution", str(res), "--input", str(image)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
            first = json.loads(ex.stdout.readline())
            ex_logits = np.asarray(first["logits"], dtype=np.float64)
            diff = float(np.max(np.abs(ex_logits - ort_logits)))
            rel = diff / max(1e-6, float(np.max(np.abs(ort_logits))))
            if rel > MAX_REL_DIFF:
                print(f"{name}: logits differ by {rel:.2e} relative (> {MAX_REL_DIFF}); not the same network",
                      file=sys.stderr)
                ex.kill()
                return 1

            def run_ex(n: int) -> list:
                ex.stdin.write(f"{n}\n")
                ex.stdin.flush()
                return json.loads(ex.stdout.readline())["ms"]

            def run_ort() -> float:
                t = time.perf_counter()
                sess.run(None, feed)
                return 1e3 * (time.perf_counter() - t)

            for _ in range(args.warmup):
                run_ort()
            run_ex(args.warmup)
            ort_ms, ex_ms = [], []
            for r in range(args.repeats):
                if r % 2 == 0:
                    ort_ms.append(run_ort())
                    ex_ms += run_ex(1)
                else:
                    ex_ms += run_ex(1)
                    ort_ms.append(run_ort())
            ex.stdin.close()
            ex.wait()
            e, o = statistics.median(ex_ms), statistics.median(ort_ms)
            rows.append((name, e, o, e / o, diff, rel))

    print()
    print("| cell | executor ms | onnxruntime ms | executor / ORT | logits: max abs diff (relative) |")
    print("|---|---:|---:|---:|---:|")
    for name, e, o, ratio, diff, rel in rows:
        print(f"| {name} | {e:.3f} | {o:.3f} | {ratio:.2f} | {diff:.1e} ({rel:.1e}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
