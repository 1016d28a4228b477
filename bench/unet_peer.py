#!/usr/bin/env python3
"""PyTorch-eager peer of mmlearn's `generator-tiny` UNet benchmarks: the same work as `build/bench/mmlearn_bench
--bench unet`, on the UNet of tests/fixtures/sd_reference.py (Stable Diffusion's UNet2DConditionModel as its
published structure has it, the reference mmlearn's UNet matches within 1e-5) at generator-tiny's sizes:
widths 64-128-128, one ResNet block a level, cross-attention at the first two levels and the middle, 4 heads,
16 x 16 x 4 latents, 32 text tokens of width 128.
  unet_generator_tiny_sample  one denoising step of 16 images under classifier-free guidance (a batch of 32:
                              each latent with its prompt and with the empty one), inference mode
  unet_generator_tiny_train   one training step of 32 latents: forward, MSE to the noise, backward, AdamW
Both in fp32 and under bf16 autocast; samples_per_s counts latents (32 a step).

Usage: python3 bench/unet_peer.py [--threads N] [--steps N] [--warmup N]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "fixtures"))
from sd_reference import UNet2DConditionModel  # noqa: E402

CONFIG = {"in_channels": 4, "out_channels": 4, "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
          "DownBlock2D"], "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
          "block_out_channels": [64, 128, 128], "layers_per_block": 1, "attention_head_dim": [4, 4, 4],
          "norm_num_groups": 16, "norm_eps": 1e-5, "cross_attention_dim": 128}
BATCH, SIDE, TOKENS = 32, 16, 32

# torch 1.13's CPU group and layer norms refuse bf16 input with fp32 weights under autocast; as mmlearn does,
# they normalize in fp32 and hand back the input's type.
_group_norm, _layer_norm = F.group_norm, F.layer_norm
F.group_norm = lambda x, *a, **k: _group_norm(x.float(), *a, **k).to(x.dtype)
F.layer_norm = lambda x, *a, **k: _layer_norm(x.float(), *a, **k).to(x.dtype)


def timed(step, steps, warmup):
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - start


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bench", choices=["unet", "all"], default="all")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(CONFIG)
    print(f"unet parameters: {sum(p.numel() for p in unet.parameters())}", file=sys.stderr)
    x = torch.randn(BATCH, 4, SIDE, SIDE)
    ctx = torch.randn(BATCH, TOKENS, 128)
    t = torch.randint(0, 1000, (BATCH,))
    noise = torch.randn_like(x)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=2e-4, weight_decay=0.01)
    for impl, bf16 in [("pytorch", False), ("pytorch-bf16", True)]:
        unet.eval()

        def sample():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                unet.run(x, t, ctx)

        seconds = timed(sample, args.steps, args.warmup)
        print(json.dumps({"bench": "unet_generator_tiny_sample", "impl": impl,
                          "samples_per_s": args.steps * BATCH / seconds, "batch_size": BATCH, "steps": args.steps,
                          "seconds": seconds, "threads": torch.get_num_threads(), "torch": torch.__version__}),
              flush=True)
        unet.train()

        def train():
            optimizer.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = unet.run(x, t, ctx)
            F.mse_loss(out.float(), noise).backward()
            torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
            optimizer.step()

        seconds = timed(train, args.steps, args.warmup)
        print(json.dumps({"bench": "unet_generator_tiny_train", "impl": impl,
                          "samples_per_s": args.steps * BATCH / seconds, "batch_size": BATCH, "steps": args.steps,
                          "seconds": seconds, "threads": torch.get_num_threads(), "torch": torch.__version__}),
              flush=True)


if __name__ == "__main__":
    main()
