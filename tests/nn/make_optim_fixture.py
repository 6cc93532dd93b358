"""Writes tests/nn/fixtures/optim.safetensors: torch.optim.SGD and AdamW trajectories.

Run with Debian's PyTorch: /usr/bin/python3 tests/nn/make_optim_fixture.py
For each optimizer setting, a [3, 4] and a [5] parameter take 6 steps with fixed gradients
(grad_k = sin-based values, the same formula in the C++ test); we store the parameters after
every step, in f64.
"""
import json
import math
import os
import struct

import torch

torch.set_default_dtype(torch.float64)


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().to(torch.float64)
        data = t.numpy().tobytes()
        header[name] = {"dtype": "F64", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def initial(shape, salt):
    n = math.prod(shape)
    return torch.tensor([math.cos(0.7 * i + salt) for i in range(n)]).reshape(shape)


def grad(shape, step, salt):
    n = math.prod(shape)
    return torch.tensor([math.sin(0.3 * i + 1.1 * step + salt) for i in range(n)]).reshape(shape)


SETTINGS = {
    "sgd_plain": lambda ps: torch.optim.SGD(ps, lr=0.1),
    "sgd_momentum": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
    "sgd_nesterov": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=0.01, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1),
    "adamw_groups": lambda ps: torch.optim.AdamW(
        [{"params": [ps[0]], "weight_decay": 0.1}, {"params": [ps[1]], "weight_decay": 0.0}],
        lr=0.003, betas=(0.8, 0.99), eps=1e-6),
}

out = {}
for name, make in SETTINGS.items():
    params = [initial((3, 4), 0.0).requires_grad_(), initial((5,), 1.0).requires_grad_()]
    opt = make(params)
    for step in range(6):
        for k, p in enumerate(params):
            p.grad = grad(tuple(p.shape), step, float(k))
        opt.step()
        for k, p in enumerate(params):
            out[f"{name}.step{step}.p{k}"] = p.detach().clone()
write_safetensors(os.path.join(os.path.dirname(__file__), "fixtures", "optim.safetensors"), out)
print(f"wrote {len(out)} tensors with torch {torch.__version__}")
