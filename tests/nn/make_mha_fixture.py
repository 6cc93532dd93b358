#!/usr/bin/python3
"""Writes tests/nn/fixtures/mha.safetensors: torch.nn.MultiheadAttention (batch_first) in f64 on
three cases, for tests/nn/test_multihead_attention.cpp.

Run with Debian's python3-torch (1.13):  /usr/bin/python3 tests/nn/make_mha_fixture.py
The safetensors file is written by hand (8-byte little-endian header length, JSON header with
sorted names, raw little-endian data), so the safetensors package is not needed.

Per case <c>, with PyTorch's parameter names:
  <c>.<param>              every parameter (random, so biases are not the zeros of the init)
  <c>.query/.key/.value    inputs (<c>.x for self-attention, <c>.memory when key is value)
  <c>.key_padding_mask     bool masks stored as 0/1 F64 (1 = True = ignore / not allowed)
  <c>.attn_mask
  <c>.output, <c>.weights  the module's outputs
  <c>.R                    loss = (output * R).sum()
  <c>.grad.<name>          d loss / d every input and parameter
"""
import json
import os
import struct

import torch

torch.manual_seed(1234)
torch.set_default_dtype(torch.float64)


def randomize(module):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.4)


def run_case(name, mha, inputs, call, extra):
    """inputs: name -> leaf tensor; call(inputs) -> (out, weights); extra: masks to store."""
    randomize(mha)
    out, weights = call(inputs)
    R = torch.randn_like(out)
    (out * R).sum().backward()
    tensors = {}
    for n, p in mha.named_parameters():
        tensors[f"{name}.{n}"] = p.detach()
        tensors[f"{name}.grad.{n}"] = p.grad.detach()
    for n, t in inputs.items():
        tensors[f"{name}.{n}"] = t.detach()
        tensors[f"{name}.grad.{n}"] = t.grad.detach()
    for n, t in extra.items():
        tensors[f"{name}.{n}"] = t.to(torch.float64)
    tensors[f"{name}.output"] = out.detach()
    tensors[f"{name}.weights"] = weights.detach()
    tensors[f"{name}.R"] = R
    return tensors


def self_attention_case():
    B, T, C, H = 2, 5, 8, 2
    mha = torch.nn.MultiheadAttention(C, H, bias=True, batch_first=True)
    x = torch.randn(B, T, C, requires_grad=True)
    key_padding_mask = torch.zeros(B, T, dtype=torch.bool)
    key_padding_mask[0, 4] = True
    key_padding_mask[1, 3:] = True
    attn_mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)  # causal
    call = lambda i: mha(i["x"], i["x"], i["x"], key_padding_mask=key_padding_mask,
                         attn_mask=attn_mask, need_weights=True, average_attn_weights=True)
    return run_case("self", mha, {"x": x}, call,
                    {"key_padding_mask": key_padding_mask, "attn_mask": attn_mask})


def cross_attention_case():
    B, T, S, C, H, kdim, vdim = 2, 5, 7, 8, 2, 6, 4
    mha = torch.nn.MultiheadAttention(C, H, bias=False, kdim=kdim, vdim=vdim, batch_first=True)
    inputs = {"query": torch.randn(B, T, C, requires_grad=True),
              "key": torch.randn(B, S, kdim, requires_grad=True),
              "value": torch.randn(B, S, vdim, requires_grad=True)}
    call = lambda i: mha(i["query"], i["key"], i["value"], need_weights=True,
                         average_attn_weights=True)
    return run_case("cross", mha, inputs, call, {})


def memory_case():
    # key is value (an encoder's memory), fused in_proj, additive [B*H, T, S] mask, weights per head.
    B, T, S, C, H = 2, 4, 6, 8, 2
    mha = torch.nn.MultiheadAttention(C, H, bias=True, batch_first=True)
    inputs = {"query": torch.randn(B, T, C, requires_grad=True),
              "memory": torch.randn(B, S, C, requires_grad=True)}
    attn_mask = torch.randn(B * H, T, S)
    call = lambda i: mha(i["query"], i["memory"], i["memory"], attn_mask=attn_mask,
                         need_weights=True, average_attn_weights=False)
    return run_case("memory", mha, inputs, call, {"attn_mask": attn_mask})


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        assert t.dtype == torch.float64, name
        data = struct.pack(f"<{t.numel()}d", *t.flatten().tolist())
        header[name] = {"dtype": "F64", "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def main():
    tensors = {}
    for case in (self_attention_case, cross_attention_case, memory_case):
        tensors.update(case())
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "fixtures", "mha.safetensors")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_safetensors(path, tensors, {"generator": "tests/nn/make_mha_fixture.py",
                                      "torch": torch.__version__})
    print(f"wrote {path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
