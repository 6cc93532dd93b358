"""The driver's workers and schedule: one long-lived process per framework and thread setting,
each answering JSON requests; per workload a short probe of every thread setting of each
reference picks its best, then rounds alternate tapegrad, PyTorch eager, torch.compile and JAX,
and each one's time is the median over rounds of each run's median step."""
import json
import os
import statistics
import subprocess
import sys
import tempfile

from compare_py.workloads import linear_gemms_request

HERE = os.path.dirname(os.path.abspath(__file__))


class WorkerError(RuntimeError):
    pass


class Worker:
    """A worker process: request(dict) -> reply dict (a reply with "error" raises WorkerError)."""

    def __init__(self, name, argv, env, log_dir):
        self.name = name
        os.makedirs(log_dir, exist_ok=True)
        self.log_path = os.path.join(log_dir, f"{name}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     env=dict(os.environ, **env), text=True, bufsize=1)

    def request(self, req):
        if self.proc.poll() is not None:
            raise WorkerError(f"{self.name} has exited (code {self.proc.returncode}); see {self.log_path}")
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise WorkerError(f"{self.name} died during {req['workload']}; see {self.log_path}")
        reply = json.loads(line)
        if "error" in reply:
            raise WorkerError(f"{self.name}: {reply['error']}")
        times = reply.get("step_s", [])
        if not times or not all(isinstance(t, (int, float)) and t > 0 for t in times):
            raise WorkerError(f"{self.name}: {req['workload']}: step times not all positive: {times}")
        return reply

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def thread_env(n):
    """Every BLAS and OpenMP pool held to n threads, so nothing oversubscribes the cores."""
    return dict(OMP_NUM_THREADS=str(n), MKL_NUM_THREADS=str(n), OPENBLAS_NUM_THREADS=str(n), TG_COMPARE_THREADS=str(n))


def start_workers(tapegrad_bin, frameworks, thread_settings, log_dir):
    """{"tapegrad": Worker, "torch": {n: Worker}, "jax": {n: Worker}} for the frameworks asked."""
    workers = {"tapegrad": Worker("tapegrad", [tapegrad_bin], {}, log_dir)}
    py = sys.executable
    if "torch" in frameworks:
        workers["torch"] = {n: Worker(f"torch-t{n}", [py, os.path.join(HERE, "torch_worker.py")], thread_env(n), log_dir)
                            for n in thread_settings}
    if "jax" in frameworks:
        workers["jax"] = {}
        for n in thread_settings:
            env, argv = thread_env(n), [py, os.path.join(HERE, "jax_worker.py")]
            if n < (os.cpu_count() or 1):
                # XLA sizes its pools by the cores it may use: pin to n cores and cut the pool.
                env["XLA_FLAGS"] = f"--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={n}"
                argv = ["taskset", "-c", ",".join(str(c) for c in range(n))] + argv
            workers["jax"][n] = Worker(f"jax-t{n}", argv, env, log_dir)
    return workers


def base_request(w):
    return dict(workload=w.kind, config=w.config, warmup=w.warmup, steps=w.steps, inner=w.inner)


def variants(w, workers):
    """The columns of workload w: (label, framework, mode); torch eager before torch.compile."""
    out = [("tapegrad", "tapegrad", None)]
    if "torch" in workers and "torch" in w.references:
        out += [("torch eager" if m == "eager" else "torch.compile", "torch", m) for m in w.modes]
    if "jax" in workers and "jax" in w.references:
        out.append(("jax.jit", "jax", None))
    return out


def run_workload(w, workers, log):
    """-> {label: {"runs": [median s of each round], "median_s", "threads", "params", "loss_first",
    "loss_last", "compile_s", "probe": {threads: median s}, "error"}}."""
    res = {}
    cols = variants(w, workers)
    # The probe: each reference's thread settings, one short run each (also its compile/warm-up).
    chosen = {}
    for label, fw, mode in cols:
        r = res[label] = dict(runs=[], probe={})
        if fw == "tapegrad":
            continue
        settings = workers[fw]
        if label == "torch.compile" and "torch eager" in chosen:
            # Compiling costs a minute or more per setting: compile under eager's best only.
            settings = {chosen["torch eager"]: settings[chosen["torch eager"]]}
        for n, worker in settings.items():
            # Train workloads probe with the full step count: the probe is each reference's one run
            # from fresh weights (its model then trains on across rounds), and its first and last
            # losses must span as many steps as tapegrad's (fresh at every request).
            steps = w.steps if w.trains else max(1, w.steps // 3)
            req = dict(base_request(w), mode=mode or "eager", steps=steps)
            try:
                reply = worker.request(req)
            except WorkerError as e:
                r["probe"][n] = None
                r.setdefault("error", str(e))
                log(f"  {label} t{n}: {e}")
                continue
            r["probe"][n] = statistics.median(reply["step_s"])
            for k in ("params", "loss_first", "loss_last"):
                r.setdefault(k, reply.get(k))
            r.setdefault("losses", reply["extra"].get("losses"))
            if "compile_s" in reply["extra"]:
                r.setdefault("compile_s", {})[n] = reply["extra"]["compile_s"]
            r.setdefault("extra", reply["extra"])
        ok = {n: t for n, t in r["probe"].items() if t is not None}
        if ok:
            chosen[label] = min(ok, key=ok.get)
            r.pop("error", None)
            r["threads"] = chosen[label]
    for rnd in range(w.rounds):
        for label, fw, mode in cols:
            r = res[label]
            if fw != "tapegrad" and label not in chosen:
                continue
            worker = workers["tapegrad"] if fw == "tapegrad" else workers[fw][chosen[label]]
            req = dict(base_request(w), mode=mode or "eager")
            try:
                reply = worker.request(req)
            except WorkerError as e:
                r["error"] = str(e)
                log(f"  {label}: {e}")
                continue
            r["runs"].append(statistics.median(reply["step_s"]))
            if fw == "tapegrad":
                r["threads"] = reply.get("threads")
                r.setdefault("extra", reply["extra"])
                r["peak_bytes"] = reply.get("peak_bytes")
                for k in ("params", "loss_first", "loss_last"):
                    r.setdefault(k, reply.get(k))
                r.setdefault("losses", reply["extra"].get("losses"))
                gemms = linear_gemms_request(w)
                if gemms:  # the same round: the machine's speed drifts between rounds
                    try:
                        g = worker.request(gemms)
                        r.setdefault("gemm_runs", []).append(statistics.median(g["step_s"]))
                        r["gemm_flops"] = g["extra"]["flops"]
                    except WorkerError as e:
                        r["gemm_error"] = str(e)
                        log(f"  tapegrad linear_gemms: {e}")
        log(f"  round {rnd + 1}/{w.rounds}: " + ", ".join(
            f"{label} {res[label]['runs'][-1] * 1e3:.2f} ms" for label, _, _ in cols if res[label]["runs"]))
    for r in res.values():
        if r.get("gemm_runs"):
            r["gemm_median_s"] = statistics.median(r["gemm_runs"])
        if r["runs"]:
            r["median_s"] = statistics.median(r["runs"])
            r.pop("error", None)
    return res


def same_init_losses(w, res, workers, log):
    """GPT and Llama training from the same weights on the same batches: tapegrad writes its
    initial weights to a temporary checkpoint (config "save_init"; GPT-2's layout, or transformers'
    Llama names) and trains warmup + steps steps; PyTorch eager (nanoGPT's model, torch_llama.py)
    and JAX, each at its chosen threads, load them (config "init_from") and train as many. Every
    curve goes to res[label]["same_init_losses"]; report.py checks that the references' agree
    with tapegrad's."""
    if w.kind not in ("gpt_train", "llama_train"):
        return
    refs = [(label, fw, mode) for label, fw, mode in variants(w, workers)
            if fw != "tapegrad" and mode != "compile" and "threads" in res.get(label, {})]
    if not refs:
        return
    base = dict(base_request(w), warmup=0, steps=w.warmup + w.steps, inner=1)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            reply = workers["tapegrad"].request(dict(base, config=dict(w.config, save_init=tmp)))
            res["tapegrad"]["same_init_losses"] = reply["extra"]["losses"]
            for label, fw, mode in refs:
                worker = workers[fw][res[label]["threads"]]
                reply = worker.request(dict(base, mode=mode or "eager", config=dict(w.config, init_from=tmp)))
                res[label]["same_init_losses"] = reply["extra"]["losses"]
        except WorkerError as e:
            log(f"  {w.name} same-weights run: {e}")
            res["tapegrad"]["same_init_error"] = str(e)
            return
    log("  same weights: " + "; ".join(f"{label} {fmt_losses(r['same_init_losses'])}"
                                      for label, r in res.items() if r.get("same_init_losses")))


def fmt_losses(values):
    return " ".join(f"{v:.4f}" for v in values)


def measure_memory(w, res, workers, log):
    """After all timing: one untimed step per column, its resident-set peak (see
    worker.py: rss_peak_growth) into res[label]["rss_peak_bytes"]."""
    for label, fw, mode in variants(w, workers):
        r = res.get(label, {})
        if fw != "tapegrad" and "threads" not in r:
            continue
        worker = workers["tapegrad"] if fw == "tapegrad" else workers[fw][r["threads"]]
        try:
            reply = worker.request(dict(base_request(w), mode=mode or "eager", warmup=1, steps=1, memory=True))
            r["rss_peak_bytes"] = reply.get("rss_peak_bytes") or None
        except WorkerError as e:
            log(f"  {w.name} {label} memory: {e}")


def measure_peak(tapegrad, request, n):
    """sgemm GFLOP/s on all cores: 2n³ over the median time of one product."""
    reply = tapegrad.request(request)
    return 2 * n ** 3 / statistics.median(reply["step_s"]) / 1e9
