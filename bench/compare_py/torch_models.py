"""The PyTorch references' models, as their authors write them: nanoGPT's GPT (GPT-2 layout,
tied LM head, F.scaled_dot_product_attention, GPT-2's init) with a KV cache for generation and
activation checkpointing per block (torch.utils.checkpoint, non-reentrant), and
the tutorials' encoder classifier on nn.TransformerEncoderLayer (post-LN, GELU, mean pooling),
with tapegrad's init (N(0, 0.02) weights and embeddings, zero biases)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint


class CausalSelfAttention(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.n_head = H
        self.c_attn = nn.Linear(C, 3 * C)
        self.c_proj = nn.Linear(C, C)

    def forward(self, x, cache=None, pos=0):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # [B, H, T, D]
        if cache is not None:  # write positions pos..pos+T-1, attend to 0..pos+T-1
            ck, cv = cache
            ck[:, :, pos:pos + T] = k
            cv[:, :, pos:pos + T] = v
            k, v = ck[:, :, :pos + T], cv[:, :, :pos + T]
        y = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.ln_1 = nn.LayerNorm(C)
        self.attn = CausalSelfAttention(C, H)
        self.ln_2 = nn.LayerNorm(C)
        self.mlp = nn.Sequential()
        self.mlp.c_fc = nn.Linear(C, 4 * C)
        self.mlp.gelu = nn.GELU(approximate="tanh")
        self.mlp.c_proj = nn.Linear(4 * C, C)

    def forward(self, x, cache=None, pos=0):
        x = x + self.attn(self.ln_1(x), cache, pos)
        return x + self.mlp(self.ln_2(x))


def run_block(block, x, checkpointing):
    """A block, its activations recomputed in backward when checkpointing (training only)."""
    if checkpointing and torch.is_grad_enabled():
        return torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
    return block(x)


class GPT(nn.Module):
    def __init__(self, vocab, n_layer, n_head, n_embd, block_size, checkpointing=False, **_):
        super().__init__()
        self.block_size, self.n_head, self.checkpointing = block_size, n_head, checkpointing
        self.wte = nn.Embedding(vocab, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.h = nn.ModuleList(Block(n_embd, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * n_layer))
            elif p.dim() >= 2:
                nn.init.normal_(p, 0.0, 0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx, targets=None, cache=None, pos=0):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(pos, pos + T, device=idx.device))
        for i, block in enumerate(self.h):
            x = block(x, cache[i], pos) if cache is not None else run_block(block, x, self.checkpointing)
        x = self.ln_f(x)
        if targets is None:
            return self.lm_head(x[:, [-1], :])  # [B, 1, V]: generation needs the last position only
        logits = self.lm_head(x)
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))

    def make_cache(self, B):
        C = self.wte.weight.shape[1]
        shape = (B, self.n_head, self.block_size, C // self.n_head)
        return [(torch.zeros(shape), torch.zeros(shape)) for _ in self.h]


CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def to_gpt2_tensors(model):
    """GPT's parameters under GPT-2's names and layouts (Linear [out, in] -> Conv1D [in, out])."""
    return {name: (p.detach().t() if name.endswith(CONV1D) else p.detach()).contiguous().clone()
            for name, p in model.named_parameters()}


def load_gpt2_tensors(model, tensors):
    """Copies GPT-2-named, GPT-2-laid-out tensors or arrays (a checkpoint's model.safetensors) into GPT."""
    missing = [name for name, _ in model.named_parameters() if name not in tensors]
    if missing:
        raise ValueError(f"the checkpoint lacks {missing[:5]}")
    with torch.no_grad():
        for name, p in model.named_parameters():
            t = torch.as_tensor(tensors[name]).to(p.dtype)
            p.copy_(t.t() if name.endswith(CONV1D) else t)


@torch.inference_mode()
def generate(model, idx, new_tokens, kv_cache):
    """nanoGPT's generate (crop to block_size, last logits, temperature 1, multinomial). With the
    cache, as tapegrad's: the prompt fills it, each new token costs one position, and when the
    context outgrows block_size the cache is refilled from the cropped context."""
    P = model.block_size
    cache, length = (model.make_cache(idx.size(0)), 0) if kv_cache else (None, 0)
    for _ in range(new_tokens):
        if not kv_cache:
            logits = model(idx[:, -P:])
        elif length in (0, P):
            ctx = idx[:, -P:]
            logits, length = model(ctx, cache=cache, pos=0), ctx.size(1)
        else:
            logits, length = model(idx[:, -1:], cache=cache, pos=length), length + 1
        probs = F.softmax(logits[:, -1, :], dim=-1)
        idx = torch.cat((idx, torch.multinomial(probs, num_samples=1)), dim=1)
    return idx


class EncoderClassifier(nn.Module):
    def __init__(self, vocab_size, n_classes, block_size, n_layer, n_head, n_embd, **_):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, n_embd)
        self.pos_embedding = nn.Embedding(block_size, n_embd)
        layer = nn.TransformerEncoderLayer(n_embd, n_head, 4 * n_embd, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=False)
        self.encoder = nn.TransformerEncoder(layer, n_layer, enable_nested_tensor=False)
        self.classifier = nn.Linear(n_embd, n_classes)
        for name, p in self.named_parameters():
            if "norm" in name:
                continue  # LayerNorm: weight 1, bias 0 as built
            if p.dim() >= 2:
                nn.init.normal_(p, 0.0, 0.02)
            else:
                nn.init.zeros_(p)

    def forward(self, ids):
        T = ids.size(1)
        x = self.embedding(ids) + self.pos_embedding(torch.arange(T, device=ids.device))
        return self.classifier(self.encoder(x).mean(dim=1))  # mean pooling, every token real
