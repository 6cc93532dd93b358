"""bench/compare's output: the checks (parameter counts agree, models train, tapegrad's losses match
PyTorch's from the same weights), the table
(printed, Markdown, CSV) and a bar chart of tapegrad's speed over the best reference (SVG)."""
import csv
import math
import os

from compare_py.workloads import CHECKPOINTED

REFERENCES = ("torch eager", "torch.compile", "jax.jit")


def throughput(w, seconds):
    """What the table shows for a step of `seconds`: items/s, or milliseconds for "ms" units."""
    return seconds * 1e3 if w.unit == "ms" else w.items_per_step / seconds


def known_limit(w, label, r):
    """r's error when it is one the workload expects of that column (w.expected_errors), else None."""
    err = r.get("error", "")
    return err.splitlines()[0] if err and any(label == k and text in err for k, text in w.expected_errors) else None


def summarise(w, res, peak_gflops):
    """-> dict(best=label or None, ratio=best reference's time / tapegrad's, mfu, checks=[...])."""
    tg = res.get("tapegrad", {})
    refs = {k: v for k, v in res.items() if k in REFERENCES and "median_s" in v}
    best = min(refs, key=lambda k: refs[k]["median_s"]) if refs else None
    out = dict(best=best, ratio=None, mfu=None, checks=[])
    if "median_s" in tg and best:
        out["ratio"] = refs[best]["median_s"] / tg["median_s"]
    if "median_s" in tg and w.flops_per_step and peak_gflops:
        out["mfu"] = w.flops_per_step / tg["median_s"] / 1e9 / peak_gflops
    for label, r in res.items():
        if "median_s" not in r and "error" not in r and label != "tapegrad":
            continue
        if "error" in r:
            if known_limit(w, label, r):
                continue
            out["checks"].append(f"{label}: {r['error'].splitlines()[0][:160]}")
            continue
        if w.expect_params and r.get("params") != w.expect_params:
            out["checks"].append(f"{label}: {r.get('params')} parameters, expected {w.expect_params}")
        if w.trains and w.loss_falls:
            a, b = r.get("loss_first"), r.get("loss_last")
            if a is None or b is None or not (math.isfinite(a) and math.isfinite(b) and b < a):
                out["checks"].append(f"{label}: loss did not fall ({a} -> {b})")
    if "gemm_error" in tg:  # the ceiling's request failed: say so rather than leave its row out
        out["checks"].append(f"tapegrad linear_gemms: {tg['gemm_error'].splitlines()[0][:160]}")
    out["checks"] += same_init_checks(res)
    return out


SAME_INIT_RTOL = 1e-3  # float32 reassociation over a few steps: measured differences are about 1e-6


def same_init_checks(res):
    """Each reference's losses from tapegrad's initial weights on the same batches
    (runner.same_init_losses) must agree with tapegrad's at every step."""
    tg = res.get("tapegrad", {})
    if "same_init_error" in tg:
        return [f"same-weights run: {tg['same_init_error'].splitlines()[0][:160]}"]
    a = tg.get("same_init_losses")
    out = []
    for label in REFERENCES:
        b = res.get(label, {}).get("same_init_losses")
        if not a or not b:
            continue
        if len(a) != len(b):
            out.append(f"same-weights run: tapegrad logged {len(a)} steps, {label} {len(b)}")
            continue
        for i, (x, y) in enumerate(zip(a, b)):
            if not (math.isfinite(x) and abs(x - y) <= SAME_INIT_RTOL * max(1.0, abs(y))):
                out.append(f"from the same weights tapegrad and {label} disagree at step {i}: {x:.6f} vs {y:.6f}")
                break
    return out


def same_init_lines(by_name):
    """Markdown: per GPT or Llama train workload, every framework's loss curve from the same weights."""
    out = []
    for name, res in by_name.items():
        a = res.get("tapegrad", {}).get("same_init_losses")
        for label in ("tapegrad",) + REFERENCES:
            b = res.get(label, {}).get("same_init_losses")
            if a and b:
                worst = "" if label == "tapegrad" else f"{max(abs(x - y) for x, y in zip(a, b)):.1e}"
                out.append(f"| {name} | {label} | {' '.join(f'{v:.4f}' for v in b)} | {worst} |")
    if not out:
        return []
    return ["", "Loss per step from the same initial weights (tapegrad's, loaded into each reference) on the same "
            "batches:", "", "| workload | framework | losses | largest difference from tapegrad |",
            "|---|---|---|---|"] + out


def cell(w, r, label=""):
    if "median_s" not in r:
        return ("unsupported" if known_limit(w, label, r) else "error") if "error" in r else "—"
    v = throughput(w, r["median_s"])
    txt = f"{v:.3f}" if w.unit == "ms" else (f"{v / 1e3:.2f}k" if v >= 1e4 else f"{v:.1f}")
    return txt + (f" (t{r['threads']})" if r.get("threads") else "")


def rows(results, peak_gflops):
    return [(w, res, summarise(w, res, peak_gflops)) for w, res in results]


def markdown(results, peak_gflops, header_lines):
    lines = list(header_lines) + ["",
             "| workload | unit | tapegrad | torch eager | torch.compile | jax.jit | best reference | tapegrad ÷ best | target | tapegrad MFU |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    compile_lines, memory_lines, notes, problems, limits = [], [], [], [], set()
    for w, res, s in rows(results, peak_gflops):
        unit = "ms (lower is better)" if w.unit == "ms" else w.unit
        cells = [cell(w, res.get(k, {}), k) for k in ("tapegrad",) + REFERENCES]
        limits.update(f"{k}: {known_limit(w, k, res.get(k, {}))}" for k in REFERENCES if known_limit(w, k, res.get(k, {})))
        ratio = f"**{s['ratio']:.2f}×**" if s["ratio"] else "—"
        mfu = f"{s['mfu'] * 100:.1f}%" if s["mfu"] else "—"
        target = "—" if not w.target else f"≥ {w.target:g}×" + (
            "" if not s["ratio"] else " met" if s["ratio"] >= w.target else " not met")
        lines.append(f"| {w.name} | {unit} | " + " | ".join(cells) + f" | {s['best'] or '—'} | {ratio} | {target} | {mfu} |")
        comp = [f"{min(res[k]['compile_s'].values()):.1f} s" if res.get(k, {}).get("compile_s") else "—"
                for k in ("torch.compile", "jax.jit")]
        if comp != ["—", "—"]:
            compile_lines.append(f"| {w.name} | " + " | ".join(comp) + " |")
        if w.trains or w.memory:
            mem = [res.get("tapegrad", {}).get("peak_bytes")] + [res.get(k, {}).get("rss_peak_bytes")
                                                                 for k in ("tapegrad",) + REFERENCES]
            memory_lines.append(f"| {w.name} | " + " | ".join(f"{m / 2**20:.1f}" if m else "—" for m in mem) + " |")
        if w.notes:
            notes.append(f"- {w.name}: {w.notes}")
        problems += [f"- {w.name}: {c}" for c in s["checks"]]
    by_name = {w.name: res for w, res, _ in rows(results, peak_gflops)}
    kv, nc = by_name.get("generate_kv_cache", {}), by_name.get("generate_no_cache", {})
    gen = []
    for k in ("tapegrad",) + REFERENCES:
        if "median_s" in kv.get(k, {}) and "median_s" in nc.get(k, {}):
            gen.append(f"{k} {nc[k]['median_s'] / kv[k]['median_s']:.2f}×")
    if gen:
        lines += ["", "KV cache ÷ no cache, generation tokens/s: " + ", ".join(gen) + " (target for tapegrad: ≥ 5×)"]
    backends = [f"{name} {res['torch eager']['extra']['sdpa_backend']}" for name, res in by_name.items()
                if res.get("torch eager", {}).get("extra", {}).get("sdpa_backend")]
    if backends:
        lines += ["", "PyTorch's SDPA backend per attention row: " + ", ".join(backends)]
    lines += ceiling_lines(rows(results, peak_gflops))
    lines += checkpointing_lines(by_name)
    lines += same_init_lines(by_name)
    lines += ["", f"sgemm peak (tapegrad's matmul, OpenBLAS, all cores, [1024²]·[1024²]): **{peak_gflops:.1f} GFLOP/s**"]
    if compile_lines:
        lines += ["", "Compile time (the first call, tracing and compiling included; not in the step times):", "",
                  "| workload | torch.compile | jax.jit |", "|---|---|---|"] + compile_lines
    if memory_lines:
        lines += ["", "Peak memory of one train step (attention: one forward + backward), MiB: tapegrad's allocator peak (tensor bytes), and for every "
                  "framework alike the rise of the resident set's high-water mark (VmHWM, reset through "
                  "/proc/self/clear_refs) above VmRSS during one extra, untimed step (tapegrad's cached blocks "
                  "given back first):", "",
                  "| workload | tapegrad allocator | tapegrad RSS | torch eager RSS | torch.compile RSS | jax.jit RSS |",
                  "|---|---|---|---|---|---|"] + memory_lines
    if notes:
        lines += ["", "Notes:"] + notes
    if limits:  # the cells marked "unsupported"
        lines += ["", "Unsupported (the reference's own error):"] + [f"- {x}" for x in sorted(limits)]
    lines += ["", "Checks: " + ("all passed (parameter counts agree; the loss fell where it must; from the "
                             "same weights tapegrad's losses match the references')" if not problems else "")]
    lines += problems
    return "\n".join(lines) + "\n", problems


def ceiling_lines(rows_):
    """The training workloads' ceiling: their linear layers' GEMMs alone, timed in tapegrad in the
    same rounds (runner.run_workload), against the best reference."""
    out = []
    for w, res, s in rows_:
        tg = res.get("tapegrad", {})
        if "gemm_median_s" not in tg or "median_s" not in tg or not s["best"]:
            continue
        best = res[s["best"]]["median_s"]
        out.append(f"| {w.name} | {f'≥ {w.target:g}×' if w.target else '—'} | {s['ratio']:.2f}× | "
                   f"**{best / tg['gemm_median_s']:.2f}×** | {tg['gemm_median_s'] / tg['median_s'] * 100:.0f}% | "
                   f"{tg['gemm_flops'] / tg['gemm_median_s'] / 1e9:.1f} |")
    if not out:
        return []
    return ["", "The ceiling of each training workload: the products of its linear layers alone (forward and "
            "both backward GEMMs at its shapes, bench/train_linear_gemms.h), timed in tapegrad in the same rounds. "
            "Were attention, norms, activations, the loss and AdamW free, tapegrad's step would take that long:", "",
            "| workload | target | tapegrad ÷ best | linear-layer GEMMs alone ÷ best | their share of tapegrad's step "
            "| their GFLOP/s |", "|---|---|---|---|---|---|"] + out


def checkpointing_lines(by_name):
    """Activation checkpointing: each framework's step time and peak memory without and with."""
    out = []
    for name, on in by_name.items():
        off = by_name.get(name[:-len(CHECKPOINTED)]) if name.endswith(CHECKPOINTED) else None
        if not off:
            continue
        out += ["", f"Activation checkpointing, {name[:-len(CHECKPOINTED)]}: step time and peak memory (MiB, "
                "as in the memory table) without → with:", "",
                "| framework | step time | time cost | peak memory | memory saved |", "|---|---|---|---|---|"]
        for k in ("tapegrad",) + REFERENCES:
            a, b = off.get(k, {}), on.get(k, {})
            if "median_s" not in a or "median_s" not in b:
                continue
            t = f"{a['median_s'] * 1e3:.0f} → {b['median_s'] * 1e3:.0f} ms"
            cost = f"{b['median_s'] / a['median_s']:.2f}×"
            mems = [("peak_bytes", " (allocator)")] if k == "tapegrad" else []
            for key, what in mems + [("rss_peak_bytes", " (RSS)")]:
                m0, m1 = a.get(key), b.get(key)
                mem = f"{m0 / 2**20:.0f} → {m1 / 2**20:.0f}{what}" if m0 and m1 else "—"
                saved = f"{(1 - m1 / m0) * 100:.0f}%" if m0 and m1 else "—"
                out.append(f"| {k} | {t} | {cost} | {mem} | {saved} |")
    return out


def write_csv(path, results, peak_gflops):
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["workload", "framework", "threads", "median_s", "throughput", "unit", "runs_s", "probe_s",
                      "compile_s", "params", "loss_first", "loss_last", "ratio_vs_best", "mfu", "alloc_peak_bytes",
                      "rss_peak_bytes", "error"])
        for w, res, s in rows(results, peak_gflops):
            for label, r in res.items():
                med = r.get("median_s")
                out.writerow([w.name, label, r.get("threads", ""), f"{med:.6g}" if med else "",
                              f"{throughput(w, med):.6g}" if med else "", w.unit,
                              " ".join(f"{t:.6g}" for t in r.get("runs", [])),
                              " ".join(f"t{n}:{t:.6g}" for n, t in r.get("probe", {}).items() if t),
                              " ".join(f"t{n}:{t:.3g}" for n, t in (r.get("compile_s") or {}).items()),
                              r.get("params", ""), r.get("loss_first", ""), r.get("loss_last", ""),
                              f"{s['ratio']:.4g}" if label == "tapegrad" and s["ratio"] else "",
                              f"{s['mfu']:.4g}" if label == "tapegrad" and s["mfu"] else "",
                              r.get("peak_bytes", "") if label == "tapegrad" else "", r.get("rss_peak_bytes", ""),
                              r.get("error", "")])
    os.replace(tmp, path)


def write_svg(path, results, peak_gflops, title):
    """Horizontal bars: tapegrad's speed over the best reference per workload, log scale, a line
    at 1× (faster to the right), a tick at issue 5's target; green where the target is met."""
    data = [(w.name, s["ratio"], s["best"], w.target) for w, _, s in rows(results, peak_gflops) if s["ratio"]]
    bar_h, left, width = 22, 190, 420
    height = 60 + bar_h * len(data) + 40
    lo, hi = math.log10(0.1), math.log10(10.0)

    def x(v):
        return left + (math.log10(min(max(v, 0.1), 10.0)) - lo) / (hi - lo) * width

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 150}" height="{height}" '
             'font-family="sans-serif" font-size="12">',
             f'<rect width="100%" height="100%" fill="white"/><text x="10" y="20" font-size="14">{title}</text>']
    for v in (0.1, 0.2, 0.5, 1, 2, 5, 10):
        parts.append(f'<line x1="{x(v):.1f}" y1="40" x2="{x(v):.1f}" y2="{height - 35}" stroke="{"black" if v == 1 else "#ddd"}"/>'
                     f'<text x="{x(v):.1f}" y="{height - 20}" text-anchor="middle">{v:g}×</text>')
    for i, (name, ratio, best, target) in enumerate(data):
        y = 45 + i * bar_h
        x0, x1 = sorted((x(1), x(ratio)))
        colour = "#2a7" if ratio >= max(target, 1) else "#d54"
        if target > 1:  # issue 5's target, a tick across the bar
            parts.append(f'<line x1="{x(target):.1f}" y1="{y}" x2="{x(target):.1f}" y2="{y + bar_h}" stroke="black" stroke-width="2"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{name}</text>'
                     f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 1):.1f}" height="{bar_h - 6}" fill="{colour}"/>'
                     f'<text x="{left + width + 6}" y="{y + 14}">{ratio:.2f}× vs {best}</text>')
    parts.append(f'<text x="{left + width / 2}" y="{height - 5}" text-anchor="middle">'
                 'tapegrad speed ÷ best reference (log scale; right of 1× = tapegrad faster; tick = target)</text></svg>')
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(parts) + "\n")
    os.replace(tmp, path)
