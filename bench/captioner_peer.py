#!/usr/bin/env python3
"""PyTorch-eager peer of mmlearn's `captioner-tiny` benchmark: the same work as `build/bench/mmlearn_bench
--bench caption` (its caption_captioner_tiny line), written as a PyTorch user would write mmlearn's captioner
(src/mmlearn/models/captioner.cpp, heads/connector.cpp, heads/text_decoder.cpp, blocks/decoder_block.cpp):
CLIP's tiny ResNet tower (bench/clip_peer.py's) whose 2 x 2 grid of tokens goes through the
cross-attention connector (LayerNorm, Linear), and a pre-norm decoder (width 256, 4 blocks, 4 heads, vocabulary
1024, output tied to the embedding) decoding greedily over a key/value cache: 16 images a batch, 20 tokens a
caption without an early end.

Usage: python3 bench/captioner_peer.py [--threads N] [--steps N] [--warmup N]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clip_peer import ModifiedResNet  # noqa: E402

WIDTH, LAYERS, HEADS, VOCAB, CONTEXT = 256, 4, 4, 1024, 64


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(WIDTH, WIDTH) for _ in range(4))

    def split(self, x):
        return x.view(x.shape[0], -1, HEADS, WIDTH // HEADS).transpose(1, 2)

    def forward(self, x, k, v, mask=None):
        s = self.split(self.q_proj(x)) @ k.transpose(-1, -2) / (WIDTH // HEADS) ** 0.5
        if mask is not None:
            s = s + mask
        return self.out_proj((torch.softmax(s, -1) @ v).transpose(1, 2).reshape(x.shape))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.ln_cross, self.ln_2 = (nn.LayerNorm(WIDTH) for _ in range(3))
        self.attn, self.cross_attn = Attention(), Attention()
        self.c_fc, self.c_proj = nn.Linear(WIDTH, 4 * WIDTH), nn.Linear(4 * WIDTH, WIDTH)

    def forward(self, x, cache, memory):
        h = self.ln_1(x)
        k, v = self.attn.split(self.attn.k_proj(h)), self.attn.split(self.attn.v_proj(h))
        if "k" in cache:
            k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
        cache["k"], cache["v"] = k, v
        t = x.shape[1]
        mask = torch.full((t, k.shape[2]), float("-inf")).triu(k.shape[2] - t + 1) if t > 1 else None
        x = x + self.attn(h, k, v, mask)
        if "ck" not in cache:
            c = self.cross_attn
            cache["ck"], cache["cv"] = c.split(c.k_proj(memory)), c.split(c.v_proj(memory))
        x = x + self.cross_attn(self.ln_cross(x), cache["ck"], cache["cv"])
        return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x))))


class Captioner(nn.Module):
    def __init__(self):
        super().__init__()
        self.tower = ModifiedResNet(image_size=64, width=16, heads=8, resnet_layers=(1, 1, 1, 1), output_dim=128)
        self.ln, self.proj = nn.LayerNorm(512), nn.Linear(512, WIDTH)
        self.token_embedding = nn.Embedding(VOCAB, WIDTH)
        self.positional_embedding = nn.Parameter(torch.randn(CONTEXT, WIDTH) * 0.01)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.ln_final = nn.LayerNorm(WIDTH)

    def memory(self, pixels):
        t = self.tower
        x = t.blocks(t.stem(pixels.contiguous(memory_format=torch.channels_last)))
        return self.proj(self.ln(x.flatten(2).transpose(1, 2).float()))

    def step(self, ids, caches, memory, offset):
        x = self.token_embedding(ids) + self.positional_embedding[offset : offset + ids.shape[1]]
        for block, cache in zip(self.blocks, caches):
            x = block(x, cache, memory)
        return self.ln_final(x) @ self.token_embedding.weight.t()


def caption(model, pixels, tokens):
    memory = model.memory(pixels)
    ids = torch.zeros(pixels.shape[0], 1, dtype=torch.long)
    caches = [{} for _ in model.blocks]
    for step in range(tokens):
        ids = model.step(ids, caches, memory, step)[:, -1].argmax(-1, keepdim=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bench", choices=["caption", "all"], default="all")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Captioner().eval()
    pixels = torch.randn(16, 3, 64, 64)
    for impl, bf16 in [("pytorch", False), ("pytorch-bf16", True)]:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for _ in range(args.warmup):
                caption(model, pixels, 20)
            start = time.perf_counter()
            for _ in range(args.steps):
                caption(model, pixels, 20)
            seconds = time.perf_counter() - start
        print(json.dumps({"bench": "caption_captioner_tiny", "impl": impl, "samples_per_s": args.steps * 16 / seconds,
                          "batch_size": 16, "tokens": 20, "steps": args.steps, "seconds": seconds,
                          "threads": torch.get_num_threads(), "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
