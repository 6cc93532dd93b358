#!/usr/bin/env python3
"""BPE encoding speed, side by side in one run (issue 18): tapegrad, tiktoken and Hugging Face
tokenizers encoding the same text with GPT-2's vocabulary (tests/models/fixtures/gpt2.tiktoken).

    python3 bench/bpe_compare.py [--tapegrad build/tapegrad] [--mb 10] [--reps 5] [--skip-hf]

  tapegrad   `tapegrad bench tokenizer` (the encode alone: no process start-up, loading or I/O
             in the time), one thread and all threads
  tiktoken   tiktoken.Encoding(GPT-2's ranks, GPT-2's pattern).encode_ordinary(text), one
             thread; encode_ordinary_batch over the same ~1 MB chunks on all threads
  HF         tokenizers.Tokenizer (BPE from the same ranks, ByteLevel) .encode(text).ids, one
             thread (RAYON_NUM_THREADS=1)

The text: data/tinyshakespeare.txt repeated to --mb MB. Every encoder's ids are checked equal
(count and hash) before anything is timed. Medians of --reps runs. Then tapegrad's worst cases:
one character repeated, and text without whitespace, at 0.5, 1 and 2 MB (linear: time doubles).

Runs in the venv of tests/models/make_bpe_fixtures.py (made on first use: tiktoken, tokenizers).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "models"))
import make_bpe_fixtures as fixtures  # noqa: E402  (venv, ranks, the HF model from ranks)

RANKS = os.path.join(ROOT, "tests", "models", "fixtures", "gpt2.tiktoken")


def median_time(fn, reps):
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def tapegrad_bench(binary, path, threads, reps):
    out = subprocess.run([binary, "bench", "tokenizer", "--tokenizer", RANKS, "--input", path, "--threads",
                          str(threads), "--reps", str(reps), "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def chunks_at_newlines(text, size=1 << 20):
    out, at = [], 0
    while at < len(text):
        cut = text.find("\n", at + size)
        cut = len(text) if cut < 0 else cut + 1
        out.append(text[at:cut])
        at = cut
    return out


def main():
    fixtures.ensure_venv()
    os.environ.setdefault("RAYON_NUM_THREADS", "1")  # before tokenizers starts its pool
    import tiktoken
    from tiktoken_ext import openai_public

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tapegrad", default=os.path.join(ROOT, "build", "tapegrad"))
    p.add_argument("--mb", type=float, default=10)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--skip-hf", action="store_true", help="HF's encoder is slow: leave it out")
    a = p.parse_args()
    cores = os.cpu_count() or 1

    ranks = fixtures.read_ranks(RANKS)
    enc = tiktoken.Encoding("gpt2-local", pat_str=openai_public.r50k_pat_str, mergeable_ranks=ranks,
                            special_tokens={"<|endoftext|>": 50256})
    shakespeare = open(os.path.join(ROOT, "data", "tinyshakespeare.txt"), encoding="utf-8").read()
    size = int(a.mb * 1e6)
    text = (shakespeare * (size // len(shakespeare) + 1))[:size]
    text = text[: text.rfind("\n") + 1]
    tmp = tempfile.mkdtemp(prefix="tapegrad-bpe-bench-")
    path = os.path.join(tmp, "text.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    nbytes = len(text.encode("utf-8"))

    # The ids first: every encoder must agree before anything is timed.
    want = enc.encode_ordinary(text)
    rows = []
    for threads in (1, cores):
        r = tapegrad_bench(a.tapegrad, path, threads, a.reps)
        assert r["tokens"] == len(want) and r["fnv1a"] == fixtures.fnv1a(want), "tapegrad's ids differ from tiktoken's"
        rows.append((f"tapegrad, {threads} thread{'s' if threads > 1 else ''}", r["median_s"]))
    rows.append(("tiktoken encode_ordinary, 1 thread", median_time(lambda: enc.encode_ordinary(text), a.reps)))
    parts = chunks_at_newlines(text)
    batch = [i for ids in enc.encode_ordinary_batch(parts, num_threads=cores) for i in ids]
    assert batch == want, "tiktoken's batch encode differs"
    rows.append((f"tiktoken encode_ordinary_batch (1 MB chunks), {cores} threads",
                 median_time(lambda: enc.encode_ordinary_batch(parts, num_threads=cores), a.reps)))
    if not a.skip_hf:
        hf = fixtures.hf_from_ranks(ranks)
        assert hf.encode(text).ids == want, "HF's ids differ from tiktoken's"
        rows.append(("HF tokenizers encode, 1 thread", median_time(lambda: hf.encode(text), a.reps)))

    load = os.getloadavg()
    print(f"# BPE encoding: {nbytes / 1e6:.1f} MB of English (tiny Shakespeare repeated), GPT-2's vocabulary, "
          f"{len(want)} tokens; medians of {a.reps}; {cores} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print()
    base = rows[0][1]
    tk = dict(rows)["tiktoken encode_ordinary, 1 thread"]
    print("| encoder | median time | MB/s | tapegrad 1 thread is ... × faster |")
    print("|---|---|---|---|")
    for name, s in rows:
        print(f"| {name} | {s:.3f} s | {nbytes / 1e6 / s:.1f} | {s / base:.2f} |")
    print()
    print(f"tapegrad 1 thread vs tiktoken 1 thread: {tk / base:.2f}×; tapegrad {cores} threads vs 1: "
          f"{base / rows[1][1]:.2f}×" + (f"; vs HF: {dict(rows)['HF tokenizers encode, 1 thread'] / base:.1f}×"
                                         if not a.skip_hf else ""))

    # Worst cases: one long piece each; linear time means time ∝ length.
    print()
    print("| worst case (tapegrad, 1 thread) | 0.5 MB | 1 MB | 2 MB | 2 MB / 1 MB |")
    print("|---|---|---|---|---|")
    no_space = "".join(c for c in shakespeare if not c.isspace())
    for name, unit in (("one character repeated ('a')", "a"), ("no whitespace (tiny Shakespeare without it)", no_space)):
        times = []
        for mb in (0.5, 1, 2):
            n = int(mb * 1e6)
            worst = os.path.join(tmp, "worst.txt")
            with open(worst, "w", encoding="utf-8") as f:
                f.write((unit * (n // len(unit) + 1))[:n])
            times.append(tapegrad_bench(a.tapegrad, worst, 1, a.reps)["median_s"])
        print(f"| {name} | {times[0]:.3f} s | {times[1]:.3f} s | {times[2]:.3f} s | {times[2] / times[1]:.2f} |")
    for f in os.listdir(tmp):
        os.remove(os.path.join(tmp, f))
    os.rmdir(tmp)


if __name__ == "__main__":
    main()
