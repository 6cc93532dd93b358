"""bench/compare's flex rows (issue 16): tapegrad's flex_attention against PyTorch's
torch.nn.attention.flex_attention compiled for the CPU (torch.compile), and against PyTorch's
F.scaled_dot_product_attention with the same pattern materialised as a mask or bias.

Patterns (all causal, as `tapegrad bench attention --causal`): causal, sliding:256 (the last 256
keys), document:8 (T split into 8 equal documents, causal inside each), alibi (causal with
ALiBi's per-head slopes, the paper's for H heads). B=1, H=8, D = 32 and 64, T = 1K to 8K.

Columns: "torch eager" is F.scaled_dot_product_attention with the materialised [T, T] mask (or
the [H, T, T] ALiBi bias, -inf where causal masks), "torch.compile" is flex_attention compiled.
PyTorch's flex_attention has no backward on the CPU (NotImplementedError "FlexAttention does not
support backward on CPU"): the forward + backward rows show that in its cell (expected_errors),
and tapegrad's forward + backward beside SDPA's."""
from compare_py.workloads import Workload

PATTERNS = ("causal", "sliding:256", "document:8", "alibi")
NO_FLEX_BACKWARD = "does not support backward on CPU"


def flex_flops(c):
    """Useful FLOPs: 4·D per visible query-key pair forward (×3.5 with backward)."""
    B, H, D, T = c["batch_size"], c["n_head"], c["head_dim"], c["seq_len"]
    return 4 * D * B * H * visible_pairs(c["pattern"], T) * (3.5 if c["mode"] == "fwdbwd" else 1.0)


def visible_pairs(pattern, T):
    """Query-key pairs a causal pattern lets through, per head."""
    name, _, arg = pattern.partition(":")
    if name == "sliding":
        w = int(arg)
        return sum(min(t + 1, w) for t in range(T))
    if name == "document":
        n = int(arg)
        sizes = [sum(1 for s in range(T) if s * n // T == d) for d in range(n)]
        return sum(L * (L + 1) // 2 for L in sizes)
    return T * (T + 1) // 2


def flex_workloads(quick=False, smoke=False):
    """The flex rows: every pattern at D = 32, 64; forward at T = 1K, 2K, 4K, 8K, forward +
    backward at T = 1K, 4K (quick: D 64, T 1K; smoke: toy sizes, tapegrad only)."""
    if smoke:
        grid = [(16, 64, p, m) for p in PATTERNS for m in ("fwd", "fwdbwd")]
    elif quick:
        grid = [(64, 1024, p, m) for p in PATTERNS for m in ("fwd", "fwdbwd")]
    else:
        # forward + backward to 4K: SDPA's math backend holds [B, H, T, T] weights and their gradient
        grid = [(d, t, p, m) for m in ("fwd", "fwdbwd") for p in PATTERNS for d in (32, 64)
                for t in ((1024, 2048, 4096, 8192) if m == "fwd" else (1024, 4096))]
    out = []
    for d, t, p, m in grid:
        c = dict(batch_size=1, n_head=8, head_dim=d, seq_len=t if not smoke else 64, pattern=p, mode=m)
        long = t >= 8192
        name = f"flex_{p.replace(':', '')}_{m}_d{d}_t{t}"
        out.append(Workload(name, "flex_attention", c, "ms", 1, flex_flops(c), warmup=1,
                            steps=1 if long or smoke else 3, rounds=1 if smoke else (2 if long else 3),
                            references=("torch",), memory=True, target=1.5 if m == "fwd" else 0.0,
                            expected_errors=(("torch.compile", NO_FLEX_BACKWARD),) if m == "fwdbwd" else (),
                            notes="" if out else (
                                "flex attention, causal patterns, B1 H8 (tapegrad flex_attention on [B, T, H, D]); "
                                "torch eager = F.scaled_dot_product_attention with the pattern materialised as a "
                                "mask or bias, torch.compile = torch.nn.attention.flex_attention compiled "
                                "(no backward on the CPU); target ≥ 1.5× flex's forward")))
    return out
