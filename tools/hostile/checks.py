"""Checks that several cases run on a finished command (what it wrote, what it named)."""
from __future__ import annotations

import os
import re
from typing import Optional


from hostile.table import Ctx, Result


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
