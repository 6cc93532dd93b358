"""safetensors files as dicts of torch tensors, without the safetensors package (F32, F64, I64).
Also used by tests/models/make_gpt2_fixture.py."""
import json
import os
import struct

import torch

DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}
FROM_NAME = {v: k for k, v in DTYPES.items()}


def write_safetensors(path, tensors, metadata=None):
    """Writes `tensors` (name -> tensor; `metadata` a dict of strings) to a temporary name, then
    renames it to `path`."""
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        blob = t.numpy().tobytes()
        header[name] = dict(dtype=DTYPES[t.dtype], shape=list(t.shape), data_offsets=[offset, offset + len(blob)])
        offset += len(blob)
        blobs.append(blob)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    os.replace(tmp, path)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        dtype = FROM_NAME[h["dtype"]]
        out[name] = torch.frombuffer(bytearray(raw[8 + n + a:8 + n + b]), dtype=dtype).reshape(h["shape"]).clone()
    return out
