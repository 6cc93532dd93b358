"""Running the cases: each in its own scratch directory, niced, with an address-space limit,
as uid 65534 where it says so; the verdict from the exit, the signal, the words and the files."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from typing import Optional

from hostile import table
from hostile.table import Case, Ctx, NOBODY, Result, Words
from hostile.files import TEXT, write
from hostile.argv import et, gt


def tree_digest(path: str) -> str:
    if os.path.islink(path):
        return "link:" + os.readlink(path)
    if os.path.isdir(path):
        h = hashlib.sha256()
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for n in sorted(files):
                p = os.path.join(root, n)
                h.update(os.path.relpath(p, path).encode() + b"\0" + tree_digest(p).encode())
            for n in dirs:
                h.update(b"dir:" + os.path.relpath(os.path.join(root, n), path).encode())
        return "dir:" + h.hexdigest()
    if os.path.isfile(path):
        return "file:" + hashlib.sha256(open(path, "rb").read()).hexdigest()
    if os.path.exists(path):
        return "special"
    return "missing"


def words_missing(words: Words, text: str) -> list[str]:
    missing = []
    for w in words:
        alts = [w] if isinstance(w, str) else list(w)
        if not any(a in text for a in alts):
            missing.append(alts[0] if len(alts) == 1 else "one of " + "/".join(alts))
    return missing


def mount_full(path: str) -> Optional[str]:
    """A 32 KiB tmpfs at path, filled to the last byte by a filler file. Returns why not, or None."""
    os.makedirs(path, exist_ok=True)
    if os.geteuid() != 0:
        return "not root: cannot mount a small tmpfs"
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32k,mode=0777", "tmpfs", path], capture_output=True, text=True)
    if r.returncode != 0:
        return "mount failed: " + (r.stderr.strip() or r.stdout.strip())
    try:
        with open(os.path.join(path, "filler"), "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:
        pass
    return None


def umount(path: str):
    if subprocess.run(["umount", path], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", path], capture_output=True)


def chown_tree(path: str, uid: int):
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            try:
                os.lchown(os.path.join(root, n), uid, uid)
            except OSError:
                pass
    os.lchown(path, uid, uid)


def make_preexec(rlimit_bytes: int, unpriv: bool):
    def preexec():
        os.nice(10)
        resource.setrlimit(resource.RLIMIT_AS, (rlimit_bytes, rlimit_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if unpriv and os.geteuid() == 0:
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
    return preexec


def child_env() -> dict:
    env = dict(os.environ)
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", TG_NO_PROGRESS="1")
    env.pop("OMPI_COMM_WORLD_SIZE", None)
    return env


FORK_LOCK = threading.Lock()


def run_cmd(binary: str, argv: list[str], timeout: float, rlimit: int, unpriv: bool, cwd: str) -> Result:
    start = time.monotonic()
    with FORK_LOCK:  # one fork at a time: preexec_fn runs Python in the child
        p = subprocess.Popen([binary, *argv], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             preexec_fn=make_preexec(rlimit, unpriv), start_new_session=True, cwd=cwd, env=child_env())
    try:
        out, err = p.communicate(timeout=timeout)
        code = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        code = None
    secs = time.monotonic() - start
    sig = -code if code is not None and code < 0 else None
    return Result(code if sig is None else None, sig, out.decode(errors="replace"), err.decode(errors="replace"), secs)


PROGRESS = re.compile(r"(\[=*[> ]|ETA|^\[\d+/\d+\]|^generating listops|^step \d+:|^generated \d+ tokens)")


def headline(stderr: str) -> str:
    for line in stderr.splitlines():
        line = line.strip()
        if line and not PROGRESS.search(line):
            return line
    return ""


@dataclasses.dataclass
class Outcome:
    case: Case
    verdict: str  # PASS, FAIL, SKIP
    why: str
    result: Optional[Result]


def run_case(index: int, c: Case, binary: str, scratch: str, shared: dict, args) -> Outcome:
    # a neutral directory name: the case's name must not put words into the messages' paths
    d = os.path.join(scratch, "cases", f"c{index:03d}")
    os.makedirs(d)
    os.chmod(d, 0o755)
    ctx = Ctx(d, shared)
    try:
        if c.full_fs:
            why = mount_full(os.path.join(d, "full"))
            if why:
                return Outcome(c, "SKIP", why, None)
            ctx.mounted = os.path.join(d, "full")
            ctx.foreign.append(os.path.join(d, "full", "filler"))
        if c.unpriv and os.geteuid() == 0:
            chown_tree(d, NOBODY)
        if c.setup:
            c.setup(ctx)
        if c.unpriv and os.geteuid() == 0:
            # the case's own files belong to the unprivileged user (modes set by setup still apply)
            for root, dirs, files in os.walk(d):
                for n in dirs + files:
                    try:
                        os.lchown(os.path.join(root, n), NOBODY, NOBODY)
                    except OSError:
                        pass
        before = {p: tree_digest(p) for p in ctx.foreign}
        argv = [ctx.sub(a) for a in c.argv]
        r = run_cmd(binary, argv, c.timeout or args.timeout, args.rlimit_gb << 30, c.unpriv, d)
        problems = []
        if r.sig is not None:
            problems.append(f"signal {signal.Signals(r.sig).name}")
        elif r.code is None:
            problems.append(f"hang: killed after {c.timeout or args.timeout:.0f} s")
        else:
            if c.expect == "ok" and r.code != 0:
                problems.append(f"exit {r.code}, expected 0")
            elif c.expect == "error" and r.code not in (1, 2):
                problems.append(f"exit {r.code}, expected 1 or 2")
            elif c.expect == "any" and r.code not in (0, 1, 2):
                problems.append(f"exit {r.code}")
            if r.code != 0 and r.code in (1, 2) and c.expect != "ok":
                miss = words_missing([ctx.sub(w) if isinstance(w, str) else w for w in c.words], r.stderr)
                if miss:
                    problems.append("message lacks " + ", ".join(repr(m) for m in miss))
            if c.expect == "ok" and r.code == 0 and c.words:
                miss = words_missing(c.words, r.stdout + r.stderr)
                if miss:
                    problems.append("output lacks " + ", ".join(repr(m) for m in miss))
            if "terminate called" in r.stderr:
                problems.append("std::terminate")
            if c.check and r.code in (0, 1, 2):
                why = c.check(ctx, r)
                if why:
                    problems.append(why)
        for p, h in before.items():
            after = tree_digest(p)
            if after != h:
                problems.append(f"lost/changed user file {os.path.relpath(p, d)} ({h.split(':')[0]} -> {after.split(':')[0]})")
        return Outcome(c, "FAIL" if problems else "PASS", "; ".join(problems), r)
    except Exception as e:  # a setup failure is the harness's, reported as such
        return Outcome(c, "FAIL", f"harness error in setup: {type(e).__name__}: {e}", None)
    finally:
        if ctx.mounted:
            umount(ctx.mounted)


def copy_where_nobody_reaches(binary: str, scratch: str) -> str:
    """Copy the binary, the gpt2_tiny fixture and GPT-2's ranks into the (0755) scratch dir: the unprivileged
    cases run as uid 65534, which cannot reach them inside a checkout made under a 0700 directory (mktemp -d)."""
    copied = os.path.join(scratch, "bin", "tapegrad")
    os.makedirs(os.path.dirname(copied))
    shutil.copy2(binary, copied)
    table.FIXTURE = shutil.copytree(table.FIXTURE, os.path.join(scratch, "fixture-gpt2_tiny"))
    os.makedirs(os.path.join(scratch, "fixture-ranks"))
    table.TIKTOKEN = shutil.copy2(table.TIKTOKEN, os.path.join(scratch, "fixture-ranks", "gpt2.tiktoken"))
    return copied


def make_shared(binary: str, scratch: str, args) -> dict:
    S = os.path.join(scratch, "shared")
    os.makedirs(S)
    write(os.path.join(S, "text.txt"), TEXT)
    rows = ["Source\tTarget"]
    for i in range(40):
        op, a, b = ["MAX", "MIN"][i % 2], i % 10, (i * 7) % 10
        rows.append(f"( [{op} {a} {b} ] )\t{max(a, b) if op == 'MAX' else min(a, b)}")
    write(os.path.join(S, "train.tsv"), "\n".join(rows) + "\n")
    G, E = os.path.join(S, "gpt"), os.path.join(S, "enc")
    for argv in (gt(out=G, data=os.path.join(S, "text.txt")), et(out=E, data=os.path.join(S, "train.tsv"))):
        r = run_cmd(binary, argv, 60, args.rlimit_gb << 30, False, S)
        if r.code != 0:
            sys.exit(f"hostile sweep: cannot make the shared checkpoints: tapegrad {' '.join(argv)} -> exit {r.code} "
                     f"signal {r.sig}\n{r.stderr}")
    vocab = json.load(open(os.path.join(G, "tokenizer.json")))["bytes"]
    ids = [vocab.index(b) for b in TEXT.encode()]
    write(os.path.join(S, "tokens.bin"), struct.pack(f"<{len(ids)}H", *ids))
    for root, dirs, files in os.walk(scratch):
        for n in dirs:
            os.chmod(os.path.join(root, n), 0o755)
        for n in files:
            os.chmod(os.path.join(root, n), 0o644)
    return {"S": S, "G": G, "E": E}


def write_failures(path: str, outcomes: list, binary: str):
    """The failing cases grouped by class: the command, what happened, the message in full."""
    lines = [f"hostile sweep failures against {binary} ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
             "placeholders: {d} the case's scratch dir, {S} shared inputs (text.txt, train.tsv, tokens.bin),",
             "{G} a tiny trained GPT checkpoint, {E} a tiny encoder checkpoint, {FIX} tests/models/fixtures/gpt2_tiny, {TIK} tests/models/fixtures/gpt2.tiktoken,",
             "{full} a full 32 KiB tmpfs; setup is in tools/hostile_sweep.py under the case's name", ""]
    classes: dict[str, list] = {}
    for o in outcomes:
        if o.verdict == "FAIL":
            classes.setdefault(o.case.cls, []).append(o)
    for cls, items in classes.items():
        lines.append(f"== {cls}: {len(items)} failing")
        for o in items:
            r = o.result
            ex = "-" if r is None else (f"signal {signal.Signals(r.sig).name}" if r.sig else
                                        ("hang" if r.code is None else f"exit {r.code}"))
            msg = " | ".join(l.strip() for l in (r.stderr if r else "").splitlines() if l.strip() and not PROGRESS.search(l))
            lines.append(f"- {o.case.name}: {ex}; {o.why}")
            lines.append(f"    tapegrad {' '.join(repr(a) if (not a or ' ' in a) else a for a in o.case.argv)}")
            lines.append(f"    stderr: {msg[:400] if msg else '(nothing)'}")
        lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))
