#!/usr/bin/env python3
"""servesim attention timings with torch.nn.functional.scaled_dot_product_attention (bf16).

Usage:
  python3 attn_bench.py --model CONFIG.json --tp N --out attention.csv
      [--iters 20] [--reps 15] [--warmup 5] [--timing graph|eager] [--prefill-batch 1]
      [--prefill-q 128,256,...,32768] [--prefill-ctx 0,1024,4096,16384] [--prefill-max-tokens 40960]
      [--decode-batch 1,4,16,64,128,256] [--decode-ctx 256,1024,4096,16384,32768]
      [--decode-mixed "256:8,4096:8;..."] [--mixed-mode groups|pad] [--max-kv-bytes 16G]
      [--no-rotate] [--device 0]

Heads per rank come from the Hugging Face config.json and --tp: hq = num_attention_heads/tp,
hkv = num_key_value_heads/tp (1 when there are fewer KV heads than ranks), head_dim (default
hidden_size/num_attention_heads). GQA uses enable_gqa=True where PyTorch supports it; otherwise K/V
are expanded to hq heads with repeat_interleave BEFORE timing (noted in the CSV comments).

What is timed:
  prefill  batch B, a chunk of q_len query tokens per sequence attending causally to ctx_len prior
           cached tokens plus the chunk itself. ctx_len = 0: is_causal=True. ctx_len > 0: an explicit
           boolean mask (query i sees keys j <= ctx_len + i), because is_causal aligns the causal
           diagonal to the top-left corner when q_len != kv_len. PyTorch picks the kernel, and an
           explicit mask rules out the flash backend, so chunked rows may use another kernel.
  decode   one query token per sequence, batch B, ctx_len cached tokens per sequence.
           Mixed-length batches (--decode-mixed "L1:n1,L2:n2;..." = n1 sequences of L1 tokens and
           n2 of L2; ';' separates batches) are timed by --mixed-mode:
             groups (default): one SDPA call per distinct length, issued back to back; the row's
                     time is the whole batch (all groups).
             pad: one call over the batch padded to the longest length, with a key-padding mask.
           Mixed rows report ctx_len = mean cached length (rounded) and kv_total = exact sum.

Method: random normal inputs. Unless --no-rotate, several copies of Q/K/V are rotated so the bytes
touched between two uses of the same copy exceed 2x the L2 size (each layer has its own KV cache).
  --timing graph (default): after --warmup untimed calls on a side stream, --iters back-to-back calls,
      rounded up to a multiple of the number of copies (so the rotation runs on across replays), are
      captured into a torch.cuda.CUDAGraph; after 2 untimed replays, each repetition times one
      g.replay() between two CUDA events. This is the GPU-side time per call, as in an engine that runs
      decode under CUDA graphs. If capture raises, the row is timed eagerly with a warning, and the
      "# timing:" comment line lists it.
  --timing eager: after --warmup untimed calls, each repetition records a CUDA event, issues --iters
      back-to-back calls from Python, records another event. Calls shorter than the host's launch time
      (small decode) then measure the launch rate of Python + PyTorch, not the kernel.
Time per call = elapsed / calls. Rows hold median/min/max over --reps.

Output CSV ("# key: value" comment lines first, "# timing: ..." last):
  op,batch,q_len,ctx_len,kv_total,hq,hkv,head_dim,dtype,median_us,min_us,max_us
  prefill: kv_total = batch*(ctx_len+q_len); decode: q_len = 1, kv_total = sum of cached tokens.
"""
import argparse
import json
import statistics
import sys


def parse_size(text):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = text.strip().upper().rstrip("B")
    if t and t[-1] in mult:
        return int(float(t[:-1]) * mult[t[-1]])
    return int(t)


def int_list(text):
    return [int(x) for x in text.split(",") if x.strip()]


def parse_mixed(text):
    """'256:8,4096:8;1024:4' -> [[(256, 8), (4096, 8)], [(1024, 4)]]"""
    batches = []
    for spec in text.split(";"):
        spec = spec.strip()
        if not spec:
            continue
        groups = []
        for part in spec.split(","):
            length, count = part.split(":")
            groups.append((int(length), int(count)))
        batches.append(groups)
    return batches


def load_heads(path, tp):
    with open(path) as f:
        cfg = json.load(f)
    cfg = cfg.get("text_config", cfg) if "num_attention_heads" not in cfg else cfg
    heads = int(cfg["num_attention_heads"])
    kv = int(cfg.get("num_key_value_heads") or heads)
    head_dim = cfg.get("head_dim") or int(cfg["hidden_size"]) // heads
    if heads % tp:
        sys.exit(f"error: tp={tp} does not divide num_attention_heads={heads}")
    if kv >= tp and kv % tp:
        sys.exit(f"error: tp={tp} does not divide num_key_value_heads={kv}")
    return heads // tp, (kv // tp if kv >= tp else 1), int(head_dim)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--tp", type=int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--timing", choices=["graph", "eager"], default="graph",
                    help="graph: replay a CUDA graph of the calls (GPU-side time); eager: issue them from Python")
    ap.add_argument("--prefill-batch", type=int, default=1)
    ap.add_argument("--prefill-q", type=int_list, default=[2 ** i for i in range(7, 16)])
    ap.add_argument("--prefill-ctx", type=int_list, default=[0, 1024, 4096, 16384])
    ap.add_argument("--prefill-max-tokens", type=int, default=40960, help="skip prefill rows with ctx+q above this")
    ap.add_argument("--decode-batch", type=int_list, default=[1, 4, 16, 64, 128, 256])
    ap.add_argument("--decode-ctx", type=int_list, default=[256, 1024, 4096, 16384, 32768])
    ap.add_argument("--decode-mixed", type=parse_mixed,
                    default=parse_mixed("256:8,4096:8;1024:48,16384:4;128:64,2048:32,8192:8"))
    ap.add_argument("--mixed-mode", choices=["groups", "pad"], default="groups")
    ap.add_argument("--max-kv-bytes", type=parse_size, default=16 << 30,
                    help="skip shapes whose K+V (one copy) exceed this")
    ap.add_argument("--no-rotate", action="store_true")
    ap.add_argument("--device", type=int, default=0)
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F

    if not torch.cuda.is_available():
        sys.exit("error: torch sees no CUDA device")
    torch.cuda.set_device(args.device)
    dev = torch.device("cuda", args.device)
    dtype = torch.bfloat16
    elt = 2
    hq, hkv, d = load_heads(args.model, args.tp)
    props = torch.cuda.get_device_properties(dev)
    l2 = int(getattr(props, "L2_cache_size", 0) or (50 << 20))

    # Does this PyTorch accept enable_gqa=True?
    gqa_native = True
    try:
        t = torch.randn(1, hq, 4, d, device=dev, dtype=dtype)
        kt = torch.randn(1, hkv, 4, d, device=dev, dtype=dtype)
        F.scaled_dot_product_attention(t, kt, kt, enable_gqa=True)
    except (TypeError, RuntimeError):
        gqa_native = False
    kw = {"enable_gqa": True} if (gqa_native and hq != hkv) else {}

    # Never time PyTorch's unfused "math" fallback (it materialises the whole score matrix): engines run fused
    # kernels. With math disabled, a shape no fused kernel takes raises instead of being timed slowly.
    try:
        torch.backends.cuda.enable_math_sdp(False)
    except AttributeError:
        pass

    def full_kv(sets):
        # Masked calls: the fused kernels that accept a mask do not broadcast GQA heads, so expand K/V up front
        # (outside the timed region) and call without enable_gqa.
        if hq == hkv:
            return sets
        g = hq // hkv
        return [(q, k if k.shape[1] == hq else k.repeat_interleave(g, dim=1),
                 v if v.shape[1] == hq else v.repeat_interleave(g, dim=1)) for q, k, v in sets]

    def expand_kv(x):
        return x if (gqa_native or hq == hkv) else x.repeat_interleave(hq // hkv, dim=1)

    def n_copies(bytes_per_copy):
        if args.no_rotate:
            return 1
        want = (2 * l2) // max(bytes_per_copy, 1) + 1
        cap = max(1, args.max_kv_bytes // max(bytes_per_copy, 1))
        return int(max(1, min(want, cap, 64)))

    def make_qkv(batch, q_len, kv_len, copies):
        sets = []
        for _ in range(copies):
            q = torch.randn(batch, hq, q_len, d, device=dev, dtype=dtype)
            k = expand_kv(torch.randn(batch, hkv, kv_len, d, device=dev, dtype=dtype))
            v = expand_kv(torch.randn(batch, hkv, kv_len, d, device=dev, dtype=dtype))
            sets.append((q, k, v))
        return sets

    graph_warmup_replays = 2
    fallbacks = []  # rows timed eagerly because their CUDA graph could not be captured

    def timed_repetitions(repetition, calls):
        """Runs repetition() args.reps times between two CUDA events; returns the us per call of each."""
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        per_call = []
        for _ in range(args.reps):
            start.record()
            repetition()
            stop.record()
            stop.synchronize()
            per_call.append(1000.0 * start.elapsed_time(stop) / calls)
        return per_call

    def eager_times(call, n_sets):
        counter = [0]

        def step():
            call(counter[0] % n_sets)
            counter[0] += 1

        def repetition():
            for _ in range(args.iters):
                step()

        for _ in range(args.warmup):
            step()
        torch.cuda.synchronize()
        return timed_repetitions(repetition, args.iters)

    def graph_times(call, n_sets):
        calls = -(-args.iters // n_sets) * n_sets
        # Warm-up on a side stream before capture, as PyTorch's CUDA graph documentation asks.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for i in range(args.warmup):
                call(i % n_sets)
        torch.cuda.current_stream().wait_stream(side)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for i in range(calls):
                call(i % n_sets)
        for _ in range(graph_warmup_replays):
            g.replay()
        torch.cuda.synchronize()
        return timed_repetitions(g.replay, calls)

    def time_calls(call, n_sets, row_name):
        """call(i) issues one timed unit using tensor set i (0 <= i < n_sets); returns (median, min, max) in us."""
        per_call = None
        if args.timing == "graph":
            try:
                per_call = graph_times(call, n_sets)
            except Exception as e:  # whatever made capture fail: time this row eagerly instead
                torch.cuda.synchronize()
                reason = (str(e).splitlines() or [""])[0]
                print(f"warning: {row_name}: no CUDA graph ({type(e).__name__}: {reason}); timed eagerly",
                      file=sys.stderr)
                fallbacks.append(row_name)
        if per_call is None:
            per_call = eager_times(call, n_sets)
        return statistics.median(per_call), min(per_call), max(per_call)

    head = ["# servesim attn_bench.py: torch.nn.functional.scaled_dot_product_attention, bf16",
            f"# gpu: {props.name}",
            f"# torch: {torch.__version__}",
            f"# cuda_runtime: {torch.version.cuda}",
            f"# cudnn: {torch.backends.cudnn.version()}",
            f"# l2_bytes: {l2}",
            f"# heads: hq={hq} hkv={hkv} head_dim={d} tp={args.tp}",
            "# gqa: " + ("enable_gqa=True" if gqa_native else "repeat_interleave of K/V before timing"),
            "# prefill: ctx_len=0 uses is_causal=True; ctx_len>0 uses an explicit boolean causal mask",
            f"# decode mixed batches: mode={args.mixed_mode} "
            "(groups = one call per distinct length, back to back; pad = padded batch + key mask)"]
    rotation = "no rotation" if args.no_rotate else "inputs rotated over copies exceeding 2x L2"
    if args.timing == "graph":
        head.append(f"# method: torch.cuda.CUDAGraph of {args.iters} back-to-back calls (rounded up to a multiple of "
                    f"the input copies), replayed {graph_warmup_replays} times untimed, then once between two CUDA "
                    f"events per repetition (GPU-side time, no host launch gaps); time/call = elapsed/calls; "
                    f"median/min/max of {args.reps} repetitions after {args.warmup} warm-up calls on a side stream; "
                    f"random normal inputs; {rotation}")
    else:
        head.append(f"# method: CUDA events around {args.iters} back-to-back calls issued from Python "
                    f"(time/call = elapsed/{args.iters}; small calls show the host launch rate), median/min/max of "
                    f"{args.reps} repetitions after {args.warmup} warm-up calls; random normal inputs; {rotation}")
    for groups in args.decode_mixed:
        head.append("# mixed decode batch: " + " + ".join(f"{n}x{L}" for L, n in groups)
                    + f" (sequences x cached tokens) -> batch {sum(n for _, n in groups)}, "
                    f"kv_total {sum(L * n for L, n in groups)}")
    csv_rows = []

    def save():
        """Rewrites the whole file, so that it is complete after every row and "# timing:" names the fallbacks."""
        timing = "# timing: " + args.timing
        if fallbacks:
            timing += (f"; eager fallback (graph capture failed) for {len(fallbacks)} row(s): " + ", ".join(fallbacks))
        with open(args.out, "w") as f:
            f.write("\n".join(head + [timing, "op,batch,q_len,ctx_len,kv_total,hq,hkv,head_dim,dtype,median_us,"
                                               "min_us,max_us"] + csv_rows) + "\n")

    save()

    def write_row(op, batch, q_len, ctx_len, kv_total, stats):
        med, lo, hi = stats
        csv_rows.append(f"{op},{batch},{q_len},{ctx_len},{kv_total},{hq},{hkv},{d},bf16,{med:.4f},{lo:.4f},{hi:.4f}")
        save()
        print(f"{op:8s} B={batch:<4d} q={q_len:<6d} ctx={ctx_len:<6d} kv_total={kv_total:<8d} median {med:10.2f} us")

    def kv_bytes(batch, kv_len):
        return 2 * batch * hkv * kv_len * d * elt

    # ---- prefill ----
    B = args.prefill_batch
    for ctx in args.prefill_ctx:
        for q_len in args.prefill_q:
            kv_len = ctx + q_len
            if kv_len > args.prefill_max_tokens or kv_bytes(B, kv_len) > args.max_kv_bytes:
                continue
            per_copy = kv_bytes(B, kv_len) + B * hq * q_len * d * elt
            sets = make_qkv(B, q_len, kv_len, n_copies(per_copy))
            if ctx == 0:
                def call(i, sets=sets):
                    q, k, v = sets[i]
                    F.scaled_dot_product_attention(q, k, v, is_causal=True, **kw)
            else:
                # Causal, aligned to the bottom right: query j sees the ctx cached tokens and chunk tokens <= j.
                try:
                    from torch.nn.attention.bias import causal_lower_right
                    mask = causal_lower_right(q_len, kv_len)
                except ImportError:
                    rows = torch.arange(q_len, device=dev).unsqueeze(1)
                    cols = torch.arange(kv_len, device=dev).unsqueeze(0)
                    mask = cols <= rows + ctx  # [q_len, kv_len], True = attend
                sets = full_kv(sets)

                def call(i, sets=sets, mask=mask):
                    q, k, v = sets[i]
                    F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            write_row("prefill", B, q_len, ctx, B * kv_len,
                      time_calls(call, len(sets), f"prefill batch={B} q_len={q_len} ctx_len={ctx}"))
            del sets
            torch.cuda.empty_cache()

    # ---- decode, uniform lengths ----
    for batch in args.decode_batch:
        for L in args.decode_ctx:
            if kv_bytes(batch, L) > args.max_kv_bytes:
                continue
            sets = make_qkv(batch, 1, L, n_copies(kv_bytes(batch, L)))

            def call(i, sets=sets):
                q, k, v = sets[i]
                F.scaled_dot_product_attention(q, k, v, **kw)
            write_row("decode", batch, 1, L, batch * L,
                      time_calls(call, len(sets), f"decode batch={batch} ctx_len={L}"))
            del sets
            torch.cuda.empty_cache()

    # ---- decode, mixed lengths ----
    for groups in args.decode_mixed:
        batch = sum(n for _, n in groups)
        kv_total = sum(L * n for L, n in groups)
        mean_ctx = int(round(kv_total / batch))
        mixed_name = "decode mixed " + "+".join(f"{n}x{L}" for L, n in groups)
        if args.mixed_mode == "groups":
            total_bytes = sum(kv_bytes(n, L) for L, n in groups)
            if total_bytes > args.max_kv_bytes:
                continue
            copies = n_copies(total_bytes)
            group_sets = [make_qkv(n, 1, L, copies) for L, n in groups]

            def call(i, group_sets=group_sets):
                for sets in group_sets:
                    q, k, v = sets[i]
                    F.scaled_dot_product_attention(q, k, v, **kw)
            stats = time_calls(call, copies, mixed_name)
            del group_sets
        else:
            lmax = max(L for L, _ in groups)
            if kv_bytes(batch, lmax) > args.max_kv_bytes:
                continue
            sets = make_qkv(batch, 1, lmax, n_copies(kv_bytes(batch, lmax)))
            lengths = torch.tensor([L for L, n in groups for _ in range(n)], device=dev)
            mask = (torch.arange(lmax, device=dev).unsqueeze(0) < lengths.unsqueeze(1)).view(batch, 1, 1, lmax)
            sets = full_kv(sets)

            def call(i, sets=sets, mask=mask):
                q, k, v = sets[i]
                F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            stats = time_calls(call, len(sets), mixed_name)
            del sets
        write_row("decode", batch, 1, mean_ctx, kv_total, stats)
        torch.cuda.empty_cache()

    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
