"""Write a GGUF with the real Qwen2 tokenizer and random Q8_0 weights of the Qwen2.5-1.5B shapes.

Speed depends on the shapes and the quantisation, not on the values, so a file like this runs at the
speed of the real model (the text it writes is noise: label every figure from it "synthetic weights").
The tokenizer and chat template are copied from llama.cpp's `models/ggml-vocab-qwen2.gguf`, with the
`gguf` package of the same llama.cpp (`vendor/llama.cpp/gguf-py` in the llama-cpp-python sdist).

Weights: Q8_0 with normal values of std 0.02 (int8 codes of std 32 under one scale), norms 1, biases 0.
The output layer is tied to the token embedding, as in Qwen2.5-1.5B. The embedding rows of control
tokens and of tokens whose text is not printable ASCII are zero (`--all-tokens` keeps them random):
their logit is then 0, far below the top 40 of ~150k random logits, so sampling never picks an
end-of-generation token (every run generates exactly max_tokens) and every token streams as one
printable piece. The matrices keep their full size, so the work per token is unchanged.

    python make_synthetic_gguf.py --vocab-gguf .../ggml-vocab-qwen2.gguf --out qwen2.5-1.5b-synthetic-q8_0.gguf
"""
from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

QK8_0 = 32
STD = 0.02
CODE_STD = 32.0  # int8 codes ~ N(0, 32), clipped to +-127; scale d = STD / CODE_STD


def byte_decoder() -> dict[str, int]:
    """GPT-2 byte-level BPE: the printable character that stands for each byte, reversed."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def printable_ascii_mask(tokens: list[str], token_types: list[int]) -> np.ndarray:
    dec = byte_decoder()
    ok = np.zeros(len(tokens), dtype=bool)
    for i, (t, ty) in enumerate(zip(tokens, token_types)):
        if ty != 1 or not t:  # 1 = normal; control, user-defined and unused tokens are excluded
            continue
        try:
            raw = bytes(dec[c] for c in t)
        except KeyError:
            continue
        ok[i] = all(32 <= b < 127 or b in (9, 10) for b in raw)
    return ok


def q8_0(rng: np.random.Generator, rows: int, cols: int, zero_rows: np.ndarray | None = None) -> np.ndarray:
    """Random Q8_0 data for a (rows, cols) matrix, as the uint8 bytes GGUF stores (rows, cols/32*34)."""
    assert cols % QK8_0 == 0
    codes = rng.standard_normal((rows, cols), dtype=np.float32)
    codes *= CODE_STD
    np.rint(codes, out=codes)
    np.clip(codes, -127, 127, out=codes)
    q = codes.astype(np.int8).reshape(rows, cols // QK8_0, QK8_0)
    del codes
    d = np.full((rows, cols // QK8_0, 1), STD / CODE_STD, dtype=np.float16)
    if zero_rows is not None:
        q[zero_rows] = 0
        d[zero_rows] = 0
    blocks = np.concatenate([d.view(np.uint8), q.view(np.uint8)], axis=2)
    return blocks.reshape(rows, cols // QK8_0 * (2 + QK8_0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab-gguf", type=Path, required=True, help="llama.cpp's models/ggml-vocab-qwen2.gguf")
    ap.add_argument("--gguf-py", type=Path, help="path of llama.cpp's gguf-py, if `gguf` is not importable")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--hidden", type=int, default=1536)
    ap.add_argument("--layers", type=int, default=28)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=8960)
    ap.add_argument("--context", type=int, default=32768)
    ap.add_argument("--name", default="Qwen2.5-1.5B synthetic weights")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--all-tokens", action="store_true", help="keep every embedding row random")
    args = ap.parse_args()

    if args.gguf_py:
        sys.path.insert(0, str(args.gguf_py))
    import gguf

    t0 = time.perf_counter()
    reader = gguf.GGUFReader(args.vocab_gguf)
    fields = reader.fields
    tokens = list(fields["tokenizer.ggml.tokens"].contents())
    token_types = list(fields["tokenizer.ggml.token_type"].contents())
    n_vocab = len(tokens)
    head_dim = args.hidden // args.heads
    kv_dim = head_dim * args.kv_heads

    arch = "qwen2"
    w = gguf.GGUFWriter(args.out, arch)
    w.add_name(args.name)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    w.add_context_length(args.context)
    w.add_embedding_length(args.hidden)
    w.add_block_count(args.layers)
    w.add_feed_forward_length(args.ffn)
    w.add_head_count(args.heads)
    w.add_head_count_kv(args.kv_heads)
    w.add_rope_freq_base(1_000_000.0)
    w.add_layer_norm_rms_eps(1e-6)
    copied = []
    for key, field in fields.items():
        if key.startswith("GGUF.") or key.startswith("general.") or key.startswith(f"{arch}."):
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(key, field.contents(), vtype, sub)
        copied.append(key)

    ss = np.random.SeedSequence(args.seed)
    n_jobs = 1 + args.layers
    seeds = ss.spawn(n_jobs)

    zero = None if args.all_tokens else ~printable_ascii_mask(tokens, token_types)

    def embedding():
        return {"token_embd.weight": q8_0(np.random.default_rng(seeds[0]), n_vocab, args.hidden, zero)}

    def layer(i: int):
        rng = np.random.default_rng(seeds[1 + i])
        h, f = args.hidden, args.ffn
        p = f"blk.{i}."
        return {
            p + "attn_norm.weight": np.ones(h, dtype=np.float32),
            p + "attn_q.weight": q8_0(rng, h, h),
            p + "attn_q.bias": np.zeros(h, dtype=np.float32),
            p + "attn_k.weight": q8_0(rng, kv_dim, h),
            p + "attn_k.bias": np.zeros(kv_dim, dtype=np.float32),
            p + "attn_v.weight": q8_0(rng, kv_dim, h),
            p + "attn_v.bias": np.zeros(kv_dim, dtype=np.float32),
            p + "attn_output.weight": q8_0(rng, h, h),
            p + "ffn_norm.weight": np.ones(h, dtype=np.float32),
            p + "ffn_gate.weight": q8_0(rng, f, h),
            p + "ffn_up.weight": q8_0(rng, f, h),
            p + "ffn_down.weight": q8_0(rng, h, f),
        }

    with ThreadPoolExecutor(max_workers=8) as pool:
        parts = [pool.submit(embedding)] + [pool.submit(layer, i) for i in range(args.layers)]
        tensors = {}
        for p in parts:
            tensors.update(p.result())
    tensors["output_norm.weight"] = np.ones(args.hidden, dtype=np.float32)

    for name, arr in tensors.items():
        if arr.dtype == np.uint8:
            w.add_tensor(name, arr, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(name, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({size / 2**30:.2f} GiB, {len(tensors)} tensors, vocab {n_vocab}, "
          f"{int(zero.sum()) if zero is not None else 0} embedding rows zeroed, copied {len(copied)} tokenizer keys) "
          f"in {time.perf_counter() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    main()
