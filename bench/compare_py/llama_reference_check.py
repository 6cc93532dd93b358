"""A toy-size check that the llama_* rows' references compute tapegrad's model (issue 19): seconds of
CPU, nothing timed that matters. Run it with the Python that has torch and jax:

  PY bench/compare_py/llama_reference_check.py [--tapegrad-bin build/compare_tapegrad]
                                               [--compile-backend inductor|aot_eager]

1. The llama_* rows at toy sizes with LLAMA's head layout (6 query heads sharing 2 kv heads),
   through the driver's own runner, one thread each: every column (tapegrad, torch eager,
   torch.compile, jax.jit) answers, reports the driver's parameter count, and from tapegrad's
   initial weights PyTorch and JAX train with tapegrad's losses (report.summarise's checks).
   Generation goes past block_size, so the cache refill runs too.
2. tapegrad's initial weights scaled x15: the three frameworks' losses over 4 train steps agree,
   and torch_llama's and jax_llama's KV-cache decode logits agree with torch_llama's full forward
   at every position. At N(0, 0.02) attention is nearly uniform: jax_llama with its RoPE halves
   paired the wrong way still passed part 1 (losses 2e-4 apart, within report.SAME_INIT_RTOL);
   here it fails at the first step.

Exit status 1 on any disagreement. --compile-backend aot_eager traces torch.compile's graphs
(dynamo, AOTAutograd) without inductor's C++ compile, for a busy machine."""
import argparse
import os
import runpy
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
from compare_py import report, runner, workloads  # noqa: E402
from compare_py.safetensors_io import read_safetensors, write_safetensors  # noqa: E402

TOY = dict(num_hidden_layers=2, hidden_size=48, num_attention_heads=6, num_key_value_heads=2, intermediate_size=64,
           rope_theta=10000.0, rms_norm_eps=1e-5, block_size=16, batch_size=2)
SCALE = 15.0  # of every weight matrix in part 2
LOGITS_RTOL = 1e-4  # of the logits' scale; float32 differences measured: about 2e-6


def toy_workloads(data):
    ws = workloads.llama_workloads(data, smoke=True)
    for w in ws:
        w.config.update(TOY)
        w.expect_params = workloads.llama_params(TOY, workloads.CHAR_VOCAB)
        w.rounds = 1
        if w.trains:
            w.config["batches"] = 2
            w.warmup, w.steps = 1, 3
        else:
            w.config["new_tokens"] = TOY["block_size"] + 4  # past the block: the refill runs
    return ws


def start_workers(tapegrad_bin, backend, log_dir):
    """The driver's workers at one thread; torch's through this script when backend isn't inductor."""
    workers = runner.start_workers(tapegrad_bin, ["jax"], [1], log_dir)
    argv = [sys.executable, os.path.join(HERE, "torch_worker.py")]
    if backend != "inductor":
        argv = [sys.executable, os.path.abspath(__file__), "--as-torch-worker", backend]
    workers["torch"] = {1: runner.Worker("torch-t1", argv, runner.thread_env(1), log_dir)}
    return workers


def check_rows(ws, workers):
    """Part 1 -> problems."""
    problems = []
    for w in ws:
        res = runner.run_workload(w, workers, print)
        runner.same_init_losses(w, res, workers, print)
        problems += [f"{w.name}: {c}" for c in report.summarise(w, res, 0.0)["checks"]]
        for label, _, _ in runner.variants(w, workers):
            if "median_s" not in res.get(label, {}):
                problems.append(f"{w.name}: {label} gave no time ({res.get(label, {}).get('error')})")
            if w.trains and label != "torch.compile" and not res.get(label, {}).get("same_init_losses"):
                problems.append(f"{w.name}: {label} has no losses from tapegrad's weights")
    return problems


def scaled_checkpoint(workers, w, tmp):
    """tapegrad's initial weights of w, every matrix x SCALE, as a checkpoint folder -> (folder, tensors)."""
    init, scaled = os.path.join(tmp, "init"), os.path.join(tmp, "scaled")
    os.makedirs(scaled)
    workers["tapegrad"].request(dict(runner.base_request(w), warmup=0, steps=1, config=dict(w.config, save_init=init)))
    tensors = read_safetensors(os.path.join(init, "model.safetensors"))
    tensors = {k: v * SCALE if v.ndim == 2 else v for k, v in tensors.items()}
    write_safetensors(os.path.join(scaled, "model.safetensors"), tensors)
    shutil.copy(os.path.join(init, "config.json"), scaled)
    return scaled, tensors


def check_scaled_losses(w, workers, folder):
    """Part 2, training: 4 steps from the scaled weights in each framework -> problems."""
    req = dict(runner.base_request(w), warmup=0, steps=4, config=dict(w.config, init_from=folder))
    curves = {"tapegrad": workers["tapegrad"].request(req)["extra"]["losses"]}
    for fw in ("torch", "jax"):
        curves[fw] = workers[fw][1].request(dict(req, mode="eager"))["extra"]["losses"]
    print("scaled weights, losses: " + "; ".join(f"{k} {runner.fmt_losses(v)}" for k, v in curves.items()))
    res = {"tapegrad": dict(same_init_losses=curves["tapegrad"]), "torch eager": dict(same_init_losses=curves["torch"]),
           "jax.jit": dict(same_init_losses=curves["jax"])}
    return [f"scaled weights: {c}" for c in report.same_init_checks(res)]


def check_decode(tensors):
    """Part 2, generation: KV-cache decode logits of torch_llama and jax_llama against torch_llama's
    full forward of each prefix, position by position -> problems."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch

    from compare_py import jax_llama, torch_llama
    torch.set_num_threads(1)
    V, P = workloads.CHAR_VOCAB, TOY["block_size"]
    model = torch_llama.Llama(V, **TOY).eval()
    torch_llama.load_llama_tensors(model, tensors)
    seq = torch.tensor(np.random.default_rng(0).integers(0, V, (1, P)))
    with torch.inference_mode():
        full = torch.cat([model(seq[:, :i + 1]) for i in range(P)], 1)[0].numpy()  # [P, V]
        cache = model.make_cache(1)
        torch_cached = np.stack([model(seq[:, i:i + 1], cache=cache, pos=i)[0, 0].numpy() for i in range(P)])
    c = dict(TOY, vocab_size=V)
    params, rope = jax_llama.llama_from_hf(tensors, V, c), jax_llama.rope_tables(c)
    decode = jax.jit(lambda p, cache, tok, pos: jax_llama.llama_decode_step(p, cache, tok, pos, c, rope))
    cache, jax_cached = jax_llama.empty_cache(c), []
    for i in range(P):
        logits, cache = decode(params, cache, jnp.asarray(seq[0, i:i + 1].numpy(), jnp.int32), i)
        jax_cached.append(np.asarray(logits[0]))
    scale = float(np.abs(full).max())
    problems = []
    for name, got in (("torch_llama", torch_cached), ("jax_llama", np.stack(jax_cached))):
        diff = float(np.abs(got - full).max())
        print(f"scaled weights, {name} KV-cache logits vs torch_llama's full forward: max |diff| {diff:.2e} "
              f"(logits up to {scale:.2f})")
        if not diff <= LOGITS_RTOL * scale:
            problems.append(f"{name}'s KV-cache logits differ from the full forward by {diff:.2e}")
    return problems


def as_torch_worker(backend):
    """torch_worker.py with torch.compile's backend replaced."""
    import torch
    compile_ = torch.compile
    torch.compile = lambda *a, **k: compile_(*a, **dict(k, backend=backend))
    sys.argv = [os.path.join(HERE, "torch_worker.py")]
    runpy.run_path(sys.argv[0], run_name="__main__")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tapegrad-bin", default=os.path.join(ROOT, "build", "compare_tapegrad"))
    p.add_argument("--compile-backend", default="inductor", help="torch.compile's backend (aot_eager: no C++ compile)")
    p.add_argument("--as-torch-worker", metavar="BACKEND", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.as_torch_worker:
        return as_torch_worker(args.as_torch_worker)
    ws = toy_workloads(os.path.join(ROOT, "data", "tinyshakespeare.txt"))
    log_dir = os.path.join(tempfile.gettempdir(), "llama-reference-check-logs")  # each worker's stderr
    with tempfile.TemporaryDirectory() as tmp:
        workers = start_workers(args.tapegrad_bin, args.compile_backend, log_dir)
        try:
            problems = check_rows(ws, workers)
            folder, tensors = scaled_checkpoint(workers, ws[0], tmp)
            problems += check_scaled_losses(ws[0], workers, folder)
        finally:
            for w in (workers["tapegrad"], *workers["torch"].values(), *workers["jax"].values()):
                w.close()
        problems += check_decode(tensors)
    print("\n".join(["", "problems:"] + problems) if problems else "\nllama references: every check passed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
