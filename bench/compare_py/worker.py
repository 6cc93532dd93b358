"""What the PyTorch and JAX workers share: the request loop (one JSON request per line on
stdin, one JSON reply per line on stdout, as bench/compare_tapegrad) and the step timer."""
import ctypes
import gc
import json
import sys
import time
import traceback


def time_steps(request, step, sync=lambda value: value):
    """Runs request["warmup"] untimed and request["steps"] timed samples of step(i), each sample
    repeating it request["inner"] times; sync(value) waits for the result (JAX) and returns a
    float loss or None. -> (seconds per run of each timed sample, first value, last value, the
    first sample's whole time: what a compile costs, every sample's value in order)."""
    warmup, steps, inner = request.get("warmup", 2), request.get("steps", 10), request.get("inner", 1)
    times, first, last, first_s, values = [], None, None, None, []
    for i in range(warmup + steps):
        start = time.perf_counter()
        for k in range(inner):
            value = sync(step(i * inner + k))
        total = time.perf_counter() - start
        elapsed = total / inner
        if i == 0:
            first, first_s = value, total
        if i >= warmup:
            times.append(elapsed)
        last = value
        values.append(value)
    return times, first, last, first_s, values


def _status_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return -1


def rss_peak_growth(fn):
    """How far the resident set's high-water mark (VmHWM) rose above VmRSS while fn() ran, in
    bytes (reset through /proc/self/clear_refs); 0 where /proc cannot say. What bench/compare
    reports as peak memory for every framework alike (bench/compare_tapegrad: rss_peak_growth)."""
    gc.collect()
    try:
        libc = ctypes.CDLL(None)
        # Large blocks from mmap and freed blocks trimmed: what is freed leaves the resident set, so
        # VmHWM shows the step's own peak. Set only for these last, memory-only requests: it
        # would slow the timed ones.
        libc.mallopt(-3, 64 << 10)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 64 << 10)  # M_TRIM_THRESHOLD
        libc.malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_bytes("VmRSS")
        fn()
        hwm = _status_bytes("VmHWM")
    except OSError:
        return 0
    return hwm - before if before >= 0 and hwm >= before else 0


def reply_of(times, params=0, first=None, last=None, values=(), **extra):
    """The reply; a train workload's values (every step's loss) go to extra["losses"]."""
    out = dict(step_s=times, params=params, extra=extra)
    if first is not None:
        out["loss_first"], out["loss_last"] = float(first), float(last)
        extra["losses"] = [float(v) for v in values]
    return out


TRAIN_KINDS = ("gpt_train", "encoder_train", "llama_train")
GENERATE_KINDS = ("generate", "llama_generate")
OP_KINDS = ("layer_norm", "softmax", "gelu", "cross_entropy")


def builder_for(kind, train, generate, mha, op, adamw, attention=None, flex_attention=None):
    """The builder of a request's workload (each worker has one per kind it answers)."""
    table = {"mha": mha, "adamw_step": adamw, **{k: train for k in TRAIN_KINDS}, **{k: generate for k in GENERATE_KINDS},
             **{k: op for k in OP_KINDS}}
    if attention:
        table["attention"] = attention
    if flex_attention:
        table["flex_attention"] = flex_attention
    if kind not in table:
        raise ValueError(f"unknown workload {kind!r}")
    return table[kind]


def serve(run):
    """Answers requests with run(request) -> reply dict until stdin closes; an exception becomes
    {"error": ...} and the worker carries on."""
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = run(json.loads(line))
        except Exception as e:  # reported to the driver, which shows it in the table
            reply = dict(error=f"{type(e).__name__}: {e}", trace=traceback.format_exc(limit=4))
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
