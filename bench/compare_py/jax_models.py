"""The JAX references' models as pure functions over parameter pytrees, the same architectures
and init as torch_models.py: nanoGPT's GPT (tied head, GPT-2 init) with a fixed-size KV cache
and jax.checkpoint per block,
the post-LN encoder classifier, nn.MultiheadAttention's layer, and AdamW (torch.optim.AdamW's
update, decoupled decay on rank >= 2 leaves) with clipping by global norm."""
import math

import jax
import jax.numpy as jnp


def normal(key, shape, std):
    return std * jax.random.normal(key, shape, jnp.float32)


def gpt_from_gpt2(tensors, n_layer):
    """gpt_init's tree from GPT-2-named arrays (a checkpoint's model.safetensors; Conv1D [in, out]
    weights, the layout used here)."""
    t = {k: jnp.asarray(v, jnp.float32) for k, v in tensors.items()}
    p = dict(wte=t["wte.weight"], wpe=t["wpe.weight"], ln_f_w=t["ln_f.weight"], ln_f_b=t["ln_f.bias"], h=[])
    names = dict(ln_1_w="ln_1.weight", ln_1_b="ln_1.bias", attn_w="attn.c_attn.weight", attn_b="attn.c_attn.bias",
                 proj_w="attn.c_proj.weight", proj_b="attn.c_proj.bias", ln_2_w="ln_2.weight", ln_2_b="ln_2.bias",
                 fc_w="mlp.c_fc.weight", fc_b="mlp.c_fc.bias", fc2_w="mlp.c_proj.weight", fc2_b="mlp.c_proj.bias")
    for i in range(n_layer):
        p["h"].append({k: t[f"h.{i}.{v}"] for k, v in names.items()})
    return p


def layer_norm(x, w, b, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + eps) * w + b


def attention(q, k, v, causal, mask=None):
    """q [B, T, H, D], k, v [B, S, H, D] -> [B, T, H, D]; mask [T, S] (True = visible) or None."""
    if mask is None and hasattr(jax.nn, "dot_product_attention"):
        return jax.nn.dot_product_attention(q, k, v, is_causal=causal)
    s = jnp.einsum("bthd,bshd->bhts", q, k) / math.sqrt(q.shape[-1])
    if causal:
        T, S = s.shape[-2:]
        mask = jnp.tril(jnp.ones((T, S), bool))
    if mask is not None:
        s = jnp.where(mask, s, -jnp.inf)
    return jnp.einsum("bhts,bshd->bthd", jax.nn.softmax(s, axis=-1), v)


# --- GPT --------------------------------------------------------------------------------------
def gpt_init(key, vocab, n_layer, n_embd, block_size, **_):
    C, L = n_embd, n_layer
    keys = iter(jax.random.split(key, 2 + 4 * L))
    proj_std = 0.02 / math.sqrt(2 * L)
    p = dict(wte=normal(next(keys), (vocab, C), 0.02), wpe=normal(next(keys), (block_size, C), 0.02),
             ln_f_w=jnp.ones(C), ln_f_b=jnp.zeros(C), h=[])
    for _ in range(L):
        p["h"].append(dict(ln_1_w=jnp.ones(C), ln_1_b=jnp.zeros(C),
                           attn_w=normal(next(keys), (C, 3 * C), 0.02), attn_b=jnp.zeros(3 * C),
                           proj_w=normal(next(keys), (C, C), proj_std), proj_b=jnp.zeros(C),
                           ln_2_w=jnp.ones(C), ln_2_b=jnp.zeros(C),
                           fc_w=normal(next(keys), (C, 4 * C), 0.02), fc_b=jnp.zeros(4 * C),
                           fc2_w=normal(next(keys), (4 * C, C), proj_std), fc2_b=jnp.zeros(C)))
    return p


def _block(b, x, H, attend):
    B, T, C = x.shape
    qkv = layer_norm(x, b["ln_1_w"], b["ln_1_b"]) @ b["attn_w"] + b["attn_b"]
    q, k, v = (t.reshape(B, T, H, C // H) for t in jnp.split(qkv, 3, axis=-1))
    y, extra = attend(q, k, v)
    x = x + y.reshape(B, T, C) @ b["proj_w"] + b["proj_b"]
    h = jax.nn.gelu(layer_norm(x, b["ln_2_w"], b["ln_2_b"]) @ b["fc_w"] + b["fc_b"], approximate=True)
    return x + h @ b["fc2_w"] + b["fc2_b"], extra


def gpt_hidden(p, idx, H, checkpointing=False):
    """idx [B, T] -> ln_f output [B, T, C] (causal attention over the T positions); with
    checkpointing each block is jax.checkpoint'ed (its activations recomputed in backward)."""
    T = idx.shape[1]
    x = p["wte"][idx] + p["wpe"][:T]

    def block(b, x):
        return _block(b, x, H, lambda q, k, v: (attention(q, k, v, True), None))[0]
    if checkpointing:
        block = jax.checkpoint(block)
    for b in p["h"]:
        x = block(b, x)
    return layer_norm(x, p["ln_f_w"], p["ln_f_b"])


def gpt_loss(p, x, y, H, checkpointing=False):
    logits = gpt_hidden(p, x, H, checkpointing) @ p["wte"].T
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(logp, y[..., None], axis=-1).mean()


def gpt_decode_step(p, cache, token, pos, H):
    """One new token [B] at position pos with the cache (per layer k, v [B, P, H, D]) -> logits
    [B, V] and the cache with position pos written."""
    P = p["wpe"].shape[0]
    x = p["wte"][token][:, None, :] + jax.lax.dynamic_slice_in_dim(p["wpe"], pos, 1)[None]
    visible = (jnp.arange(P) <= pos)[None, :]  # [1, P]
    new_cache = []
    for b, (ck, cv) in zip(p["h"], cache):
        def attend(q, k, v, ck=ck, cv=cv):
            ck = jax.lax.dynamic_update_slice_in_dim(ck, k, pos, axis=1)
            cv = jax.lax.dynamic_update_slice_in_dim(cv, v, pos, axis=1)
            return attention(q, ck, cv, False, visible), (ck, cv)
        x, kv = _block(b, x, H, attend)
        new_cache.append(kv)
    x = layer_norm(x, p["ln_f_w"], p["ln_f_b"])
    return (x[:, 0] @ p["wte"].T), new_cache


def gpt_prefill(p, idx, H):
    """A full context idx [B, P] -> last logits [B, V] and the cache of its P positions."""
    T = idx.shape[1]
    x = p["wte"][idx] + p["wpe"][:T]
    cache = []
    for b in p["h"]:
        x, kv = _block(b, x, H, lambda q, k, v: (attention(q, k, v, True), (k, v)))
        cache.append(kv)
    x = layer_norm(x, p["ln_f_w"], p["ln_f_b"])
    return x[:, -1] @ p["wte"].T, cache


# --- encoder classifier -----------------------------------------------------------------------
def encoder_init(key, vocab_size, n_classes, block_size, n_layer, n_embd, **_):
    C = n_embd
    keys = iter(jax.random.split(key, 3 + 4 * n_layer))
    p = dict(emb=normal(next(keys), (vocab_size, C), 0.02), pos=normal(next(keys), (block_size, C), 0.02),
             cls_w=normal(next(keys), (C, n_classes), 0.02), cls_b=jnp.zeros(n_classes), layers=[])
    for _ in range(n_layer):
        p["layers"].append(dict(in_w=normal(next(keys), (C, 3 * C), 0.02), in_b=jnp.zeros(3 * C),
                                out_w=normal(next(keys), (C, C), 0.02), out_b=jnp.zeros(C),
                                l1_w=normal(next(keys), (C, 4 * C), 0.02), l1_b=jnp.zeros(4 * C),
                                l2_w=normal(next(keys), (4 * C, C), 0.02), l2_b=jnp.zeros(C),
                                n1_w=jnp.ones(C), n1_b=jnp.zeros(C), n2_w=jnp.ones(C), n2_b=jnp.zeros(C)))
    return p


def mha_forward(l, x, H):
    """nn.MultiheadAttention's self-attention: x [B, T, C] -> [B, T, C], not causal."""
    B, T, C = x.shape
    q, k, v = (t.reshape(B, T, H, C // H) for t in jnp.split(x @ l["in_w"] + l["in_b"], 3, axis=-1))
    return attention(q, k, v, False).reshape(B, T, C) @ l["out_w"] + l["out_b"]


def encoder_logits(p, ids, H):
    x = p["emb"][ids] + p["pos"][:ids.shape[1]]
    for l in p["layers"]:
        x = layer_norm(x + mha_forward(l, x, H), l["n1_w"], l["n1_b"])  # post-LN
        h = jax.nn.gelu(x @ l["l1_w"] + l["l1_b"], approximate=False) @ l["l2_w"] + l["l2_b"]
        x = layer_norm(x + h, l["n2_w"], l["n2_b"])
    return x.mean(axis=1) @ p["cls_w"] + p["cls_b"]


def cross_entropy(logits, y):
    return -jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1), y[..., None], axis=-1).mean()


# --- AdamW ------------------------------------------------------------------------------------
def adamw_init(params):
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    return dict(m=zeros, v=jax.tree_util.tree_map(jnp.zeros_like, params), t=jnp.zeros((), jnp.int32))


def clip_by_global_norm(grads, max_norm):
    norm = jnp.sqrt(sum(jnp.sum(g * g) for g in jax.tree_util.tree_leaves(grads)))
    scale = jnp.minimum(1.0, max_norm / (norm + 1e-6))
    return jax.tree_util.tree_map(lambda g: g * scale, grads)


def adamw_update(params, grads, state, lr=1e-3, b1=0.9, b2=0.99, eps=1e-8, wd=0.1):
    """torch.optim.AdamW's step: p -= lr·wd·p (rank >= 2 only), then the bias-corrected Adam step."""
    t = state["t"] + 1
    c1, c2 = 1 - b1 ** t, 1 - b2 ** t
    m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, state["m"], grads)
    v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, state["v"], grads)

    def leaf(p, m, v):
        p = p * (1 - lr * wd) if p.ndim >= 2 else p
        return p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps)
    return jax.tree_util.tree_map(leaf, params, m, v), dict(m=m, v=v, t=t)


def count(params):
    return int(sum(x.size for x in jax.tree_util.tree_leaves(params)))
