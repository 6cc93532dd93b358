"""Cases: every input path flag against missing, directory, /dev/zero, FIFO, loop, unreadable
and empty files; exceptions that are not tg::Error."""
from __future__ import annotations

import json
import os


from hostile.table import Ctx
from hostile.files import copy_ckpt, fifo, json_patch, link, loop, mkdir, write
from hostile.argv import ba, dl, ee, et, ga, ge, gs, gt, td, te, tt
from hostile.checks import exists_after
from hostile.common import cfg


def add_cases(add):
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
