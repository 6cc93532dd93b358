"""Step-by-step training comparison of tapegrad and PyTorch (nanoGPT's model) from identical
weights on identical batches: per step, each side's loss and pre-clip global gradient norm.

  python3 bench/compare_py/step_compare.py --init torch|tapegrad [--config shakespeare|baby]
      [--steps N] [--data FILE] [--worker build/compare_tapegrad] [--threads N]

--init torch: PyTorch builds nanoGPT's GPT (seed 1337), writes it as a GPT-2-layout checkpoint
  and tapegrad's bench worker trains from it (config "init_from").
--init tapegrad: tapegrad's worker writes its own initial weights (config "save_init") and
  PyTorch trains from them.
The batches are bench/compare's (data.gpt_batches), the optimizer bench/compare's AdamW (lr 1e-3
constant, betas (0.9, 0.99), eps 1e-8, decay 0.1 on rank >= 2 tensors), clip 1.0, dropout 0.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from compare_py import data, torch_models, workloads  # noqa: E402
from compare_py.safetensors_io import read_safetensors, write_safetensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = dict(shakespeare=workloads.SHAKESPEARE_CHAR, baby=workloads.BABY_GPT)
def write_checkpoint(dir_, model, cfg, vocab):
    os.makedirs(dir_, exist_ok=True)
    config = dict(model_type="gpt2", vocab_size=vocab, n_positions=cfg["block_size"], n_ctx=cfg["block_size"],
                  n_embd=cfg["n_embd"], n_layer=cfg["n_layer"], n_head=cfg["n_head"], layer_norm_epsilon=1e-5,
                  activation_function="gelu_new", tie_word_embeddings=True)
    with open(os.path.join(dir_, "config.json"), "w") as f:
        json.dump(config, f)
    write_safetensors(os.path.join(dir_, "model.safetensors"), torch_models.to_gpt2_tensors(model))


def run_tapegrad(worker, cfg, steps, threads, **extra):
    request = dict(workload="gpt_train", warmup=0, steps=steps, threads=threads,
                   config=dict(cfg, **workloads.OPTIM, batches=16, attention="dense", **extra))
    out = subprocess.run([worker], input=json.dumps(request) + "\n", capture_output=True, text=True, check=True)
    reply = json.loads(out.stdout.strip().splitlines()[-1])
    if "error" in reply:
        raise SystemExit(f"compare_tapegrad: {reply['error']}")
    return reply["extra"]["losses"], reply["extra"]["grad_norms"]


def run_torch(model, cfg, pool, steps):
    from compare_py.torch_worker import adamw  # sets torch's threads on import
    opt, _ = adamw(model, dict(workloads.OPTIM))
    params = list(model.parameters())
    losses, norms = [], []
    model.train()
    for i in range(steps):
        x, y = pool[i % len(pool)]
        opt.zero_grad(set_to_none=True)
        loss = model(x, y)
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, workloads.OPTIM.get("grad_clip", 1.0))))
        opt.step()
        losses.append(loss.item())
    return losses, norms


def init_stats(model):
    """Per parameter kind (GPT-2 names, averaged over layers): std of weights and embeddings, mean
    of biases and LayerNorm weights (those are constant at the start)."""
    rows = {}
    for name, p in model.named_parameters():
        key = name.split(".", 2)[-1] if name.startswith("h.") else name
        t = p.detach().double()
        rows.setdefault(key, []).append(float(t.std() if p.dim() >= 2 else t.mean()))
    return {k: sum(v) / len(v) for k, v in rows.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--init", choices=("torch", "tapegrad"), default="torch")
    ap.add_argument("--config", choices=sorted(CONFIGS), default="shakespeare")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "tinyshakespeare.txt"))
    ap.add_argument("--worker", default=os.path.join(ROOT, "build", "compare_tapegrad"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    cfg = dict(CONFIGS[args.config], data=args.data)
    tokens, vocab = data.char_tokens(args.data)
    pool = [(torch.tensor(x), torch.tensor(y)) for x, y in data.gpt_batches(tokens, 16, cfg["batch_size"],
                                                                            cfg["block_size"])]
    torch.manual_seed(1337)
    model = torch_models.GPT(vocab, **cfg)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = os.path.join(tmp, "init")
        if args.init == "torch":
            write_checkpoint(ckpt, model, cfg, vocab)
            tg = run_tapegrad(args.worker, cfg, args.steps, args.threads, init_from=ckpt)
        else:
            tg = run_tapegrad(args.worker, cfg, args.steps, args.threads, save_init=ckpt)
            torch_models.load_gpt2_tensors(model, read_safetensors(os.path.join(ckpt, "model.safetensors")))
    print("initial weights (std of rank-2 tensors, mean of the rest):",
          {k: round(v, 5) for k, v in init_stats(model).items()})
    th = run_torch(model, cfg, pool, args.steps)
    print(f"weights from {args.init}; config {args.config}")
    print("step  tapegrad loss  torch loss  |  tapegrad |g|  torch |g|")
    for i in range(args.steps):
        print(f"{i:4d}  {tg[0][i]:13.5f}  {th[0][i]:10.5f}  |  {tg[1][i]:12.5f}  {th[1][i]:9.5f}")
    worst = max(abs(a - b) for a, b in zip(tg[0], th[0]))
    print(f"largest loss difference: {worst:.2e}")
    return 0 if math.isfinite(worst) else 1


if __name__ == "__main__":
    sys.exit(main())
