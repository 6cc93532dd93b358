"""Cases: files that disagree with the model or the flags, honest successes, and the user's
own files in or beside an output, which must survive."""
from __future__ import annotations

import json
import os
import shutil
import struct


from hostile.table import BPE_JSON, Ctx
from hostile.files import TEXT, copy_ckpt, json_patch, link, mkdir, st_poison, write
from hostile.argv import ba, dl, ee, et, ga, ge, gs, gt, td, te, tt
from hostile.checks import NONFINITE, ckpt_or_refused, nan_named, wrote
from hostile.common import LINE3, cfg


def add_cases(add):
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
        setup=lambda ctx: (shutil.copy(ctx.sub("{TIK}"), ctx.p("ranks.tiktoken")), ctx.foreign.append(ctx.p("ranks.tiktoken"))),
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
    add("baseline-gpt-train-tokenizer-tiktoken", "baseline", gt(tokenizer="{TIK}"), expect="ok",
        check=wrote("o/config.json", "o/model.safetensors", "o/tokenizer.tiktoken"))
    add("mismatch-gpt-sample-tokenizer-differs-from-own", "mismatch", gs(tokenizer=BPE_JSON),
        words=["--tokenizer", "bpe_shakespeare.json", "tokenizer.json"])
    add("mismatch-gpt-eval-tokenizer-differs-from-own", "mismatch", ge(tokenizer="{TIK}"),
        words=["--tokenizer", "gpt2.tiktoken", "tokenizer.json"])
    add("mismatch-gpt-train-init-from-tokenizer-differs", "mismatch",
        gt(init_from="{G}", tokenizer=BPE_JSON, n_layer=None, n_embd=None, n_head=None),
        words=["--tokenizer", "bpe_shakespeare.json", "tokenizer.json"])
    add("mismatch-gpt-eval-tokenizer-vocab-not-model", "mismatch", ge(checkpoint="{FIX}", tokenizer="{TIK}"),
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
