"""Cases: baseline runs that must succeed, sizes that overflow or cannot fit, NaN and
infinite values."""
from __future__ import annotations


from hostile.table import Ctx
from hostile.files import copy_ckpt, st_read, st_write, write
from hostile.argv import ba, dl, ee, et, ga, gc, ge, gs, gt
from hostile.checks import wrote
from hostile.common import WTE, big, cfg, huge, over


def add_cases(add):
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
