"""The workloads of bench/compare (issue 5): their sizes, how many steps each run times, the unit
of their throughput and their model FLOPs. One source of truth: the driver sends these configs
to tapegrad's worker and to the PyTorch and JAX workers alike."""
from dataclasses import dataclass, field

BABY_GPT = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12)  # nanoGPT's baby GPT
SHAKESPEARE_CHAR = dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=16)  # nanoGPT's shakespeare_char
# issue 19's Llama-shaped model (transformers' field names; block_size is max_position_embeddings)
LLAMA = dict(num_hidden_layers=6, hidden_size=384, num_attention_heads=6, num_key_value_heads=2, intermediate_size=1024,
             rope_theta=10000.0, rms_norm_eps=1e-5, block_size=256, batch_size=16)
ENCODER = dict(vocab_size=1000, n_classes=2, block_size=50, n_layer=2, n_head=4, n_embd=128, batch_size=8)
OPTIM = dict(lr=1e-3, weight_decay=0.1, grad_clip=1.0)  # AdamW betas (0.9, 0.99), eps 1e-8 everywhere
CHAR_VOCAB = 65  # tiny Shakespeare's distinct bytes
CHECKPOINTED = "_checkpointed"  # the suffix of a workload run with activation checkpointing


@dataclass
class Workload:
    name: str          # row of the table
    kind: str          # the request's "workload" (what the workers dispatch on)
    config: dict
    unit: str          # "tokens/s", "steps/s", "ms"
    items_per_step: int = 1      # tokens (or steps) per timed step, for the throughput
    flops_per_step: float = 0.0  # model FLOPs of one timed step (0: no MFU)
    warmup: int = 2
    steps: int = 10
    inner: int = 1
    rounds: int = 3
    modes: tuple = ("eager", "compile")  # PyTorch modes run (JAX always runs jax.jit)
    notes: str = ""
    expect_params: int = 0  # what every framework must report (0: not checked)
    trains: bool = False    # a training workload (loss checks, memory)
    loss_falls: bool = True  # for a training workload: its first-to-last loss must fall over warmup + steps
    # steps (False where it may legitimately rise: shakespeare_char, bench/README.md "The loss check")
    target: float = 1.0     # issue 5's target for tapegrad ÷ best reference (0: none)
    references: tuple = ("torch", "jax")  # the reference frameworks that run it
    memory: bool = False    # measure one step's peak memory after the timing (train workloads always)
    expected_errors: tuple = ()  # (column, text): that column's error, when it holds text, is a known limit


def gpt_params(c, vocab):
    """GPT-2's parameter count: wte, wpe, L blocks of 12C² + 13C, ln_f (tied head)."""
    C, L = c["n_embd"], c["n_layer"]
    return vocab * C + c["block_size"] * C + L * (12 * C * C + 13 * C) + 2 * C


def gpt_train_flops(c, vocab):
    """nanoGPT's estimate_mfu: (6N + 12·L·C·T) per token, N without the position table."""
    N = gpt_params(c, vocab) - c["block_size"] * c["n_embd"]
    T = c["block_size"]
    return (6 * N + 12 * c["n_layer"] * c["n_embd"] * T) * c["batch_size"] * T


def llama_matmul_params(c, vocab):
    """A Llama's matmul parameters (q, k, v, o, gate, up, down per layer, and the untied head)."""
    C, L, I = c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"]
    kv = c["num_key_value_heads"] * (C // c["num_attention_heads"])  # k_proj's and v_proj's outputs
    return L * (2 * C * C + 2 * C * kv + 3 * C * I) + vocab * C


def llama_params(c, vocab):
    """Every parameter: embed_tokens, the matmuls, two RMSNorm weights per layer and the final one."""
    C = c["hidden_size"]
    return vocab * C + llama_matmul_params(c, vocab) + (2 * c["num_hidden_layers"] + 1) * C


def llama_train_flops(c, vocab):
    """nanoGPT's estimate_mfu: (6N + 12·L·C·T) per token, N the matmul parameters (head included,
    embed_tokens and the norms not); attention counted over all H query heads."""
    L, C, T = c["num_hidden_layers"], c["hidden_size"], c["block_size"]
    return (6 * llama_matmul_params(c, vocab) + 12 * L * C * T) * c["batch_size"] * T


def llama_generate_flops(c, vocab, new_tokens):
    """As generate_flops: 2N per new token plus 4·L·C per visible position."""
    L, C, P = c["num_hidden_layers"], c["hidden_size"], c["block_size"]
    return sum(2 * llama_matmul_params(c, vocab) + 4 * L * C * min(pos + 1, P) for pos in range(new_tokens))


def encoder_params(c):
    C, L = c["n_embd"], c["n_layer"]
    return c["vocab_size"] * C + c["block_size"] * C + L * (12 * C * C + 13 * C) + C * c["n_classes"] + c["n_classes"]


def encoder_train_flops(c):
    """As nanoGPT counts: 6N per token over the matmul parameters (blocks and head, not the
    embedding tables) plus 12·L·C·T for attention."""
    C, L, T = c["n_embd"], c["n_layer"], c["block_size"]
    N = L * (12 * C * C + 13 * C) + C * c["n_classes"]
    return (6 * N + 12 * L * C * T) * c["batch_size"] * T


def generate_flops(c, vocab, new_tokens):
    """Forward FLOPs of the new tokens as a KV cache computes them: 2N per token (N without
    the position table) plus 4·L·C per visible position."""
    N = gpt_params(c, vocab) - c["block_size"] * c["n_embd"]
    return sum(2 * N + 4 * c["n_layer"] * c["n_embd"] * min(pos + 1, c["block_size"]) for pos in range(new_tokens))


def mha_flops(c):
    """Forward 8·B·T·C² (q/k/v and output projections) + 4·B·T²·C (scores and weighted sum);
    backward twice that."""
    B, T, C = c["batch_size"], c["seq_len"], c["n_embd"]
    return 3 * (8 * B * T * C * C + 4 * B * T * T * C)


def attention_flops(c):
    """Useful FLOPs of one attention step (issue 17): 4·D per visible query-key pair forward
    (Q Kᵀ and P V, 2 each), ×3.5 for forward + backward; causal sees T(T+1)/2 pairs per head."""
    B, H, D, T = c["batch_size"], c["n_head"], c["head_dim"], c["seq_len"]
    pairs = T * (T + 1) // 2 if c["causal"] else T * T
    return 4 * D * pairs * B * H * (3.5 if c["mode"] == "fwdbwd" else 1.0)


def attention_workloads(quick=False, smoke=False):
    """Issue 17's rows: tapegrad's flash kernel against PyTorch's F.scaled_dot_product_attention
    (its CPU flash kernel; the math backend where flash refuses), causal, forward + backward,
    B=1, H=8, D = 16..128, T = 1K, 4K, 16K. Target: ≥ 1.4× at D ≤ 32, ≥ 1× above."""
    if smoke:
        grid = [(16, 64)]
    elif quick:
        grid = [(d, t) for t in (1024,) for d in (16, 64)]
    else:
        grid = [(d, t) for t in (1024, 4096, 16384) for d in (16, 32, 64, 128)]
    out = []
    for d, t in grid:
        c = dict(batch_size=1, n_head=8, head_dim=d, seq_len=t, causal=True, variant="flash", mode="fwdbwd")
        long = t >= 16384
        out.append(Workload(f"attention_d{d}_t{t}", "attention", c, "ms", 1, attention_flops(c),
                            warmup=1, steps=1 if long or smoke else 3, rounds=1 if smoke else (2 if long else 3),
                            modes=("eager",), references=("torch",), memory=True,
                            target=1.4 if d <= 32 else 1.0,
                            notes="" if out else ("causal self-attention, forward + backward from a fixed "
                                                  "gradient into q, k, v; tapegrad flash on [B, T, H, D], PyTorch "
                                                  "F.scaled_dot_product_attention on [B, H, T, D] (the backend it "
                                                  "ran is listed below the table); MFU counts 4·D·3.5 per visible pair")))
    return out


def workloads(data_path, quick=False, smoke=False, attention="dense"):
    """Every workload. quick: fewer steps and rounds (a minute or two); smoke: toy sizes, one
    round, tapegrad only (for the CTest test)."""
    if smoke:
        gpt = dict(n_layer=1, n_head=2, n_embd=16, block_size=8, batch_size=2)
        enc = dict(vocab_size=50, n_classes=2, block_size=8, n_layer=1, n_head=2, n_embd=16, batch_size=2)
        mha = dict(batch_size=2, seq_len=8, n_embd=16, n_head=2)
        ln, sm, ge, ce = [2, 8, 16], [2, 2, 8, 8], [2, 8, 64], [16, CHAR_VOCAB]
        new_tokens, gen_cfg = 12, gpt
    else:
        gpt, enc, mha = BABY_GPT, ENCODER, dict(batch_size=8, seq_len=256, n_embd=256, n_head=8)
        S = SHAKESPEARE_CHAR
        B, T, C, H = S["batch_size"], S["block_size"], S["n_embd"], S["n_head"]
        ln, sm, ge, ce = [B, T, C], [B, H, T, T], [B, T, 4 * C], [B * T, CHAR_VOCAB]
        new_tokens, gen_cfg = (64 if quick else 256), S
    q = quick or smoke

    def steps(full, fast):
        return fast if q else full

    def train(name, c, warm, n, rounds, checkpointing=False, loss_falls=True):
        cfg = dict(c, **OPTIM, batches=16, data=data_path, attention=attention, checkpointing=checkpointing)
        return Workload(name, "gpt_train", cfg, "tokens/s", c["batch_size"] * c["block_size"],
                        gpt_train_flops(c, CHAR_VOCAB), warmup=warm, steps=n, rounds=rounds,
                        expect_params=gpt_params(c, CHAR_VOCAB), trains=True, loss_falls=loss_falls,
                        target=0.0 if checkpointing else 1.0,
                        notes="activation checkpointing: every block recomputed in backward" if checkpointing else "")

    out = [train("gpt_baby_train", gpt, 3, steps(30, 8), steps(5, 2))]
    out[0].target = 2.0
    # shakespeare_char at constant lr 1e-3 without warmup: every framework's loss jumps at step 2 and
    # whether it is below the first loss after 6 steps depends on the initial draw; the check that
    # holds is the same-weights one (report.py: tapegrad and the references agree step by step).
    spiky = dict(loss_falls=False)
    if smoke:
        out.append(train("gpt_baby_train" + CHECKPOINTED, gpt, 3, 8, 1, checkpointing=True))
    else:
        out.append(train("gpt_shakespeare_train", SHAKESPEARE_CHAR, 1, steps(5, 2), steps(3, 1), **spiky))
        out[-1].target = 1.3  # and >= 70% of the sgemm peak
        out.append(train("gpt_shakespeare_train" + CHECKPOINTED, SHAKESPEARE_CHAR, 1, steps(5, 2), steps(3, 1),
                         checkpointing=True, **spiky))
    out.append(Workload("encoder_train", "encoder_train", dict(enc, **OPTIM, batches=16, attention=attention),
                        "steps/s", 1, encoder_train_flops(enc), warmup=3, steps=steps(40, 10),
                        rounds=steps(5, 2), expect_params=encoder_params(enc), trains=True, target=2.0))
    for cache in (True, False):
        cfg = dict(gen_cfg, vocab_size=CHAR_VOCAB, new_tokens=new_tokens, kv_cache=cache, attention=attention)
        out.append(Workload("generate_kv_cache" if cache else "generate_no_cache", "generate", cfg, "tokens/s",
                            new_tokens, generate_flops(gen_cfg, CHAR_VOCAB, new_tokens), warmup=1,
                            steps=steps(2 if cache else 1, 1), rounds=steps(3, 1), modes=("eager",),
                            expect_params=gpt_params(gen_cfg, CHAR_VOCAB),
                            notes=f"{new_tokens} new tokens from a 1-token prompt, batch 1, sampled at temperature 1"))
    out += llama_workloads(data_path, quick, smoke, attention)
    out.append(Workload("mha_fwd_bwd", "mha", dict(mha, attention=attention), "ms", 1, mha_flops(mha),
                        warmup=2, steps=steps(10, 3), inner=steps(3, 1), rounds=steps(5, 2),
                        expect_params=4 * mha["n_embd"] ** 2 + 4 * mha["n_embd"]))
    for name, shape in (("layer_norm", ln), ("softmax", sm), ("gelu", ge), ("cross_entropy", ce)):
        out.append(Workload(f"{name}_fwd_bwd", name, dict(shape=shape), "ms", warmup=3,
                            steps=steps(10, 3), inner=steps(10, 3), rounds=steps(5, 2),
                            notes=f"shape {shape}"))
    adam = dict(gpt, vocab_size=CHAR_VOCAB)
    out.append(Workload("adamw_step", "adamw_step", adam, "ms", warmup=3, steps=steps(10, 3), inner=steps(10, 3),
                        rounds=steps(5, 2), expect_params=gpt_params(gpt, CHAR_VOCAB),
                        notes=f"{gpt_params(gpt, CHAR_VOCAB)} parameters (baby GPT)"))
    from compare_py.flex_workloads import flex_workloads  # it imports Workload from here
    return out + attention_workloads(quick, smoke) + flex_workloads(quick, smoke)


def llama_workloads(data_path, quick=False, smoke=False, attention="dense"):
    """Issue 19's rows: the Llama-shaped model (LLAMA: grouped-query attention, SwiGLU, RMSNorm,
    rotary positions, untied head) trained on tiny Shakespeare's characters as the GPT rows are,
    and KV-cache generation with it. Target: tapegrad >= 1.2x the best reference on each."""
    c = dict(num_hidden_layers=1, hidden_size=16, num_attention_heads=2, num_key_value_heads=1, intermediate_size=32,
             rope_theta=10000.0, rms_norm_eps=1e-5, block_size=8, batch_size=2) if smoke else LLAMA
    q = quick or smoke
    new_tokens = 12 if smoke else (64 if quick else 256)
    shape = (f"L{c['num_hidden_layers']} C{c['hidden_size']} H{c['num_attention_heads']} "
             f"Hkv{c['num_key_value_heads']} I{c['intermediate_size']}, T{c['block_size']}")
    # Like shakespeare_char at constant lr 1e-3 without warmup, the loss may rise over the first
    # steps (bench/README.md "The loss check"); the check that holds is the same-weights one. In
    # the smoke test one batch is repeated and the loss must fall.
    train = Workload("llama_train", "llama_train", dict(c, **OPTIM, batches=16, data=data_path, attention=attention),
                     "tokens/s", c["batch_size"] * c["block_size"], llama_train_flops(c, CHAR_VOCAB),
                     warmup=1, steps=2 if q else 5, rounds=1 if q else 3,
                     expect_params=llama_params(c, CHAR_VOCAB), trains=True, loss_falls=smoke, target=1.2,
                     notes=f"{shape}, B{c['batch_size']}, SwiGLU, RMSNorm, rotary positions (theta "
                           f"{c['rope_theta']:g}), untied head; MFU counts 6N + 12·L·C·T per token, N the matmul "
                           f"parameters ({llama_matmul_params(c, CHAR_VOCAB)}: q, k, v, o, gate, up, down, head)")
    cfg = dict(c, vocab_size=CHAR_VOCAB, new_tokens=new_tokens, kv_cache=True, attention=attention)
    generate = Workload("llama_generate_kv_cache", "llama_generate", cfg, "tokens/s", new_tokens,
                        llama_generate_flops(c, CHAR_VOCAB, new_tokens), warmup=1, steps=1 if q else 2,
                        rounds=1 if q else 3, modes=("eager",), expect_params=llama_params(c, CHAR_VOCAB), target=1.2,
                        notes=f"{shape}: {new_tokens} new tokens from a 1-token prompt with the KV cache, batch 1, "
                              "sampled at temperature 1")
    return [train, generate]


def linear_gemms_request(w):
    """For a training workload (not the checkpointed ones): its linear layers' GEMMs of one step
    alone in tapegrad (bench/train_linear_gemms.h), the ceiling of its step's speed; else None."""
    if not w.trains or w.name.endswith(CHECKPOINTED):
        return None
    c = w.config
    rows = c["batch_size"] * c["block_size"]
    if w.kind == "llama_train":  # q, k, v fused (as tapegrad runs them), SwiGLU's three, the untied head
        C = c["hidden_size"]
        kv = c["num_key_value_heads"] * (C // c["num_attention_heads"])
        return dict(workload="linear_gemms", warmup=2, steps=max(3, w.steps // 3),
                    config=dict(rows=rows, n_embd=C, n_layer=c["num_hidden_layers"], head=CHAR_VOCAB, qkv=C + 2 * kv,
                                mlp=c["intermediate_size"], gated=True))
    config = dict(rows=rows, n_embd=c["n_embd"], n_layer=c["n_layer"])
    if w.kind == "gpt_train":  # the tied head; the encoder's 2-class head on pooled rows is left out
        config["head"] = CHAR_VOCAB
    return dict(workload="linear_gemms", config=config, warmup=2, steps=max(3, w.steps // 3))


def sgemm_request(smoke=False):
    """The peak probe: tapegrad's matmul (OpenBLAS sgemm) of two [n, n] matrices on all cores."""
    n = 64 if smoke else 1024
    return dict(workload="sgemm_peak", config=dict(n=n), warmup=2, steps=3 if smoke else 10, inner=1 if smoke else 5), n
