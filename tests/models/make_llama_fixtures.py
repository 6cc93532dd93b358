#!/usr/bin/env python3
"""Writes the Llama-family parity fixtures (issue 19): tiny random LlamaForCausalLM,
MistralForCausalLM and Qwen2ForCausalLM checkpoints saved by transformers' own save_pretrained,
and f64 references of their logits, loss, every gradient and 5 AdamW steps.

Run from anywhere:  python3 tests/models/make_llama_fixtures.py
It makes its own venv (TAPEGRAD_LLAMA_VENV, default /tmp/tapegrad-llama-venv) with PyPI's
current transformers 5.x and, unless that venv can already import it, PyPI's torch (CPU is
enough); then re-runs itself there. To reuse a torch installed elsewhere instead of downloading
one, set TAPEGRAD_LLAMA_TORCH_SITE to that site-packages folder (it is added to the new venv with a
.pth file). The committed files were made with transformers 5.25.0 and torch 2.15.0 (PyPI's,
already installed elsewhere and reused through TAPEGRAD_LLAMA_TORCH_SITE); each reference records both versions
in its metadata. Fixed seeds; re-running rewrites the same files.

`--check-v4` (run under transformers 4.x: it makes TAPEGRAD_LLAMA_V4_VENV, default
/tmp/tapegrad-llama-v4-venv, with "transformers<5") loads every NAME_v4/config.json with NAME's
weights in transformers 4.x and compares its logits with the reference (not a fixture; passed with
4.57.6).

`--check DIR NAME`: loads DIR (a checkpoint tapegrad wrote from fixture NAME's weights) with
transformers' AutoModelForCausalLM in f64 and compares its logits for NAME's idx with NAME's
reference (exit 1 beyond 1e-5 of their scale; a fixture folder itself gives 0).

Sizes: vocab 64, hidden_size 32, 2 layers, 4 attention heads (head_dim 8), intermediate_size 48,
B = 2; random weights N(0, 0.2^2) (initializer_range 0.2 in config.json), RMSNorm weights
1 + 0.2 randn, biases 0.1 randn, drawn after construction in named_parameters() order.

  name               class               rope                                 kv  tied  stored       T
  llama_tiny         LlamaForCausalLM    default, theta 1e4                   2   no    F32          16
  llama3_scaled      LlamaForCausalLM    llama3, theta 5e5, factor 8, low 1,  2   yes   BF16, in 2   16
                                         high 4, original_max_position          shards + index
                                         _embeddings 256 (max_position 2048)
  llama_linear_rope  LlamaForCausalLM    linear, factor 2, theta 1e4          1   no    F16          40
                                         (max_position 128)
  mistral_tiny       MistralForCausalLM  default, theta 1e4; sliding_window 6 2   no    F32          16
  qwen2_tiny         Qwen2ForCausalLM    default, theta 1e6; q/k/v bias       2   yes   F32          16
(llama3_scaled: with head_dim 8 the four inverse frequencies have wavelengths 2 pi * 500000^(k/4),
k = 0..3 = 6.3, 167, 4443, 118140 against the band edges 256/4 = 64 and 256/1 = 256: one kept,
one interpolated, two divided by 8. original_max_position_embeddings 16 cannot do that with
theta 5e5 and head_dim 8 (the shortest wavelength, 2 pi, would not be below 16/4). The script
checks and prints the bands.)

For each NAME it writes, in tests/models/fixtures/llama/:
  NAME/                exactly what save_pretrained(dir, safe_serialization=True,
                       max_shard_size=...) writes: config.json (5.x spelling), generation_config.json
                       (kept as written, although it only repeats bos/eos/use_cache: a loader must
                       ignore it), model.safetensors or model-0000K-of-00002.safetensors +
                       model.safetensors.index.json. Tied configs store no lm_head.weight.
  NAME_v4/config.json  the same model in transformers 4.x's spelling, written by hand below; the
                       weights are NAME/'s (the folder holds config.json only). Checked: 5.x loads
                       it to bit-identical logits (in this script); 4.57.6 to within float32
                       rounding, as for the 5.x spelling (--check-v4).
  NAME_reference.safetensors (F64 except idx/targets)
      idx      I64 [B, T]  input ids
      targets  I64 [B, T]  the next token of each position; targets[1, 5] = -1 (ignored)
      logits   [B, T, V]; loss [] = F.cross_entropy(logits.view(-1, V), targets.view(-1),
               ignore_index=-1), computed here from the logits (not HF's shifted labels)
      grad.<n> for each n in HF's named_parameters(), e.g. grad.model.layers.0.self_attn.q_proj.weight;
               tied configs have no lm_head.weight parameter (named_parameters() lists the shared
               tensor once, as model.embed_tokens.weight, and its gradient holds both uses)
      adamw_losses [6]: the loss before each of 5 AdamW steps and after the last, from the stored
               weights; AdamW(lr 1e-3, betas (0.9, 0.95), eps 1e-8), weight_decay 0.1 on the
               parameters of rank >= 2, 0 on the rest (the GPT fixture's groups)
  Every number comes from the checkpoint AS STORED: the folder is loaded back with
  from_pretrained(dir, dtype=torch.float64, attn_implementation="eager"), so the BF16/F16
  rounding of the stored weights is in the reference.

TRUE f64. transformers' f64 model is not all f64: its RMSNorm casts the hidden state to float32,
its eager attention takes the softmax in float32, and its rotary embedding computes inv_freq,
position * inv_freq, cos and sin in float32 (cast to f64 afterwards). Those three spots are
replaced here, while the reference is computed, by the same formulas in the input's dtype (f64);
everything else is transformers' own code. The script asserts that unmodified transformers gives
the same logits to 1e-5 of their scale (printed: about 1e-7, float32's rounding), so a tapegrad
f32 model may be held to 1e-5 and an f64 one to ~1e-10 against these files.

FINDINGS for the C++ side (read in transformers 5.25.0's and 4.57.6's source, checked by running):
(a) RoPE. head_dim = config.head_dim, else hidden_size // num_attention_heads. Default:
    inv_freq[k] = 1 / rope_theta^(2k / head_dim), k = 0 .. head_dim/2 - 1; angle = position * inv_freq
    (position 0, 1, ... of the sequence); cos/sin of cat(angle, angle) (the two halves repeat, no
    interleaving); q' = q * cos + rotate_half(q) * sin with rotate_half(x) = cat(-x[half:], x[:half]);
    the same for k; applied after the q/k projections (and bias), before the kv-head repeat; the
    attention scaling (attention_factor) is 1 for default, linear and llama3.
    linear: inv_freq = default inv_freq / factor.
    llama3 (factor, low_freq_factor, high_freq_factor, original_max_position_embeddings = L):
      wavelen = 2 pi / inv_freq;  low_freq_wavelen = L / low_freq_factor;
      high_freq_wavelen = L / high_freq_factor
      wavelen < high_freq_wavelen          -> inv_freq                     (kept)
      wavelen > low_freq_wavelen           -> inv_freq / factor            (scaled)
      otherwise (both edges included)      -> (1 - s) * inv_freq / factor + s * inv_freq,
                                              s = (L / wavelen - low_freq_factor)
                                                  / (high_freq_factor - low_freq_factor)
    Neither depends on the sequence length or max_position_embeddings. transformers computes all
    of it in float32.
(b) Mistral's sliding window (masking_utils.sliding_window_causal_mask_function, eager and sdpa
    alike): key j is visible to query i iff j <= i and j > i - sliding_window, i.e.
    0 <= i - j < sliding_window: the window counts the query itself (sliding_window 6 = itself and
    the 5 before). Applied on every layer when config.sliding_window is not null; null = full
    causal. 4.x Mistral (4.57) uses the same mask function.
(c) Qwen2: no sliding window by default. Its config's use_sliding_window (default false) gates it:
    Qwen2Config sets sliding_window = sliding_window if use_sliding_window else None (so 5.x and
    4.57 save "sliding_window": null; older hub configs carry e.g. 32768 next to
    "use_sliding_window": false, which means no window). When enabled, layer i uses the window iff
    i >= max_window_layers (layer_types lists it per layer: "full_attention" or
    "sliding_attention"; 5.x and 4.53+ write layer_types and follow it when present, but a layer
    of type "sliding_attention" still has no window while sliding_window is null). Qwen2's
    q_proj, k_proj, v_proj have bias=True and o_proj bias=False, hard-coded (no config field);
    MLP without bias.
(d) RMSNorm (LlamaRMSNorm; Mistral's and Qwen2's are copies): eps field "rms_norm_eps" (default
    1e-6 in all three; llama_tiny uses 1e-5). forward: x32 = x.to(float32);
    y = x32 * rsqrt(mean(x32^2, last dim) + eps); return weight * y.to(x's dtype) -- the
    normalization in float32 whatever the input dtype, the product with weight (no bias) in the
    input's dtype (promoted with weight's). Layer: h = x + attn(input_layernorm(x));
    out = h + mlp(post_attention_layernorm(h)); final model.norm, then lm_head (or embed_tokens'
    weight when tied). MLP: down_proj(silu(gate_proj(x)) * up_proj(x)) (hidden_act "silu").
    Eager attention: softmax(q k^T * head_dim^-0.5 + mask) in float32, cast back; kv head g serves
    query heads g * n_rep .. (g + 1) * n_rep - 1 (repeat_kv: n_rep = heads / kv_heads).

CONFIG SPELLINGS (config.json):
  5.x (5.25.0 writes):  "rope_parameters": {"rope_type": "default"|"linear"|"llama3",
      "rope_theta": ..., plus "factor" (linear, llama3) and "low_freq_factor", "high_freq_factor",
      "original_max_position_embeddings" (llama3)}; no top-level rope_theta/rope_scaling;
      "dtype": "float32"|"bfloat16"|"float16". 5.x still reads the 4.x fields (top-level rope_theta
      and rope_scaling, "type" for "rope_type", torch_dtype).
  4.x:  top-level "rope_theta": 10000.0 and "rope_scaling": null or a dict
      {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
      "original_max_position_embeddings": 8192} (as Llama 3.1's config, 4.43). Older configs spell the type
      {"type": "linear", "factor": 2.0}; 4.x (and 5.x) read "type" when "rope_type" is absent, and
      4.x re-saves both keys ("type" and "rope_type"). The dtype: "torch_dtype" up to 4.55
      (most hub checkpoints), "dtype" from 4.56 on.
  Both: "model_type" "llama"|"mistral"|"qwen2", "architectures", vocab_size, hidden_size,
      intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads (absent or
      null = num_attention_heads), max_position_embeddings, rms_norm_eps, hidden_act "silu",
      tie_word_embeddings (default false), bos/eos/pad_token_id, initializer_range, use_cache,
      attention_dropout, transformers_version.
      llama: attention_bias (q/k/v/o bias; default false), mlp_bias (default false), head_dim
        (written by 5.x and recent 4.x such as 4.57; absent in older configs: hidden_size //
        num_attention_heads),
        pretraining_tp 1 (ignored in forward).
      mistral: sliding_window (int or null; class default 4096), head_dim (5.x writes the
        number; 4.57 writes null when not given; older configs lack it: all mean
        hidden_size // num_attention_heads); no attention_bias/mlp_bias (no biases); 4.x Mistral
        has no rope_scaling field at all, 5.x writes rope_parameters.
      qwen2: use_sliding_window, sliding_window, max_window_layers, layer_types (4.53+, 5.x);
        no attention_bias/mlp_bias/head_dim fields (biases hard-coded as in (c)).
  The NAME_v4 configs use "torch_dtype" and top-level rope fields; llama_linear_rope_v4 spells
  {"type": "linear"}, llama3_scaled_v4 {"rope_type": "llama3"}; mistral_tiny_v4 has no head_dim;
  qwen2_tiny_v4 has no layer_types and "sliding_window": 6 with "use_sliding_window": false
  (which must change nothing: logits identical).
"""
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections import namedtuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "fixtures", "llama")
VENV = os.environ.get("TAPEGRAD_LLAMA_VENV", "/tmp/tapegrad-llama-venv")
V4_VENV = os.environ.get("TAPEGRAD_LLAMA_V4_VENV", "/tmp/tapegrad-llama-v4-venv")

SHAPE = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
             initializer_range=0.2)
WEIGHT_STD = 0.2
B = 2

Fixture = namedtuple("Fixture", "cls config dtype shard T seed")
FIXTURES = {
    "llama_tiny": Fixture("LlamaForCausalLM",
                          dict(num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5,
                               rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                               tie_word_embeddings=False),
                          "float32", None, 16, 20261206),
    "llama3_scaled": Fixture("LlamaForCausalLM",
                             dict(num_key_value_heads=2, max_position_embeddings=2048,
                                  rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                                   "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                   "original_max_position_embeddings": 256},
                                  tie_word_embeddings=True),
                             "bfloat16", "20KB", 16, 20261207),
    "llama_linear_rope": Fixture("LlamaForCausalLM",
                                 dict(num_key_value_heads=1, max_position_embeddings=128,
                                      rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0},
                                      tie_word_embeddings=False),
                                 "float16", None, 40, 20261208),
    "mistral_tiny": Fixture("MistralForCausalLM",
                            dict(num_key_value_heads=2, max_position_embeddings=64, sliding_window=6,
                                 rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                                 tie_word_embeddings=False),
                            "float32", None, 16, 20261209),
    "qwen2_tiny": Fixture("Qwen2ForCausalLM",
                          dict(num_key_value_heads=2, max_position_embeddings=64,
                               rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
                               tie_word_embeddings=True),
                          "float32", None, 16, 20261210),
}


def ensure_venv(venv, requirement):
    """Re-runs this script in `venv` (made if missing) with `requirement` and torch importable."""
    if os.path.abspath(sys.prefix) == os.path.abspath(venv):
        return
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", venv])
        site = os.environ.get("TAPEGRAD_LLAMA_TORCH_SITE")
        if site:
            purelib = subprocess.check_output([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                              text=True).strip()
            with open(os.path.join(purelib, "zz-tapegrad-torch-site.pth"), "w") as f:
                f.write(site + "\n")
    if subprocess.call([py, "-c", "import torch"], stderr=subprocess.DEVNULL) != 0:
        subprocess.check_call([py, "-m", "pip", "install", "-q", "torch"])
    subprocess.check_call([py, "-m", "pip", "install", "-q", requirement])
    os.execv(py, [py] + sys.argv)


# ---- transformers in true f64 -------------------------------------------------------------------

def inv_freq_f64(rope, head_dim):
    """(a) above, in f64: the inverse frequencies of rope_parameters `rope`, and the llama3 band of
    each ("kept", "interpolated", "scaled", or the rope type)."""
    import torch
    k = torch.arange(0, head_dim, 2, dtype=torch.float64)
    inv = 1.0 / rope["rope_theta"] ** (k / head_dim)
    kind = rope["rope_type"]
    if kind == "default":
        return inv, ["default"] * len(inv)
    if kind == "linear":
        return inv / rope["factor"], ["linear"] * len(inv)
    assert kind == "llama3", kind
    L, factor = rope["original_max_position_embeddings"], rope["factor"]
    low, high = rope["low_freq_factor"], rope["high_freq_factor"]
    out, bands = [], []
    for f in inv.tolist():
        wavelen = 2 * math.pi / f
        if wavelen < L / high:
            out.append(f), bands.append("kept")
        elif wavelen > L / low:
            out.append(f / factor), bands.append("scaled")
        else:
            s = (L / wavelen - low) / (high - low)
            out.append((1 - s) * f / factor + s * f), bands.append("interpolated")
    return torch.tensor(out, dtype=torch.float64), bands


def rms_norm_forward(self, hidden_states):
    # LlamaRMSNorm.forward without the float32 round trip.
    import torch
    variance = hidden_states.pow(2).mean(-1, keepdim=True)
    return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))


def rotary_forward(self, x, position_ids):
    # LlamaRotaryEmbedding.forward in inv_freq's dtype (f64, set by exact_float64) instead of float32.
    import torch
    freqs = position_ids[..., None].to(self.inv_freq.dtype) * self.inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)
    return (emb.cos() * self.attention_scaling).to(x.dtype), (emb.sin() * self.attention_scaling).to(x.dtype)


def eager_attention(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    # transformers' eager_attention_forward with the softmax in the query's dtype.
    import torch
    from transformers.models.llama.modeling_llama import repeat_kv
    key = repeat_kv(key, module.num_key_value_groups)
    value = repeat_kv(value, module.num_key_value_groups)
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = torch.nn.functional.softmax(weights, dim=-1)
    weights = torch.nn.functional.dropout(weights, p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


@contextlib.contextmanager
def exact_float64():
    """Within it, the three float32 spots of the Llama, Mistral and Qwen2 modules compute in f64."""
    from transformers.models.llama import modeling_llama
    from transformers.models.mistral import modeling_mistral
    from transformers.models.qwen2 import modeling_qwen2
    saved = []
    for module, prefix in ((modeling_llama, "Llama"), (modeling_mistral, "Mistral"), (modeling_qwen2, "Qwen2")):
        for obj, attr, new in ((getattr(module, prefix + "RMSNorm"), "forward", rms_norm_forward),
                               (getattr(module, prefix + "RotaryEmbedding"), "forward", rotary_forward),
                               (module, "eager_attention_forward", eager_attention)):
            saved.append((obj, attr, getattr(obj, attr)))
            setattr(obj, attr, new)
    try:
        yield
    finally:
        for obj, attr, old in saved:
            setattr(obj, attr, old)


def head_dim(config):
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def load(name, cls, ckpt, exact, **overrides):
    """The checkpoint folder as stored, in f64 (eager attention); with `exact`, RoPE's inv_freq
    recomputed in f64 (use inside exact_float64())."""
    import torch
    model = cls.from_pretrained(ckpt, dtype=torch.float64, attn_implementation="eager", **overrides)
    if exact:
        rotary = model.model.rotary_emb
        inv, _ = inv_freq_f64(model.config.rope_parameters, head_dim(model.config))
        hf = rotary.inv_freq.to(torch.float64)
        assert torch.allclose(inv, hf, rtol=1e-6, atol=0), (name, inv, hf)
        rotary.inv_freq = inv
    return model


# ---- the fixtures -------------------------------------------------------------------------------

def loss_of(model, idx, targets):
    import torch.nn.functional as F
    logits = model(input_ids=idx).logits
    return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)


def adamw_losses(model, idx, targets):
    import torch
    params = [p for _, p in model.named_parameters()]
    opt = torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
                             {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    losses = []
    for _ in range(5):
        opt.zero_grad(set_to_none=True)
        loss = loss_of(model, idx, targets)[1]
        losses.append(loss.item())
        loss.backward()
        opt.step()
    losses.append(loss_of(model, idx, targets)[1].item())
    return torch.tensor(losses, dtype=torch.float64)


def make_checkpoint(name, fx, cls, config_cls):
    """Random weights saved by save_pretrained into OUT/name (written aside, then renamed)."""
    import torch
    torch.manual_seed(fx.seed)
    model = cls(config_cls(**SHAPE, **fx.config))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("norm.weight"):
                new = 1.0 + 0.2 * torch.randn(p.shape, dtype=torch.float64)
            elif n.endswith(".bias"):
                new = 0.1 * torch.randn(p.shape, dtype=torch.float64)
            else:
                new = WEIGHT_STD * torch.randn(p.shape, dtype=torch.float64)
            p.copy_(new)
    if model.config.tie_word_embeddings:
        assert model.lm_head.weight is model.model.embed_tokens.weight
    model = model.to(getattr(torch, fx.dtype))
    final = os.path.join(OUT, name)
    tmp = tempfile.mkdtemp(prefix=name + ".", dir=OUT)
    kwargs = {"max_shard_size": fx.shard} if fx.shard else {}
    model.save_pretrained(tmp, safe_serialization=True, **kwargs)
    for f in os.listdir(tmp):
        os.chmod(os.path.join(tmp, f), 0o644)
    os.chmod(tmp, 0o755)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def v4_config(v5):
    """config.json as transformers 4.x (<= 4.55) wrote it for the same model."""
    c = {k: v for k, v in v5.items() if k not in ("rope_parameters", "dtype", "transformers_version")}
    rope = dict(v5["rope_parameters"])
    c["rope_theta"] = rope.pop("rope_theta")
    kind = rope.pop("rope_type")
    if kind == "linear":
        rope = {"type": "linear", **rope}  # the Llama 2 era spelling
    elif kind != "default":
        rope = {"rope_type": kind, **rope}
    if v5["model_type"] != "mistral":  # 4.x Mistral has no rope_scaling
        c["rope_scaling"] = None if kind == "default" else rope
    if v5["model_type"] == "mistral":
        del c["head_dim"]  # as Mistral-7B-v0.1's config: hidden_size // num_attention_heads
    if v5["model_type"] == "qwen2":
        del c["layer_types"]
        c["sliding_window"] = 6  # ignored: use_sliding_window is false
        assert c["use_sliding_window"] is False
    c["torch_dtype"] = v5["dtype"]
    c["transformers_version"] = "4.55.4"
    return dict(sorted(c.items()))


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)


def with_config(ckpt, config_path):
    """A temporary folder: ckpt's files with config.json replaced by config_path's."""
    tmp = tempfile.mkdtemp()
    for f in os.listdir(ckpt):
        if f != "config.json":
            os.symlink(os.path.join(ckpt, f), os.path.join(tmp, f))
    shutil.copy(config_path, os.path.join(tmp, "config.json"))
    return tmp


def write_fixture(name, fx):
    import torch
    import transformers
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    from compare_py.safetensors_io import write_safetensors

    cls = getattr(transformers, fx.cls)
    config_cls = getattr(transformers, fx.cls.replace("ForCausalLM", "Config"))
    print(f"{name} ({fx.cls}, stored {fx.dtype}, T {fx.T})")
    stored = make_checkpoint(name, fx, cls, config_cls)
    ckpt = os.path.join(OUT, name)
    config = json.load(open(os.path.join(ckpt, "config.json")))
    write_json(os.path.join(OUT, name + "_v4", "config.json"), v4_config(config))

    g = torch.Generator().manual_seed(fx.seed + 1)
    tokens = torch.randint(0, SHAPE["vocab_size"], (B, fx.T + 1), generator=g)
    idx, targets = tokens[:, :-1].contiguous(), tokens[:, 1:].clone()
    targets[1, 5] = -1

    as_is = load(name, cls, ckpt, exact=False)
    for n, p in as_is.named_parameters():  # the f64 model holds exactly the stored values
        assert torch.equal(p, stored[n].to(torch.float64)), n
    with torch.no_grad():
        hf_logits = loss_of(as_is, idx, targets)[0]

    with exact_float64():
        model = load(name, cls, ckpt, exact=True)
        logits, loss = loss_of(model, idx, targets)
        loss.backward()
        ref = {"idx": idx, "targets": targets, "logits": logits.detach(), "loss": loss.detach()}
        for n, p in model.named_parameters():
            assert p.grad.abs().max() > 1e-3, (name, n, "a vanishing gradient would check nothing")
            ref["grad." + n] = p.grad
        ref["adamw_losses"] = adamw_losses(load(name, cls, ckpt, exact=True), idx, targets)

        # The v4 spelling gives the same model in 5.x.
        v4 = with_config(ckpt, os.path.join(OUT, name + "_v4", "config.json"))
        with torch.no_grad():
            assert torch.equal(loss_of(load(name, cls, v4, exact=True), idx, targets)[0], ref["logits"]), name
        shutil.rmtree(v4)

        if name == "mistral_tiny":  # the window matters at T = 16
            with torch.no_grad():
                full = loss_of(load(name, cls, ckpt, exact=True, sliding_window=None), idx, targets)[0]
            window_effect = (full - ref["logits"]).abs().max().item()
            assert window_effect > 1e-2, window_effect
            print(f"  sliding_window 6 vs none: logits differ by up to {window_effect:.3f}")
        if name == "qwen2_tiny":
            assert model.config.sliding_window is None and set(model.config.layer_types) == {"full_attention"}

    scale = ref["logits"].abs().max().item()
    hf_diff = (hf_logits - ref["logits"]).abs().max().item()
    assert hf_diff < 1e-5 * scale, (name, hf_diff, scale)
    rope = model.config.rope_parameters
    if rope["rope_type"] == "llama3":
        _, bands = inv_freq_f64(rope, head_dim(model.config))
        assert {"kept", "interpolated", "scaled"} <= set(bands), bands
        unscaled, _ = inv_freq_f64({"rope_type": "default", "rope_theta": rope["rope_theta"]}, head_dim(model.config))
        print("  llama3 bands (edges {:g} and {:g}):".format(
            rope["original_max_position_embeddings"] / rope["high_freq_factor"],
            rope["original_max_position_embeddings"] / rope["low_freq_factor"]),
            ", ".join(f"wavelen {2 * math.pi / f:.1f} {b}" for f, b in zip(unscaled.tolist(), bands)))
    write_safetensors(os.path.join(OUT, name + "_reference.safetensors"), ref, {
        "transformers": transformers.__version__, "torch": torch.__version__, "class": fx.cls,
        "stored_dtype": fx.dtype, "computed_in": "float64 (RMSNorm, softmax and RoPE in f64 too)"})
    print(f"  loss {ref['loss'].item():.6f}, logits |max| {scale:.2f}, "
          f"unmodified transformers' logits within {hf_diff:.1e}")
    print("  adamw", [round(x, 6) for x in ref["adamw_losses"].tolist()])


def check_v4():
    """Under transformers 4.x: NAME_v4/config.json + NAME's weights give the reference's logits."""
    import torch
    import transformers
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    from compare_py.safetensors_io import read_safetensors
    assert transformers.__version__.startswith("4."), transformers.__version__
    bad = 0
    for name, fx in FIXTURES.items():
        ref = read_safetensors(os.path.join(OUT, name + "_reference.safetensors"))
        tmp = with_config(os.path.join(OUT, name), os.path.join(OUT, name + "_v4", "config.json"))
        model = getattr(transformers, fx.cls).from_pretrained(tmp, torch_dtype=torch.float64,
                                                              attn_implementation="eager")
        shutil.rmtree(tmp)
        with torch.no_grad():
            logits = model(input_ids=torch.from_numpy(ref["idx"])).logits
        diff = (logits - torch.from_numpy(ref["logits"])).abs().max().item()
        ok = diff < 1e-5 * abs(ref["logits"]).max()
        bad += not ok
        print(f"{'ok  ' if ok else 'DIFF'} {name}_v4 in transformers {transformers.__version__}: "
              f"logits within {diff:.1e}")
    sys.exit(1 if bad else 0)


def check_written(ckpt, name):
    """A checkpoint folder written by tapegrad from fixture `name`'s weights, loaded by transformers
    (AutoModelForCausalLM, f64, computed as the references are): its logits against the reference's."""
    import torch
    import transformers
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    from compare_py.safetensors_io import read_safetensors
    ref = read_safetensors(os.path.join(OUT, name + "_reference.safetensors"))
    with exact_float64():
        model = load(ckpt, transformers.AutoModelForCausalLM, ckpt, exact=True)
        with torch.no_grad():
            logits = model(input_ids=torch.from_numpy(ref["idx"])).logits
    want = torch.from_numpy(ref["logits"])
    diff = (logits - want).abs().max().item() / want.abs().max().item()
    print(f"{ckpt} ({type(model).__name__}) against {name}: logits within {diff:.1e} of their scale")
    sys.exit(0 if diff < 1e-5 else 1)


def main():
    if os.path.abspath(sys.prefix) in (os.path.abspath(VENV), os.path.abspath(V4_VENV)):
        from transformers.utils import logging
        logging.disable_progress_bar()
    if "--check" in sys.argv:
        ensure_venv(VENV, "transformers>=5")
        at = sys.argv.index("--check")
        check_written(sys.argv[at + 1], sys.argv[at + 2])
        return
    if "--check-v4" in sys.argv:
        ensure_venv(V4_VENV, "transformers<5")
        check_v4()
        return
    ensure_venv(VENV, "transformers>=5")
    import torch
    import transformers
    assert transformers.__version__.split(".")[0] == "5", transformers.__version__
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    for name, fx in FIXTURES.items():
        write_fixture(name, fx)


if __name__ == "__main__":
    main()
