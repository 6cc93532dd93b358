"""Writes the whole-model reference for tests/models/test_gpt_reference.cpp (llm.c's test in spirit).

Run with Debian's PyTorch (no transformers needed):  /usr/bin/python3 tests/models/make_gpt2_fixture.py
(PyPI's torch 2.15 rewrites gpt2_tiny, made with 1.13, equal to within 3e-15: the same draws.)

Small GPT-2s written in plain torch with Hugging Face's names and layouts (Conv1D weights
[in, out], tanh GELU, tied LM head), f64, random weights (larger than GPT-2's init so every
gradient is far from zero):
  gpt2_tiny   vocab 17, n_positions 16, n_embd 12, n_layer 2, n_head 3; B 2, T 16
  gpt2_t130   vocab 29, n_positions 130, n_embd 16, n_layer 2, n_head 2; B 2, T 130: more than
              two 64-key blocks, so the causal attention skips blocks and ends on a partial one
For each NAME it writes

  fixtures/NAME/config.json         Hugging Face GPT-2 config.json
  fixtures/NAME/model.safetensors   names prefixed "transformer." as save_pretrained writes them,
                                    a tied lm_head.weight, and (gpt2_tiny only, to keep the other
                                    small) the attn.bias / attn.masked_bias buffers, which the
                                    loader must skip
  fixtures/NAME_reference.safetensors
      idx, targets [B, T] (I64; one target is -1, ignored as nanoGPT does), logits [B, T, V],
      loss [], grad.<name> for every parameter, and sgd_losses / adamw_losses [6]: the loss before
      each of 5 optimizer steps and after the last, each run from the initial weights.
"""
import json
import math
import os
import sys
from collections import namedtuple

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

Size = namedtuple("Size", "V P C L H B T seed buffers")
SIZES = {
    "gpt2_tiny": Size(V=17, P=16, C=12, L=2, H=3, B=2, T=16, seed=20240607, buffers=True),
    "gpt2_t130": Size(V=29, P=130, C=16, L=2, H=2, B=2, T=130, seed=20241201, buffers=False),
}
EPS = 1e-5
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
from compare_py.safetensors_io import write_safetensors  # noqa: E402


def initial_parameters(s):
    """GPT-2's names in named_parameters() order; random values of moderate size (the weights'
    scales chosen at width 12, kept for wider models by sqrt(12 / C))."""
    V, P, C, L = s.V, s.P, s.C, s.L
    w = math.sqrt(12 / C)
    p = {}
    p["wte.weight"] = torch.randn(V, C) * 0.5
    p["wpe.weight"] = torch.randn(P, C) * 0.2
    for l in range(L):
        h = f"h.{l}."
        p[h + "ln_1.weight"] = 1.0 + 0.2 * torch.randn(C)
        p[h + "ln_1.bias"] = 0.1 * torch.randn(C)
        p[h + "attn.c_attn.weight"] = torch.randn(C, 3 * C) * 0.3 * w
        p[h + "attn.c_attn.bias"] = 0.1 * torch.randn(3 * C)
        p[h + "attn.c_proj.weight"] = torch.randn(C, C) * 0.2 * w
        p[h + "attn.c_proj.bias"] = 0.1 * torch.randn(C)
        p[h + "ln_2.weight"] = 1.0 + 0.2 * torch.randn(C)
        p[h + "ln_2.bias"] = 0.1 * torch.randn(C)
        p[h + "mlp.c_fc.weight"] = torch.randn(C, 4 * C) * 0.3 * w
        p[h + "mlp.c_fc.bias"] = 0.1 * torch.randn(4 * C)
        p[h + "mlp.c_proj.weight"] = torch.randn(4 * C, C) * 0.15 * w
        p[h + "mlp.c_proj.bias"] = 0.1 * torch.randn(C)
    p["ln_f.weight"] = 1.0 + 0.2 * torch.randn(C)
    p["ln_f.bias"] = 0.1 * torch.randn(C)
    return p


def gelu_new(x):
    # Hugging Face's NewGELUActivation (GPT-2's "gelu_new").
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def conv1d(x, w, b):
    # transformers.pytorch_utils.Conv1D: weight [in, out].
    return torch.addmm(b, x.reshape(-1, x.size(-1)), w).reshape(*x.shape[:-1], w.size(-1))


def forward(s, p, idx, targets):
    C, H, V = s.C, s.H, s.V
    D = C // H
    b, t = idx.shape
    x = p["wte.weight"][idx] + p["wpe.weight"][:t]
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
    for l in range(s.L):
        h = f"h.{l}."
        a = F.layer_norm(x, (C,), p[h + "ln_1.weight"], p[h + "ln_1.bias"], EPS)
        q, k, v = conv1d(a, p[h + "attn.c_attn.weight"], p[h + "attn.c_attn.bias"]).split(C, dim=2)
        q, k, v = (z.view(b, t, H, D).transpose(1, 2) for z in (q, k, v))  # [B, H, T, D]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(D)
        att = att.masked_fill(~causal, torch.finfo(att.dtype).min).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(b, t, C)
        x = x + conv1d(y, p[h + "attn.c_proj.weight"], p[h + "attn.c_proj.bias"])
        m = F.layer_norm(x, (C,), p[h + "ln_2.weight"], p[h + "ln_2.bias"], EPS)
        m = gelu_new(conv1d(m, p[h + "mlp.c_fc.weight"], p[h + "mlp.c_fc.bias"]))
        x = x + conv1d(m, p[h + "mlp.c_proj.weight"], p[h + "mlp.c_proj.bias"])
    x = F.layer_norm(x, (C,), p["ln_f.weight"], p["ln_f.bias"], EPS)
    logits = x @ p["wte.weight"].t()  # tied LM head
    loss = F.cross_entropy(logits.view(-1, V), targets.view(-1), ignore_index=-1)
    return logits, loss


def step_losses(s, init, idx, targets, make_optimizer):
    p = {n: t.clone().requires_grad_() for n, t in init.items()}
    opt = make_optimizer(p)
    losses = []
    for _ in range(5):
        opt.zero_grad(set_to_none=True)
        _, loss = forward(s, p, idx, targets)
        losses.append(loss.item())
        loss.backward()
        opt.step()
    losses.append(forward(s, p, idx, targets)[1].item())
    return torch.tensor(losses)


def adamw(p):
    # nanoGPT's groups: decay on tensors of rank >= 2 (weights and embeddings), none on the rest.
    decay = [t for t in p.values() if t.dim() >= 2]
    no_decay = [t for t in p.values() if t.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                             lr=1e-3, betas=(0.9, 0.95), eps=1e-8)


def write_fixture(name, s):
    torch.manual_seed(s.seed)
    init = initial_parameters(s)
    idx = torch.randint(0, s.V, (s.B, s.T))
    targets = torch.randint(0, s.V, (s.B, s.T))
    targets[1, 5] = -1

    p = {n: t.clone().requires_grad_() for n, t in init.items()}
    logits, loss = forward(s, p, idx, targets)
    loss.backward()

    ckpt = os.path.join(FIXTURES, name)
    os.makedirs(ckpt, exist_ok=True)
    config = {
        "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.0,
        "embd_pdrop": 0.0, "initializer_range": 0.02, "layer_norm_epsilon": EPS, "model_type": "gpt2",
        "n_ctx": s.P, "n_embd": s.C, "n_head": s.H, "n_inner": None, "n_layer": s.L, "n_positions": s.P,
        "resid_pdrop": 0.0, "torch_dtype": "float64", "vocab_size": s.V,
    }
    with open(os.path.join(ckpt, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    weights = {"transformer." + n: t for n, t in init.items()}
    if s.buffers:
        for l in range(s.L):
            weights[f"transformer.h.{l}.attn.bias"] = torch.tril(torch.ones(s.P, s.P)).view(1, 1, s.P, s.P)
            weights[f"transformer.h.{l}.attn.masked_bias"] = torch.tensor(-1e4)
    weights["lm_head.weight"] = init["wte.weight"]
    write_safetensors(os.path.join(ckpt, "model.safetensors"), weights, {"format": "pt"})

    ref = {"idx": idx, "targets": targets, "logits": logits, "loss": loss}
    for n, t in p.items():
        ref["grad." + n] = t.grad
    ref["sgd_losses"] = step_losses(s, init, idx, targets,
                                    lambda p: torch.optim.SGD(p.values(), lr=0.1, momentum=0.9))
    ref["adamw_losses"] = step_losses(s, init, idx, targets, adamw)
    write_safetensors(os.path.join(FIXTURES, f"{name}_reference.safetensors"), ref)
    print(f"{name}, torch {torch.__version__}: loss {loss.item():.6f}")
    print("sgd  ", [round(x, 6) for x in ref["sgd_losses"].tolist()])
    print("adamw", [round(x, 6) for x in ref["adamw_losses"].tolist()])


def main():
    for name, s in SIZES.items():
        write_fixture(name, s)


if __name__ == "__main__":
    main()
