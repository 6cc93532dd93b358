#!/usr/bin/env python3
"""BPE training, side by side in one run: `tapegrad tokenizer train` against Hugging Face's
BpeTrainer (tokenizers, Rust, every core through rayon), the same file, vocabulary and special
token, both ways as a user runs them. Alternating runs; the median of --runs each.

  python3 bench/bpe_train_compare.py [--tapegrad build/tapegrad] [--repeat 10] [--merges 8192] [--runs 3]
                                     [--data FILE]   # another text instead of tiny Shakespeare

The text: data/tinyshakespeare.txt repeated --repeat times (in a temporary file). HF trains
`Tokenizer(BPE())` with `ByteLevel(add_prefix_space=False)` and
`BpeTrainer(vocab_size=merges + 257, special_tokens=["<|endoftext|>"],
initial_alphabet=ByteLevel.alphabet())` through `Tokenizer.train([file])`, timed in-process (no
interpreter start-up counted); tapegrad's time is the whole command (start-up, reading, writing
tokenizer.json). Both merges lists are compared. Runs in tests/models/make_bpe_fixtures.py's venv.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "models"))
import make_bpe_fixtures as common  # noqa: E402


def hf_train(path, vocab_size):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    start = time.perf_counter()
    tok.train([path], trainer)
    return time.perf_counter() - start, tok


def merges_of(spec):
    return [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    common.ensure_venv()
    import tokenizers
    ap = argparse.ArgumentParser()
    ap.add_argument("--tapegrad", default=os.path.join(ROOT, "build", "tapegrad"))
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--merges", type=int, default=8192)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--data", help="a UTF-8 text to train on, --repeat times (default: data/tinyshakespeare.txt)")
    a = ap.parse_args()
    vocab_size = a.merges + 256 + 1
    source = a.data or os.path.join(ROOT, "data", "tinyshakespeare.txt")
    text = open(source, encoding="utf-8", newline="").read() * a.repeat
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "text_x%d.txt" % a.repeat)
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        out = os.path.join(tmp, "tokenizer.json")
        cmd = [a.tapegrad, "tokenizer", "train", "--data", path, "--vocab-size", str(vocab_size), "--out", out,
               "--special-tokens", "<|endoftext|>"]
        ours, theirs = [], []
        for _ in range(a.runs):
            start = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ours.append(time.perf_counter() - start)
            seconds, tok = hf_train(path, vocab_size)
            theirs.append(seconds)
        same = merges_of(json.load(open(out, encoding="utf-8"))) == merges_of(json.loads(tok.to_str()))
    load_after = os.getloadavg()
    t_ours, t_hf = statistics.median(ours), statistics.median(theirs)
    mb = len(text.encode("utf-8")) / 1e6
    print("BPE training: %s x%d (%.1f MB), %d merges (vocab %d with <|endoftext|>), median of %d"
          % (os.path.basename(source), a.repeat, mb, a.merges, vocab_size, a.runs))
    print("machine: %s, %d cores; load average %.2f before, %.2f after; tokenizers %s"
          % (cpu_model(), os.cpu_count(), load_before[0], load_after[0], tokenizers.__version__))
    print()
    print("| trainer | median s | runs (s) | MB/s | vs HF |")
    print("| --- | ---: | --- | ---: | ---: |")
    print("| `tapegrad tokenizer train` | %.3f | %s | %.1f | %.2fx |"
          % (t_ours, " ".join("%.3f" % s for s in ours), mb / t_ours, t_hf / t_ours))
    print("| HF `BpeTrainer` (tokenizers %s) | %.3f | %s | %.1f | 1.00x |"
          % (tokenizers.__version__, t_hf, " ".join("%.3f" % s for s in theirs), mb / t_hf))
    print()
    print("same merges as HF:", same)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
