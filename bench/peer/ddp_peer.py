#!/usr/bin/python3
"""PyTorch DDP peer for `disttrain bench scaling`/`bench overhead`: the same workload, timed the same way.

The 2-layer pre-LN GPT of TrainingBench.Spec (hidden 128, 4 heads, FFN 512, 64 positions, vocabulary 8,192, tied
output embedding: 1,453,568 parameters), 64 tokens, per-rank batch 16, AdamW (lr 1e-3, betas 0.9/0.98, eps 1e-8,
weight decay 0.01 on 2-D weights), clip 1.0, one torch thread per process, DistributedDataParallel over gloo on
127.0.0.1. Token ids are drawn at random with a fixed seed (step time does not depend on their values).

Written for this repository; runs with Debian's python3-torch (and libopenblas0-pthread as its BLAS):
    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/peer/ddp_peer.py [--workers 1,2,3] [--steps 30] [--rounds 2] [--json]
Never part of the tests. Each figure is the median step time after the first quarter (at most 5) of steps,
then the median over rounds; configurations are interleaved round by round, as in `disttrain bench scaling`.
"""
import argparse
import json
import os
import socket
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F

VOCAB, HIDDEN, HEADS, FFN, SEQ, LAYERS = 8192, 128, 4, 512, 64, 2


class Block(nn.Module):
    """Pre-LN decoder block: x + attn(ln(x)), then x + ffn(ln(x))."""

    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(HIDDEN), nn.LayerNorm(HIDDEN)
        self.qkv, self.proj = nn.Linear(HIDDEN, 3 * HIDDEN), nn.Linear(HIDDEN, HIDDEN)
        self.up, self.down = nn.Linear(HIDDEN, FFN), nn.Linear(FFN, HIDDEN)

    def forward(self, x, causal):
        b, t, h = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, HEADS, h // HEADS).permute(2, 0, 3, 1, 4)  # 3 × (B, A, T, D)
        scores = (q @ k.transpose(-1, -2)) / (h // HEADS) ** 0.5 + causal                         # (B, A, T, T)
        attn = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, h)                           # (B, T, H)
        x = x + self.proj(attn)
        return x + self.down(F.gelu(self.up(self.ln2(x))))


class Gpt(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok, self.pos = nn.Embedding(VOCAB, HIDDEN), nn.Embedding(SEQ, HIDDEN)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.ln = nn.LayerNorm(HIDDEN)
        self.register_buffer("causal", torch.full((SEQ, SEQ), float("-inf")).triu(1), persistent=False)

    def forward(self, ids):                                                  # ids (B, T)
        x = self.tok(ids) + self.pos.weight[: ids.shape[1]]                  # (B, T, H)
        for block in self.blocks:
            x = block(x, self.causal)
        return F.linear(self.ln(x), self.tok.weight)                         # (B, T, V), tied


def steady_median(times):
    return statistics.median(times[min(5, len(times) // 4):])


def worker(rank, world, port, steps, batch, out):
    torch.set_num_threads(1)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    torch.manual_seed(5)
    model = Gpt()
    assert sum(p.numel() for p in model.parameters()) == 1_453_568
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    net = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.98), eps=1e-8)
    gen = torch.Generator().manual_seed(1000 + rank)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        ids = torch.randint(1, VOCAB, (batch, SEQ), generator=gen)           # (B, T)
        logits = net(ids)                                                    # (B, T, V)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append(time.perf_counter() - start)
    if rank == 0:
        out.put(steady_median(times))
    if world > 1:
        dist.destroy_process_group()


def run(world, steps, batch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(r, world, port, steps, batch, out)) for r in range(world)]
    for p in procs:
        p.start()
    result = out.get(timeout=600)
    for p in procs:
        p.join(timeout=60)
        if p.exitcode != 0:
            raise SystemExit(f"a DDP worker exited with {p.exitcode}")
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="1,2,3")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16, help="per-rank batch")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    counts = [int(x) for x in a.workers.split(",")]
    if counts[0] != 1 or a.steps < 8 or a.rounds < 1:
        raise SystemExit("--workers must start with 1, --steps >= 8, --rounds >= 1")
    per = {n: [] for n in counts}
    for _ in range(a.rounds):
        for n in counts:
            per[n].append(run(n, a.steps, a.batch))
    step = {n: statistics.median(v) for n, v in per.items()}
    result = {
        "torch": torch.__version__,
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "per_rank_batch": a.batch,
        "step_ms": {str(n): round(s * 1000, 1) for n, s in step.items()},
        "weak_scaling_efficiency": {str(n): round(step[1] / step[n], 3) for n in counts[1:]},
    }
    if a.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"PyTorch {result['torch']} DDP (gloo), load average {result['load_average']}")
        for n in counts:
            print(f"{n} × batch {a.batch}{' (oversubscribed)' if n > os.cpu_count() else '':17} {step[n] * 1000:8.1f} ms/step")
        for n, e in result["weak_scaling_efficiency"].items():
            print(f"weak_scaling_efficiency[{n}] = {e:.3f}")


if __name__ == "__main__":
    main()
