"""Small file makers for the cases' setups: text, FIFOs, loops, links, checkpoint copies,
safetensors read and written byte by byte, JSON patches."""
from __future__ import annotations

import json
import os
import shutil
import struct
from typing import Optional, Union


TEXT = "to be or not to be, that is the question.\n" * 200


def write(path: str, data: Union[str, bytes], mode: Optional[int] = None) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    if mode is not None:
        os.chmod(path, mode)
    return path


def fifo(path: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.mkfifo(path)
    return path


def loop(path: str) -> str:
    """A symbolic link to itself (ELOOP on open and stat)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(os.path.basename(path), path)
    return path


def link(target: str, path: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(target, path)
    return path


def mkdir(path: str, mode: Optional[int] = None) -> str:
    os.makedirs(path, exist_ok=True)
    if mode is not None:
        os.chmod(path, mode)
    return path


def copy_ckpt(src: str, dst: str) -> str:
    shutil.copytree(src, dst, symlinks=True)
    return dst


# A small safetensors reader and writer: header length (u64 LE), JSON header, data.
ST_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "U8": 1, "BOOL": 1}


def st_read(path: str) -> tuple[dict, dict]:
    """Returns (tensors: name -> [dtype, shape, bytes], metadata)."""
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = b[8 + n:]
    return {k: [v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]]]
            for k, v in header.items()}, meta


def st_write(path: str, tensors: dict, meta: Optional[dict] = None, header_patch: Optional[dict] = None,
             raw_header: Optional[bytes] = None, header_len: Optional[int] = None, truncate: Optional[int] = None):
    """Writes tensors (name -> [dtype, shape, bytes]); header_patch overrides header entries
    (e.g. a huge shape or offsets beyond the file) after the honest header is built."""
    header, blob, off = {}, b"", 0
    for k in sorted(tensors):
        dtype, shape, data = tensors[k]
        header[k] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        blob += data
        off += len(data)
    if meta:
        header["__metadata__"] = meta
    for k, v in (header_patch or {}).items():
        if v is None:
            header.pop(k, None)
        else:
            header[k] = {**header.get(k, {}), **v}
    h = raw_header if raw_header is not None else json.dumps(header).encode()
    out = struct.pack("<Q", len(h) if header_len is None else header_len) + h + blob
    if truncate is not None:
        out = out[:truncate]
    write(path, out)


def st_poison(path: str, name_part: str, value: float):
    """Sets the first element of the first tensor whose name contains name_part to value."""
    tensors, meta = st_read(path)
    name = next(k for k in sorted(tensors) if name_part in k)
    dtype, shape, data = tensors[name]
    fmt = {"F32": "<f", "F64": "<d"}[dtype]
    tensors[name][2] = struct.pack(fmt, value) + data[struct.calcsize(fmt):]
    st_write(path, tensors, meta)


def json_patch(path: str, **changes):
    j = json.load(open(path))
    for k, v in changes.items():
        if v is None:
            j.pop(k, None)
        else:
            j[k] = v
    write(path, json.dumps(j, indent=2))
