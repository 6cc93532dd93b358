"""bench/compare's JAX worker: answers the driver's requests (see worker.py) with jax.jit'ed
functions: the whole train step (value_and_grad, clipping, AdamW) in one jit with donated
buffers; generation with a jit'ed one-token step over a fixed-size KV cache (without the cache:
a jit'ed forward over the last block_size tokens, padded, as static shapes want). The first
call of each (compile) is a warm-up step, never a timed one. Threads: the driver runs a
one-thread worker on one core (taskset) with XLA's thread pool cut to 1 (XLA_FLAGS)."""
import functools
import json
import os
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from compare_py import data  # noqa: E402
from compare_py import jax_llama as L  # noqa: E402
from compare_py import jax_models as M  # noqa: E402
from compare_py.safetensors_io import read_safetensors  # noqa: E402
from compare_py.worker import builder_for, reply_of, rss_peak_growth, serve, time_steps  # noqa: E402

THREADS = int(os.environ.get("TG_COMPARE_THREADS", "0")) or os.cpu_count()


def block(value):
    jax.block_until_ready(value)


def loss_value(value):
    return float(value)


def build_train(kind, c):
    key = jax.random.PRNGKey(1337)
    # tapegrad's initial weights, when given: GPT-2's layout or transformers' Llama names
    init = read_safetensors(os.path.join(c["init_from"], "model.safetensors")) if c.get("init_from") else None
    if kind == "gpt_train":
        tokens, vocab = data.char_tokens(c["data"])
        params = M.gpt_from_gpt2(init, c["n_layer"]) if init else M.gpt_init(key, vocab, **c)
        loss_fn = functools.partial(M.gpt_loss, H=c["n_head"], checkpointing=c.get("checkpointing", False))
        batches = data.gpt_batches(tokens, c["batches"], c["batch_size"], c["block_size"])
    elif kind == "llama_train":
        tokens, vocab = data.char_tokens(c["data"])
        params = L.llama_from_hf(init, vocab, c) if init else L.llama_init(key, vocab, c)
        loss_fn = functools.partial(L.llama_loss, c=c, rope=L.rope_tables(c))
        batches = data.gpt_batches(tokens, c["batches"], c["batch_size"], c["block_size"])
    else:
        params = M.encoder_init(key, **c)
        loss_fn = lambda p, x, y: M.cross_entropy(M.encoder_logits(p, x, c["n_head"]), y)  # noqa: E731
        batches = data.encoder_batches(c["batches"], c["batch_size"], c["block_size"], c["vocab_size"], c["n_classes"])
    pool = [(jnp.array(x, jnp.int32), jnp.array(y, jnp.int32)) for x, y in batches]
    lr, wd, clip = c.get("lr", 1e-3), c.get("weight_decay", 0.1), c.get("grad_clip", 1.0)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def train_step(p, s, x, y):
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        p, s = M.adamw_update(p, M.clip_by_global_norm(g, clip), s, lr=lr, wd=wd)
        return p, s, loss

    state = [params, M.adamw_init(params)]
    n = M.count(params)

    def step(i):
        x, y = pool[i % len(pool)]
        state[0], state[1], loss = train_step(state[0], state[1], x, y)
        return loss
    return step, loss_value, n


def decoder_for_generation(kind, c):
    """-> (params, prefill(p, window [1, P]) -> (last logits, cache), decode(p, cache, tok, pos) ->
    (logits, cache), hidden(p, window) -> final norm's output [1, P, C], head(p) -> [V, C], an
    empty cache) of the GPT or the Llama."""
    key = jax.random.PRNGKey(1337)
    if kind == "llama_generate":
        rope = L.rope_tables(c)
        return (L.llama_init(key, c["vocab_size"], c), lambda p, w: L.llama_prefill(p, w, c, rope),
                lambda p, cache, tok, pos: L.llama_decode_step(p, cache, tok, pos, c, rope),
                lambda p, w: L.llama_hidden(p, w, c, rope), lambda p: p["lm_head.weight"], L.empty_cache(c))
    H, P, C = c["n_head"], c["block_size"], c["n_embd"]
    empty = [(jnp.zeros((1, P, H, C // H)), jnp.zeros((1, P, H, C // H))) for _ in range(c["n_layer"])]
    return (M.gpt_init(key, c["vocab_size"], **c), lambda p, w: M.gpt_prefill(p, w, H),
            lambda p, cache, tok, pos: M.gpt_decode_step(p, cache, tok, pos, H),
            lambda p, w: M.gpt_hidden(p, w, H), lambda p: p["wte"], empty)


def build_generate(kind, c):
    P, new_tokens = c["block_size"], c["new_tokens"]
    params, prefill_fn, decode_fn, hidden_fn, head_fn, empty = decoder_for_generation(kind, c)

    def sample(logits, key):
        key, sub = jax.random.split(key)
        return jax.random.categorical(sub, logits, axis=-1).astype(jnp.int32), key

    @jax.jit
    def decode(p, cache, tok, pos, key):  # the KV cache's step
        logits, cache = decode_fn(p, cache, tok, pos)
        return (*sample(logits, key), cache)

    @jax.jit
    def prefill(p, window, key):  # refill the cache from the last P tokens
        logits, cache = prefill_fn(p, window)
        return (*sample(logits, key), cache)

    @jax.jit
    def full(p, window, n, key):  # no cache: the whole (padded) window, logits at position n-1
        h = hidden_fn(p, window)
        logits = jax.lax.dynamic_index_in_dim(h, jnp.minimum(n, P) - 1, axis=1, keepdims=False) @ head_fn(p).T
        return sample(logits, key)

    @jax.jit
    def push(window, tok, n):  # window [1, P] of the last tokens; n tokens so far
        shifted = jnp.concatenate([window[:, 1:], tok[:, None]], axis=1)
        return jnp.where(n < P, window.at[0, jnp.minimum(n, P - 1)].set(tok[0]), shifted)

    def step(i):
        key = jax.random.PRNGKey(7)
        tok = jnp.zeros((1,), jnp.int32)  # the one-token prompt
        window, n = push(jnp.zeros((1, P), jnp.int32), tok, 0), 1
        cache, length = empty, 0
        for _ in range(new_tokens):
            if not c["kv_cache"]:
                tok, key = full(params, window, n, key)
            elif length == P:
                tok, key, cache = prefill(params, window, key)
            else:  # the prompt's token (length 0) or the newest one, at position `length`
                tok, key, cache = decode(params, cache, tok, length, key)
            length = P if length == P else length + 1
            window, n = push(window, tok, n), n + 1
        return window
    return step, block, M.count(params)


def build_mha(kind, c):
    B, T, C, H = c["batch_size"], c["seq_len"], c["n_embd"], c["n_head"]
    k = jax.random.split(jax.random.PRNGKey(1337), 4)
    layer = dict(in_w=M.normal(k[0], (C, 3 * C), 0.02), in_b=jnp.zeros(3 * C),
                 out_w=M.normal(k[1], (C, C), 0.02), out_b=jnp.zeros(C))
    x, dy = jax.random.normal(k[2], (B, T, C)), jax.random.normal(k[3], (B, T, C))
    grad = jax.jit(jax.grad(lambda l, x: jnp.sum(M.mha_forward(l, x, H) * dy), argnums=(0, 1)))
    return (lambda i: grad(layer, x)), block, M.count(layer)


def build_op(kind, c):
    """The op forward and backward, returning the output and the input gradients, as the PyTorch
    worker's y = f(x); y.backward(dy) and tapegrad's leave both behind. dy is an argument, not a
    constant the compiler sees; without y among the results XLA would never write the output
    (only dx = dy·f'(x)), a third less memory traffic than the other two frameworks do."""
    shape = tuple(c["shape"])
    k = jax.random.split(jax.random.PRNGKey(1), 2)
    x, dy = jax.random.normal(k[0], shape), jax.random.normal(k[1], shape)
    if kind == "cross_entropy":  # the loss and dlogits, from the scalar loss's gradient of 1
        target = jnp.array([(i * 7) % shape[1] for i in range(shape[0])], jnp.int32)
        g = jax.jit(jax.value_and_grad(lambda x, t: M.cross_entropy(x, t)))
        return (lambda i: g(x, target)), block, 0
    if kind == "layer_norm":
        w, b = jnp.ones(shape[-1]), jnp.zeros(shape[-1])

        def y_and_grads(x, w, b, dy):
            y, vjp = jax.vjp(M.layer_norm, x, w, b)
            return y, vjp(dy)
        g = jax.jit(y_and_grads)
        return (lambda i: g(x, w, b, dy)), block, 0
    f = (lambda x: jax.nn.softmax(x, axis=-1)) if kind == "softmax" else (lambda x: jax.nn.gelu(x, approximate=True))

    def y_and_dx(x, dy):
        y, vjp = jax.vjp(f, x)
        return y, vjp(dy)[0]
    g = jax.jit(y_and_dx)
    return (lambda i: g(x, dy)), block, 0


def build_adamw(kind, c):
    params = M.gpt_init(jax.random.PRNGKey(1337), c["vocab_size"], **c)
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(2), len(leaves))
    grads = jax.tree_util.tree_unflatten(tree, [1e-3 * jax.random.normal(k, l.shape) for k, l in zip(keys, leaves)])
    update = jax.jit(functools.partial(M.adamw_update, lr=1e-3, wd=0.1), donate_argnums=(0, 2))
    state = [params, M.adamw_init(params)]
    n = M.count(params)

    def step(i):
        state[0], state[1] = update(state[0], grads, state[1])
        return state[0]
    return step, block, n


STATE = {}  # (workload, config) -> (step, sync, params): jit caches live across rounds


def run(request):
    kind, c = request["workload"], request.get("config", {})
    key = (kind, json.dumps(c, sort_keys=True))
    fresh = key not in STATE
    if fresh:
        STATE[key] = builder_for(kind, build_train, build_generate, build_mha, build_op, build_adamw)(kind, c)
    step, sync, params = STATE.pop(key) if c.get("init_from") else STATE[key]  # from a checkpoint: one run only
    times, first, last, first_s, values = time_steps(request, step, sync)
    extra = dict(jax=jax.__version__)
    if fresh:
        extra["compile_s"] = first_s
    reply = reply_of(times, params, first, last, values, **extra)
    reply["threads"] = THREADS
    if request.get("memory"):
        reply["rss_peak_bytes"] = rss_peak_growth(lambda: sync(step(0)))  # one more, untimed step
    return reply


if __name__ == "__main__":
    serve(run)
