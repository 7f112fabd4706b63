"""PyTorch anchors at the kernels-gpu shapes (B*L = 16384, H = 16, D = 64), measured in the same
device call as our kernels: SDPA (bf16, fp32) dense, FlexAttention dense / window |i-j|<=256 /
BigBird-like block masks (bf16). Median ms from triton.testing.do_bench; prints JSON."""
import json, sys, time
import torch
import torch.nn.functional as F
from triton.testing import do_bench

out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "rows": []}
H, D, TOK = 16, 64, 16384
lengths = [int(x) for x in (sys.argv[1].split(",") if len(sys.argv) > 1 else ["1024", "4096", "16384"])]

def row(name, dtype, L, ms, density, extra=None):
    B = TOK // L
    flops = 4 * B * H * L * L * D * density
    r = {"what": name, "dtype": dtype, "L": L, "B": B, "ms": ms, "density": density, "tflops": flops / ms / 1e9}
    if extra: r.update(extra)
    out["rows"].append(r)
    print(json.dumps(r), flush=True)

for L in lengths:
    B = TOK // L
    for dt, name in ((torch.bfloat16, "bf16"), (torch.float32, "fp32")):
        q, k, v = (torch.randn(B, H, L, D, device="cuda", dtype=dt) for _ in range(3))
        ms = do_bench(lambda: F.scaled_dot_product_attention(q, k, v), warmup=25, rep=200, return_mode="median")
        row("sdpa dense", name, L, ms, 1.0)
        if dt == torch.bfloat16:
            o = F.scaled_dot_product_attention(q, k, v)
            g = torch.randn_like(o)
            q.requires_grad_(); k.requires_grad_(); v.requires_grad_()
            def fb():
                o = F.scaled_dot_product_attention(q, k, v)
                o.backward(g)
            ms = do_bench(fb, warmup=10, rep=200, return_mode="median")
            row("sdpa dense forward+backward", name, L, ms, 3.5)
        del q, k, v
        torch.cuda.empty_cache()

try:
    from torch.nn.attention.flex_attention import flex_attention, create_block_mask
    flex = torch.compile(flex_attention)
    for L in lengths:
        if L < 4096: continue
        B = TOK // L
        q, k, v = (torch.randn(B, H, L, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        nb = L // 128
        gen = torch.Generator(device="cpu").manual_seed(0)
        rnd = torch.randint(0, nb, (nb, 2), generator=gen).cuda()
        masks = {
            "flex dense": lambda b, h, qi, ki: qi >= 0,
            "flex window 256": lambda b, h, qi, ki: (qi - ki).abs() <= 256,
            "flex bigbird": lambda b, h, qi, ki: ((qi - ki).abs() <= 256) | (ki < 128) | (qi < 128)
                | ((rnd[qi // 128, 0] == ki // 128) | (rnd[qi // 128, 1] == ki // 128)),
        }
        for name, m in masks.items():
            t0 = time.time()
            bm = create_block_mask(m, None, None, L, L)
            dens = float(bm.sparsity()) if hasattr(bm, "sparsity") else None
            density = 1.0 - dens / 100.0 if dens is not None else 1.0
            ms = do_bench(lambda: flex(q, k, v, block_mask=bm), warmup=25, rep=200, return_mode="median")
            row(name, "bf16", L, ms, density, {"compile_s": time.time() - t0})
except Exception as e:  # FlexAttention is an extra; SDPA rows stand alone
    print(json.dumps({"flex_error": str(e)[:300]}), flush=True)
    out["flex_error"] = str(e)[:300]

json.dump(out, open(sys.argv[2] if len(sys.argv) > 2 else "anchors.json", "w"), indent=1)
