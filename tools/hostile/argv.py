"""The command lines of the cases: one builder per subcommand, tiny sizes by default."""
from __future__ import annotations


from hostile.common import over


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
    base = {"--tokenizer": "{TIK}", "--input": "{S}/text.txt"}
    return _build(["tokenizer", "encode"], base, {"--" + k.replace("_", "-"): v for k, v in over.items()})


def td(**over) -> list[str]:
    """tokenizer decode with GPT-2's ranks."""
    base = {"--tokenizer": "{TIK}", "--input": "{S}/text.txt"}
    return _build(["tokenizer", "decode"], base, {"--" + k.replace("_", "-"): v for k, v in over.items()})


def tt(**over) -> list[str]:
    """tokenizer train on the shared text, 300 tokens."""
    base = {"--data": "{S}/text.txt", "--vocab-size": "300", "--out": "{d}/tok.json"}
    return _build(["tokenizer", "train"], base, {"--" + k.replace("_", "-"): v for k, v in over.items()})


def gc(**over) -> list[str]:
    base = {"--op": "matmul", "--threads": "1"}
    return _build(["gradcheck"], base, {"--" + k.replace("_", "-"): v for k, v in over.items()})
