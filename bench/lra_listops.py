#!/usr/bin/env python3
"""bench/lra_listops.py: one row of the long-range table (issue 17, models/README.md): ListOps at
LRA's lengths, the encoder classifier trained with one recipe for every attention variant, then
evaluated on the test split. Prints the row and appends it to bench/results/lra_listops.csv.

  bench/lra_listops.py --attention flash            # the full run (5,000 steps: about 2 hours)
  bench/lra_listops.py --attention linear --max-iters 100 --out /tmp/lra-smoke

The recipe is that of LRA's small-model reproductions (Nystromformer's LRA/code/lra_config.py
for ListOps): 2 layers, width 64, 2 heads (head width 32), FFN 128, pre-LN, mean pooling, learned
positions, dropout 0.1, batch 32, AdamW (0.9, 0.999) without weight decay, lr 1e-4 after 1,000
warm-up steps, linear decay to 0 at step 5,000, inputs up to 2,000 tokens. Batches are drawn from
length buckets (--bucket-by-length): the padding's share is in the row. The data
(`tapegrad data listops`: 96,000 / 2,000 / 2,000 examples, lengths 500-2000, depth 10, 10
arguments, seed 0) is generated once into --data-dir."""
import argparse
import csv
import datetime
import os
import re
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE = ["--max-len", "2000", "--n-layer", "2", "--n-head", "2", "--n-embd", "64", "--ffn-dim", "128",
          "--dropout", "0.1", "--norm", "pre", "--pooling", "mean", "--pos", "learned", "--batch-size", "32",
          "--optimizer", "adamw", "--beta1", "0.9", "--beta2", "0.999", "--weight-decay", "0",
          "--lr", "1e-4", "--min-lr", "0", "--warmup-iters", "1000", "--lr-schedule", "linear",
          "--bucket-by-length"]
LRA_PUBLISHED = {"dense": 36.37, "flash": 36.37, "sparse": 36.05, "linear": 16.13}  # LRA paper, Table 1


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--attention", required=True, help="dense, flash, sliding:W, sparse, linear, flex:PATTERN")
    p.add_argument("--tapegrad", default=os.path.join(ROOT, "build", "tapegrad"))
    p.add_argument("--data-dir", default=os.path.join("runs", "listops-lra"))
    p.add_argument("--out", default="", help="checkpoint directory (default runs/lra-<attention>)")
    p.add_argument("--max-iters", type=int, default=5000)
    p.add_argument("--eval-interval", type=int, default=500)
    p.add_argument("--csv", default=os.path.join(ROOT, "bench", "results", "lra_listops.csv"))
    p.add_argument("--seed", type=int, default=1337)
    return p.parse_args()


def timed(cmd):
    """Runs cmd (its output streamed): -> (stdout text, wall s, peak RSS bytes of the children,
    from getrusage: no GNU time needed)."""
    start = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = []
    for line in proc.stdout:
        sys.stdout.write(line)
        out.append(line)
    proc.wait()
    wall = time.time() - start
    if proc.returncode != 0:
        sys.exit(f"lra_listops: {' '.join(cmd)} failed with exit code {proc.returncode}")
    return "".join(out), wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def main():
    a = parse_args()
    if not os.path.exists(os.path.join(a.data_dir, "test.tsv")):
        subprocess.run([a.tapegrad, "data", "listops", "--out", a.data_dir], check=True)
    out = a.out or os.path.join("runs", "lra-" + a.attention.replace(":", "-"))
    train = [a.tapegrad, "encoder", "train", "--data", os.path.join(a.data_dir, "train.tsv"),
             "--val-data", os.path.join(a.data_dir, "val.tsv"), "--out", out, "--attention", a.attention,
             "--max-iters", str(a.max_iters), "--eval-interval", str(a.eval_interval), "--seed", str(a.seed),
             "--log", out.rstrip("/") + ".log.csv"] + RECIPE
    print("lra_listops:", " ".join(train), flush=True)
    text, wall, rss = timed(train)  # the largest child so far: the training (data generation holds less)
    m = re.search(r"val accuracy (\S+) \(majority class (\S+)\), (\S+) examples/s \(median\), padding (\S+)%", text)
    if not m:
        sys.exit("lra_listops: the training's summary line is missing")
    evaluation = subprocess.run([a.tapegrad, "encoder", "eval", "--checkpoint", out, "--data",
                                 os.path.join(a.data_dir, "test.tsv")], check=True, capture_output=True, text=True)
    acc = re.search(r"accuracy (\S+)", evaluation.stdout)
    if not acc:
        sys.exit(f"lra_listops: encoder eval printed no accuracy: {evaluation.stdout}")
    row = dict(date=f"{datetime.datetime.now():%Y-%m-%d %H:%M}", attention=a.attention, steps=a.max_iters,
               test_accuracy=float(acc.group(1)), val_accuracy=m.group(1), majority=m.group(2),
               examples_per_s=m.group(3), padding_pct=m.group(4), wall_s=round(wall), peak_rss_mib=round(rss / 2**20),
               lra_published=LRA_PUBLISHED.get(a.attention.split(":")[0], ""), command=" ".join(train))
    os.makedirs(os.path.dirname(a.csv), exist_ok=True)
    new = not os.path.exists(a.csv)
    with open(a.csv, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)
    print(f"| {a.attention} | {100 * row['test_accuracy']:.2f} | {row['lra_published']} | {row['examples_per_s']} | "
          f"{wall / 3600:.2f} h | {row['peak_rss_mib']} MiB | {row['padding_pct']}% |")


if __name__ == "__main__":
    main()
