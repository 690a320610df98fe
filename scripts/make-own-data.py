#!/usr/bin/env python3
"""Writes examples/own-data/data/: small files of every record schema DistTrain reads, made from the bundled Brown Corpus.

    python3 scripts/make-own-data.py          # rewrites the files in place; deterministic (fixed seed)

The files stand in for a user's own data: the specs in examples/own-data/ train on them through data.path exactly as
they would on anyone's files (docs/data.md). Nothing is downloaded; the only input is data/brown/brown-tagged.tsv.gz.
"""
import collections
import gzip
import json
import os
import random
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BROWN = os.path.join(ROOT, "data", "brown", "brown-tagged.tsv.gz")
OUT = os.path.join(ROOT, "examples", "own-data", "data")
GENRES = {"news", "religion", "hobbies", "humor", "romance", "science_fiction", "adventure"}
random.seed(20261204)


def documents():
    """(id, genre, [[(word, tag)]]) for every Brown document, in corpus order."""
    doc = None
    with gzip.open(BROWN, "rt", encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if parts[0] == "D":
                if doc:
                    yield doc
                doc = (parts[1], parts[2], [])
            elif parts[0] == "S" and doc:
                words = [w.rsplit("/", 1) for w in parts[1].split(" ") if "/" in w]
                doc[2].append([(w, t) for w, t in words])
    if doc:
        yield doc


def text(sentence):
    """Natural text of a tagged sentence: no space before punctuation, Brown's `` '' as double quotes."""
    out = ""
    for word, _ in sentence:
        word = {"``": '"', "''": '"'}.get(word, word)
        if out and not re.match(r"^[.,;:!?)'\"]|^n't$|^'s$", word) and not out.endswith(("(", '"')) or out.endswith(('."', ',"')):
            out += " "
        out += word
    return re.sub(r'" (.*?) "', r'"\1"', out)


def simple_tag(tag):
    """Brown's tags folded to a dozen coarse ones (noun, verb, …), as a user's own tag set might be."""
    tag = tag.split("-")[0].rstrip("$*") or tag
    for prefix, coarse in [("nn", "NOUN"), ("np", "PROPN"), ("vb", "VERB"), ("be", "VERB"), ("hv", "VERB"), ("do", "VERB"),
                           ("md", "AUX"), ("jj", "ADJ"), ("rb", "ADV"), ("in", "ADP"), ("at", "DET"), ("dt", "DET"),
                           ("ap", "DET"), ("pp", "PRON"), ("wp", "PRON"), ("cc", "CCONJ"), ("cs", "SCONJ"), ("cd", "NUM"), ("od", "NUM")]:
        if tag.startswith(prefix):
            return coarse
    return "PUNCT" if not re.match(r"^[a-z]", tag) else "X"


def write_jsonl(path, rows, compress=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    opener = gzip.open if compress else open
    with opener(path, "wt", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main():
    docs = [d for d in documents() if d[1] in GENRES]
    random.shuffle(docs)
    split = {"train": docs[: int(len(docs) * 0.8)], "validation": docs[int(len(docs) * 0.8): int(len(docs) * 0.9)], "test": docs[int(len(docs) * 0.9):]}

    # Running text, pre-split by file name, documents separated by blank lines (.txt).
    for name, part in split.items():
        os.makedirs(os.path.join(OUT, "books"), exist_ok=True)
        with open(os.path.join(OUT, "books", f"{name}.txt"), "w", encoding="utf-8", newline="\n") as f:
            f.write("\n\n".join(" ".join(text(s) for s in d[2][:12]) for d in part[:60]) + "\n")

    # Running text as one unsplit, gzip-compressed JSONL file with a renamed column: DistTrain draws validation and test.
    write_jsonl(os.path.join(OUT, "articles.jsonl.gz"),
                ({"id": d[0], "body": " ".join(text(s) for s in d[2][:10])} for d in docs[:200]), compress=True)

    # Labelled passages (text + string label), split by file name.
    for name, part in split.items():
        rows = []
        for d in part:
            for i in range(0, min(len(d[2]), 24), 4):
                rows.append({"text": " ".join(text(s) for s in d[2][i:i + 4]), "label": d[1]})
        random.shuffle(rows)
        write_jsonl(os.path.join(OUT, "genre", f"{name}.jsonl"), rows[: {"train": 900, "validation": 150, "test": 150}[name]])

    # Tagged words (tokens + tags), split into folders named train/ and validation/ as dataset hubs lay them out.
    for name, part in [("train", split["train"]), ("validation", split["validation"])]:
        rows = [{"tokens": [w for w, _ in s], "tags": [simple_tag(t) for _, t in s]} for d in part for s in d[2][:6] if 3 <= len(s) <= 40]
        write_jsonl(os.path.join(OUT, "tagged", name, "part-0.jsonl"), rows[: {"train": 900, "validation": 150}[name]])

    # Unlabelled text for a teacher to label (sentences the genre passages do not use; extra fields are ignored).
    rows = [{"text": " ".join(text(s) for s in d[2][i:i + 4]), "source": d[0]} for d in docs for i in range(24, 40, 4) if len(d[2]) >= i + 4]
    write_jsonl(os.path.join(OUT, "unlabelled.jsonl"), rows[:400])

    # Instructions (prompt + response): the loss is on the response.
    rows = []
    for d in docs:
        for s in d[2][:5]:
            if 4 <= len(s) <= 30:
                words = [w for w, _ in s if re.match(r"^[A-Za-z]+$", w)]
                if len(words) >= 2:
                    w = random.choice(words)
                    kind = random.random()
                    if kind < 0.5:
                        rows.append({"prompt": f"Question: Which genre is this sentence from? {text(s)} Answer:", "response": " " + d[1].replace("_", " ")})
                    else:
                        rows.append({"prompt": f"Question: How many letters are in the word \"{w}\"? Answer:", "response": f" {len(w)}"})
    random.shuffle(rows)
    write_jsonl(os.path.join(OUT, "instructions.jsonl"), rows[:1500])

    # Preference pairs (prompt + chosen + rejected): a real sentence over the same words shuffled.
    rows = []
    for d in docs:
        for s in d[2][:4]:
            if 5 <= len(s) <= 30:
                shuffled = s[:]
                while shuffled == s:
                    random.shuffle(shuffled)
                rows.append({"prompt": "Write a sentence:", "chosen": " " + text(s), "rejected": " " + text(shuffled)})
    random.shuffle(rows)
    write_jsonl(os.path.join(OUT, "preferences.jsonl"), rows[:1200])

    # A tiny byte-level BPE (vocab.json + merges.txt, the GPT-2/RoBERTa layout) learned from the training text.
    train_bpe([text(s) for d in split["train"] for s in d[2]], 700, os.path.join(OUT, "tokenizer"))


def byte_alphabet():
    """GPT-2's printable stand-in character for each byte."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, n = keep[:], 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(keep, chars)}


def train_bpe(texts, merges_wanted, out_dir):
    alphabet = byte_alphabet()
    pattern = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+")
    words = collections.Counter()
    for t in texts:
        for piece in pattern.findall(t):
            words[tuple(alphabet[b] for b in piece.encode("utf-8"))] += 1
    vocab = {alphabet[b]: i for i, b in enumerate(sorted(alphabet))}
    merges = []
    while len(merges) < merges_wanted:
        pairs = collections.Counter()
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merges.append(f"{a} {b}")
        vocab[a + b] = len(vocab)
        merged = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + c
        words = merged
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")


if __name__ == "__main__":
    main()
