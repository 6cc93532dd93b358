"""Cases: the Llama family, a transformers checkpoint (BF16, 2 shards + index) broken one way
at a time."""
from __future__ import annotations

import os
from typing import Callable


from hostile.table import Ctx, LLAMA
from hostile.files import copy_ckpt, json_patch, write
from hostile.argv import ge, gt
from hostile.checks import wrote


def add_cases(add):
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
