"""bench/compare's flex rows on PyTorch (see flex_workloads.py): "compile" mode runs
torch.nn.attention.flex_attention under torch.compile with a block mask from create_block_mask;
"eager" mode runs F.scaled_dot_product_attention with the same pattern materialised (a boolean
[T, T] mask, or ALiBi's float [1, H, T, T] bias with -inf where causal masks)."""
import math

import torch
import torch.nn.functional as F

_COMPILED = {}


def alibi_slopes(H):
    """The ALiBi paper's slopes for H heads (as tapegrad's alibi_slopes)."""
    def pow2(n):
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]
    p = 2 ** int(math.log2(H))
    s = pow2(p)
    s += pow2(2 * p)[0::2][:H - p]
    return torch.tensor(s[:H])


def mask_mod_of(pattern, T):
    """The pattern's mask_mod(b, h, q, k) (elementwise on index tensors; causal throughout)."""
    name, _, arg = pattern.partition(":")
    if name == "sliding":
        w = int(arg)
        return lambda b, h, q, k: (q >= k) & (q - k < w)
    if name == "document":
        doc = torch.arange(T) * int(arg) // T  # N equal documents, as tapegrad's flex:document:N
        return lambda b, h, q, k: (q >= k) & (doc[q] == doc[k])
    if name in ("causal", "alibi"):
        return lambda b, h, q, k: q >= k
    raise ValueError(f"flex_attention: unknown pattern {pattern!r}")


def build_flex(kind, c, mode):
    """One flex step on q, k, v [B, H, T, D]: forward, or forward + backward from a fixed
    gradient into q, k, v."""
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    torch.manual_seed(1)
    B, H, D, T = c["batch_size"], c["n_head"], c["head_dim"], c["seq_len"]
    backward = c["mode"] == "fwdbwd"
    q, k, v = (torch.randn(B, H, T, D, requires_grad=backward) for _ in range(3))
    dy = torch.randn(B, H, T, D)
    mask_mod = mask_mod_of(c["pattern"], T)
    slopes = alibi_slopes(H) if c["pattern"] == "alibi" else None
    if mode == "compile":
        block_mask = create_block_mask(mask_mod, None, None, T, T, device="cpu")
        # Static shapes: one worker compiles every row, and after the first recompile dynamo's
        # automatic dynamic shapes made later rows' kernels 5-10x slower (sliding:256 at T=1024:
        # 1.0 s a call against 0.19 s compiled alone in a fresh process); each row keeps its
        # own compiled graph (the recompile limit raised for the rows of a full run).
        for limit in ("recompile_limit", "cache_size_limit"):
            if hasattr(torch._dynamo.config, limit):
                setattr(torch._dynamo.config, limit, max(getattr(torch._dynamo.config, limit), 256))
        if "flex" not in _COMPILED:
            _COMPILED["flex"] = torch.compile(flex_attention, dynamic=False)
        flex = _COMPILED["flex"]
        score_mod = None if slopes is None else (lambda s, b, h, qi, ki: s + slopes[h] * (ki - qi))

        def attend():
            return flex(q, k, v, score_mod=score_mod, block_mask=block_mask)
        extra = dict(torch_kernel="flex_attention (torch.compile)")
    else:
        idx = torch.arange(T)
        allowed = mask_mod(0, 0, idx[:, None], idx[None, :])  # [T, T]
        if slopes is None:
            attn_mask = allowed
        else:
            bias = slopes[:, None, None] * (idx[None, None, :] - idx[None, :, None]).float()  # [H, T, T]
            attn_mask = bias.masked_fill(~allowed, float("-inf"))[None]

        def attend():
            return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        extra = dict(torch_kernel="F.scaled_dot_product_attention, materialised mask")

    def step(i):
        if not backward:
            with torch.no_grad():
                attend()
            return
        for x in (q, k, v):
            x.grad = None
        attend().backward(dy)
    return step, 0, extra
