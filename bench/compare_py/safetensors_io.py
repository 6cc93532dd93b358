"""safetensors files without the safetensors package (F32, F64, I64): written from torch tensors or
numpy arrays, read as numpy arrays (so that the JAX worker needs no torch). Also used by
tests/models/make_gpt2_fixture.py."""
import json
import os
import struct

import numpy as np

DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.int64): "I64"}
FROM_NAME = {v: k for k, v in DTYPES.items()}


def as_array(t):
    """A torch tensor or anything numpy takes, as a C-contiguous numpy array."""
    if hasattr(t, "detach"):
        t = t.detach().cpu().contiguous().numpy()
    return np.asarray(t, order="C")  # (ascontiguousarray would make a 0-d array 1-d)


def write_safetensors(path, tensors, metadata=None):
    """Writes `tensors` (name -> tensor or array; `metadata` a dict of strings) to a temporary
    name, then renames it to `path`."""
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        a = as_array(tensors[name])
        blob = a.tobytes()
        header[name] = dict(dtype=DTYPES[a.dtype], shape=list(a.shape), data_offsets=[offset, offset + len(blob)])
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
    """name -> numpy array (metadata dropped)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=FROM_NAME[h["dtype"]]).reshape(h["shape"]).copy()
    return out
