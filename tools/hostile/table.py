"""The case table's types and the paths every case may name (hostile_sweep.py)."""
from __future__ import annotations

import dataclasses
import os
from typing import Callable, Optional, Sequence, Union


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tools/hostile/ -> the repo
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
                .replace("{E}", self.E).replace("{FIX}", FIXTURE).replace("{TIK}", TIKTOKEN).replace("{full}", os.path.join(self.d, "full")))

    def p(self, rel: str) -> str:
        return os.path.join(self.d, rel)
