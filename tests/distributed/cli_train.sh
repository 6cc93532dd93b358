#!/usr/bin/env bash
# `mpirun -np 2 tapegrad gpt train --batch-size 2` against `tapegrad gpt train --batch-size 4` on
# the same data (registered with CTest in CMakeLists.txt): the loss curves must agree within
# float tolerance, only rank 0 may write the log and print the summary, and the checkpoint must
# load. Usage: cli_train.sh TAPEGRAD MPIEXEC SOURCE_DIR
set -euo pipefail
tapegrad=$1 mpiexec=$2 src=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -c 20000 "$src/data/tinyshakespeare.txt" >"$work/text.txt"
flags=(--data "$work/text.txt" --n-layer 1 --n-head 2 --n-embd 32 --block-size 16 --max-iters 25
       --eval-interval 0 --eval-iters 2 --warmup-iters 5 --lr 3e-3 --threads 1)
"$tapegrad" gpt train "${flags[@]}" --batch-size 4 --out "$work/one" --log "$work/one.csv" >"$work/one.out" 2>/dev/null
"$mpiexec" --oversubscribe -n 2 "$tapegrad" gpt train "${flags[@]}" --batch-size 2 --out "$work/two" \
  --log "$work/two.csv" >"$work/two.out" 2>"$work/two.err" || { cat "$work/two.out" "$work/two.err"; exit 1; }
cat "$work/two.out"
[ "$(grep -c '^trained ' "$work/two.out")" = 1 ] || { echo "FAILED: the summary was not printed exactly once"; exit 1; }
grep -q 'data-parallel over 2 ranks' "$work/two.out" || { echo "FAILED: no data-parallel line"; exit 1; }
python3 - "$work/one.csv" "$work/two.csv" <<'PY'
import csv, sys
one = [float(r["loss"]) for r in csv.DictReader(open(sys.argv[1]))]
two = [float(r["loss"]) for r in csv.DictReader(open(sys.argv[2]))]
assert len(one) == 25, f"FAILED: the single process logged {len(one)} steps"
assert len(two) == 25, f"FAILED: the 2-rank run logged {len(two)} rows (only rank 0 may write the log)"
worst = max(abs(a - b) / max(1.0, abs(a)) for a, b in zip(one, two))
print(f"2 ranks x batch 2 vs 1 process x batch 4: losses {one[0]:.4f} -> {one[-1]:.4f}, worst relative difference {worst:.2e}")
assert one[-1] < one[0] - 0.1, "FAILED: the loss did not fall"
assert worst < 1e-4, f"FAILED: the loss curves differ by {worst:.2e}"
PY
"$tapegrad" gpt eval --checkpoint "$work/two" --data "$work/text.txt" --block-size 16 | grep -q '^loss '
