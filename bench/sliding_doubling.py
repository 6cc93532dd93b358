#!/usr/bin/env python3
"""Sliding-window attention's time per doubling of T (issue 17: <= 2.1x from 2K to 16K).

Runs `tapegrad bench attention --variants sliding:256` at every head width, one T per call, the
T's in increasing then decreasing order over several passes (so a slow phase of the machine does
not fall on the long sequences only), and prints per width the median time at each T, the
doubling ratios, their geometric mean from 2K to 16K, and the same mean with each T's time scaled
by the sgemm rate measured in its own rounds (the machine's speed at that moment).

  python3 bench/sliding_doubling.py --tapegrad build/tapegrad [--passes 4] [--window 256]
"""
import argparse
import csv
import os
import statistics
import subprocess
import tempfile

LENGTHS = [2048, 4096, 8192, 16384]
WIDTHS = [16, 32, 64, 128]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tapegrad", default="build/tapegrad")
    ap.add_argument("--passes", type=int, default=4)
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--mode", default="fwdbwd", choices=["fwd", "fwdbwd"])
    args = ap.parse_args()
    times, sgemm = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for p in range(args.passes):
            for t in LENGTHS if p % 2 == 0 else LENGTHS[::-1]:
                path = os.path.join(tmp, f"p{p}_t{t}.csv")
                run = subprocess.run([args.tapegrad, "bench", "attention", "--variants", f"sliding:{args.window}",
                                      "--head-dim", ",".join(map(str, WIDTHS)), "--seq-lens", str(t), "--causal",
                                      "--mode", args.mode, "--reps", "5", "--no-check", "--csv", path],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                if run.returncode != 0:
                    raise SystemExit(f"sliding_doubling: tapegrad bench attention failed:\n{run.stderr}")
                print(f"pass {p + 1}/{args.passes}, T = {t}: done", flush=True)
                with open(path, newline="") as f:
                    for r in csv.DictReader(f):
                        key = (int(r["head_dim"]), int(r["seq_len"]))
                        times.setdefault(key, []).append(float(r["time_ms"]))
                        sgemm.setdefault(key, []).append(float(r["sgemm_gflops"]))
    print(f"sliding:{args.window}, causal, {args.mode}, B1 H8; medians of {args.passes} passes")
    print("| D | " + " | ".join(f"T={t} ms" for t in LENGTHS) + " | each doubling | per doubling | sgemm-scaled |")
    print("|---|" + "---|" * (len(LENGTHS) + 3))
    for d in WIDTHS:
        ms = [statistics.median(times[(d, t)]) for t in LENGTHS]
        gf = [statistics.median(sgemm[(d, t)]) for t in LENGTHS]
        steps = ", ".join(f"{b / a:.2f}" for a, b in zip(ms, ms[1:]))
        n = len(LENGTHS) - 1
        per = (ms[-1] / ms[0]) ** (1 / n)
        scaled = (ms[-1] * gf[-1] / (ms[0] * gf[0])) ** (1 / n)
        print(f"| {d} | " + " | ".join(f"{x:.1f}" for x in ms) + f" | {steps} | {per:.2f}x | {scaled:.2f}x |")


if __name__ == "__main__":
    main()
