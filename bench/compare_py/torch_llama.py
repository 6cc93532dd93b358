"""bench/compare's PyTorch Llama (the llama_* rows, issue 19): a compact LlamaForCausalLM as
transformers computes it, written in PyTorch's fast forms: RMSNorm (F.rms_norm), rotary positions
with the "rotate half" pairing (x_i with x_{i + D/2}), grouped-query attention through
F.scaled_dot_product_attention(enable_gqa=True) (PyTorch before 2.5: the kv heads repeated, as
transformers' repeat_kv), the SwiGLU MLP, an untied head, no biases. Parameters carry
transformers' names (model.embed_tokens.weight, model.layers.N.self_attn.q_proj.weight, ...,
lm_head.weight), so tapegrad's model.safetensors loads as it is; init as transformers' (every
weight N(0, 0.02), norms 1). forward and make_cache are torch_models.GPT's, so
torch_models.generate drives it with a KV cache."""
import torch
import torch.nn as nn
import torch.nn.functional as F


def _sdpa_has_gqa():
    q, kv = torch.zeros(1, 2, 1, 2), torch.zeros(1, 1, 1, 2)
    try:
        F.scaled_dot_product_attention(q, kv, kv, enable_gqa=True)
        return True
    except TypeError:
        return False


SDPA_GQA = _sdpa_has_gqa()


def attend(q, k, v, causal):
    """q [B, H, T, D], k, v [B, Hkv, S, D] -> [B, H, T, D]; query head h reads kv head h // (H / Hkv)."""
    if SDPA_GQA:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
    group = q.size(1) // k.size(1)
    return F.scaled_dot_product_attention(q, k.repeat_interleave(group, 1), v.repeat_interleave(group, 1),
                                          is_causal=causal)


class RMSNorm(nn.Module):
    def __init__(self, C, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(C))
        self.eps = eps

    def forward(self, x):
        if hasattr(F, "rms_norm"):
            return F.rms_norm(x, (x.size(-1),), self.weight, self.eps)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(D, P, theta):
    """cos, sin [P, D] of positions 0..P-1: angle p·theta^(-2i/D) at columns i and i + D/2."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
    angles = torch.outer(torch.arange(P, dtype=torch.float64), inv_freq)  # [P, D/2]
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos().float(), angles.sin().float()


def rotate(x, cos, sin):
    """x [B, H, T, D] rotated by cos, sin [T, D]: x·cos + rotate_half(x)·sin."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


class LlamaAttention(nn.Module):
    def __init__(self, C, H, Hkv):
        super().__init__()
        self.n_head, self.n_kv_head, self.head_dim = H, Hkv, C // H
        D = C // H
        self.q_proj = nn.Linear(C, H * D, bias=False)
        self.k_proj = nn.Linear(C, Hkv * D, bias=False)
        self.v_proj = nn.Linear(C, Hkv * D, bias=False)
        self.o_proj = nn.Linear(H * D, C, bias=False)

    def forward(self, x, cos, sin, cache=None, pos=0):
        """x [B, T, C] at positions pos..pos+T-1 (cos, sin [T, D] of those); with a cache (k, v
        [B, Hkv, P, D]) the new keys and values are written at pos.. and every cached one attends."""
        B, T, C = x.shape
        H, Hkv, D = self.n_head, self.n_kv_head, self.head_dim
        q = rotate(self.q_proj(x).view(B, T, H, D).transpose(1, 2), cos, sin)  # [B, H, T, D]
        k = rotate(self.k_proj(x).view(B, T, Hkv, D).transpose(1, 2), cos, sin)  # [B, Hkv, T, D]
        v = self.v_proj(x).view(B, T, Hkv, D).transpose(1, 2)
        if cache is not None:
            ck, cv = cache
            ck[:, :, pos:pos + T] = k
            cv[:, :, pos:pos + T] = v
            k, v = ck[:, :, :pos + T], cv[:, :, :pos + T]
        y = attend(q, k, v, causal=T > 1)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, C))


class LlamaMLP(nn.Module):
    def __init__(self, C, I):
        super().__init__()
        self.gate_proj = nn.Linear(C, I, bias=False)
        self.up_proj = nn.Linear(C, I, bias=False)
        self.down_proj = nn.Linear(I, C, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, C, H, Hkv, I, eps):
        super().__init__()
        self.input_layernorm = RMSNorm(C, eps)
        self.self_attn = LlamaAttention(C, H, Hkv)
        self.post_attention_layernorm = RMSNorm(C, eps)
        self.mlp = LlamaMLP(C, I)

    def forward(self, x, cos, sin, cache=None, pos=0):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache, pos)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    def __init__(self, vocab, num_hidden_layers, hidden_size, num_attention_heads, num_key_value_heads,
                 intermediate_size, block_size, rope_theta=10000.0, rms_norm_eps=1e-5, **_):
        super().__init__()
        C = hidden_size
        self.block_size, self.n_kv_head, self.head_dim = block_size, num_key_value_heads, C // num_attention_heads
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(vocab, C)
        self.model.layers = nn.ModuleList(
            LlamaDecoderLayer(C, num_attention_heads, num_key_value_heads, intermediate_size, rms_norm_eps)
            for _ in range(num_hidden_layers))
        self.model.norm = RMSNorm(C, rms_norm_eps)
        self.lm_head = nn.Linear(C, vocab, bias=False)
        cos, sin = rope_tables(self.head_dim, block_size, rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        for p in self.parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, 0.0, 0.02)

    def forward(self, idx, targets=None, cache=None, pos=0):
        """idx [B, T] at positions pos..pos+T-1 -> the mean cross-entropy of targets [B, T], or
        without targets the last position's logits [B, 1, V]."""
        B, T = idx.shape
        cos, sin = self.rope_cos[pos:pos + T], self.rope_sin[pos:pos + T]
        x = self.model.embed_tokens(idx)
        for i, layer in enumerate(self.model.layers):
            x = layer(x, cos, sin, cache[i] if cache is not None else None, pos)
        x = self.model.norm(x)
        if targets is None:
            return self.lm_head(x[:, [-1], :])
        logits = self.lm_head(x)
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))

    def make_cache(self, B):
        shape = (B, self.n_kv_head, self.block_size, self.head_dim)
        return [(torch.zeros(shape), torch.zeros(shape)) for _ in self.model.layers]


def load_llama_tensors(model, tensors):
    """Copies transformers-named tensors or arrays (a checkpoint's model.safetensors) into Llama."""
    missing = [name for name, _ in model.named_parameters() if name not in tensors]
    if missing:
        raise ValueError(f"the checkpoint lacks {missing[:5]}")
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.as_tensor(tensors[name]).to(p.dtype))
