"""bench/compare's PyTorch worker: answers the driver's requests (see worker.py) in eager mode
or under torch.compile (default mode; the model's forward compiled, as nanoGPT does; the
compile time is reported apart and never timed as a step). Threads: TG_COMPARE_THREADS for
torch.set_num_threads; the driver sets OMP/MKL/OPENBLAS_NUM_THREADS to the same number."""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from compare_py import data, torch_llama, torch_models  # noqa: E402
from compare_py.flex_torch import build_flex  # noqa: E402
from compare_py.safetensors_io import read_safetensors  # noqa: E402
from compare_py.worker import builder_for, reply_of, rss_peak_growth, serve, time_steps  # noqa: E402

THREADS = int(os.environ.get("TG_COMPARE_THREADS", "0")) or os.cpu_count()
torch.set_num_threads(THREADS)


def adamw(model, c):
    """AdamW over nanoGPT's groups (decay on rank >= 2), fused where this PyTorch has it."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [dict(params=[p for p in params if p.dim() >= 2], weight_decay=c.get("weight_decay", 0.1)),
              dict(params=[p for p in params if p.dim() < 2], weight_decay=0.0)]
    kw = dict(lr=c.get("lr", 1e-3), betas=(0.9, 0.99), eps=1e-8)
    try:
        return torch.optim.AdamW(groups, fused=True, **kw), "fused"
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(groups, foreach=True, **kw), "foreach"


def count(module):
    return sum(p.numel() for p in module.parameters())


def build_train(kind, c, mode):
    torch.manual_seed(1337)
    if kind in ("gpt_train", "llama_train"):
        tokens, vocab = data.char_tokens(c["data"])
        gpt = kind == "gpt_train"
        model = torch_models.GPT(vocab, **c) if gpt else torch_llama.Llama(vocab, **c)
        if c.get("init_from"):  # tapegrad's initial weights (GPT-2's layout, transformers' Llama names)
            tensors = read_safetensors(os.path.join(c["init_from"], "model.safetensors"))
            (torch_models.load_gpt2_tensors if gpt else torch_llama.load_llama_tensors)(model, tensors)
        pool = [(torch.tensor(x), torch.tensor(y))
                for x, y in data.gpt_batches(tokens, c["batches"], c["batch_size"], c["block_size"])]
    else:
        model = torch_models.EncoderClassifier(**c)
        pool = [(torch.tensor(x), torch.tensor(y)) for x, y in data.encoder_batches(
            c["batches"], c["batch_size"], c["block_size"], c["vocab_size"], c["n_classes"])]
    model.train()
    opt, how = adamw(model, c)
    fwd = torch.compile(model) if mode == "compile" else model
    params = list(model.parameters())

    def step(i):
        x, y = pool[i % len(pool)]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(fwd(x), y) if kind == "encoder_train" else fwd(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, c.get("grad_clip", 1.0), foreach=True)
        opt.step()
        return loss.item()
    return step, count(model), dict(adamw=how)


def build_generate(kind, c, mode):
    torch.manual_seed(1337)
    build = torch_llama.Llama if kind == "llama_generate" else torch_models.GPT
    model = build(c["vocab_size"], **c).eval()
    prompt = torch.zeros((1, 1), dtype=torch.long)

    def step(i):
        out = torch_models.generate(model, prompt, c["new_tokens"], c["kv_cache"])
        assert out.shape[1] == 1 + c["new_tokens"]
    return step, count(model), {}


def build_mha(kind, c, mode):
    torch.manual_seed(1337)
    B, T, C, H = c["batch_size"], c["seq_len"], c["n_embd"], c["n_head"]
    mha = nn.MultiheadAttention(C, H, batch_first=True)
    x = torch.randn(B, T, C, requires_grad=True)
    dy = torch.randn(B, T, C)

    def f(x):
        return mha(x, x, x, need_weights=False)[0]
    fwd = torch.compile(f) if mode == "compile" else f

    def step(i):
        mha.zero_grad(set_to_none=True)
        x.grad = None
        fwd(x).backward(dy)
    return step, count(mha), {}


def build_op(kind, c, mode):
    torch.manual_seed(1)
    shape = c["shape"]
    x = torch.randn(*shape, requires_grad=True)
    dy = torch.randn(*shape)
    leaves = [x]
    if kind == "cross_entropy":
        target = torch.tensor([(i * 7) % shape[1] for i in range(shape[0])])
        f = lambda x: F.cross_entropy(x, target)  # noqa: E731
    elif kind == "layer_norm":
        w, b = torch.ones(shape[-1], requires_grad=True), torch.zeros(shape[-1], requires_grad=True)
        leaves += [w, b]
        f = lambda x: F.layer_norm(x, (shape[-1],), w, b)  # noqa: E731
    elif kind == "softmax":
        f = lambda x: F.softmax(x, dim=-1)  # noqa: E731
    else:
        f = lambda x: F.gelu(x, approximate="tanh")  # noqa: E731
    fwd = torch.compile(f) if mode == "compile" else f

    def step(i):
        for t in leaves:
            t.grad = None
        y = fwd(x)
        (y.backward() if kind == "cross_entropy" else y.backward(dy))
    return step, 0, {}


def build_adamw(kind, c, mode):
    torch.manual_seed(1337)
    model = torch_models.GPT(c["vocab_size"], **c)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    opt, how = adamw(model, c)
    fn = torch.compile(opt.step) if mode == "compile" else opt.step
    return (lambda i: fn()), count(model), dict(adamw=how)


def sdpa_backend(q, k, v, causal, backward):
    """PyTorch's CPU flash kernel when it takes the case, else the math backend: -> (backend
    context factory, its name). Decided on the real inputs, backward included."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    for backend, name in ((SDPBackend.FLASH_ATTENTION, "flash"), (SDPBackend.MATH, "math")):
        try:
            with sdpa_kernel([backend]):
                out = F.scaled_dot_product_attention(q[:, :, :8], k[:, :, :8], v[:, :, :8], is_causal=causal)
                if backward:
                    out.sum().backward()
            return (lambda b=backend: sdpa_kernel([b])), name
        except RuntimeError:
            continue
    raise RuntimeError("no SDPA backend takes this case")


def build_attention(kind, c, mode):
    """F.scaled_dot_product_attention on q, k, v [B, H, T, D], forward (+ backward from a fixed
    gradient into q, k, v), as bench/compare_tapegrad's run_attention."""
    torch.manual_seed(1)
    B, H, D, T = c["batch_size"], c["n_head"], c["head_dim"], c["seq_len"]
    backward = c.get("mode", "fwdbwd") == "fwdbwd"
    q, k, v = (torch.randn(B, H, T, D, requires_grad=backward) for _ in range(3))
    dy = torch.randn(B, H, T, D)
    backend, name = sdpa_backend(q, k, v, c["causal"], backward)

    def step(i):
        with backend():
            if not backward:
                with torch.no_grad():
                    F.scaled_dot_product_attention(q, k, v, is_causal=c["causal"])
                return
            for x in (q, k, v):
                x.grad = None
            F.scaled_dot_product_attention(q, k, v, is_causal=c["causal"]).backward(dy)
    return step, 0, dict(sdpa_backend=name)


STATE = {}  # (request's workload, config, mode) -> (step, params, extra): models live across rounds


def run(request):
    kind, c, mode = request["workload"], request.get("config", {}), request.get("mode", "eager")
    key = (kind, json.dumps(c, sort_keys=True), mode)
    fresh = key not in STATE
    if fresh:
        STATE[key] = builder_for(kind, build_train, build_generate, build_mha, build_op, build_adamw,
                                 build_attention, build_flex)(kind, c, mode)
    step, params, extra = STATE.pop(key) if c.get("init_from") else STATE[key]  # from a checkpoint: one run only
    times, first, last, first_s, values = time_steps(request, step)
    extra = dict(extra, torch=torch.__version__)
    if fresh and mode == "compile":
        extra["compile_s"] = first_s  # the first warm-up step: tracing and compiling included
    reply = reply_of(times, params, first, last, values, **extra)
    reply["threads"] = torch.get_num_threads()
    if request.get("memory"):
        reply["rss_peak_bytes"] = rss_peak_growth(lambda: step(0))  # one more, untimed step
    return reply


if __name__ == "__main__":
    serve(run)
