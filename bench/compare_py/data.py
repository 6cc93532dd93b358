"""The batches every framework trains on, built the same way in each (the C++ twin is in
bench/compare_tapegrad/workloads_train.cpp), as plain Python lists so that no framework is needed
to make them."""


def char_tokens(path):
    """The text's bytes as ids of its sorted distinct bytes (nanoGPT's shakespeare_char)."""
    with open(path, "rb") as f:
        text = f.read()
    vocab = sorted(set(text))
    index = {b: i for i, b in enumerate(vocab)}
    return [index[b] for b in text], len(vocab)


def gpt_batches(tokens, count, B, T):
    """count batches (x, y), each B rows of T ids; row b of batch j starts at
    ((j*B + b) * 104729) mod (N - T - 1); y is x shifted by one."""
    N = len(tokens)
    if N <= T + 1:
        raise ValueError(f"the text has {N} tokens, fewer than one block of {T} + 1")
    out = []
    for j in range(count):
        xs, ys = [], []
        for b in range(B):
            o = ((j * B + b) * 104729) % (N - T - 1)
            xs.append(tokens[o:o + T])
            ys.append(tokens[o + 1:o + T + 1])
        out.append((xs, ys))
    return out


def encoder_batches(count, B, T, V, n_classes):
    """count batches (ids [B][T], labels [B]): token (j, b, t) = ((j*B + b)*T + t) * 2654435761
    mod 2**32 mod V, label (j*B + b) mod n_classes."""
    out = []
    for j in range(count):
        xs = [[((((j * B + b) * T + t) * 2654435761) % (1 << 32)) % V for t in range(T)] for b in range(B)]
        ys = [(j * B + b) % n_classes for b in range(B)]
        out.append((xs, ys))
    return out
