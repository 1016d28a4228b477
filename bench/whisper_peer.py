#!/usr/bin/env python3
"""PyTorch-eager peer of mmlearn's audio benchmarks: the same work as `build/bench/mmlearn_bench --bench
logmel|encoder`, written as openai/whisper does it (whisper/audio.py log_mel_spectrogram with torch.stft;
whisper/model.py's AudioEncoder at whisper-base size with random weights).

Prints one JSON object per measurement, e.g.
  {"bench": "logmel_30s", "impl": "pytorch", "windows_per_s": 40.1, ...}

Usage: python3 bench/whisper_peer.py [--bench logmel|encoder|all] [--threads N] [--steps N] [--warmup N]
"""

import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

N_FFT, HOP, N_SAMPLES = 400, 160, 480000


def mel_filters(n_mels):
    # librosa's Slaney mel filters (whisper ships them as mel_filters.npz), computed here so the peer needs no file.
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, log_step = min_log_hz / f_sp, math.log(6.4) / 27.0

    def hz_to_mel(f):
        return f / f_sp if f < min_log_hz else min_log_mel + math.log(f / min_log_hz) / log_step

    def mel_to_hz(m):
        return f_sp * m if m < min_log_mel else min_log_hz * math.exp(log_step * (m - min_log_mel))

    bins = N_FFT // 2 + 1
    fft_hz = torch.linspace(0, 8000, bins, dtype=torch.float64)
    top = hz_to_mel(8000.0)
    mel_hz = torch.tensor([mel_to_hz(top * i / (n_mels + 1)) for i in range(n_mels + 2)], dtype=torch.float64)
    lower = (fft_hz[None, :] - mel_hz[:-2, None]) / (mel_hz[1:-1] - mel_hz[:-2])[:, None]
    upper = (mel_hz[2:, None] - fft_hz[None, :]) / (mel_hz[2:] - mel_hz[1:-1])[:, None]
    weights = torch.clamp(torch.minimum(lower, upper), min=0) * (2.0 / (mel_hz[2:] - mel_hz[:-2]))[:, None]
    return weights.float()


def log_mel_spectrogram(audio, filters):
    window = torch.hann_window(N_FFT)
    stft = torch.stft(audio, N_FFT, HOP, window=window, return_complex=True)
    magnitudes = stft[..., :-1].abs() ** 2
    mel_spec = filters @ magnitudes
    log_spec = torch.clamp(mel_spec, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


def sinusoids(length, channels):
    increment = math.log(10000) / (channels // 2 - 1)
    inv = torch.exp(-increment * torch.arange(channels // 2))
    t = torch.arange(length)[:, None] * inv[None, :]
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1)


class MultiHeadAttention(nn.Module):
    def __init__(self, n_state, n_head):
        super().__init__()
        self.n_head = n_head
        self.query, self.key = nn.Linear(n_state, n_state), nn.Linear(n_state, n_state, bias=False)
        self.value, self.out = nn.Linear(n_state, n_state), nn.Linear(n_state, n_state)

    def forward(self, x):
        q, k, v = self.query(x), self.key(x), self.value(x)
        n_batch, n_ctx, n_state = q.shape
        scale = (n_state // self.n_head) ** -0.25
        q = q.view(*q.shape[:2], self.n_head, -1).permute(0, 2, 1, 3) * scale
        k = k.view(*k.shape[:2], self.n_head, -1).permute(0, 2, 3, 1) * scale
        v = v.view(*v.shape[:2], self.n_head, -1).permute(0, 2, 1, 3)
        w = (q @ k).float().softmax(dim=-1).to(q.dtype)
        return self.out((w @ v).permute(0, 2, 1, 3).flatten(start_dim=2))


class Block(nn.Module):
    def __init__(self, n_state, n_head):
        super().__init__()
        self.attn, self.attn_ln = MultiHeadAttention(n_state, n_head), nn.LayerNorm(n_state)
        self.mlp = nn.Sequential(nn.Linear(n_state, 4 * n_state), nn.GELU(), nn.Linear(4 * n_state, n_state))
        self.mlp_ln = nn.LayerNorm(n_state)

    def forward(self, x):
        x = x + self.attn(self.attn_ln(x))
        return x + self.mlp(self.mlp_ln(x))


class AudioEncoder(nn.Module):
    def __init__(self, n_mels=80, n_ctx=1500, n_state=512, n_head=8, n_layer=6):
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, n_state, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(n_state, n_state, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positional_embedding", sinusoids(n_ctx, n_state))
        self.blocks = nn.ModuleList([Block(n_state, n_head) for _ in range(n_layer)])
        self.ln_post = nn.LayerNorm(n_state)

    def forward(self, x):
        x = F.gelu(self.conv1(x))
        x = F.gelu(self.conv2(x)).permute(0, 2, 1)
        x = x + self.positional_embedding
        for block in self.blocks:
            x = block(x)
        return self.ln_post(x)


def timed(steps, warmup, fn):
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return time.perf_counter() - start


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bench", default="all", choices=["logmel", "encoder", "all"])
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    common = {"impl": "pytorch", "threads": torch.get_num_threads(), "torch": torch.__version__}
    if a.bench in ("logmel", "all"):
        audio, filters = torch.randn(N_SAMPLES) * 0.1, mel_filters(80)
        steps = max(a.steps * 20, 200)
        s = timed(steps, a.warmup, lambda: log_mel_spectrogram(audio, filters))
        print(json.dumps({"bench": "logmel_30s", "windows_per_s": steps / s, "steps": steps, "seconds": s, **common}))
    if a.bench in ("encoder", "all"):
        model = AudioEncoder().eval()
        mel = torch.randn(1, 80, 3000)
        with torch.inference_mode():
            s = timed(a.steps, a.warmup, lambda: model(mel))
        print(json.dumps({"bench": "whisper_base_encoder_30s", "windows_per_s": a.steps / s, "steps": a.steps,
                          "seconds": s, **common}), flush=True)


if __name__ == "__main__":
    main()
