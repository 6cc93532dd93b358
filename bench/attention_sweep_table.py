#!/usr/bin/env python3
"""Turns a `tapegrad bench attention --csv` sweep into the Markdown table of bench/README.md: one
row per (variant, D), one column per T, each cell the share of the sgemm peak of its own rounds
and, in brackets, its GFLOP/s. With --against OLD.csv each cell also shows the older run's share,
and a second table gives each row's median share over T >= 1024 in both runs (single cells move
by +-15 points with their rounds' sgemm samples on a noisy machine; the medians less).

  python3 bench/attention_sweep_table.py bench/results/attention-sweep-2/fwdbwd-causal.csv \
      --against bench/results/attention-sweep/fwdbwd-causal.csv
"""
import argparse
import csv
import statistics


def read(path):
    cells = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            cells[(r["variant"], int(r["head_dim"]), int(r["seq_len"]))] = r
    return cells


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("csv")
    ap.add_argument("--against", help="an earlier sweep's CSV, shown as 'was N%%' in each cell")
    args = ap.parse_args()
    cells = read(args.csv)
    old = read(args.against) if args.against else {}
    variants = list(dict.fromkeys(k[0] for k in cells))
    widths = sorted({k[1] for k in cells})
    lengths = sorted({k[2] for k in cells})
    print("| variant | D | " + " | ".join(f"T={t}" for t in lengths) + " |")
    print("|---|---|" + "---|" * len(lengths))
    for v in variants:
        for d in widths:
            row = []
            for t in lengths:
                r = cells.get((v, d, t))
                if r is None:
                    row.append("—")
                    continue
                text = f"{float(r['peak_percent']):.0f}% ({float(r['gflops']):.0f})"
                o = old.get((v, d, t))
                if o is not None:
                    text += f", was {float(o['peak_percent']):.0f}%"
                row.append(text)
            print(f"| {v} | {d} | " + " | ".join(row) + " |")
    if old:
        print("\n| variant | D | median share, T >= 1024 | before |")
        print("|---|---|---|---|")
        for v in variants:
            for d in widths:
                def median(run):
                    shares = [float(r["peak_percent"]) for (rv, rd, rt), r in run.items()
                              if rv == v and rd == d and rt >= 1024]
                    return f"{statistics.median(shares):.0f}%" if shares else "—"
                print(f"| {v} | {d} | {median(cells)} | {median(old)} |")


if __name__ == "__main__":
    main()
