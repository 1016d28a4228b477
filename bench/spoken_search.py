#!/usr/bin/env python3
"""Spoken-word search on spoken shapes captions: recordings made of several held-out captions in a row (with
pauses), indexed by a speech recognizer (`mmlearn index build --model RECOGNIZER`), then searched with each
caption's words. For a whole caption, a hit is its recording first, with the returned time span's middle
inside the span where the caption is said; for a phrase of it (its last four words, which several captions
may share), any recording and span where a caption saying the phrase is said.

    bench/spoken_search.py --model ASR_RUN --data SPOKEN_SHAPES [--per-recording 4] [--gap 0.8]

SPOKEN_SHAPES is `mmlearn data shapes --audio` output (its test.jsonl); ASR_RUN a recognizer trained on its
train.jsonl (`mmlearn train --preset whisper-tiny-shapes`)."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import wave

import numpy as np


def read_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16), w.getframerate()


def write_wav(path, samples, rate):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype(np.int16).tobytes())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cli", default=os.path.join(os.path.dirname(__file__), "..", "build", "mmlearn"))
    p.add_argument("--model", required=True, help="a speech recognizer")
    p.add_argument("--data", required=True, help="spoken shapes (a directory with test.jsonl)")
    p.add_argument("--per-recording", type=int, default=4, help="captions said in each recording")
    p.add_argument("--gap", type=float, default=0.8, help="seconds of silence between captions")
    p.add_argument("--limit", type=int, default=0, help="use only the first N held-out captions")
    args = p.parse_args()

    records = [json.loads(line) for line in open(os.path.join(args.data, "test.jsonl"))]
    if args.limit:
        records = records[: args.limit]
    work = tempfile.mkdtemp(prefix="mmlearn-spoken-")
    truth, manifest = [], []
    for r0 in range(0, len(records) - args.per_recording + 1, args.per_recording):
        pieces, t = [], 0.0
        path = os.path.join(work, f"recording_{r0 // args.per_recording:04d}.wav")
        for r in records[r0 : r0 + args.per_recording]:
            samples, rate = read_wav(os.path.join(args.data, r["audio"]))
            pieces += [samples, np.zeros(int(args.gap * rate), dtype=np.int16)]
            truth.append({"text": r["text"], "recording": path, "start": t, "end": t + len(samples) / rate})
            t += len(samples) / rate + args.gap
        write_wav(path, np.concatenate(pieces), rate)
        manifest.append({"audio": path})
    with open(os.path.join(work, "recordings.jsonl"), "w") as f:
        f.writelines(json.dumps(m) + "\n" for m in manifest)

    started = time.time()
    subprocess.run([args.cli, "--quiet", "index", "build", "--model", args.model, "--data",
                    os.path.join(work, "recordings.jsonl"), "--out", os.path.join(work, "idx")], check=True)
    index_seconds = time.time() - started
    info = json.loads(subprocess.run([args.cli, "index", "info", "--index", os.path.join(work, "idx"), "--json"],
                                     check=True, capture_output=True, text=True).stdout)

    def said_at(key, middle, phrase):  # whether a caption saying the phrase is said there
        return any(c["recording"] == key and c["start"] <= middle <= c["end"] and phrase in c["text"] for c in truth)

    def hits(query, case):
        out = subprocess.run([args.cli, "--quiet", "search", "--index", os.path.join(work, "idx"), "--text", query,
                              "--k", "1", "--json"], check=True, capture_output=True, text=True).stdout
        results = json.loads(out)["results"]
        if not results:
            return False, False
        top = results[0]
        middle = (top["record"]["start"] + top["record"]["end"]) / 2
        if query != case["text"]:  # a phrase: any place where it is said is right
            return said_at(top["key"], middle, query), said_at(top["key"], middle, query)
        recording = top["key"] == case["recording"]
        return recording, recording and case["start"] <= middle <= case["end"]

    summary = {"recordings": len(manifest), "captions": len(truth), "utterances": info["utterances"],
               "index_seconds": round(index_seconds, 1)}
    for name, phrase in [("caption", lambda text: text), ("last_four_words", lambda text: " ".join(text.split()[-4:]))]:
        found = [hits(phrase(c["text"]), c) for c in truth]
        summary[name] = {"recording": sum(f[0] for f in found) / len(found),
                         "recording_and_span": sum(f[1] for f in found) / len(found)}
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
