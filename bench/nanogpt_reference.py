"""nanoGPT's "baby GPT" trained in PyTorch eager as nanoGPT's train.py trains it, for the val loss
that models/README.md compares tapegrad's against: L4 H4 C128, block 64, batch 12, 2000 steps,
AdamW (0.9, 0.99) lr 1e-3 with 100 warmup steps and cosine decay to 1e-4, weight decay 0.1 on
2-D weights, clip 1.0, dropout 0; characters of the text, the last 10% held out; random windows
drawn with torch.randint as nanoGPT's get_batch does. Prints per seed nanoGPT's estimate_loss on
val (20 batches) after the last step, and the mean loss over the whole validation split in
consecutive windows of 64 (as `tapegrad gpt eval` reports it, less its last partial window).

    python3 bench/nanogpt_reference.py --seeds 1,2,3 [--threads 1] [--data data/tinyshakespeare.txt]
"""
import argparse
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_py import data, torch_models  # noqa: E402

B, T, ITERS, WARMUP, LR, MIN_LR, EVAL_ITERS = 12, 64, 2000, 100, 1e-3, 1e-4, 20


def lr_at(it):
    """nanoGPT's get_lr with lr_decay_iters = max_iters."""
    if it < WARMUP:
        return LR * (it + 1) / (WARMUP + 1)
    ratio = (it - WARMUP) / (ITERS - WARMUP)
    return MIN_LR + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (LR - MIN_LR)


def get_batch(split):
    ix = torch.randint(len(split) - T, (B,))
    x = torch.stack([split[i:i + T] for i in ix])
    y = torch.stack([split[i + 1:i + 1 + T] for i in ix])
    return x, y


@torch.no_grad()
def whole_split_loss(model, split):
    """Mean loss over consecutive non-overlapping windows of T tokens (each predicting its next)."""
    n = (len(split) - 1) // T
    x = split[:n * T].view(n, T)
    y = split[1:n * T + 1].view(n, T)
    total = 0.0
    for i in range(0, n, 64):
        total += model(x[i:i + 64], y[i:i + 64]).item() * len(x[i:i + 64])
    return total / n


def train(seed, train_ids, val_ids, vocab):
    torch.manual_seed(seed)
    model = torch_models.GPT(vocab, 4, 4, 128, T)
    params = list(model.parameters())
    groups = [dict(params=[p for p in params if p.dim() >= 2], weight_decay=0.1),
              dict(params=[p for p in params if p.dim() < 2], weight_decay=0.0)]
    opt = torch.optim.AdamW(groups, lr=LR, betas=(0.9, 0.99), eps=1e-8)
    start = time.time()
    for it in range(ITERS):
        for g in opt.param_groups:
            g["lr"] = lr_at(it)
        x, y = get_batch(train_ids)
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    secs = time.time() - start
    model.eval()
    with torch.no_grad():
        val20 = sum(model(*get_batch(val_ids)).item() for _ in range(EVAL_ITERS)) / EVAL_ITERS
    return val20, whole_split_loss(model, val_ids), ITERS * B * T / secs


def main():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="1337", help="comma-separated seeds")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = cores)")
    ap.add_argument("--data", default=os.path.join(here, "data", "tinyshakespeare.txt"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads or os.cpu_count())
    ids, vocab = data.char_tokens(a.data)
    ids = torch.tensor(ids, dtype=torch.long)
    cut = len(ids) * 9 // 10
    train_ids, val_ids = ids[:cut], ids[cut:]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for s in a.seeds.split(","):
        val20, val_all, rate = train(int(s), train_ids, val_ids, vocab)
        print(f"seed {s}: val loss (20 batches) {val20:.4f}, val loss (all) {val_all:.4f}, {rate:.0f} tokens/s",
              flush=True)


if __name__ == "__main__":
    main()
