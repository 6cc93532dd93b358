#!/usr/bin/env python3
"""Writes tests/models/fixtures/bpe_train_parity.json: Hugging Face's BpeTrainer trained on
committed text, for tests/models/test_bpe_train.cpp (which never needs Python). Runs in
make_bpe_fixtures.py's venv (made if absent: PyPI's tokenizers and tiktoken).

Each case trains `Tokenizer(BPE())` with `ByteLevel(add_prefix_space=False)` and
`BpeTrainer(vocab_size, min_frequency, special_tokens, initial_alphabet=ByteLevel.alphabet())`
through `Tokenizer.train(files)`, and records the merges in order, the vocabulary size, and the
count of ids `encode` gives for the whole training file. The cases:
  shakespeare_8k   data/tinyshakespeare.txt, 8,192 merges (+ 256 bytes + <|endoftext|>)
  shakespeare_min  data/tinyshakespeare.txt, min_frequency 200, two special tokens
  ties             fixtures/bpe_train_ties.txt (written here): repeats and equal counts
                   everywhere, so the order among equal counts decides nearly every merge

Run it as `make_bpe_train_fixtures.py --tapegrad build/tapegrad` (the committed fixture holds
that part too): it also trains shakespeare_8k with `tapegrad tokenizer train`,
loads its tokenizer.json in HF (`Tokenizer.from_file`), checks that its merges are HF's and that
HF and `tapegrad tokenizer encode` give the same ids for make_bpe_fixtures.STRESS and the whole
file, and records HF's ids of the stress texts with tapegrad's file ("hf_ids_of_tapegrad_file").
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_bpe_fixtures as common  # noqa: E402

ROOT = common.ROOT
FIXTURES = common.FIXTURES
SHAKESPEARE = os.path.join(ROOT, "data", "tinyshakespeare.txt")
TIES = os.path.join(FIXTURES, "bpe_train_ties.txt")


def ties_text():
    """Short words whose pairs occur equally often, runs of one letter (overlapping pairs),
    alternations, several scripts, whitespace runs and CRLF lines: after each merge many pairs
    tie, so the tie rule decides."""
    lines = []
    for i in range(40):
        lines.append("ab cd ef gh ij kl mn op qr st uv wx yz " * 2)
        lines.append("a" * (i % 9 + 2) + " " + "ba" * (i % 5 + 1) + " " + "xyz" * (i % 4 + 1))
        lines.append("  \t " + "zz yy xx" + "\r")
        lines.append("día ñu über Ωμέγα 日本語 😀😀 " + str(10 ** (i % 7)))
        lines.append("")
    return "\n".join(lines) + "\n"


def train_hf(path, vocab_size, min_frequency, specials):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train([path], trainer)
    return tok


def merges_of(tok):
    spec = json.loads(tok.to_str())
    return [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]


def check_tapegrad(binary, case, hf_merges):
    from tokenizers import Tokenizer
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "tokenizer.json")
        cmd = [binary, "tokenizer", "train", "--data", SHAKESPEARE, "--vocab-size", str(case["vocab_size"]),
               "--out", out, "--special-tokens", ",".join(case["special_tokens"])]
        subprocess.check_call(cmd)
        theirs = Tokenizer.from_file(out)
        same_merges = merges_of(theirs) == hf_merges
        print("merges of tapegrad's file == HF's:", same_merges)
        bad = not same_merges
        ids = []
        for i, text in enumerate(common.STRESS + [open(SHAKESPEARE, encoding="utf-8", newline="").read()]):
            path = os.path.join(tmp, "t%d.txt" % i)
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(text)
            hf = theirs.encode(text).ids
            printed = subprocess.run([binary, "tokenizer", "encode", "--tokenizer", out, "--input", path],
                                     check=True, capture_output=True).stdout.split()
            ours = [int(x) for x in printed]
            bad |= hf != ours
            if hf != ours or i == len(common.STRESS):
                print("ok  " if hf == ours else "DIFF", repr(text[:40]), len(hf), "ids")
            if i < len(common.STRESS):
                ids.append(hf)
        if bad:
            sys.exit("tapegrad's trained tokenizer differs from HF's (see above)")
        print("HF loads tapegrad's tokenizer.json and encodes as tapegrad does:", len(ids) + 1, "texts")
        return ids


def main():
    common.ensure_venv()
    import tokenizers
    with open(TIES, "w", encoding="utf-8", newline="") as f:
        f.write(ties_text())
    cases = [
        {"name": "shakespeare_8k", "file": "data/tinyshakespeare.txt", "vocab_size": 8192 + 256 + 1,
         "min_frequency": 0, "special_tokens": ["<|endoftext|>"]},
        {"name": "shakespeare_min", "file": "data/tinyshakespeare.txt", "vocab_size": 4000,
         "min_frequency": 200, "special_tokens": ["<|endoftext|>", "<pad>"]},
        {"name": "ties", "file": "tests/models/fixtures/bpe_train_ties.txt", "vocab_size": 600,
         "min_frequency": 0, "special_tokens": []},
    ]
    for case in cases:
        path = os.path.join(ROOT, case["file"])
        tok = train_hf(path, case["vocab_size"], case["min_frequency"], case["special_tokens"])
        case["merges"] = merges_of(tok)
        case["trained_vocab_size"] = tok.get_vocab_size()
        case["encoded_length"] = len(tok.encode(open(path, encoding="utf-8", newline="").read()).ids)
        print(case["name"], len(case["merges"]), "merges,", case["trained_vocab_size"], "tokens,",
              case["encoded_length"], "ids for the file")
    if "--tapegrad" in sys.argv:
        cases[0]["stress_texts"] = common.STRESS
        cases[0]["hf_ids_of_tapegrad_file"] = check_tapegrad(sys.argv[sys.argv.index("--tapegrad") + 1], cases[0],
                                                             cases[0]["merges"])
    out = {"source": "made by tests/models/make_bpe_train_fixtures.py with tokenizers " + tokenizers.__version__,
           "cases": cases}
    with open(os.path.join(FIXTURES, "bpe_train_parity.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=0)
    print("wrote", os.path.join(FIXTURES, "bpe_train_parity.json"))


if __name__ == "__main__":
    main()
