#!/usr/bin/env python3
"""Hostile-input sweep of the `tapegrad` command (issue 15).

Runs a table of hostile command lines against a tapegrad binary, every subcommand, and checks
that each one ends with a clear error (exit 1 or 2, a message on stderr naming the flag or the
file), never a signal, never a hang, never an allocation the machine cannot hold, and never a
lost file of the user's. A few cases must succeed instead (exit 0). Prints a table and a summary
line; exits 1 if any case failed.

    tools/hostile_sweep.py                              # build/tapegrad
    tools/hostile_sweep.py --tapegrad /path/to/tapegrad -k fifo
    tools/hostile_sweep.py --list

The classes:
  baseline   sane tiny commands that must succeed (the harness itself works)
  sizes      sizes that overflow or cannot fit (flags, config.json, safetensors headers)
  values     numeric flags that are NaN, infinite or otherwise meaningless
  fs         file-system trouble for every path flag and the files inside checkpoints
  one-error  exceptions other than tg::Error (filesystem_error, bad_alloc, json errors...) must
             become one line naming the subcommand, exit 1, never SIGABRT
  mismatch   model and data files that disagree (vocabularies, labels, shapes, flags)
  honest     --max-iters 0, NaN/Inf weights, --optimizer sgd with --momentum/--nesterov
  foreign    the user's files and folders in --out (or shared with an output) are never lost

Every child runs niced, with an address-space limit (--rlimit-gb, 2 GiB by default), stdin from
/dev/null, one BLAS/OpenMP thread, in its own session (killed with its group on timeout).
Cases marked unprivileged run as uid/gid 65534 when the sweep runs as root (root reads
chmod-000 files). Full-file-system cases mount a small tmpfs (needs root; skipped with the
reason otherwise). Standard library only.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Optional, Sequence, Union

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(REPO, "tests", "models", "fixtures", "gpt2_tiny")
TIKTOKEN = os.path.join(REPO, "tests", "models", "fixtures", "gpt2.tiktoken")  # GPT-2's ranks
BPE_JSON = os.path.join(REPO, "tests", "models", "fixtures", "bpe_shakespeare.json")  # 1,000 tokens
LLAMA = os.path.join(REPO, "tests", "models", "fixtures", "llama", "llama3_scaled")  # transformers', BF16, 2 shards
NOBODY = 65534

# ---- the case table --------------------------------------------------------------------------

Words = Sequence[Union[str, Sequence[str]]]  # each item: a string, or alternatives (any of them)


@dataclasses.dataclass
class Case:
    name: str
    cls: str
    argv: list[str]
    setup: Optional[Callable[["Ctx"], None]] = None
    # "error": exit 1 or 2; "ok": exit 0; "any": exit 0, 1 or 2 (then words apply to a refusal)
    expect: str = "error"
    words: Words = ()
    check: Optional[Callable[["Ctx", "Result"], Optional[str]]] = None
    unpriv: bool = False
    full_fs: bool = False  # a full tmpfs at {d}/full (setup's files there are made first)
    timeout: Optional[float] = None


@dataclasses.dataclass
class Result:
    code: Optional[int]  # None: timed out
    sig: Optional[int]
    stdout: str
    stderr: str
    seconds: float


class Ctx:
    """Placeholders: {d} the case's own directory, {S} shared inputs, {G} a tiny GPT checkpoint
    (with tokenizer.json), {E} a tiny encoder checkpoint, {FIX} the fixture gpt2_tiny (no
    tokenizer), {full} a full tmpfs inside {d} (full_fs cases)."""

    def __init__(self, d: str, shared: dict[str, str]):
        self.d = d
        self.S, self.G, self.E = shared["S"], shared["G"], shared["E"]
        self.foreign: list[str] = []  # paths hashed before the run and compared after
        self.mounted: Optional[str] = None

    def sub(self, s: str) -> str:
        return (s.replace("{d}", self.d).replace("{S}", self.S).replace("{G}", self.G)
                .replace("{E}", self.E).replace("{FIX}", FIXTURE).replace("{full}", os.path.join(self.d, "full")))

    def p(self, rel: str) -> str:
        return os.path.join(self.d, rel)


# ---- small file makers ---------------------------------------------------------------------

TEXT = "to be or not to be, that is the question.\n" * 200


def write(path: str, data: Union[str, bytes], mode: Optional[int] = None) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    if mode is not None:
        os.chmod(path, mode)
    return path


def fifo(path: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.mkfifo(path)
    return path


def loop(path: str) -> str:
    """A symbolic link to itself (ELOOP on open and stat)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(os.path.basename(path), path)
    return path


def link(target: str, path: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(target, path)
    return path


def mkdir(path: str, mode: Optional[int] = None) -> str:
    os.makedirs(path, exist_ok=True)
    if mode is not None:
        os.chmod(path, mode)
    return path


def copy_ckpt(src: str, dst: str) -> str:
    shutil.copytree(src, dst, symlinks=True)
    return dst


# A small safetensors reader and writer: header length (u64 LE), JSON header, data.
ST_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "U8": 1, "BOOL": 1}


def st_read(path: str) -> tuple[dict, dict]:
    """Returns (tensors: name -> [dtype, shape, bytes], metadata)."""
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = b[8 + n:]
    return {k: [v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]]]
            for k, v in header.items()}, meta


def st_write(path: str, tensors: dict, meta: Optional[dict] = None, header_patch: Optional[dict] = None,
             raw_header: Optional[bytes] = None, header_len: Optional[int] = None, truncate: Optional[int] = None):
    """Writes tensors (name -> [dtype, shape, bytes]); header_patch overrides header entries
    (e.g. a huge shape or offsets beyond the file) after the honest header is built."""
    header, blob, off = {}, b"", 0
    for k in sorted(tensors):
        dtype, shape, data = tensors[k]
        header[k] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        blob += data
        off += len(data)
    if meta:
        header["__metadata__"] = meta
    for k, v in (header_patch or {}).items():
        if v is None:
            header.pop(k, None)
        else:
            header[k] = {**header.get(k, {}), **v}
    h = raw_header if raw_header is not None else json.dumps(header).encode()
    out = struct.pack("<Q", len(h) if header_len is None else header_len) + h + blob
    if truncate is not None:
        out = out[:truncate]
    write(path, out)


def st_poison(path: str, name_part: str, value: float):
    """Sets the first element of the first tensor whose name contains name_part to value."""
    tensors, meta = st_read(path)
    name = next(k for k in sorted(tensors) if name_part in k)
    dtype, shape, data = tensors[name]
    fmt = {"F32": "<f", "F64": "<d"}[dtype]
    tensors[name][2] = struct.pack(fmt, value) + data[struct.calcsize(fmt):]
    st_write(path, tensors, meta)


def json_patch(path: str, **changes):
    j = json.load(open(path))
    for k, v in changes.items():
        if v is None:
            j.pop(k, None)
        else:
            j[k] = v
    write(path, json.dumps(j, indent=2))


# ---- argv builders ----------------------------------------------------------------------------

TINY_GPT = {"--n-layer": "1", "--n-embd": "16", "--n-head": "2", "--block-size": "8", "--batch-size": "2",
            "--max-iters": "2", "--eval-interval": "0", "--threads": "1"}
TINY_ENC = {"--n-layer": "1", "--n-embd": "16", "--n-head": "2", "--max-len": "16", "--batch-size": "2",
            "--max-iters": "2", "--eval-interval": "0", "--threads": "1"}


def _build(head: list[str], base: dict, over: dict) -> list[str]:
    merged = dict(base)
    for k, v in over.items():
        merged[k] = v
    argv = list(head)
    for k, v in merged.items():
        if v is None:
            continue
        argv.append(k)
        if v is not True:
            argv.append(v)
    return argv


def gt(**over) -> list[str]:
    """gpt train, tiny; flags as keyword arguments: data="...", n_embd="..." (None drops a flag,
    True makes it a bare flag)."""
    base = {"--data": "{S}/text.txt", "--out": "{d}/o", **TINY_GPT}
    return _build(["gpt", "train"], base, {"--" + k.replace("_", "-"): v for k, v in over.items()})


def et(**over) -> list[str]:
    base = {"--data": "{S}/train.tsv", "--out": "{d}/o", **TINY_ENC}
    return _build(["encoder", "train"], base, {"--" + k.replace("_", "-"): v for k, v in over.items()})


def ge(**over) -> list[str]:
    base = {"--checkpoint": "{G}", "--data": "{S}/text.txt", "--batch-size": "2"}
    return _build(["gpt", "eval"], base, {"--" + k.replace("_", "-"): v for k, v in over.items()})


def gs(**over) -> list[str]:
    base = {"--checkpoint": "{G}", "--prompt": "to be", "--max-new-tokens": "5"}
    return _build(["gpt", "sample"], base, {"--" + k.replace("_", "-"): v for k, v in over.items()})


def ga(**over) -> list[str]:
    base = {"--checkpoint": "{G}", "--prompt": "to be", "--out": "{d}/a.svg"}
    return _build(["gpt", "attention"], base, {"--" + k.replace("_", "-"): v for k, v in over.items()})


def ee(**over) -> list[str]:
    base = {"--checkpoint": "{E}", "--data": "{S}/train.tsv"}
    return _build(["encoder", "eval"], base, {"--" + k.replace("_", "-"): v for k, v in over.items()})


def dl(**over) -> list[str]:
    base = {"--out": "{d}/l", "--train": "5", "--val": "2", "--test": "2", "--min-len": "5", "--max-len": "60",
            "--max-depth": "4", "--max-args": "4"}
    return _build(["data", "listops"], base, {"--" + k.replace("_", "-"): v for k, v in over.items()})


def ba(**over) -> list[str]:
    base = {"--seq-lens": "8,16", "--reps": "1", "--threads": "1", "--variants": "dense,flash", "--heads": "1",
            "--head-dim": "8"}
    return _build(["bench", "attention"], base, {"--" + k.replace("_", "-"): v for k, v in over.items()})


def te(**over) -> list[str]:
    """tokenizer encode with GPT-2's ranks (the committed fixture) of the shared text."""
    base = {"--tokenizer": TIKTOKEN, "--input": "{S}/text.txt"}
    return _build(["tokenizer", "encode"], base, {"--" + k.replace("_", "-"): v for k, v in over.items()})


def td(**over) -> list[str]:
    """tokenizer decode with GPT-2's ranks."""
    base = {"--tokenizer": TIKTOKEN, "--input": "{S}/text.txt"}
    return _build(["tokenizer", "decode"], base, {"--" + k.replace("_", "-"): v for k, v in over.items()})


def tt(**over) -> list[str]:
    """tokenizer train on the shared text, 300 tokens."""
    base = {"--data": "{S}/text.txt", "--vocab-size": "300", "--out": "{d}/tok.json"}
    return _build(["tokenizer", "train"], base, {"--" + k.replace("_", "-"): v for k, v in over.items()})


def gc(**over) -> list[str]:
    base = {"--op": "matmul", "--threads": "1"}
    return _build(["gradcheck"], base, {"--" + k.replace("_", "-"): v for k, v in over.items()})


# ---- checks used by several cases ---------------------------------------------------------------


def wrote(*rels: str):
    def check(ctx: Ctx, r: Result) -> Optional[str]:
        missing = [rel for rel in rels if not os.path.isfile(ctx.p(rel))]
        return f"announced output missing: {', '.join(missing)}" if missing else None
    return check


def ckpt_or_refused(out_rel: str, flag: str):
    """--max-iters 0: either the checkpoint it announces is there, or the command refused naming the flag."""
    def check(ctx: Ctx, r: Result) -> Optional[str]:
        if r.code == 0:
            m = re.search(r"checkpoint: (\S+)", r.stdout)
            missing = [f for f in ("config.json", "model.safetensors") if not os.path.isfile(ctx.p(os.path.join(out_rel, f)))]
            if missing:
                return f"exit 0 and announced {m.group(1) if m else 'a checkpoint'} but {out_rel}/ lacks {', '.join(missing)}"
            return None
        return None if flag in r.stderr else f"refused without naming {flag}"
    return check


NONFINITE = ("NaN", "nan", "Inf", "inf", "non-finite", "not finite")


def nan_named(fname: str):
    """gpt eval on NaN weights: exit 0 printing loss nan is acceptable only if stderr says why
    (naming the file); exit 1 must name the file too."""
    def check(ctx: Ctx, r: Result) -> Optional[str]:
        if fname not in r.stderr or not any(w in r.stderr for w in NONFINITE):
            return f"stderr does not name {fname} and its NaN/Inf"
        return None
    return check


def exists_after(rel: str):
    def check(ctx: Ctx, r: Result) -> Optional[str]:
        return None if os.path.lexists(ctx.p(rel)) else f"{rel} is gone"
    return check


# ---- the cases -----------------------------------------------------------------------------------

WTE = "<the wte tensor>"  # st_bad's patches: the token embedding, whatever its name in the file
LINE3 = ("line 3", ":3:", ":3 ", "line 3:")  # a text format's error names the line


def cases() -> list[Case]:
    C: list[Case] = []

    def add(*a, **k):
        C.append(Case(*a, **k))

    # -- baseline: these must succeed ------------------------------------------------------------
    add("baseline-gpt-train", "baseline", gt(), expect="ok", check=wrote("o/config.json", "o/model.safetensors", "o/tokenizer.json"))
    add("baseline-gpt-train-bin", "baseline", gt(data="{S}/tokens.bin"), expect="ok", check=wrote("o/model.safetensors"))
    add("baseline-gpt-eval", "baseline", ge(), expect="ok", words=["loss"])
    add("baseline-gpt-sample", "baseline", gs(), expect="ok")
    add("baseline-gpt-attention", "baseline", ga(), expect="ok", check=wrote("a.svg"))
    add("baseline-encoder-train", "baseline", et(), expect="ok", check=wrote("o/config.json", "o/model.safetensors", "o/vocab.json"))
    add("baseline-encoder-eval", "baseline", ee(), expect="ok", words=["accuracy"])
    add("baseline-data-listops", "baseline", dl(), expect="ok", check=wrote("l/train.tsv", "l/val.tsv", "l/test.tsv"))
    add("baseline-bench", "baseline", ba(csv="{d}/b.csv", plot="{d}/b.svg"), expect="ok", check=wrote("b.csv", "b.svg"))
    add("baseline-gradcheck", "baseline", gc(), expect="ok")

    # -- sizes: overflow or cannot fit -----------------------------------------------------------
    big = "4294967296"            # 2^32
    huge = "9223372036854775807"  # INT64_MAX
    over = "99999999999999999999"  # beyond int64
    for flag, vals in {"n-embd": [big, "9223372036854775806", over], "n-layer": ["1000000000", huge],
                       "batch-size": ["1000000000000", huge], "block-size": ["1000000000000", huge]}.items():
        for v in vals:
            extra = {"n_head": "2"} if flag == "n-embd" else {}
            # a block longer than the data may be named by the data file instead
            words = [("--block-size", "--data")] if flag == "block-size" else [f"--{flag}"]
            add(f"sizes-gpt-train-{flag}-{v}", "sizes", gt(**{flag.replace("-", "_"): v}, **extra), words=words)
    add("sizes-gpt-train-n-head-huge", "sizes", gt(n_head=huge, n_embd=huge), words=[("--n-head", "--n-embd")])
    for flag, v in [("n-embd", big), ("n-layer", "1000000000"), ("batch-size", "1000000000000"), ("max-len", "1000000000000"),
                    ("n-classes", "1000000000000"), ("n-classes", huge)]:
        extra = {"n_head": "2"} if flag == "n-embd" else {}
        # a batch larger than the data may be cut to the data: success is fine there
        add(f"sizes-encoder-train-{flag}-{v}", "sizes", et(**{flag.replace("-", "_"): v}, **extra), words=[f"--{flag}"],
            expect="any" if flag == "batch-size" else "error")
    add("sizes-gpt-eval-block-size-huge", "sizes", ge(block_size=huge), words=["--block-size"])
    add("sizes-gpt-eval-batch-size-huge", "sizes", ge(batch_size=huge), expect="any", words=["--batch-size"])
    add("sizes-encoder-eval-batch-size-huge", "sizes", ee(batch_size=huge), expect="any", words=["--batch-size"])
    add("sizes-listops-train-huge", "sizes", dl(train="1000000000000"), words=["--train"], timeout=20)
    add("sizes-listops-train-int64max", "sizes", dl(train=huge), words=["--train"], timeout=20)
    add("sizes-listops-sum-overflows", "sizes", dl(train="4611686018427387904", val="4611686018427387904", test="4611686018427387904"),
        words=[("--train", "--val", "--test")], timeout=20)
    add("sizes-listops-min-len-overflow", "sizes", dl(min_len="9223372036854775806", max_len=huge), words=[("--min-len", "--max-len")])
    add("sizes-listops-depth-args-max", "sizes", dl(max_depth="10000", max_args="10000", min_len="5", max_len=huge),
        expect="any", words=[("--max-depth", "--max-args", "--max-len")], timeout=20)
    add("sizes-bench-seq-lens-int64max", "sizes", ba(seq_lens=huge), words=["--seq-lens"])
    add("sizes-bench-seq-lens-2^32", "sizes", ba(seq_lens=big, max_memory="1000000G"), words=["--seq-lens"])
    add("sizes-bench-seq-lens-beyond-int64", "sizes", ba(seq_lens=over), words=["--seq-lens"])
    add("sizes-bench-max-memory-overflow", "sizes", ba(max_memory="99999999999999999999G"), words=["--max-memory"])
    add("sizes-bench-max-memory-overflow-suffix", "sizes", ba(max_memory="9000000000000G"), words=["--max-memory"])
    add("sizes-bench-max-memory-negative", "sizes", ba(max_memory="-1"), words=["--max-memory"])
    add("sizes-bench-max-memory-bad-suffix", "sizes", ba(max_memory="12Q"), words=["--max-memory"])
    add("sizes-bench-huge-cell-unlimited", "sizes",
        ba(seq_lens="1000000", batch="1048576", heads="4096", head_dim="4096", variants="dense", max_memory="1000000000G"),
        expect="any", words=[("--max-memory", "--seq-lens", "--batch")])  # skipping the cell is fine

    def cfg(src_key: str, **changes):
        def setup(ctx: Ctx):
            copy_ckpt(getattr(ctx, src_key), ctx.p("c"))
            json_patch(ctx.p("c/config.json"), **changes)
        return setup
    for key, v in [("n_embd", 10**12), ("n_layer", 10**9), ("vocab_size", 10**12), ("n_positions", 10**12),
                   ("vocab_size", 2**63 - 1), ("n_embd", 2**62), ("n_head", 0), ("n_embd", -16), ("n_inner", 10**12)]:
        add(f"sizes-config-{key}-{v}-gpt-eval", "sizes", ge(checkpoint="{d}/c"), setup=cfg("G", **{key: v}), words=["config.json"])
    add("sizes-config-n_embd-huge-gpt-sample", "sizes", gs(checkpoint="{d}/c"), setup=cfg("G", n_embd=10**12), words=["config.json"])
    add("sizes-config-n_positions-huge-gpt-attention", "sizes", ga(checkpoint="{d}/c"), setup=cfg("G", n_positions=10**12), words=["config.json"])
    add("sizes-config-n_layer-huge-init-from", "sizes", gt(init_from="{d}/c", n_layer=None, n_embd=None, n_head=None),
        setup=cfg("G", n_layer=10**9), words=["config.json"])
    for key, v in [("n_classes", 10**12), ("max_len", 10**12), ("vocab_size", 10**12), ("ffn_dim", 10**12), ("n_embd", 2**62)]:
        add(f"sizes-encoder-config-{key}-{v}", "sizes", ee(checkpoint="{d}/c"), setup=cfg("E", **{key: v}), words=["config.json"])

    def st_bad(**kw):
        def setup(ctx: Ctx):
            copy_ckpt(ctx.G, ctx.p("c"))
            path = ctx.p("c/model.safetensors")
            tensors, meta = st_read(path)
            # tapegrad writes "wte.weight", Hugging Face "transformer.wte.weight": patch the one there
            wte_name = next(k for k in tensors if k.endswith("wte.weight"))
            patch = {wte_name if k == WTE else k: v for k, v in (kw.get("patch") or {}).items()}
            st_write(path, tensors, meta, header_patch=patch, raw_header=kw.get("raw"), header_len=kw.get("hlen"),
                     truncate=kw.get("truncate"))
        return setup
    wte = WTE
    st_cases = {
        "header-len-int64max": dict(hlen=2**63 - 1),
        "header-len-2^64-1": dict(hlen=2**64 - 1),
        "header-len-beyond-file": dict(hlen=10**9),
        "shape-huge": dict(patch={wte: {"shape": [10**12, 16]}}),
        "shape-product-overflows": dict(patch={wte: {"shape": [2**32, 2**32, 16]}}),
        "shape-negative": dict(patch={wte: {"shape": [-1, 16]}}),
        "offsets-beyond-file": dict(patch={wte: {"data_offsets": [0, 10**15]}}),
        "offsets-reversed": dict(patch={wte: {"data_offsets": [64, 0]}}),
        "offsets-int64max": dict(patch={wte: {"data_offsets": [2**63 - 1, 2**63 - 1]}}),
        "dtype-unknown": dict(patch={wte: {"dtype": "Q7"}}),
        "tensor-missing": dict(patch={wte: None}),
        "truncated-data": dict(truncate=2000),
        "header-not-json": dict(raw=b"{not json"),
        "header-a-list": dict(raw=b"[1,2,3]"),
    }
    for nm, kw in st_cases.items():
        add(f"sizes-safetensors-{nm}", "sizes", ge(checkpoint="{d}/c"), setup=st_bad(**kw), words=["model.safetensors"])
    add("sizes-safetensors-shape-huge-sample", "sizes", gs(checkpoint="{d}/c"),
        setup=st_bad(patch={wte: {"shape": [10**12, 16]}}), words=["model.safetensors"])
    add("sizes-safetensors-header-huge-init-from", "sizes", gt(init_from="{d}/c", n_layer=None, n_embd=None, n_head=None),
        setup=st_bad(hlen=2**63 - 1), words=["model.safetensors"])
    add("sizes-safetensors-empty-file", "sizes", ge(checkpoint="{d}/c"),
        setup=lambda ctx: (copy_ckpt(ctx.G, ctx.p("c")), write(ctx.p("c/model.safetensors"), b"")), words=["model.safetensors"])

    def enc_st_huge(ctx: Ctx):
        copy_ckpt(ctx.E, ctx.p("c"))
        t, m = st_read(ctx.p("c/model.safetensors"))
        name = sorted(t)[0]
        st_write(ctx.p("c/model.safetensors"), t, m, header_patch={name: {"shape": [10**12, 10**6]}})
    add("sizes-encoder-safetensors-shape-huge", "sizes", ee(checkpoint="{d}/c"), setup=enc_st_huge, words=["model.safetensors"])

    def resume_st_huge(ctx: Ctx):
        copy_ckpt(ctx.G, ctx.p("c"))
        t, m = st_read(ctx.p("c/training_state.safetensors"))
        name = sorted(t)[0]
        st_write(ctx.p("c/training_state.safetensors"), t, m, header_patch={name: {"shape": [10**12, 10**6]}})
    add("sizes-training-state-shape-huge-resume", "sizes", gt(resume="{d}/c", out="{d}/c", max_iters="4"),
        setup=resume_st_huge, words=["training_state.safetensors"])

    # -- values: NaN, infinities, empty lists ------------------------------------------------------
    for flag, v in [("lr", "nan"), ("lr", "inf"), ("dropout", "nan"), ("grad-clip", "nan"), ("beta1", "nan"),
                    ("weight-decay", "inf"), ("min-lr", "nan"), ("warmup-iters", "-1")]:
        add(f"values-gpt-train-{flag}-{v}", "values", gt(**{flag.replace("-", "_"): v}), words=[f"--{flag}"])
    for flag, v in [("lr", "nan"), ("dropout", "nan"), ("max-len", "-3"), ("n-classes", "-1")]:
        add(f"values-encoder-train-{flag}-{v}", "values", et(**{flag.replace("-", "_"): v}), words=[f"--{flag}"])
    add("values-gpt-sample-temperature-nan", "values", gs(temperature="nan"), words=["--temperature"])
    add("values-gpt-sample-prompt-empty", "values", gs(prompt=""), words=["--prompt"])
    add("values-gpt-attention-prompt-empty", "values", ga(prompt=""), words=["--prompt"])
    add("values-gpt-eval-batch-size-negative", "values", ge(batch_size="-1"), words=["--batch-size"])
    add("values-encoder-eval-batch-size-zero", "values", ee(batch_size="0"), words=["--batch-size"])
    add("values-bench-seq-lens-empty", "values", ba(seq_lens=""), words=["--seq-lens"])
    add("values-bench-seq-lens-commas", "values", ba(seq_lens=",,"), words=["--seq-lens"])
    add("values-bench-variants-empty", "values", ba(variants=""), words=["--variants"])
    add("values-bench-sliding-huge-window", "values", ba(variants="sliding:99999999999999999999"), words=["--variants"])
    add("values-gradcheck-unknown-op", "values", gc(op="no_such_op"), words=[("--op", "no_such_op")])
    add("values-gradcheck-threads-zero", "values", gc(threads="0"), words=["--threads"])
    add("values-gpt-train-threads-huge", "values", gt(threads="1000000"), expect="any", words=["--threads"])
    add("values-listops-max-args-one", "values", dl(max_args="1"), words=["--max-args"])

    # -- fs: every input path flag x {missing, a directory, /dev/zero, a FIFO, a loop, unreadable, empty}
    inputs = [
        ("gpt-train-data", lambda p: gt(data=p), "--data", "txt"),
        ("gpt-train-val-data", lambda p: gt(val_data=p), "--val-data", "txt"),
        ("gpt-eval-data", lambda p: ge(data=p), "--data", "txt"),
        ("encoder-train-data", lambda p: et(data=p), "--data", "tsv"),
        ("encoder-train-val-data", lambda p: et(val_data=p), "--val-data", "tsv"),
        ("encoder-eval-data", lambda p: ee(data=p), "--data", "tsv"),
        ("tokenizer-encode-input", lambda p: te(input=p), "--input", "txt"),
        ("tokenizer-encode-tokenizer", lambda p: te(tokenizer=p), "--tokenizer", "tiktoken"),
        ("tokenizer-decode-input", lambda p: td(input=p), "--input", "txt"),
        ("tokenizer-train-data", lambda p: tt(data=p), "--data", "txt"),
        ("gpt-train-tokenizer", lambda p: gt(tokenizer=p), "--tokenizer", "json"),
        ("gpt-eval-tokenizer", lambda p: ge(checkpoint="{FIX}", tokenizer=p), "--tokenizer", "tiktoken"),
        ("gpt-sample-tokenizer", lambda p: gs(checkpoint="{FIX}", tokenizer=p), "--tokenizer", "json"),
    ]
    for nm, build, flag, ext in inputs:
        f = f"in.{ext}"
        add(f"fs-{nm}-missing", "fs", build("{d}/nosuch." + ext), words=[(flag, "nosuch." + ext)])
        add(f"fs-{nm}-directory", "fs", build("{d}/" + f), setup=lambda ctx, f=f: mkdir(ctx.p(f)), words=[(flag, f)])
        add(f"fs-{nm}-dev-zero", "fs", build("{d}/" + f), setup=lambda ctx, f=f: link("/dev/zero", ctx.p(f)),
            words=[(flag, f)], timeout=20)
        add(f"fs-{nm}-fifo", "fs", build("{d}/" + f), setup=lambda ctx, f=f: fifo(ctx.p(f)), words=[(flag, f)], timeout=10)
        add(f"fs-{nm}-symlink-loop", "fs", build("{d}/" + f), setup=lambda ctx, f=f: loop(ctx.p(f)), words=[(flag, f)])
        add(f"fs-{nm}-unreadable", "fs", build("{d}/" + f), unpriv=True,
            setup=lambda ctx, f=f: write(ctx.p(f), open(os.path.join(ctx.S, "train.tsv" if f.endswith("tsv") else "text.txt")).read(), 0),
            words=[(flag, f)])
        if nm.endswith("-input"):  # an empty text encodes to no ids, and no ids decode to no text
            add(f"fs-{nm}-empty", "fs", build("{d}/" + f), setup=lambda ctx, f=f: write(ctx.p(f), ""), expect="ok")
        else:
            add(f"fs-{nm}-empty", "fs", build("{d}/" + f), setup=lambda ctx, f=f: write(ctx.p(f), ""), words=[(flag, f)])

    # checkpoint directories given to a flag
    ckpt_flags = [
        ("gpt-train-init-from", lambda p: gt(init_from=p, n_layer=None, n_embd=None, n_head=None), "--init-from"),
        ("gpt-train-resume", lambda p: gt(resume=p, max_iters="4"), "--resume"),
        ("gpt-eval-checkpoint", lambda p: ge(checkpoint=p), "--checkpoint"),
        ("gpt-sample-checkpoint", lambda p: gs(checkpoint=p), "--checkpoint"),
        ("gpt-attention-checkpoint", lambda p: ga(checkpoint=p), "--checkpoint"),
        ("encoder-eval-checkpoint", lambda p: ee(checkpoint=p), "--checkpoint"),
    ]
    for nm, build, flag in ckpt_flags:
        add(f"fs-{nm}-a-file", "fs", build("{d}/ckdir"), setup=lambda ctx: write(ctx.p("ckdir"), "x"), words=[(flag, "ckdir")])
        add(f"fs-{nm}-fifo", "fs", build("{d}/ckdir"), setup=lambda ctx: fifo(ctx.p("ckdir")), words=[(flag, "ckdir")], timeout=10)
        add(f"fs-{nm}-symlink-loop", "fs", build("{d}/ckdir"), setup=lambda ctx: loop(ctx.p("ckdir")), words=[(flag, "ckdir")])
        add(f"fs-{nm}-unreadable-dir", "fs", build("{d}/ckdir"), unpriv=True,
            setup=lambda ctx, nm=nm: (copy_ckpt(ctx.E if nm.startswith("encoder") else ctx.G, ctx.p("ckdir")), os.chmod(ctx.p("ckdir"), 0)),
            words=[(flag, "ckdir")])
    add("fs-gpt-train-resume-empty-dir", "fs", gt(resume="{d}/ckdir"), setup=lambda ctx: mkdir(ctx.p("ckdir")), words=[("--resume", "ckdir")])

    # files inside checkpoints
    def inner(src: str, fname: str, how: str):
        def setup(ctx: Ctx):
            copy_ckpt(getattr(ctx, src), ctx.p("c"))
            p = ctx.p("c/" + fname)
            if os.path.lexists(p):
                os.remove(p)
            if how == "fifo":
                fifo(p)
            elif how == "directory":
                mkdir(p)
            elif how == "dev-zero":
                link("/dev/zero", p)
            elif how == "loop":
                loop(p)
            elif how == "unreadable":
                write(p, "{}", 0)
            elif how == "garbage":
                write(p, "\x00\xff garbage {")
        return setup
    inner_cases = [
        ("gpt-eval", ge, "G", "config.json"), ("gpt-eval", ge, "G", "model.safetensors"),
        ("gpt-sample", gs, "G", "tokenizer.json"), ("gpt-attention", ga, "G", "tokenizer.json"),
        ("encoder-eval", ee, "E", "vocab.json"), ("encoder-eval", ee, "E", "config.json"),
        ("gpt-train-resume", lambda **k: gt(resume="{d}/c", out="{d}/c", max_iters="4"), "G", "train_state.json"),
        ("gpt-train-resume", lambda **k: gt(resume="{d}/c", out="{d}/c", max_iters="4"), "G", "training_state.safetensors"),
        ("gpt-train-init-from", lambda **k: gt(init_from="{d}/c", n_layer=None, n_embd=None, n_head=None), "G", "tokenizer.json"),
    ]
    for sub, build, src, fname in inner_cases:
        for how in ("fifo", "directory", "dev-zero", "loop", "unreadable", "garbage"):
            if how in ("directory", "loop") and fname not in ("config.json", "tokenizer.json", "train_state.json"):
                continue
            if how == "garbage" and sub != "gpt-train-resume" and fname not in ("tokenizer.json", "vocab.json"):
                continue
            argv = build(checkpoint="{d}/c") if sub in ("gpt-eval", "gpt-sample", "gpt-attention", "encoder-eval") else build()
            add(f"fs-{sub}-{fname}-{how}", "fs", argv, setup=inner(src, fname, how), words=[fname],
                unpriv=how == "unreadable", timeout=10 if how == "fifo" else (20 if how == "dev-zero" else None))
    add("fs-gpt-eval-model-missing", "fs", ge(checkpoint="{d}/c"),
        setup=lambda ctx: (copy_ckpt(ctx.G, ctx.p("c")), os.remove(ctx.p("c/model.safetensors"))), words=["model.safetensors"])
    add("fs-encoder-eval-vocab-missing", "fs", ee(checkpoint="{d}/c"),
        setup=lambda ctx: (copy_ckpt(ctx.E, ctx.p("c")), os.remove(ctx.p("c/vocab.json"))), words=["vocab.json"])

    # outputs: a directory where a file goes (or a file where a directory goes), missing parent,
    # a FIFO, a symlink loop, unwritable (unprivileged), /dev/full, a full file system
    LONG = "10000000"  # --max-iters: a run that would take minutes; refusing up front takes none
    outputs = [
        ("gpt-train-out", lambda p: gt(out=p), "--out", "dir"),
        ("gpt-train-log", lambda p: gt(log=p), "--log", "file"),
        ("encoder-train-out", lambda p: et(out=p), "--out", "dir"),
        ("encoder-train-log", lambda p: et(log=p), "--log", "file"),
        ("listops-out", lambda p: dl(out=p), "--out", "dir"),
        ("bench-csv", lambda p: ba(csv=p), "--csv", "file"),
        ("bench-plot", lambda p: ba(plot=p + ".svg" if not p.endswith(".svg") else p), "--plot", "file"),
        ("gpt-attention-out", lambda p: ga(out=p + ".svg" if not p.endswith(".svg") else p), "--out", "file"),
        ("tokenizer-encode-out", lambda p: te(out=p), "--out", "file"),
        ("tokenizer-train-out", lambda p: tt(out=p), "--out", "file"),
    ]
    for nm, build, flag, kind in outputs:
        t = "target.svg" if nm in ("bench-plot", "gpt-attention-out") else "target"
        if kind == "file":
            add(f"fs-{nm}-is-directory", "fs", build("{d}/" + t), setup=lambda ctx, t=t: mkdir(ctx.p(t)), words=[(flag, t)])
        else:
            add(f"fs-{nm}-is-a-file", "fs", build("{d}/" + t), setup=lambda ctx, t=t: write(ctx.p(t), "mine"),
                words=[(flag, t)], check=exists_after(t))
            add(f"fs-{nm}-is-dev-null-link", "fs", build("{d}/" + t), setup=lambda ctx, t=t: link("/dev/null", ctx.p(t)),
                words=[(flag, t)])
        add(f"fs-{nm}-parent-is-a-file", "fs", build("{d}/afile/" + t), setup=lambda ctx: write(ctx.p("afile"), "mine"),
            words=[(flag, "afile")])
        if kind == "file":
            add(f"fs-{nm}-parent-missing", "fs", build("{d}/nodir/" + t), words=[(flag, "nodir")])
        add(f"fs-{nm}-fifo", "fs", build("{d}/" + t), setup=lambda ctx, t=t: fifo(ctx.p(t)), words=[(flag, t)], timeout=10)
        add(f"fs-{nm}-symlink-loop", "fs", build("{d}/" + t), setup=lambda ctx, t=t: loop(ctx.p(t)), words=[(flag, t)])
        add(f"fs-{nm}-unwritable", "fs", build("{d}/rodir/" + t), unpriv=True, setup=lambda ctx: mkdir(ctx.p("rodir"), 0o555),
            words=[(flag, "rodir")])
        if kind == "file":
            add(f"fs-{nm}-dev-full", "fs", build("{d}/" + t), setup=lambda ctx, t=t: link("/dev/full", ctx.p(t)),
                words=[(flag, t)])
        add(f"fs-{nm}-full-fs", "fs", build("{full}/" + t), full_fs=True, words=[(flag, t)])
    # outputs are checked before the work starts: a run that would take minutes must fail at once
    add("fs-gpt-train-log-dir-checked-first", "fs", gt(log="{d}/logdir", max_iters=LONG), setup=lambda ctx: mkdir(ctx.p("logdir")),
        words=["--log"], timeout=20)
    add("fs-gpt-train-log-unwritable-checked-first", "fs", gt(log="{d}/rodir/x", max_iters=LONG), unpriv=True,
        setup=lambda ctx: mkdir(ctx.p("rodir"), 0o555), words=["--log"], timeout=20)
    add("fs-gpt-train-out-full-checked-first", "fs", gt(out="{full}/o", max_iters=LONG), full_fs=True, words=["--out"], timeout=20)
    add("fs-encoder-train-log-dir-checked-first", "fs", et(log="{d}/logdir", max_iters=LONG), setup=lambda ctx: mkdir(ctx.p("logdir")),
        words=["--log"], timeout=20)
    add("fs-encoder-train-out-unwritable-checked-first", "fs", et(out="{d}/rodir/o", max_iters=LONG), unpriv=True,
        setup=lambda ctx: mkdir(ctx.p("rodir"), 0o555), words=["--out"], timeout=20)
    add("fs-bench-csv-dir-checked-first", "fs", ba(csv="{d}/csvdir", seq_lens="2048,4096", reps="1000", variants="dense"),
        setup=lambda ctx: mkdir(ctx.p("csvdir")), words=["--csv"], timeout=20)
    add("fs-bench-plot-unwritable-checked-first", "fs", ba(plot="{d}/rodir/x.svg", seq_lens="2048,4096", reps="1000", variants="dense"),
        unpriv=True, setup=lambda ctx: mkdir(ctx.p("rodir"), 0o555), words=["--plot"], timeout=20)
    add("fs-listops-out-full-checked-first", "fs", dl(out="{full}/l", train="1000000", min_len="5", max_len="60"), full_fs=True,
        words=["--out"], timeout=20)

    # -- one error path: exceptions that are not tg::Error ----------------------------------------
    add("one-error-listops-out-loop-filesystem_error", "one-error", dl(out="{d}/loop/l"), setup=lambda ctx: loop(ctx.p("loop")),
        words=["data listops", "--out"])
    add("one-error-listops-out-eacces-filesystem_error", "one-error", dl(out="{d}/locked/sub/l"), unpriv=True,
        setup=lambda ctx: mkdir(ctx.p("locked/sub")) and os.chmod(ctx.p("locked"), 0), words=["data listops", "--out"])
    add("one-error-gpt-train-out-eacces", "one-error", gt(out="{d}/locked/sub/o"), unpriv=True,
        setup=lambda ctx: mkdir(ctx.p("locked/sub")) and os.chmod(ctx.p("locked"), 0), words=["gpt train", "--out"])
    add("one-error-encoder-train-out-eacces", "one-error", et(out="{d}/locked/sub/o"), unpriv=True,
        setup=lambda ctx: mkdir(ctx.p("locked/sub")) and os.chmod(ctx.p("locked"), 0), words=["encoder train", "--out"])
    add("one-error-gpt-eval-checkpoint-eacces", "one-error", ge(checkpoint="{d}/locked/c"), unpriv=True,
        setup=lambda ctx: copy_ckpt(ctx.G, ctx.p("locked/c")) and os.chmod(ctx.p("locked"), 0), words=["gpt eval", "--checkpoint"])
    add("one-error-bench-csv-eacces", "one-error", ba(csv="{d}/locked/sub/b.csv"), unpriv=True,
        setup=lambda ctx: mkdir(ctx.p("locked/sub")) and os.chmod(ctx.p("locked"), 0), words=["bench attention", "--csv"])
    for key, v in [("n_embd", "sixteen"), ("n_layer", 1.5), ("vocab_size", 1e30), ("n_head", None), ("n_positions", [8])]:
        add(f"one-error-config-{key}-{type(v).__name__}", "one-error", ge(checkpoint="{d}/c"), setup=cfg("G", **{key: v}),
            words=["gpt eval", "config.json"])
    add("one-error-config-json-array-sample", "one-error", gs(checkpoint="{d}/c"),
        setup=lambda ctx: (copy_ckpt(ctx.G, ctx.p("c")), write(ctx.p("c/config.json"), "[1, 2]")), words=["gpt sample", "config.json"])
    add("one-error-tokenizer-bytes-a-string", "one-error", gs(checkpoint="{d}/c"),
        setup=lambda ctx: (copy_ckpt(ctx.G, ctx.p("c")), write(ctx.p("c/tokenizer.json"), '{"bytes": "abc", "type": "char"}')),
        words=["gpt sample", "tokenizer.json"])
    add("one-error-tokenizer-byte-300", "one-error", gs(checkpoint="{d}/c"),
        setup=lambda ctx: (copy_ckpt(ctx.G, ctx.p("c")), json_patch(ctx.p("c/tokenizer.json"), bytes=[300] + json.load(open(ctx.p("c/tokenizer.json")))["bytes"][1:])),
        words=["gpt sample", "tokenizer.json"])
    add("one-error-train-state-step-string", "one-error", gt(resume="{d}/c", out="{d}/c", max_iters="4"),
        setup=lambda ctx: (copy_ckpt(ctx.G, ctx.p("c")), json_patch(ctx.p("c/train_state.json"), step="two")),
        words=["gpt train", "train_state.json"])
    add("one-error-train-state-step-huge", "one-error", gt(resume="{d}/c", out="{d}/c", max_iters="4"),
        setup=lambda ctx: (copy_ckpt(ctx.G, ctx.p("c")), json_patch(ctx.p("c/train_state.json"), step=1e300, data_offset=-5)),
        words=["gpt train", "train_state.json"])
    add("one-error-vocab-tokens-a-number", "one-error", ee(checkpoint="{d}/c"),
        setup=lambda ctx: (copy_ckpt(ctx.E, ctx.p("c")), json_patch(ctx.p("c/vocab.json"), tokens=7)),
        words=["encoder eval", "vocab.json"])
    add("one-error-encoder-config-n_classes-string", "one-error", ee(checkpoint="{d}/c"), setup=cfg("E", n_classes="ten"),
        words=["encoder eval", "config.json"])
    add("one-error-bench-huge-cell-bad_alloc", "one-error", ba(seq_lens="100000000", variants="dense", max_memory="100000000G", heads="64"),
        expect="any", words=["bench attention"])  # skipping the cell is fine
    add("one-error-gpt-train-huge-model-bad_alloc", "one-error", gt(n_embd="65536", n_layer="64", n_head="2"), words=["gpt train"])

    # -- mismatch: files that disagree with the model or the flags --------------------------------
    def tok_bytes(ctx: Ctx, nbytes: list[int]):
        copy_ckpt(ctx.G, ctx.p("c"))
        json_patch(ctx.p("c/tokenizer.json"), bytes=nbytes)
    few = [10, 32, 97, 98, 101]
    many = [10] + list(range(32, 127))
    for sub, build in [("gpt-eval", lambda: ge(checkpoint="{d}/c")), ("gpt-sample", lambda: gs(checkpoint="{d}/c", prompt="be")),
                       ("gpt-attention", lambda: ga(checkpoint="{d}/c", prompt="be")),
                       ("gpt-train-init-from", lambda: gt(init_from="{d}/c", n_layer=None, n_embd=None, n_head=None)),
                       ("gpt-train-resume", lambda: gt(resume="{d}/c", out="{d}/c", max_iters="4"))]:
        add(f"mismatch-tokenizer-too-small-{sub}", "mismatch", build(), setup=lambda ctx: tok_bytes(ctx, few),
            words=["tokenizer.json", ("model.safetensors", "config.json", "vocab_size", "embedding")])
        add(f"mismatch-tokenizer-too-large-{sub}", "mismatch", build(), setup=lambda ctx: tok_bytes(ctx, many),
            words=["tokenizer.json", ("model.safetensors", "config.json", "vocab_size", "embedding")])
    add("mismatch-tokenizer-duplicate-bytes", "mismatch", gs(checkpoint="{d}/c", prompt="be"),
        setup=lambda ctx: tok_bytes(ctx, [10, 32, 32, 46, 97, 98, 101, 104, 105, 110, 111, 113, 114, 115, 116, 117]),
        words=["tokenizer.json"])
    odd_text = "to be or not\nto be, that\nis the Question\n" + TEXT
    add("mismatch-gpt-eval-text-outside-vocab", "mismatch", ge(data="{d}/odd.txt"), setup=lambda ctx: write(ctx.p("odd.txt"), odd_text),
        words=["odd.txt", LINE3])
    add("mismatch-gpt-train-init-from-text-outside-vocab", "mismatch",
        gt(init_from="{G}", data="{d}/odd.txt", n_layer=None, n_embd=None, n_head=None),
        setup=lambda ctx: write(ctx.p("odd.txt"), odd_text), words=["odd.txt", "tokenizer.json", LINE3])
    add("mismatch-gpt-train-resume-text-outside-vocab", "mismatch", gt(resume="{d}/c", out="{d}/c", data="{d}/odd.txt", max_iters="4"),
        setup=lambda ctx: (copy_ckpt(ctx.G, ctx.p("c")), write(ctx.p("odd.txt"), odd_text)), words=["odd.txt", LINE3])
    # Trained from scratch, the character vocabulary is built from --data and --val-data together:
    # a character only the validation text has is in it, and training goes on.
    add("mismatch-gpt-train-val-data-outside-train-vocab", "mismatch", gt(val_data="{d}/odd.txt"),
        setup=lambda ctx: write(ctx.p("odd.txt"), odd_text), expect="ok")
    add("mismatch-gpt-train-resume-val-data-outside-vocab", "mismatch",
        gt(resume="{d}/c", out="{d}/c", val_data="{d}/odd.txt", max_iters="4"),
        setup=lambda ctx: (copy_ckpt(ctx.G, ctx.p("c")), write(ctx.p("odd.txt"), odd_text)),
        words=["--val-data", "odd.txt", LINE3])
    add("mismatch-gpt-sample-prompt-outside-vocab", "mismatch", gs(prompt="XYZ"), words=["--prompt"])
    add("mismatch-gpt-attention-prompt-outside-vocab", "mismatch", ga(prompt="QQ"), words=["--prompt"])
    add("mismatch-gpt-eval-bin-ids-beyond-vocab", "mismatch", ge(data="{d}/big.bin"),
        setup=lambda ctx: write(ctx.p("big.bin"), struct.pack("<64H", *([1, 2, 60000] * 21 + [3]))), words=["big.bin", "60000"])
    add("mismatch-gpt-eval-bin-odd-length", "mismatch", ge(data="{d}/odd.bin"),
        setup=lambda ctx: write(ctx.p("odd.bin"), bytes(range(1, 12)) * 10 + b"\x01"), words=["odd.bin"])
    add("mismatch-gpt-train-bin-ids-beyond-init-from-vocab", "mismatch",
        gt(data="{d}/big.bin", init_from="{G}", n_layer=None, n_embd=None, n_head=None),
        setup=lambda ctx: write(ctx.p("big.bin"), struct.pack("<400H", *([1, 2, 60000, 3] * 100))), words=["big.bin"])
    add("mismatch-gpt-train-init-from-n-layer-flag", "mismatch", gt(init_from="{G}", n_layer="3", n_embd=None, n_head=None),
        words=["--n-layer"])
    add("mismatch-gpt-train-resume-n-embd-flag", "mismatch", gt(resume="{d}/c", out="{d}/c", n_embd="32", max_iters="4"),
        setup=lambda ctx: copy_ckpt(ctx.G, ctx.p("c")), words=["--n-embd"])
    add("mismatch-gpt-config-n-embd-vs-weights", "mismatch", ge(checkpoint="{d}/c"), setup=cfg("G", n_embd=32),
        words=["model.safetensors", ("config.json", "shape")])
    add("mismatch-gpt-config-n-layer-vs-weights", "mismatch", ge(checkpoint="{d}/c"), setup=cfg("G", n_layer=2),
        words=["model.safetensors", ("config.json", "h.1")])
    add("mismatch-encoder-vocab-vs-embedding", "mismatch", ee(checkpoint="{d}/c"),
        setup=lambda ctx: (copy_ckpt(ctx.E, ctx.p("c")), json_patch(ctx.p("c/vocab.json"), tokens=json.load(open(ctx.p("c/vocab.json")))["tokens"][:6])),
        words=["vocab.json", ("model.safetensors", "config.json", "vocab_size", "embedding")])
    tsv_head = "Source\tTarget\n( [MIN 2 9 ] )\t2\n"
    tsvs = {
        "label-beyond-n-classes": (tsv_head + "( [MIN 2 9 ] )\t7\n" + "( [MAX 1 3 ] )\t3\n" * 10, ["--n-classes"]),
        "label-not-listops": (tsv_head + "( [MIN 2 9 ] )\t12\n" + "( [MAX 1 3 ] )\t3\n" * 10, []),
        "label-negative": (tsv_head + "( [MIN 2 9 ] )\t-1\n" + "( [MAX 1 3 ] )\t3\n" * 10, []),
        "label-not-integer": (tsv_head + "( [MIN 2 9 ] )\tnine\n" + "( [MAX 1 3 ] )\t3\n" * 10, []),
        "label-huge": (tsv_head + "( [MIN 2 9 ] )\t99999999999999999999\n" + "( [MAX 1 3 ] )\t3\n" * 10, []),
        "no-tab": (tsv_head + "( [MIN 2 9 ] ) 2\n" + "( [MAX 1 3 ] )\t3\n" * 10, []),
        "three-columns": (tsv_head + "( [MIN 2 9 ] )\t2\t7\n" + "( [MAX 1 3 ] )\t3\n" * 10, []),
    }
    for nm, (text, extra) in tsvs.items():
        add(f"mismatch-encoder-train-tsv-{nm}", "mismatch", et(data="{d}/bad.tsv", n_classes="5"), setup=lambda ctx, text=text: write(ctx.p("bad.tsv"), text),
            words=["bad.tsv", LINE3, *extra])
    add("mismatch-encoder-train-val-tsv-label-beyond", "mismatch", et(data="{d}/good.tsv", val_data="{d}/bad.tsv", n_classes="5"),
        setup=lambda ctx: (write(ctx.p("good.tsv"), tsv_head + "( [MAX 1 3 ] )\t3\n" * 20),
                           write(ctx.p("bad.tsv"), tsvs["label-beyond-n-classes"][0])), words=["bad.tsv", "--n-classes", LINE3])
    add("mismatch-encoder-eval-label-beyond-model", "mismatch", ee(data="{d}/bad.tsv"),
        setup=lambda ctx: write(ctx.p("bad.tsv"), tsvs["label-not-listops"][0]), words=["bad.tsv", LINE3])
    add("mismatch-encoder-train-header-only", "mismatch", et(data="{d}/bad.tsv"), setup=lambda ctx: write(ctx.p("bad.tsv"), "Source\tTarget\n"),
        words=["bad.tsv"])
    add("mismatch-encoder-train-binary-tsv", "mismatch", et(data="{d}/bad.tsv"),
        setup=lambda ctx: write(ctx.p("bad.tsv"), bytes(range(256)) * 8), words=["bad.tsv"])

    # -- honest success -------------------------------------------------------------------------
    add("honest-gpt-train-max-iters-0", "honest", gt(max_iters="0"), expect="any", words=["--max-iters"], check=ckpt_or_refused("o", "--max-iters"))
    add("honest-gpt-train-max-iters-0-init-from", "honest", gt(max_iters="0", init_from="{FIX}", n_layer=None, n_embd=None, n_head=None,
        data="{d}/abc.txt"), setup=lambda ctx: write(ctx.p("abc.txt"), "abcdefghijklmnop" * 50), expect="any", words=["--max-iters"],
        check=ckpt_or_refused("o", "--max-iters"))
    add("honest-encoder-train-max-iters-0", "honest", et(max_iters="0"), expect="any", words=["--max-iters"], check=ckpt_or_refused("o", "--max-iters"))

    def poisoned(src: str, fname: str, part: str, value: float):
        def setup(ctx: Ctx):
            copy_ckpt(getattr(ctx, src), ctx.p("c"))
            st_poison(ctx.p("c/" + fname), part, value)
        return setup
    nan, inf = float("nan"), float("inf")
    add("honest-gpt-eval-nan-weights", "honest", ge(checkpoint="{d}/c"), setup=poisoned("G", "model.safetensors", "wte", nan),
        expect="any", words=["model.safetensors"], check=nan_named("model.safetensors"))
    add("honest-gpt-eval-inf-weights", "honest", ge(checkpoint="{d}/c"), setup=poisoned("G", "model.safetensors", "ln_f.weight", inf),
        expect="any", words=["model.safetensors"], check=nan_named("model.safetensors"))
    add("honest-gpt-sample-nan-weights", "honest", gs(checkpoint="{d}/c"), setup=poisoned("G", "model.safetensors", "wte", nan),
        words=["model.safetensors", NONFINITE])
    add("honest-gpt-sample-inf-weights", "honest", gs(checkpoint="{d}/c"), setup=poisoned("G", "model.safetensors", "c_fc.weight", -inf),
        words=["model.safetensors", NONFINITE])
    add("honest-gpt-attention-nan-weights", "honest", ga(checkpoint="{d}/c"), setup=poisoned("G", "model.safetensors", "c_attn.weight", nan),
        words=["model.safetensors", NONFINITE])
    add("honest-gpt-train-init-from-nan-weights", "honest", gt(init_from="{d}/c", n_layer=None, n_embd=None, n_head=None),
        setup=poisoned("G", "model.safetensors", "wte", nan), words=["model.safetensors", NONFINITE])
    add("honest-gpt-train-resume-nan-moments", "honest", gt(resume="{d}/c", out="{d}/c", max_iters="4"),
        setup=poisoned("G", "training_state.safetensors", "", nan), words=["training_state.safetensors", NONFINITE])
    add("honest-encoder-eval-nan-weights", "honest", ee(checkpoint="{d}/c"), setup=poisoned("E", "model.safetensors", "", nan),
        expect="any", words=["model.safetensors"], check=nan_named("model.safetensors"))
    for sub, build in [("gpt", gt), ("encoder", et)]:
        add(f"honest-{sub}-train-sgd-momentum", "honest", build(optimizer="sgd", momentum="0.5"), expect="ok")
        add(f"honest-{sub}-train-sgd-nesterov", "honest", build(optimizer="sgd", momentum="0.9", nesterov=True), expect="ok")
        # torch.optim.SGD takes any momentum >= 0 (1.5 diverges, but it is allowed): so does tapegrad.
        add(f"honest-{sub}-train-sgd-momentum-1.5", "honest", build(optimizer="sgd", momentum="1.5"), expect="any")
        add(f"honest-{sub}-train-sgd-momentum-negative", "honest", build(optimizer="sgd", momentum="-0.5"),
            words=["--momentum"])
        add(f"honest-{sub}-train-adamw-with-nesterov", "honest", build(nesterov=True), words=["--nesterov"])
    add("honest-gpt-sample-zero-tokens", "honest", gs(max_new_tokens="0"), expect="ok")
    add("honest-listops-one-example", "honest", dl(train="0", val="0", test="1"), expect="ok", check=wrote("l/test.tsv"))
    add("honest-bench-everything-skipped", "honest", ba(max_memory="1", csv="{d}/b.csv"), expect="any", words=["--max-memory"])

    # -- foreign files: the user's files in (or shared with) an output must survive ---------------
    def foreign_out(rel: str, names=("notes.txt", "mydata/keep.bin")):
        """The user's files (each hashed on its own: the command may add its own files beside them)."""
        def setup(ctx: Ctx):
            for n in names:
                write(ctx.p(f"{rel}/{n}"), f"user's {n}\n" * 10)
                ctx.foreign.append(ctx.p(f"{rel}/{n}"))
        return setup
    add("foreign-gpt-train-out-user-files", "foreign", gt(), setup=foreign_out("o"), expect="any", words=["--out"])
    add("foreign-gpt-train-out-user-config-json", "foreign", gt(), setup=foreign_out("o", ("config.json", "README.md")),
        expect="any", words=["--out"])
    add("foreign-gpt-train-out-max-iters-0", "foreign", gt(max_iters="0"), setup=foreign_out("o"), expect="any", words=[("--out", "--max-iters")])
    add("foreign-gpt-train-out-failing-run", "foreign", gt(data="{d}/nosuch.txt"), setup=foreign_out("o"), words=[("--data", "nosuch.txt")])
    add("foreign-gpt-train-out-is-data-dir", "foreign", gt(data="{d}/o/text.txt"),
        setup=lambda ctx: (write(ctx.p("o/text.txt"), TEXT), ctx.foreign.append(ctx.p("o/text.txt"))), expect="any", words=["--out"])
    add("foreign-gpt-train-out-symlink-to-user-dir", "foreign", gt(out="{d}/lnk"),
        setup=lambda ctx: (foreign_out("mine")(ctx), link("mine", ctx.p("lnk"))), expect="any", words=["--out"])
    add("foreign-gpt-train-resume-out-user-file", "foreign", gt(resume="{d}/c", out="{d}/c", max_iters="4"),
        setup=lambda ctx: (copy_ckpt(ctx.G, ctx.p("c")), write(ctx.p("c/notes.txt"), "mine\n"), ctx.foreign.append(ctx.p("c/notes.txt"))),
        expect="any", words=["--out"])
    add("foreign-gpt-train-init-from-is-out", "foreign", gt(init_from="{d}/c", out="{d}/c", n_layer=None, n_embd=None, n_head=None),
        setup=lambda ctx: (copy_ckpt(ctx.G, ctx.p("c")), write(ctx.p("c/notes.txt"), "mine\n"), ctx.foreign.append(ctx.p("c/notes.txt"))),
        expect="any", words=[("--out", "--init-from")])
    add("foreign-gpt-train-log-is-data", "foreign", gt(data="{d}/text.txt", log="{d}/text.txt"),
        setup=lambda ctx: (write(ctx.p("text.txt"), TEXT), ctx.foreign.append(ctx.p("text.txt"))), words=[("--log", "--data")])
    add("foreign-gpt-train-log-inside-init-from", "foreign",
        gt(init_from="{d}/c", log="{d}/c/model.safetensors", n_layer=None, n_embd=None, n_head=None),
        setup=lambda ctx: (copy_ckpt(ctx.G, ctx.p("c")), ctx.foreign.append(ctx.p("c/model.safetensors"))), words=["--log"])
    add("foreign-encoder-train-out-user-files", "foreign", et(), setup=foreign_out("o"), expect="any", words=["--out"])
    add("foreign-encoder-train-out-failing-run", "foreign", et(data="{d}/nosuch.tsv"), setup=foreign_out("o"), words=[("--data", "nosuch.tsv")])
    add("foreign-encoder-train-log-is-val-data", "foreign", et(val_data="{d}/v.tsv", log="{d}/v.tsv"),
        setup=lambda ctx: (write(ctx.p("v.tsv"), open(os.path.join(ctx.S, "train.tsv")).read()), ctx.foreign.append(ctx.p("v.tsv"))),
        words=[("--log", "--val-data")])
    add("foreign-listops-out-user-files", "foreign", dl(), setup=foreign_out("l"), expect="any", words=["--out"])
    add("foreign-listops-out-user-train-tsv-dir", "foreign", dl(), setup=foreign_out("l", ("train.tsv/keep.txt",)),
        words=["--out", "train.tsv"])
    add("foreign-bench-csv-is-plot", "foreign", ba(csv="{d}/x.svg", plot="{d}/x.svg"), words=[("--csv", "--plot")])
    add("foreign-tokenizer-encode-out-is-input", "foreign", te(input="{d}/mine.txt", out="{d}/mine.txt"),
        setup=lambda ctx: (write(ctx.p("mine.txt"), "to be or not to be"), ctx.foreign.append(ctx.p("mine.txt"))),
        words=["--out", "mine.txt"])
    add("foreign-tokenizer-encode-out-is-tokenizer", "foreign", te(tokenizer="{d}/ranks.tiktoken", out="{d}/ranks.tiktoken"),
        setup=lambda ctx: (shutil.copy(TIKTOKEN, ctx.p("ranks.tiktoken")), ctx.foreign.append(ctx.p("ranks.tiktoken"))),
        words=["--out", "ranks.tiktoken"])
    add("mismatch-tokenizer-decode-id-beyond-vocab", "mismatch", td(input="{d}/ids.txt"),
        setup=lambda ctx: write(ctx.p("ids.txt"), "1 2 99999"), words=["--input", "ids.txt", "99999"])
    add("mismatch-tokenizer-decode-not-ids", "mismatch", td(input="{d}/ids.txt"),
        setup=lambda ctx: write(ctx.p("ids.txt"), "to be"), words=["--input", "ids.txt"])
    add("values-tokenizer-encode-dtype", "values", te(dtype="uint8"), words=["--dtype"])
    add("baseline-tokenizer-encode", "baseline", te(), expect="ok")
    add("baseline-tokenizer-train", "baseline", tt(), expect="ok", check=wrote("tok.json"))
    add("values-tokenizer-train-vocab-size-small", "values", tt(vocab_size="255"), words=["--vocab-size"])
    add("values-tokenizer-train-vocab-size-huge", "values", tt(vocab_size="99999999999"), words=["--vocab-size"])
    add("values-tokenizer-train-out-is-data", "values", tt(out="{S}/text.txt"), words=["--out", "--data"])
    add("foreign-gpt-attention-out-is-checkpoint-file", "foreign", ga(checkpoint="{d}/c", out="{d}/c/tokenizer.svg"),
        setup=lambda ctx: (copy_ckpt(ctx.G, ctx.p("c")), write(ctx.p("c/tokenizer.svg"), "<svg>mine</svg>"),
                           ctx.foreign.append(ctx.p("c/config.json"))), expect="any", words=["--out"])
    add("foreign-gpt-train-out-full-fs-keeps-filler", "foreign", gt(out="{full}/o"), full_fs=True, words=["--out"])

    # gpt train/eval/sample --tokenizer (issue 18): a BPE, the checkpoint's own, and disagreements
    add("baseline-gpt-train-tokenizer-json", "baseline", gt(tokenizer=BPE_JSON), expect="ok",
        check=wrote("o/config.json", "o/model.safetensors", "o/tokenizer.json"))
    add("baseline-gpt-train-tokenizer-tiktoken", "baseline", gt(tokenizer=TIKTOKEN), expect="ok",
        check=wrote("o/config.json", "o/model.safetensors", "o/tokenizer.tiktoken"))
    add("mismatch-gpt-sample-tokenizer-differs-from-own", "mismatch", gs(tokenizer=BPE_JSON),
        words=["--tokenizer", "bpe_shakespeare.json", "tokenizer.json"])
    add("mismatch-gpt-eval-tokenizer-differs-from-own", "mismatch", ge(tokenizer=TIKTOKEN),
        words=["--tokenizer", "gpt2.tiktoken", "tokenizer.json"])
    add("mismatch-gpt-train-init-from-tokenizer-differs", "mismatch",
        gt(init_from="{G}", tokenizer=BPE_JSON, n_layer=None, n_embd=None, n_head=None),
        words=["--tokenizer", "bpe_shakespeare.json", "tokenizer.json"])
    add("mismatch-gpt-eval-tokenizer-vocab-not-model", "mismatch", ge(checkpoint="{FIX}", tokenizer=TIKTOKEN),
        words=["gpt2.tiktoken", "50257", "config.json"])
    add("mismatch-gpt-sample-tokenizer-vocab-not-model", "mismatch", gs(checkpoint="{FIX}", tokenizer=BPE_JSON),
        words=["bpe_shakespeare.json", "1000", "config.json"])
    add("mismatch-gpt-train-bin-id-beyond-tokenizer", "mismatch", gt(data="{d}/big.bin", tokenizer=BPE_JSON),
        setup=lambda ctx: write(ctx.p("big.bin"), struct.pack("<40H", *([1500] * 40))),
        words=["big.bin", "1500", "bpe_shakespeare.json"])
    add("mismatch-gpt-train-tokenizer-garbage-tiktoken", "mismatch", gt(tokenizer="{d}/bad.tiktoken"),
        setup=lambda ctx: write(ctx.p("bad.tiktoken"), "not base64 at all\n"), words=["--tokenizer", "bad.tiktoken"])
    add("mismatch-gpt-train-tokenizer-char-json-elsewhere", "mismatch", gt(tokenizer="{d}/t.json"),
        setup=lambda ctx: write(ctx.p("t.json"), '{"type": "char", "bytes": [97]}'), words=["text.txt", "t.json"])
    add("mismatch-gpt-train-tokenizer-not-a-tokenizer", "mismatch", gt(tokenizer="{d}/t.txt"),
        setup=lambda ctx: write(ctx.p("t.txt"), "hello"), words=["--tokenizer", "t.txt"])
    add("foreign-gpt-train-tokenizer-inside-out", "foreign", gt(out="{d}/o", tokenizer="{d}/o/tok.json"),
        setup=lambda ctx: (mkdir(ctx.p("o")), shutil.copy(BPE_JSON, ctx.p("o/tok.json")), ctx.foreign.append(ctx.p("o/tok.json"))),
        words=["--out", "tok.json"])

    # -- the Llama family: a transformers checkpoint (BF16, 2 shards + index) broken one way at a time
    def llama(**changes):
        def setup(ctx: Ctx):
            copy_ckpt(LLAMA, ctx.p("c"))
            if changes:
                json_patch(ctx.p("c/config.json"), **changes)
        return setup

    def llama_index(edit: Callable[[str], str]):
        def setup(ctx: Ctx):
            copy_ckpt(LLAMA, ctx.p("c"))
            path = ctx.p("c/model.safetensors.index.json")
            write(path, edit(open(path).read()))
        return setup

    lge = ge(checkpoint="{d}/c", data="{S}/tokens.bin")
    add("baseline-llama-eval", "baseline", lge, setup=llama(), expect="ok", words=["loss"])
    add("baseline-llama-train-init-from", "baseline",
        gt(init_from="{d}/c", data="{S}/tokens.bin", n_layer=None, n_embd=None, n_head=None), setup=llama(),
        expect="ok", check=wrote("o/config.json", "o/model.safetensors"))
    add("baseline-llama-train-new", "baseline", gt(model="llama", n_kv_head="1"), expect="ok",
        check=wrote("o/config.json", "o/model.safetensors", "o/tokenizer.json"))
    for name, changes, words in [
            ("model_type", {"model_type": "falcon"}, ["config.json", "model_type"]),
            ("kv-heads", {"num_key_value_heads": 3}, ["config.json", "num_key_value_heads"]),
            ("rope-yarn", {"rope_parameters": {"rope_type": "yarn", "rope_theta": 1e4}}, ["config.json", "rope_type"]),
            ("hidden_act", {"hidden_act": "gelu"}, ["config.json", "hidden_act"]),
            ("head_dim", {"head_dim": 2**62}, ["config.json", "head_dim"]),
            ("mistral-window", {"model_type": "mistral", "sliding_window": -3}, ["config.json", "sliding_window"]),
            ("sizes-disagree", {"intermediate_size": 40}, ["model.safetensors.index.json", "mlp.down_proj.weight"])]:
        add(f"one-error-llama-config-{name}", "one-error", lge, setup=llama(**changes), words=words)
    for key, v in [("hidden_size", 10**12), ("num_hidden_layers", 10**9), ("vocab_size", 2**63 - 1),
                   ("intermediate_size", 2**62), ("num_attention_heads", 2**62)]:
        add(f"sizes-llama-config-{key}-{v}", "sizes", lge, setup=llama(**{key: v}), words=["config.json"])
    add("fs-llama-shard-missing", "fs", lge,
        setup=lambda ctx: (llama()(ctx), os.remove(ctx.p("c/model-00002-of-00002.safetensors"))),
        words=["model.safetensors.index.json", "model-00002-of-00002.safetensors", "missing"])
    add("one-error-llama-index-tensor-twice", "one-error", lge,
        setup=llama_index(lambda t: t.replace('"weight_map": {', '"weight_map": {\n "model.norm.weight": "model-00001-of-00002.safetensors",', 1)),
        words=["model.safetensors.index.json", "model.norm.weight", "twice"])
    add("one-error-llama-index-shard-outside", "one-error", lge,
        setup=llama_index(lambda t: t.replace("model-00001-of-00002.safetensors", "../../x.safetensors", 1)),
        words=["model.safetensors.index.json", "../../x.safetensors"])
    add("one-error-llama-index-not-json", "one-error", lge, setup=llama_index(lambda t: t[: len(t) // 2]),
        words=["model.safetensors.index.json"])
    return C


# ---- running ------------------------------------------------------------------------------------


def tree_digest(path: str) -> str:
    if os.path.islink(path):
        return "link:" + os.readlink(path)
    if os.path.isdir(path):
        h = hashlib.sha256()
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for n in sorted(files):
                p = os.path.join(root, n)
                h.update(os.path.relpath(p, path).encode() + b"\0" + tree_digest(p).encode())
            for n in dirs:
                h.update(b"dir:" + os.path.relpath(os.path.join(root, n), path).encode())
        return "dir:" + h.hexdigest()
    if os.path.isfile(path):
        return "file:" + hashlib.sha256(open(path, "rb").read()).hexdigest()
    if os.path.exists(path):
        return "special"
    return "missing"


def words_missing(words: Words, text: str) -> list[str]:
    missing = []
    for w in words:
        alts = [w] if isinstance(w, str) else list(w)
        if not any(a in text for a in alts):
            missing.append(alts[0] if len(alts) == 1 else "one of " + "/".join(alts))
    return missing


def mount_full(path: str) -> Optional[str]:
    """A 32 KiB tmpfs at path, filled to the last byte by a filler file. Returns why not, or None."""
    os.makedirs(path, exist_ok=True)
    if os.geteuid() != 0:
        return "not root: cannot mount a small tmpfs"
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32k,mode=0777", "tmpfs", path], capture_output=True, text=True)
    if r.returncode != 0:
        return "mount failed: " + (r.stderr.strip() or r.stdout.strip())
    try:
        with open(os.path.join(path, "filler"), "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:
        pass
    return None


def umount(path: str):
    if subprocess.run(["umount", path], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", path], capture_output=True)


def chown_tree(path: str, uid: int):
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            try:
                os.lchown(os.path.join(root, n), uid, uid)
            except OSError:
                pass
    os.lchown(path, uid, uid)


def make_preexec(rlimit_bytes: int, unpriv: bool):
    def preexec():
        os.nice(10)
        resource.setrlimit(resource.RLIMIT_AS, (rlimit_bytes, rlimit_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if unpriv and os.geteuid() == 0:
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
    return preexec


def child_env() -> dict:
    env = dict(os.environ)
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", TG_NO_PROGRESS="1")
    env.pop("OMPI_COMM_WORLD_SIZE", None)
    return env


FORK_LOCK = threading.Lock()


def run_cmd(binary: str, argv: list[str], timeout: float, rlimit: int, unpriv: bool, cwd: str) -> Result:
    start = time.monotonic()
    with FORK_LOCK:  # one fork at a time: preexec_fn runs Python in the child
        p = subprocess.Popen([binary, *argv], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             preexec_fn=make_preexec(rlimit, unpriv), start_new_session=True, cwd=cwd, env=child_env())
    try:
        out, err = p.communicate(timeout=timeout)
        code = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        code = None
    secs = time.monotonic() - start
    sig = -code if code is not None and code < 0 else None
    return Result(code if sig is None else None, sig, out.decode(errors="replace"), err.decode(errors="replace"), secs)


PROGRESS = re.compile(r"(\[=*[> ]|ETA|^\[\d+/\d+\]|^generating listops|^step \d+:|^generated \d+ tokens)")


def headline(stderr: str) -> str:
    for line in stderr.splitlines():
        line = line.strip()
        if line and not PROGRESS.search(line):
            return line
    return ""


@dataclasses.dataclass
class Outcome:
    case: Case
    verdict: str  # PASS, FAIL, SKIP
    why: str
    result: Optional[Result]


def run_case(index: int, c: Case, binary: str, scratch: str, shared: dict, args) -> Outcome:
    # a neutral directory name: the case's name must not put words into the messages' paths
    d = os.path.join(scratch, "cases", f"c{index:03d}")
    os.makedirs(d)
    os.chmod(d, 0o755)
    ctx = Ctx(d, shared)
    try:
        if c.full_fs:
            why = mount_full(os.path.join(d, "full"))
            if why:
                return Outcome(c, "SKIP", why, None)
            ctx.mounted = os.path.join(d, "full")
            ctx.foreign.append(os.path.join(d, "full", "filler"))
        if c.unpriv and os.geteuid() == 0:
            chown_tree(d, NOBODY)
        if c.setup:
            c.setup(ctx)
        if c.unpriv and os.geteuid() == 0:
            # the case's own files belong to the unprivileged user (modes set by setup still apply)
            for root, dirs, files in os.walk(d):
                for n in dirs + files:
                    try:
                        os.lchown(os.path.join(root, n), NOBODY, NOBODY)
                    except OSError:
                        pass
        before = {p: tree_digest(p) for p in ctx.foreign}
        argv = [ctx.sub(a) for a in c.argv]
        r = run_cmd(binary, argv, c.timeout or args.timeout, args.rlimit_gb << 30, c.unpriv, d)
        problems = []
        if r.sig is not None:
            problems.append(f"signal {signal.Signals(r.sig).name}")
        elif r.code is None:
            problems.append(f"hang: killed after {c.timeout or args.timeout:.0f} s")
        else:
            if c.expect == "ok" and r.code != 0:
                problems.append(f"exit {r.code}, expected 0")
            elif c.expect == "error" and r.code not in (1, 2):
                problems.append(f"exit {r.code}, expected 1 or 2")
            elif c.expect == "any" and r.code not in (0, 1, 2):
                problems.append(f"exit {r.code}")
            if r.code != 0 and r.code in (1, 2) and c.expect != "ok":
                miss = words_missing([ctx.sub(w) if isinstance(w, str) else w for w in c.words], r.stderr)
                if miss:
                    problems.append("message lacks " + ", ".join(repr(m) for m in miss))
            if c.expect == "ok" and r.code == 0 and c.words:
                miss = words_missing(c.words, r.stdout + r.stderr)
                if miss:
                    problems.append("output lacks " + ", ".join(repr(m) for m in miss))
            if "terminate called" in r.stderr:
                problems.append("std::terminate")
            if c.check and r.code in (0, 1, 2):
                why = c.check(ctx, r)
                if why:
                    problems.append(why)
        for p, h in before.items():
            after = tree_digest(p)
            if after != h:
                problems.append(f"lost/changed user file {os.path.relpath(p, d)} ({h.split(':')[0]} -> {after.split(':')[0]})")
        return Outcome(c, "FAIL" if problems else "PASS", "; ".join(problems), r)
    except Exception as e:  # a setup failure is the harness's, reported as such
        return Outcome(c, "FAIL", f"harness error in setup: {type(e).__name__}: {e}", None)
    finally:
        if ctx.mounted:
            umount(ctx.mounted)


def copy_where_nobody_reaches(binary: str, scratch: str) -> str:
    """Copy the binary and the gpt2_tiny fixture into the (0755) scratch dir: the unprivileged cases run as
    uid 65534, which cannot reach them inside a checkout made under a 0700 directory (mktemp -d)."""
    global FIXTURE
    copied = os.path.join(scratch, "bin", "tapegrad")
    os.makedirs(os.path.dirname(copied))
    shutil.copy2(binary, copied)
    FIXTURE = shutil.copytree(FIXTURE, os.path.join(scratch, "fixture-gpt2_tiny"))
    return copied


def make_shared(binary: str, scratch: str, args) -> dict:
    S = os.path.join(scratch, "shared")
    os.makedirs(S)
    write(os.path.join(S, "text.txt"), TEXT)
    rows = ["Source\tTarget"]
    for i in range(40):
        op, a, b = ["MAX", "MIN"][i % 2], i % 10, (i * 7) % 10
        rows.append(f"( [{op} {a} {b} ] )\t{max(a, b) if op == 'MAX' else min(a, b)}")
    write(os.path.join(S, "train.tsv"), "\n".join(rows) + "\n")
    G, E = os.path.join(S, "gpt"), os.path.join(S, "enc")
    for argv in (gt(out=G, data=os.path.join(S, "text.txt")), et(out=E, data=os.path.join(S, "train.tsv"))):
        r = run_cmd(binary, argv, 60, args.rlimit_gb << 30, False, S)
        if r.code != 0:
            sys.exit(f"hostile sweep: cannot make the shared checkpoints: tapegrad {' '.join(argv)} -> exit {r.code} "
                     f"signal {r.sig}\n{r.stderr}")
    vocab = json.load(open(os.path.join(G, "tokenizer.json")))["bytes"]
    ids = [vocab.index(b) for b in TEXT.encode()]
    write(os.path.join(S, "tokens.bin"), struct.pack(f"<{len(ids)}H", *ids))
    for root, dirs, files in os.walk(scratch):
        for n in dirs:
            os.chmod(os.path.join(root, n), 0o755)
        for n in files:
            os.chmod(os.path.join(root, n), 0o644)
    return {"S": S, "G": G, "E": E}


def write_failures(path: str, outcomes: list, binary: str):
    """The failing cases grouped by class: the command, what happened, the message in full."""
    lines = [f"hostile sweep failures against {binary} ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
             "placeholders: {d} the case's scratch dir, {S} shared inputs (text.txt, train.tsv, tokens.bin),",
             "{G} a tiny trained GPT checkpoint, {E} a tiny encoder checkpoint, {FIX} tests/models/fixtures/gpt2_tiny,",
             "{full} a full 32 KiB tmpfs; setup is in tools/hostile_sweep.py under the case's name", ""]
    classes: dict[str, list] = {}
    for o in outcomes:
        if o.verdict == "FAIL":
            classes.setdefault(o.case.cls, []).append(o)
    for cls, items in classes.items():
        lines.append(f"== {cls}: {len(items)} failing")
        for o in items:
            r = o.result
            ex = "-" if r is None else (f"signal {signal.Signals(r.sig).name}" if r.sig else
                                        ("hang" if r.code is None else f"exit {r.code}"))
            msg = " | ".join(l.strip() for l in (r.stderr if r else "").splitlines() if l.strip() and not PROGRESS.search(l))
            lines.append(f"- {o.case.name}: {ex}; {o.why}")
            lines.append(f"    tapegrad {' '.join(repr(a) if (not a or ' ' in a) else a for a in o.case.argv)}")
            lines.append(f"    stderr: {msg[:400] if msg else '(nothing)'}")
        lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tapegrad", default=os.path.join(REPO, "build", "tapegrad"), help="the binary (default build/tapegrad)")
    ap.add_argument("-k", dest="filter", help="only cases whose name or class contains this")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds before a case counts as a hang (default 30)")
    ap.add_argument("--rlimit-gb", type=int, default=2, help="address-space limit of each child in GiB (default 2)")
    ap.add_argument("--jobs", type=int, default=3, help="cases run at once (default 3; hangs wait without CPU)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--width", type=int, default=90, help="width of the stderr column")
    ap.add_argument("--failures", metavar="FILE", help="also write the failing cases, grouped by class, to FILE")
    args = ap.parse_args()

    all_cases = cases()
    names = [c.name for c in all_cases]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        sys.exit(f"hostile sweep: duplicate case names: {sorted(dupes)}")
    selected = [c for c in all_cases if not args.filter or args.filter in c.name or args.filter == c.cls]
    if args.list:
        for c in selected:
            print(f"{c.name:60} {c.cls:10} {' '.join(c.argv)}")
        print(f"{len(selected)} cases")
        return 0
    binary = os.path.abspath(args.tapegrad)
    if not os.access(binary, os.X_OK):
        sys.exit(f"hostile sweep: --tapegrad: {binary} is not an executable file")
    if os.geteuid() == 0:
        print("hostile sweep: running as root; unprivileged cases run as uid/gid 65534")
    scratch = tempfile.mkdtemp(prefix="tapegrad-sweep-")
    os.chmod(scratch, 0o755)
    t0 = time.monotonic()
    try:
        shared = make_shared(binary, scratch, args)
        if os.geteuid() == 0:
            binary = copy_where_nobody_reaches(binary, scratch)
        os.makedirs(os.path.join(scratch, "cases"))
        os.chmod(os.path.join(scratch, "cases"), 0o755)
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            outcomes = list(pool.map(lambda ic: run_case(ic[0], ic[1], binary, scratch, shared, args), enumerate(selected)))
    finally:
        if args.keep:
            print(f"hostile sweep: scratch kept in {scratch}")
        else:
            for root, dirs, files in os.walk(scratch):  # chmod 000 directories back so they can be removed
                for n in dirs:
                    p = os.path.join(root, n)
                    if not os.path.islink(p):
                        try:
                            os.chmod(p, 0o755)
                        except OSError:
                            pass
            shutil.rmtree(scratch, ignore_errors=True)
    elapsed = time.monotonic() - t0

    w = args.width
    print(f"{'case':58} {'class':9} {'exit':>7} {'secs':>6} verdict  first line of stderr")
    for o in outcomes:
        r = o.result
        ex = "-" if r is None else (f"SIG{signal.Signals(r.sig).name[3:]}" if r.sig else ("hang" if r.code is None else str(r.code)))
        secs = "-" if r is None else f"{r.seconds:6.2f}"
        line = headline(r.stderr) if r else ""
        print(f"{o.case.name:58} {o.case.cls:9} {ex:>7} {secs:>6} {o.verdict:7}  {line[:w]}")
        if o.verdict != "PASS":
            print(f"{'':58}   -> {o.why}")
    passed = sum(o.verdict == "PASS" for o in outcomes)
    failed = sum(o.verdict == "FAIL" for o in outcomes)
    skipped = sum(o.verdict == "SKIP" for o in outcomes)
    by_cls: dict[str, list[int]] = {}
    for o in outcomes:
        s = by_cls.setdefault(o.case.cls, [0, 0])
        s[0] += 1
        s[1] += o.verdict == "FAIL"
    print("by class: " + ", ".join(f"{k} {v[1]}/{v[0]} failed" for k, v in by_cls.items()))
    if args.failures:
        write_failures(args.failures, outcomes, binary)
    print(f"hostile sweep: {len(outcomes)} cases, {passed} passed, {failed} failed"
          + (f", {skipped} skipped" if skipped else "") + f" ({elapsed:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
