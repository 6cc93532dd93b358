#!/usr/bin/env python3
"""Hostile-input sweep of the `tapegrad` command (issue 15).

Runs a table of hostile command lines against a tapegrad binary, every subcommand, and checks
that each one ends with a clear error (exit 1 or 2, a message on stderr naming the flag or the
file), never a signal, never a hang, never an allocation the machine cannot hold, and never a
lost file of the user's. A few cases must succeed instead (exit 0). Prints a table and a summary
line; exits 1 if any case failed.

    tools/hostile_sweep.py                              # build/tapegrad
    tools/hostile_sweep.py --tapegrad /path/to/tapegrad -k fifo
    tools/hostile_sweep.py --list

The classes:
  baseline   sane tiny commands that must succeed (the harness itself works)
  sizes      sizes that overflow or cannot fit (flags, config.json, safetensors headers)
  values     numeric flags that are NaN, infinite or otherwise meaningless
  fs         file-system trouble for every path flag and the files inside checkpoints
  one-error  exceptions other than tg::Error (filesystem_error, bad_alloc, json errors...) must
             become one line naming the subcommand, exit 1, never SIGABRT
  mismatch   model and data files that disagree (vocabularies, labels, shapes, flags)
  honest     --max-iters 0, NaN/Inf weights, --optimizer sgd with --momentum/--nesterov
  foreign    the user's files and folders in --out (or shared with an output) are never lost

The cases are written in tools/hostile/cases_*.py (inputs: baseline, sizes, values; paths: fs,
one-error; files: mismatch, honest, foreign; llama: the Llama family's checkpoints), from the
argv builders of tools/hostile/argv.py and the file makers of tools/hostile/files.py;
tools/hostile/runner.py runs one case.

Every child runs niced, with an address-space limit (--rlimit-gb, 2 GiB by default), stdin from
/dev/null, one BLAS/OpenMP thread, in its own session (killed with its group on timeout).
Cases marked unprivileged run as uid/gid 65534 when the sweep runs as root (root reads
chmod-000 files). Full-file-system cases mount a small tmpfs (needs root; skipped with the
reason otherwise). Standard library only.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hostile import cases_files, cases_inputs, cases_llama, cases_paths  # noqa: E402
from hostile.table import Case, REPO  # noqa: E402
from hostile.runner import copy_where_nobody_reaches, headline, make_shared, run_case, write_failures  # noqa: E402


def cases() -> list[Case]:
    C: list[Case] = []

    def add(*a, **k):
        C.append(Case(*a, **k))

    cases_inputs.add_cases(add)
    cases_paths.add_cases(add)
    cases_files.add_cases(add)
    cases_llama.add_cases(add)
    return C


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tapegrad", default=os.path.join(REPO, "build", "tapegrad"), help="the binary (default build/tapegrad)")
    ap.add_argument("-k", dest="filter", help="only cases whose name or class contains this")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds before a case counts as a hang (default 30)")
    ap.add_argument("--rlimit-gb", type=int, default=2, help="address-space limit of each child in GiB (default 2)")
    ap.add_argument("--jobs", type=int, default=3, help="cases run at once (default 3; hangs wait without CPU)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--width", type=int, default=90, help="width of the stderr column")
    ap.add_argument("--failures", metavar="FILE", help="also write the failing cases, grouped by class, to FILE")
    args = ap.parse_args()

    all_cases = cases()
    names = [c.name for c in all_cases]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        sys.exit(f"hostile sweep: duplicate case names: {sorted(dupes)}")
    selected = [c for c in all_cases if not args.filter or args.filter in c.name or args.filter == c.cls]
    if args.list:
        for c in selected:
            print(f"{c.name:60} {c.cls:10} {' '.join(c.argv)}")
        print(f"{len(selected)} cases")
        return 0
    binary = os.path.abspath(args.tapegrad)
    if not os.access(binary, os.X_OK):
        sys.exit(f"hostile sweep: --tapegrad: {binary} is not an executable file")
    if os.geteuid() == 0:
        print("hostile sweep: running as root; unprivileged cases run as uid/gid 65534")
    scratch = tempfile.mkdtemp(prefix="tapegrad-sweep-")
    os.chmod(scratch, 0o755)
    t0 = time.monotonic()
    try:
        shared = make_shared(binary, scratch, args)
        if os.geteuid() == 0:
            binary = copy_where_nobody_reaches(binary, scratch)
        os.makedirs(os.path.join(scratch, "cases"))
        os.chmod(os.path.join(scratch, "cases"), 0o755)
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            outcomes = list(pool.map(lambda ic: run_case(ic[0], ic[1], binary, scratch, shared, args), enumerate(selected)))
    finally:
        if args.keep:
            print(f"hostile sweep: scratch kept in {scratch}")
        else:
            for root, dirs, files in os.walk(scratch):  # chmod 000 directories back so they can be removed
                for n in dirs:
                    p = os.path.join(root, n)
                    if not os.path.islink(p):
                        try:
                            os.chmod(p, 0o755)
                        except OSError:
                            pass
            shutil.rmtree(scratch, ignore_errors=True)
    elapsed = time.monotonic() - t0

    w = args.width
    print(f"{'case':58} {'class':9} {'exit':>7} {'secs':>6} verdict  first line of stderr")
    for o in outcomes:
        r = o.result
        ex = "-" if r is None else (f"SIG{signal.Signals(r.sig).name[3:]}" if r.sig else ("hang" if r.code is None else str(r.code)))
        secs = "-" if r is None else f"{r.seconds:6.2f}"
        line = headline(r.stderr) if r else ""
        print(f"{o.case.name:58} {o.case.cls:9} {ex:>7} {secs:>6} {o.verdict:7}  {line[:w]}")
        if o.verdict != "PASS":
            print(f"{'':58}   -> {o.why}")
    passed = sum(o.verdict == "PASS" for o in outcomes)
    failed = sum(o.verdict == "FAIL" for o in outcomes)
    skipped = sum(o.verdict == "SKIP" for o in outcomes)
    by_cls: dict[str, list[int]] = {}
    for o in outcomes:
        s = by_cls.setdefault(o.case.cls, [0, 0])
        s[0] += 1
        s[1] += o.verdict == "FAIL"
    print("by class: " + ", ".join(f"{k} {v[1]}/{v[0]} failed" for k, v in by_cls.items()))
    if args.failures:
        write_failures(args.failures, outcomes, binary)
    print(f"hostile sweep: {len(outcomes)} cases, {passed} passed, {failed} failed"
          + (f", {skipped} skipped" if skipped else "") + f" ({elapsed:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
