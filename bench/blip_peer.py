#!/usr/bin/env python3
"""PyTorch-eager peer of mmlearn's captioning benchmark: the same work as `build/bench/mmlearn_bench --bench
caption`, written in the structure of Hugging Face's BlipForConditionalGeneration at blip-image-captioning-base
size with random weights: the vision model (ViT-B/16 at 384 px, fused qkv, post-LayerNorm), then greedy
decoding with the BERT decoder over a key/value cache (self-attention keys grow a token a step,
cross-attention keys are made once), 20 tokens a caption without an early end, as HF's generate runs it.

Prints one JSON object per measurement, e.g.
  {"bench": "caption_blip_base", "impl": "pytorch", "samples_per_s": 0.8, ...}

Usage: python3 bench/blip_peer.py [--bench caption|all] [--threads N] [--steps N] [--warmup N]
"""

import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

V = dict(width=768, layers=12, heads=12, intermediate=3072, image=384, patch=16)
T = dict(vocab=30524, width=768, layers=12, heads=12, intermediate=3072, positions=512, bos=30522)


class VisionLayer(nn.Module):
    def __init__(self):
        super().__init__()
        d = V["width"]
        self.layer_norm1, self.layer_norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.projection = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, V["intermediate"]), nn.Linear(V["intermediate"], d)

    def forward(self, x):
        b, t, d = x.shape
        h = V["heads"]
        q, k, v = self.qkv(self.layer_norm1(x)).reshape(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-1, -2) * (d // h) ** -0.5, -1)
        x = x + self.projection((a @ v).permute(0, 2, 1, 3).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.layer_norm2(x))))


class Vision(nn.Module):
    def __init__(self):
        super().__init__()
        d, n = V["width"], (V["image"] // V["patch"]) ** 2
        self.patch = nn.Conv2d(3, d, V["patch"], V["patch"])
        self.cls = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, n + 1, d) * 0.02)
        self.layers = nn.ModuleList(VisionLayer() for _ in range(V["layers"]))
        self.post_layernorm = nn.LayerNorm(d)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        for layer in self.layers:
            x = layer(x)
        return self.post_layernorm(x)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        d = T["width"]
        self.query, self.key, self.value, self.dense = (nn.Linear(d, d) for _ in range(4))
        self.LayerNorm = nn.LayerNorm(d, eps=1e-12)

    def split(self, x):
        b, t, d = x.shape
        return x.view(b, t, T["heads"], d // T["heads"]).transpose(1, 2)

    def forward(self, x, k, v, mask=None):
        q = self.split(self.query(x))
        s = q @ k.transpose(-1, -2) / (q.shape[-1] ** 0.5)
        if mask is not None:
            s = s + mask
        c = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(x.shape)
        return self.LayerNorm(self.dense(c) + x)


class TextLayer(nn.Module):
    def __init__(self):
        super().__init__()
        d = T["width"]
        self.attention, self.crossattention = Attention(), Attention()
        self.intermediate, self.output = nn.Linear(d, T["intermediate"]), nn.Linear(T["intermediate"], d)
        self.LayerNorm = nn.LayerNorm(d, eps=1e-12)

    def forward(self, x, cache, memory):
        a = self.attention
        k, v = a.split(a.key(x)), a.split(a.value(x))
        if "k" in cache:
            k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
        cache["k"], cache["v"] = k, v
        t = x.shape[1]
        mask = None
        if t > 1:  # the prompt: causal; a single new token sees everything cached
            mask = torch.full((t, k.shape[2]), float("-inf")).triu(k.shape[2] - t + 1)
        x = a(x, k, v, mask)
        c = self.crossattention
        if "ck" not in cache:
            cache["ck"], cache["cv"] = c.split(c.key(memory)), c.split(c.value(memory))
        x = c(x, cache["ck"], cache["cv"])
        return self.LayerNorm(self.output(F.gelu(self.intermediate(x))) + x)


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        d = T["width"]
        self.word, self.position = nn.Embedding(T["vocab"], d), nn.Embedding(T["positions"], d)
        self.LayerNorm = nn.LayerNorm(d, eps=1e-12)
        self.layers = nn.ModuleList(TextLayer() for _ in range(T["layers"]))
        self.transform, self.transform_norm = nn.Linear(d, d), nn.LayerNorm(d, eps=1e-12)
        self.bias = nn.Parameter(torch.zeros(T["vocab"]))

    def forward(self, ids, caches, memory, offset):
        positions = torch.arange(offset, offset + ids.shape[1])
        x = self.LayerNorm(self.word(ids) + self.position(positions))
        for layer, cache in zip(self.layers, caches):
            x = layer(x, cache, memory)
        # LayerNorm takes fp32 under CPU autocast (torch 1.13 refuses bf16 input with fp32 weights).
        h = F.gelu(self.transform(x[:, -1:])).float()
        return F.linear(self.transform_norm(h), self.word.weight, self.bias)


def caption(vision, decoder, pixels, tokens):
    memory = vision(pixels)
    ids = torch.full((pixels.shape[0], 1), T["bos"])
    caches = [{} for _ in decoder.layers]
    out = []
    for step in range(tokens):
        logits = decoder(ids, caches, memory, step)
        ids = logits[:, -1].argmax(-1, keepdim=True)
        out.append(ids)
    return torch.cat(out, 1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bench", choices=["caption", "all"], default="all")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--steps", type=int, default=10, help="the captioner runs steps / 2 captions (at least 1)")
    p.add_argument("--warmup", type=int, default=1)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    vision, decoder = Vision().eval(), Decoder().eval()
    pixels = torch.randn(1, 3, V["image"], V["image"])
    steps = max(args.steps // 2, 1)
    for impl, bf16 in [("pytorch", False), ("pytorch-bf16", True)]:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for _ in range(args.warmup):
                caption(vision, decoder, pixels, 20)
            start = time.perf_counter()
            for _ in range(steps):
                caption(vision, decoder, pixels, 20)
            seconds = time.perf_counter() - start
        print(json.dumps({"bench": "caption_blip_base", "impl": impl, "samples_per_s": steps / seconds,
                          "tokens": 20, "steps": steps, "seconds": seconds, "threads": torch.get_num_threads(),
                          "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
