#!/usr/bin/env python3
"""PyTorch-eager peer of mmlearn's CLIP benchmarks.

Runs the same work as `build/bench/mmlearn_bench` in plain PyTorch eager so that bench/run.sh can print a
side-by-side ratio. The model mirrors src/mmlearn/{blocks/transformer,vision/vit,vision/modified_resnet,
text/text_transformer,heads/contrastive,models/clip}.cpp and the step mirrors train/clip_trainer.cpp; parameter names match the C++
module tree (visual.*, text.*, logit_scale), so `--check` counts can be compared one to one.

Prints one JSON object per measurement on stdout, e.g.
  {"bench": "train_clip_tiny", "impl": "pytorch", "samples_per_s": 123.4, "batch_size": 128, "steps": 10, ...}

Usage:
  python3 bench/clip_peer.py [--bench train|embed|all] [--threads N] [--steps N] [--warmup N]
                             [--batch-size N] [--seed N] [--check]
                             [--preset P] [--vocab-size N] [--device cuda]   (train)

On a GPU (--device cuda) the training step is the one a strong eager user runs: bf16 autocast, attention
through F.scaled_dot_product_attention (flash / memory-efficient kernels), the uint8 batch copied from pinned
host memory each step as a DataLoader would hand it over.
"""

import argparse
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

MAX_LOGIT_SCALE = 100.0
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# The presets of src/mmlearn/models/clip.cpp (mlp_ratio 4, LayerNorm eps 1e-5, logit_scale init ln(1/0.07)).
PRESETS = {
    "clip-tiny": dict(
        embed_dim=128, activation="gelu",
        vision=dict(image_size=64, width=16, heads=8, resnet_layers=(1, 1, 1, 1)),
        text=dict(context_length=32, vocab_size=1024, width=128, layers=3, heads=4, eot_token_id=1023)),
    "clip-vit-b-32": dict(
        embed_dim=512, activation="quick_gelu",
        vision=dict(image_size=224, patch_size=32, width=768, layers=12, heads=12),
        text=dict(context_length=77, vocab_size=49408, width=512, layers=12, heads=8, eot_token_id=49407)),
}
MLP_RATIO = 4.0
LN_EPS = 1e-5
LOGIT_SCALE_INIT = 2.6592


def activate(x, activation):
    if activation == "gelu":
        return F.gelu(x)
    return x * torch.sigmoid(1.702 * x)  # QuickGELU


def causal_mask(length):
    return torch.full((length, length), float("-inf")).triu(1)


class MultiheadAttention(nn.Module):
    """Self-attention with one packed in-projection, batch-first [B, T, D]."""

    def __init__(self, width, heads):
        super().__init__()
        assert width % heads == 0
        self.width, self.heads = width, heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x, attn_mask=None):
        B, T, _ = x.shape
        hd = self.width // self.heads
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias).view(B, T, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        if qkv.is_cuda and hasattr(F, "scaled_dot_product_attention"):
            mask = attn_mask.to(qkv.dtype) if attn_mask is not None else None
            out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=mask)
            return self.out_proj(out.transpose(1, 2).reshape(B, T, self.width))
        q = qkv[0] * (1.0 / math.sqrt(hd))
        scores = torch.matmul(q, qkv[1].transpose(-2, -1))
        if attn_mask is not None:
            scores = scores + attn_mask
        out = torch.matmul(torch.softmax(scores, dim=-1), qkv[2])  # [B, H, T, hd]
        return self.out_proj(out.transpose(1, 2).reshape(B, T, self.width))


class Mlp(nn.Module):
    def __init__(self, width, hidden, activation):
        super().__init__()
        self.activation = activation
        self.c_fc = nn.Linear(width, hidden)
        self.c_proj = nn.Linear(hidden, width)

    def forward(self, x):
        return self.c_proj(activate(self.c_fc(x), self.activation))


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width, heads, activation):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width, eps=LN_EPS)
        self.attn = MultiheadAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width, eps=LN_EPS)
        self.mlp = Mlp(width, int(width * MLP_RATIO), activation)

    def forward(self, x, attn_mask=None):
        h = x + self.attn(self.ln_1(x), attn_mask)
        return h + self.mlp(self.ln_2(h))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, activation):
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads, activation) for _ in range(layers)])

    def forward(self, x, attn_mask=None):
        for block in self.resblocks:
            x = block(x, attn_mask)
        return x


class VisionTransformer(nn.Module):
    def __init__(self, image_size, patch_size, width, layers, heads, output_dim, activation):
        super().__init__()
        assert image_size % patch_size == 0
        grid = image_size // patch_size
        scale = width ** -0.5
        self.width = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.ln_pre = nn.LayerNorm(width, eps=LN_EPS)
        self.transformer = Transformer(width, layers, heads, activation)
        self.ln_post = nn.LayerNorm(width, eps=LN_EPS)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, pixels):
        B = pixels.shape[0]
        x = self.conv1(pixels).flatten(2).transpose(1, 2)  # [B, grid², D]
        x = torch.cat([self.class_embedding.view(1, 1, -1).expand(B, 1, self.width), x], dim=1)
        x = x + self.positional_embedding
        x = self.transformer(self.ln_pre(x))
        return torch.matmul(self.ln_post(x[:, 0]), self.proj)  # pooled [B, E]


class Bottleneck(nn.Module):
    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.stride = stride
        self.conv1, self.bn1 = nn.Conv2d(inplanes, planes, 1, bias=False), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False), nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = nn.Conv2d(planes, planes * 4, 1, bias=False), nn.BatchNorm2d(planes * 4)
        self.downsample = None
        if stride > 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(nn.AvgPool2d(stride) if stride > 1 else nn.Identity(),
                                            nn.Conv2d(inplanes, planes * 4, 1, bias=False), nn.BatchNorm2d(planes * 4))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(F.avg_pool2d(y, self.stride) if self.stride > 1 else y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class ModifiedResNet(nn.Module):
    """CLIP's ResNet image tower: three-conv stem, anti-aliased bottlenecks, attention pooling."""

    def __init__(self, image_size, width, heads, resnet_layers, output_dim):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width // 2), nn.ReLU(),
            nn.Conv2d(width // 2, width // 2, 3, padding=1, bias=False), nn.BatchNorm2d(width // 2), nn.ReLU(),
            nn.Conv2d(width // 2, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(), nn.AvgPool2d(2))
        blocks, inplanes = [], width
        for i, n in enumerate(resnet_layers):
            for b in range(n):
                blocks.append(Bottleneck(inplanes, width << i, 2 if b == 0 and i > 0 else 1))
                inplanes = (width << i) * 4
        self.blocks = nn.Sequential(*blocks)
        spatial = image_size // (4 << (len(resnet_layers) - 1))
        self.heads = heads
        self.positional_embedding = nn.Parameter(torch.randn(spatial * spatial + 1, inplanes) / inplanes ** 0.5)
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(inplanes, inplanes) for _ in range(3))
        self.c_proj = nn.Linear(inplanes, output_dim)

    def forward(self, pixels):
        x = self.blocks(self.stem(pixels.contiguous(memory_format=torch.channels_last)))
        B, C = x.shape[:2]
        tokens = x.flatten(2).transpose(1, 2)
        tokens = torch.cat([tokens.mean(1, keepdim=True), tokens], 1) + self.positional_embedding
        hd = C // self.heads
        q = self.q_proj(tokens[:, :1]).view(B, 1, self.heads, hd).transpose(1, 2)
        k = self.k_proj(tokens).view(B, -1, self.heads, hd).transpose(1, 2)
        v = self.v_proj(tokens).view(B, -1, self.heads, hd).transpose(1, 2)
        out = torch.softmax(q * hd ** -0.5 @ k.transpose(-2, -1), -1) @ v
        return self.c_proj(out.transpose(1, 2).reshape(B, C))


class TextTransformer(nn.Module):
    def __init__(self, context_length, vocab_size, width, layers, heads, eot_token_id, output_dim, activation):
        super().__init__()
        self.eot_token_id = eot_token_id
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, width))
        self.transformer = Transformer(width, layers, heads, activation)
        self.ln_final = nn.LayerNorm(width, eps=LN_EPS)
        self.text_projection = nn.Parameter(torch.empty(width, output_dim))
        self.register_buffer("attn_mask", causal_mask(context_length), persistent=False)
        # CLIP's initialisation, as the C++ does.
        with torch.no_grad():
            nn.init.normal_(self.token_embedding.weight, std=0.02)
            nn.init.normal_(self.positional_embedding, std=0.01)
            proj_std = width ** -0.5 * (2 * layers) ** -0.5
            attn_std, fc_std = width ** -0.5, (2 * width) ** -0.5
            for b in self.transformer.resblocks:
                nn.init.normal_(b.attn.in_proj_weight, std=attn_std)
                nn.init.normal_(b.attn.out_proj.weight, std=proj_std)
                nn.init.normal_(b.mlp.c_fc.weight, std=fc_std)
                nn.init.normal_(b.mlp.c_proj.weight, std=proj_std)
            nn.init.normal_(self.text_projection, std=attn_std)

    def forward(self, ids):
        T = ids.shape[1]
        x = self.token_embedding(ids) + self.positional_embedding[:T]
        x = self.ln_final(self.transformer(x, self.attn_mask[:T, :T]))
        # Pool at the first end-of-text token; a row without one pools its last position.
        is_eot = ids == self.eot_token_id
        first_eot = is_eot.int().argmax(dim=1)
        eot = torch.where(is_eot.any(dim=1), first_eot, torch.full_like(first_eot, T - 1))
        return torch.matmul(x[torch.arange(ids.shape[0]), eot], self.text_projection)


class Clip(nn.Module):
    def __init__(self, preset, with_text=True):
        super().__init__()
        c = PRESETS[preset]
        v, t = c["vision"], c["text"]
        if "resnet_layers" in v:
            self.visual = ModifiedResNet(v["image_size"], v["width"], v["heads"], v["resnet_layers"], c["embed_dim"])
        else:
            self.visual = VisionTransformer(v["image_size"], v["patch_size"], v["width"], v["layers"], v["heads"],
                                            c["embed_dim"], c["activation"])
        self.text = None
        if with_text:
            self.text = TextTransformer(t["context_length"], t["vocab_size"], t["width"], t["layers"], t["heads"],
                                        t["eot_token_id"], c["embed_dim"], c["activation"])
        self.logit_scale = nn.Parameter(torch.tensor(LOGIT_SCALE_INIT))
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    def normalize_pixels(self, images_u8):
        return (images_u8.float() / 255.0 - self.mean) / self.std

    def encode_image(self, pixels):
        return F.normalize(self.visual(pixels).float(), dim=-1)

    def encode_text(self, ids):
        return F.normalize(self.text(ids).float(), dim=-1)


def clip_loss(image_embeds, text_embeds, logit_scale):
    logits = logit_scale.exp().clamp(max=MAX_LOGIT_SCALE) * torch.matmul(image_embeds, text_embeds.t())
    labels = torch.arange(logits.shape[0])
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))


def param_count(module):
    return sum(p.numel() for p in module.parameters())


def random_ids(batch, context_length, vocab_size, eot):
    """Token ids in [0, eot) with one end-of-text token at a random position (zeros after it, as padding)."""
    ids = torch.randint(0, eot, (batch, context_length))
    pos = torch.randint(1, context_length, (batch,))
    ids[torch.arange(batch), pos] = eot
    ids[torch.arange(context_length).unsqueeze(0) > pos.unsqueeze(1)] = 0
    return ids


def bench_train(args):
    torch.manual_seed(args.seed)
    preset = args.preset
    c = PRESETS[preset]
    if args.vocab_size:  # as the mmlearn model it is compared with (a learned vocabulary)
        c["text"].update(vocab_size=args.vocab_size, eot_token_id=args.vocab_size - 1)
    device = torch.device(args.device)
    model = Clip(preset).to(device)
    model.train()
    # Weight decay on matrices only, not embeddings / gains / biases / temperature (clip_trainer.cpp `decays`).
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.dim() >= 2 and "embedding" not in name else no_decay).append(p)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=1e-3, betas=(0.9, 0.98), eps=1e-6)
    B = args.batch_size
    size, t = c["vision"]["image_size"], c["text"]
    images = torch.randint(0, 256, (B, 3, size, size), dtype=torch.uint8)
    ids = random_ids(B, t["context_length"], t["vocab_size"], t["eot_token_id"])
    if device.type == "cuda":
        images, ids = images.pin_memory(), ids.pin_memory()
    log_max = math.log(MAX_LOGIT_SCALE)

    def step(autocast):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            image_embeds = model.encode_image(model.normalize_pixels(images.to(device, non_blocking=True)))
            text_embeds = model.encode_text(ids.to(device, non_blocking=True))
        loss = clip_loss(image_embeds.float(), text_embeds.float(), model.logit_scale)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, log_max)
        return loss.item()

    impls = (("pytorch-bf16", True),) if device.type == "cuda" else (("pytorch", False), ("pytorch-bf16", True))
    for impl, autocast in impls:
        for _ in range(args.warmup):
            step(autocast)
        start = time.perf_counter()
        for _ in range(args.steps):
            loss = step(autocast)  # .item() waits for the step
        seconds = time.perf_counter() - start
        emit(args, bench="train_" + preset.replace("-", "_"), impl=impl, samples_per_s=args.steps * B / seconds,
             batch_size=B, steps=args.steps, seconds=seconds, final_loss=loss, device=str(device),
             gpu=torch.cuda.get_device_name(device) if device.type == "cuda" else None)


def bench_embed(args):
    torch.manual_seed(args.seed)
    preset = "clip-vit-b-32"
    model = Clip(preset, with_text=False).eval()
    size = PRESETS[preset]["vision"]["image_size"]
    B = args.batch_size
    pixels = torch.randn(B, 3, size, size)

    def run(impl, autocast):
        with torch.inference_mode():
            def once():
                if autocast:
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        return model.encode_image(pixels).float()
                return model.encode_image(pixels)

            for _ in range(args.warmup):
                out = once()
            start = time.perf_counter()
            for _ in range(args.steps):
                out = once()
            seconds = time.perf_counter() - start
        emit(args, bench="embed_clip_vit_b_32", impl=impl, images_per_s=args.steps * B / seconds, batch_size=B,
             steps=args.steps, seconds=seconds, embed_dim=out.shape[1])

    run("pytorch", False)
    run("pytorch-bf16", True)


def emit(args, **fields):
    fields.update(threads=torch.get_num_threads(), warmup=args.warmup, torch=torch.__version__)
    print(json.dumps(fields), flush=True)


def check():
    for preset in PRESETS:
        model = Clip(preset)
        print(json.dumps({"check": preset, "params": param_count(model), "visual_params": param_count(model.visual),
                          "text_params": param_count(model.text), "vocab_size": PRESETS[preset]["text"]["vocab_size"]}),
              flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bench", choices=["train", "embed", "all"], default="all")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave torch's default)")
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before timing")
    p.add_argument("--batch-size", type=int, default=0, help="default: 128 for train, 16 for embed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check", action="store_true", help="print parameter counts of both presets and exit")
    p.add_argument("--preset", choices=sorted(PRESETS), default="clip-tiny", help="the model --bench train trains")
    p.add_argument("--vocab-size", type=int, default=0, help="train: the text vocabulary (default: the preset's)")
    p.add_argument("--device", default="cpu", help="train: cpu or cuda")
    args = p.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.check:
        check()
        return 0
    batch_size = args.batch_size
    if args.bench in ("train", "all"):
        args.batch_size = batch_size or 128
        bench_train(args)
    if args.bench in ("embed", "all"):
        args.batch_size = batch_size or 16
        bench_embed(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
