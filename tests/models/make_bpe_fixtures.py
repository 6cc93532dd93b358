#!/usr/bin/env python3
"""Writes the byte-level BPE parity fixtures of tests/models/test_bpe*.cpp (the C++ tests never
need Python). Run from anywhere: it makes its own venv (default /tmp/tapegrad-bpe-venv) with
PyPI's tokenizers, tiktoken and openai-whisper's sdist (only for its asset gpt2.tiktoken,
GPT-2's real ranks; no torch), then re-runs itself there.

Writes, in tests/models/fixtures/:
  gpt2.tiktoken            GPT-2's 50,256 ranks, copied from whisper/assets/gpt2.tiktoken
  bpe_shakespeare.json     a byte-level BPE of 1,000 tokens trained by HF's BpeTrainer on
                           data/tinyshakespeare.txt, with <|endoftext|> as a special token
  bpe_parity.json          the stress texts and their ids:
    tiktoken          tiktoken Encoding(gpt2 ranks, gpt2 pattern).encode_ordinary
    tiktoken_cl100k   the same ranks pre-tokenized by cl100k_base's pattern
    tiktoken_o200k    the same ranks pre-tokenized by o200k_base's pattern
    hf_gpt2           HF tokenizers: BPE(vocab and merges from the ranks, merges as
                      transformers' TikTokenConverter derives them), ByteLevel pre-tokenizer
    hf_shakespeare    HF tokenizers with bpe_shakespeare.json, encode(text).ids
    hf_shakespeare_split  the same with Sequence[Split(cl100k regex), ByteLevel(use_regex=False)]
    hf_shakespeare_prefix the same with ByteLevel(add_prefix_space=True)
  plus, for all of data/tinyshakespeare.txt, the count and FNV-1a hash of tiktoken's ids.

`--check PATH`: loads a tokenizer.json written by tapegrad in HF tokenizers and prints its ids
for the stress texts against tiktoken's (a check of the writer, not a fixture).
"""
import base64
import glob
import json
import os
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(HERE, "fixtures")
VENV = os.environ.get("TAPEGRAD_BPE_VENV", "/tmp/tapegrad-bpe-venv")

STRESS = [
    "Hello world",
    "I'm sure you're right; they'll say we've done it, and she'd've said it's his.",
    "DON'T SHOUT: I'M HERE, YOU'RE THERE, WE'LL SEE, IT'S 'quoted' 'tis",
    "Numbers 0 7 42 123 1234 12345 3.14159 2,718,281 1e-10 0x1F 007 31415926535897932384626433832795",
    "spaces:  two   three    four     five      end  ",
    "tabs\tone\t\ttwo\t\t\tthree \t mixed\t \n",
    "lines\none\n\ntwo\n\n\nthree\r\nwindows\r\n\r\n  indented\n    more\n",
    "   leading spaces and trailing   ",
    "\n\n\n",
    "Café naïve façade résumé coöperate Ærøskøbing Straße crème brûlée",
    "Привет, мир! Съешь же ещё этих мягких французских булок.",
    "Γειά σου Κόσμε· Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.",
    "你好，世界！我能吞下玻璃而不伤身体。日本語のテキストです。한국어 텍스트",
    "مرحبا بالعالم، أنا أستطيع أكل الزجاج",
    "नमस्ते दुनिया, मैं काँच खा सकता हूँ",
    "สวัสดีชาวโลก ฉันกินกระจกได้",
    "emoji 😀 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷 ❤️ 🧑🏿‍🚀",
    "combining: e\u0301 a\u0308 n\u0303 o\u0302\u0323 Z\u0351\u0352\u0353 \u0915\u094d\u0937",
    "mixed: abc123def 3rd 1st 2nd CamelCaseWord snake_case_word kebab-case-word",
    "punct!!! ??? ... --- *** ### $$$ @@@ (((nested))) [x] {y} <z> \"quotes\" `tick`",
    "code: for (int i = 0; i < n; ++i) { x[i] += y[i] * 2; } // comment",
    "url https://example.com/path?q=1&r=2#frag and email a.b@c.de",
    "ſ and K and İstanbul ǅ ǈ ǋ",
    "\u00a0nbsp\u2003em space\u3000ideographic\u200bzero width",
    "<|endoftext|> is ordinary text to encode_ordinary<|endoftext|>",
    "",
    "a",
    " ",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "ROMEO:\nBut, soft! what light through yonder window breaks?\nIt is the east, and Juliet is the sun.\n",
]

# tiktoken_ext/openai_public.py's cl100k_base and o200k_base patterns (written out: asking
# tiktoken for the encodings would download their ranks).
O200K = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])
CL100K = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""


def ensure_venv():
    py = os.path.join(VENV, "bin", "python")
    if os.path.abspath(sys.prefix) == os.path.abspath(VENV):
        return
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
    subprocess.check_call([py, "-m", "pip", "install", "-q", "tokenizers", "tiktoken"])
    os.execv(py, [py] + sys.argv)


def gpt2_ranks_file():
    """whisper/assets/gpt2.tiktoken from openai-whisper's sdist, downloaded without its deps."""
    dest = os.path.join(VENV, "whisper-sdist")
    found = glob.glob(os.path.join(dest, "**", "gpt2.tiktoken"), recursive=True)
    if not found:
        os.makedirs(dest, exist_ok=True)
        subprocess.check_call([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                               "openai-whisper", "-d", dest])
        for archive in glob.glob(os.path.join(dest, "*.tar.gz")):
            with tarfile.open(archive) as t:
                t.extractall(dest, filter="data")
        found = glob.glob(os.path.join(dest, "**", "gpt2.tiktoken"), recursive=True)
    return found[0]


def read_ranks(path):
    ranks = {}
    for line in open(path, "rb").read().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def bpe_parts(ranks, token, max_rank):
    """tiktoken's merge loop on `token` using only ranks below max_rank (TikTokenConverter's)."""
    parts = [bytes([b]) for b in token]
    while True:
        best = None
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < max_rank and (best is None or r < best[0]):
                best = (r, i)
        if best is None:
            return parts
        i = best[1]
        parts = parts[:i] + [parts[i] + parts[i + 1]] + parts[i + 2:]


def hf_from_ranks(ranks):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    u = bytes_to_unicode()
    show = lambda b: "".join(u[x] for x in b)
    vocab = {show(t): r for t, r in ranks.items()}
    merges = []
    for t, r in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(t) > 1:
            parts = bpe_parts(ranks, t, r)
            if len(parts) == 2:
                merges.append((show(parts[0]), show(parts[1])))
    tok = Tokenizer(models.BPE(vocab, merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return tok


def fnv1a(ids):
    h = 0xCBF29CE484222325
    for i in ids:
        for b in int(i).to_bytes(4, "little"):
            h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def main():
    ensure_venv()
    import tiktoken
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from tiktoken_ext import openai_public

    os.makedirs(FIXTURES, exist_ok=True)
    src = gpt2_ranks_file()
    ranks = read_ranks(src)
    gpt2 = tiktoken.Encoding("gpt2-local", pat_str=openai_public.r50k_pat_str, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 50256})
    if "--check" in sys.argv:
        written = Tokenizer.from_file(sys.argv[sys.argv.index("--check") + 1])
        bad = 0
        for text in STRESS:
            a, b = written.encode(text).ids, gpt2.encode_ordinary(text)
            bad += a != b
            print("ok  " if a == b else "DIFF", repr(text[:40]))
        sys.exit(1 if bad else 0)

    with open(src, "rb") as f, open(os.path.join(FIXTURES, "gpt2.tiktoken"), "wb") as g:
        g.write(f.read())
    cl100k = tiktoken.Encoding("cl100k-pattern", pat_str=CL100K, mergeable_ranks=ranks, special_tokens={})
    o200k = tiktoken.Encoding("o200k-pattern", pat_str=O200K, mergeable_ranks=ranks,
                              special_tokens={})
    hf_gpt2 = hf_from_ranks(ranks)

    shakespeare_path = os.path.join(ROOT, "data", "tinyshakespeare.txt")
    trained = Tokenizer(models.BPE())
    trained.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trained.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    trained.train([shakespeare_path], trainer)
    trained_path = os.path.join(FIXTURES, "bpe_shakespeare.json")
    trained.save(trained_path)
    spec = json.load(open(trained_path))
    spec["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": CL100K}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    split = Tokenizer.from_str(json.dumps(spec))
    spec["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    prefixed = Tokenizer.from_str(json.dumps(spec))

    cases = []
    for text in STRESS + ["Two texts<|endoftext|>joined by the special token<|endoftext|>"]:
        case = {"text": text,
                "tiktoken": gpt2.encode_ordinary(text),
                "tiktoken_cl100k": cl100k.encode_ordinary(text),
                "tiktoken_o200k": o200k.encode_ordinary(text),
                "hf_gpt2": hf_gpt2.encode(text).ids,
                "hf_shakespeare": trained.encode(text).ids,
                "hf_shakespeare_split": split.encode(text).ids,
                "hf_shakespeare_prefix": prefixed.encode(text).ids}
        if case["tiktoken"] != case["hf_gpt2"]:
            print("note: tiktoken and HF differ on", repr(text))
        cases.append(case)
    shakespeare = open(shakespeare_path, encoding="utf-8").read()
    ids = gpt2.encode_ordinary(shakespeare)
    out = {"source": "made by tests/models/make_bpe_fixtures.py", "cases": cases,
           "tinyshakespeare": {"count": len(ids), "fnv1a": "%016x" % fnv1a(ids)}}
    with open(os.path.join(FIXTURES, "bpe_parity.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
    print("wrote", FIXTURES, "tinyshakespeare:", len(ids), "tokens")


if __name__ == "__main__":
    main()
