"""bench/compare's JAX Llama (the llama_* rows, issue 19), the same model as torch_llama.py as pure
functions over a flat parameter dict keyed by transformers' names (model.embed_tokens.weight,
model.layers.N.self_attn.q_proj.weight [out, in], ..., lm_head.weight), so tapegrad's
model.safetensors is the tree as it is: RMSNorm, rotary positions with the "rotate half" pairing,
grouped-query attention (jax.nn.dot_product_attention takes Hkv < H heads as they are), SwiGLU,
untied head, no biases; init every weight N(0, 0.02), norms 1. `c` is the workload's config
(workloads.LLAMA's fields)."""
import jax
import jax.numpy as jnp
import numpy as np

from compare_py import jax_models as M

LAYER_WEIGHTS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                 "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def shapes(vocab, c):
    """name -> shape of every parameter."""
    C, I = c["hidden_size"], c["intermediate_size"]
    kv = c["num_key_value_heads"] * (C // c["num_attention_heads"])
    out = {"model.embed_tokens.weight": (vocab, C), "model.norm.weight": (C,), "lm_head.weight": (vocab, C)}
    per_layer = dict(zip(LAYER_WEIGHTS, ((C, C), (kv, C), (kv, C), (C, C), (I, C), (I, C), (C, I))))
    for i in range(c["num_hidden_layers"]):
        out[f"model.layers.{i}.input_layernorm.weight"] = (C,)
        out[f"model.layers.{i}.post_attention_layernorm.weight"] = (C,)
        out.update({f"model.layers.{i}.{k}.weight": s for k, s in per_layer.items()})
    return out


def llama_init(key, vocab, c):
    names = shapes(vocab, c)
    keys = jax.random.split(key, len(names))
    return {name: M.normal(k, s, 0.02) if len(s) == 2 else jnp.ones(s, jnp.float32)
            for k, (name, s) in zip(keys, sorted(names.items()))}


def llama_from_hf(tensors, vocab, c):
    """The tree from transformers-named arrays (a checkpoint's model.safetensors)."""
    names = shapes(vocab, c)
    wrong = [n for n, s in names.items() if n not in tensors or tuple(tensors[n].shape) != s]
    if wrong:
        raise ValueError(f"the checkpoint lacks or misshapes {wrong[:5]}")
    return {n: jnp.asarray(tensors[n], jnp.float32) for n in names}


def rope_tables(c):
    """cos, sin [P, D] of positions 0..P-1: angle p·theta^(-2i/D) at columns i and i + D/2."""
    D = c["hidden_size"] // c["num_attention_heads"]
    inv_freq = 1.0 / (c["rope_theta"] ** (np.arange(0, D, 2, dtype=np.float64) / D))
    angles = np.outer(np.arange(c["block_size"], dtype=np.float64), inv_freq)
    angles = np.concatenate([angles, angles], axis=-1)
    return jnp.asarray(np.cos(angles), jnp.float32), jnp.asarray(np.sin(angles), jnp.float32)


def rotate(x, cos, sin):
    """x [B, T, H, D] rotated by cos, sin [T, D]: x·cos + rotate_half(x)·sin."""
    x1, x2 = jnp.split(x, 2, axis=-1)
    cos, sin = cos[None, :, None, :], sin[None, :, None, :]
    return x * cos + jnp.concatenate([-x2, x1], axis=-1) * sin


def rms_norm(x, w, eps):
    return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + eps) * w


def gqa_attention(q, k, v, causal, mask=None):
    """q [B, T, H, D], k, v [B, S, Hkv, D] -> [B, T, H, D]; mask [T, S] (True = visible) or None;
    query head h reads kv head h // (H / Hkv). jax.nn.dot_product_attention groups the query heads
    over the kv heads as they are, mask or not (the KV-cache step's mask too: repeating the whole
    cache's kv heads would copy it at every token); without it, M.attention's einsum path on
    repeated kv heads."""
    if hasattr(jax.nn, "dot_product_attention"):
        return jax.nn.dot_product_attention(q, k, v, mask=None if mask is None else mask[None, None],
                                            is_causal=causal)
    group = q.shape[2] // k.shape[2]
    return M.attention(q, jnp.repeat(k, group, axis=2), jnp.repeat(v, group, axis=2), causal, mask)


def _layer(p, i, x, c, cos, sin, attend):
    """Layer i on x [B, T, C] at the positions of cos, sin [T, D]; attend(q, k, v) -> (y, extra)."""
    B, T, C = x.shape
    H, Hkv = c["num_attention_heads"], c["num_key_value_heads"]
    D, eps = C // H, c["rms_norm_eps"]
    w = {k: p[f"model.layers.{i}.{k}.weight"] for k in LAYER_WEIGHTS}
    h = rms_norm(x, p[f"model.layers.{i}.input_layernorm.weight"], eps)
    q = rotate((h @ w["self_attn.q_proj"].T).reshape(B, T, H, D), cos, sin)
    k = rotate((h @ w["self_attn.k_proj"].T).reshape(B, T, Hkv, D), cos, sin)
    v = (h @ w["self_attn.v_proj"].T).reshape(B, T, Hkv, D)
    y, extra = attend(q, k, v)
    x = x + y.reshape(B, T, C) @ w["self_attn.o_proj"].T
    h = rms_norm(x, p[f"model.layers.{i}.post_attention_layernorm.weight"], eps)
    return x + (jax.nn.silu(h @ w["mlp.gate_proj"].T) * (h @ w["mlp.up_proj"].T)) @ w["mlp.down_proj"].T, extra


def llama_hidden(p, idx, c, rope):
    """idx [B, T] at positions 0..T-1 -> the final norm's output [B, T, C] (causal attention)."""
    T = idx.shape[1]
    cos, sin = rope[0][:T], rope[1][:T]
    x = p["model.embed_tokens.weight"][idx]
    for i in range(c["num_hidden_layers"]):
        x, _ = _layer(p, i, x, c, cos, sin, lambda q, k, v: (gqa_attention(q, k, v, True), None))
    return rms_norm(x, p["model.norm.weight"], c["rms_norm_eps"])


def llama_loss(p, x, y, c, rope):
    logits = llama_hidden(p, x, c, rope) @ p["lm_head.weight"].T
    return M.cross_entropy(logits, y)


def llama_prefill(p, idx, c, rope):
    """A full context idx [B, P] -> last logits [B, V] and the cache of its P positions (per layer
    k, v [B, P, Hkv, D])."""
    T = idx.shape[1]
    cos, sin = rope[0][:T], rope[1][:T]
    x = p["model.embed_tokens.weight"][idx]
    cache = []
    for i in range(c["num_hidden_layers"]):
        x, kv = _layer(p, i, x, c, cos, sin, lambda q, k, v: (gqa_attention(q, k, v, True), (k, v)))
        cache.append(kv)
    x = rms_norm(x, p["model.norm.weight"], c["rms_norm_eps"])
    return x[:, -1] @ p["lm_head.weight"].T, cache


def llama_decode_step(p, cache, token, pos, c, rope):
    """One new token [B] at position pos with the cache -> logits [B, V] and the cache with
    position pos written."""
    P = c["block_size"]
    cos, sin = (jax.lax.dynamic_slice_in_dim(t, pos, 1) for t in rope)
    x = p["model.embed_tokens.weight"][token][:, None, :]
    visible = (jnp.arange(P) <= pos)[None, :]  # [1, P]
    new_cache = []
    for i, (ck, cv) in enumerate(cache):
        def attend(q, k, v, ck=ck, cv=cv):
            ck = jax.lax.dynamic_update_slice_in_dim(ck, k, pos, axis=1)
            cv = jax.lax.dynamic_update_slice_in_dim(cv, v, pos, axis=1)
            return gqa_attention(q, ck, cv, False, visible), (ck, cv)
        x, kv = _layer(p, i, x, c, cos, sin, attend)
        new_cache.append(kv)
    x = rms_norm(x, p["model.norm.weight"], c["rms_norm_eps"])
    return x[:, 0] @ p["lm_head.weight"].T, new_cache


def empty_cache(c, B=1):
    D = c["hidden_size"] // c["num_attention_heads"]
    shape = (B, c["block_size"], c["num_key_value_heads"], D)
    return [(jnp.zeros(shape), jnp.zeros(shape)) for _ in range(c["num_hidden_layers"])]
