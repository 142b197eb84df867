"""Scores a bundle on the held-out free-text set (engines/recipe/eval/freetext.jsonl).

The set is only ever read here, to report: nothing in the recipe trains, distils or tunes on it
(eval/README.md). For each brief the knowledge base (teacher) answers the *gold* reading and
the bundle's student answers packd's own reading of the typed text, so a wrong reading shows as
a different answer.

    python -m packd_recipe.freetext_eval --bundle DIR [--baseline DIR]
"""

import argparse
import json
import os
import tomllib

import numpy as np

from . import text_encoder as tenc
from .reading import ONE_EDIT_FROM, OWN_FIELD_SIMILARITY, TWO_EDITS_FROM, LegacyReader, Reader
from .teacher import Teacher

EVAL = os.path.join(os.path.dirname(__file__), "..", "eval", "freetext.jsonl")


def load_eval(path=EVAL):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class BundleView:
    """What scoring needs of a built bundle directory."""

    def __init__(self, path):
        import onnxruntime as ort  # noqa: PLC0415

        def load(rel):
            with open(os.path.join(path, rel), encoding="utf-8") as f:
                return json.load(f)

        self.vocab = load("vocabulary.json")
        self.styles = load("catalogues/styles.json")["styles"]
        self.pals = load("catalogues/palettes.json")["palettes"]
        self.fonts = load("catalogues/fonts.json")["pairings"]
        self.layouts = load("catalogues/layouts.json")["templates"]
        with open(os.path.join(path, "knowledge.toml"), "rb") as f:
            self.knowledge = tomllib.load(f)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.sess = ort.InferenceSession(os.path.join(path, "model.onnx"), opts, providers=["CPUExecutionProvider"])
        self.encoder = None
        te_path = os.path.join(path, "text_encoder.bin")
        if os.path.exists(te_path):
            self.encoder = tenc.read(te_path)

    def reader(self, legacy=False):
        if legacy or self.encoder is None:
            return LegacyReader(self.vocab) if legacy else Reader(self.vocab)
        return Reader(self.vocab, self.encoder, tenc.TermIndex(self.encoder, self.vocab["terms"]))

    def teacher(self):
        return Teacher(self.knowledge, self.vocab, self.styles, self.pals, self.fonts, self.layouts)

    def student(self, x):
        z = np.zeros((1, 24), np.float32), np.zeros((1, 16), np.float32)
        o = self.sess.run(None, {"brief": x[None].astype(np.float32), "image": z[0], "brand": z[1]})
        return o[0][0], o[1][0]


def gold_vectors(rows, vocab):
    index = {t["id"]: t["index"] for t in vocab["terms"]}
    X = np.zeros((len(rows), len(index)))
    for r, row in enumerate(rows):
        for g in row["gold"]:
            for tid in g["as"]:
                X[r, index[tid]] = 1.0
    return X


def score(rows, gold_bundle, pred_bundle, legacy=False):
    """Figures for `pred_bundle`'s reading and model against `gold_bundle`'s knowledge base."""
    T = gold_bundle.teacher().score(gold_vectors(rows, gold_bundle.vocab), np.zeros((len(rows), 24)),
                                    np.zeros((len(rows), 16)))
    reader = pred_bundle.reader(legacy)
    values = {"right": 0, "wrong": 0, "missed": 0, "total": 0, "unknown_ok": 0, "unknown_total": 0}
    per_lang = {}
    style_ok = family_ok = both_ok = 0
    answers = {}
    for r, row in enumerate(rows):
        vec, readings, _ = reader.encode(row["brief"])
        lang = per_lang.setdefault(row["lang"], [0, 0])
        for g, (_, _, read, _, _) in zip(row["gold"], readings):
            gold, got = set(g["as"]), set(read)
            if not gold:
                values["unknown_total"] += 1
                values["unknown_ok"] += not got
                continue
            values["total"] += 1
            lang[1] += 1
            if not got:
                values["missed"] += 1
            elif got <= gold:
                values["right"] += 1
                lang[0] += 1
            else:
                values["wrong"] += 1
        s, p = pred_bundle.student(vec)
        top_style = pred_bundle.styles[int(np.argmax(s))]["id"]
        fams = [pred_bundle.pals[i]["family"] for i in np.argsort(-p, kind="stable")[:3]]
        want_style = gold_bundle.styles[int(np.argmax(T["styles"][r]))]["id"]
        want_family = gold_bundle.pals[int(np.argmax(T["palettes"][r]))]["family"]
        style_ok += top_style == want_style
        family_ok += fams[0] == want_family
        both_ok += top_style == want_style and fams[0] == want_family
        answers[(row["pair"], row["lang"])] = (top_style, set(fams))
    pairs = {p for p, _ in answers}
    twins = sum(
        1
        for p in pairs
        if (p, "en") in answers and (p, "zh") in answers
        and answers[(p, "en")][0] == answers[(p, "zh")][0]
        and answers[(p, "en")][1] & answers[(p, "zh")][1]
    )
    n = len(rows)
    return {
        "briefs": n,
        "values": values,
        "understood": values["right"] / max(values["total"], 1),
        "understood_by_lang": {k: v[0] / max(v[1], 1) for k, v in per_lang.items()},
        "unknown_left_alone": values["unknown_ok"] / max(values["unknown_total"], 1),
        "style_top1": style_ok / n,
        "family_top1": family_ok / n,
        "style_and_family_top1": both_ok / n,
        "twins": twins / max(len(pairs), 1),
        "pairs": len(pairs),
    }


def markdown(new, base=None):
    """The REPORT.md section: this bundle, and the baseline when given."""
    rows = [
        ("terms understood (read as gold terms only)", "understood"),
        ("  English values", ("understood_by_lang", "en")),
        ("  Chinese values", ("understood_by_lang", "zh")),
        ("nonsense values left as warnings", "unknown_left_alone"),
        ("top-1 style = knowledge base on the gold reading", "style_top1"),
        ("top-1 palette family = knowledge base", "family_top1"),
        ("both", "style_and_family_top1"),
        ("twins agree (top style and a top-3 palette family)", "twins"),
    ]

    def get(res, key):
        return res[key[0]].get(key[1], 0.0) if isinstance(key, tuple) else res[key]

    head = "| measure | this bundle |" + (" baseline |" if base else "")
    out = [head, "|---|---|" + ("---|" if base else "")]
    for label, key in rows:
        line = f"| {label} | {get(new, key) * 100:.1f} % |"
        if base:
            line += f" {get(base, key) * 100:.1f} % |"
        out.append(line)
    v = new["values"]
    out += ["", f"{new['briefs']} briefs ({new['pairs']} twin pairs), {v['total']} values with a meaning "
            f"({v['right']} read right, {v['wrong']} read as a wrong term, {v['missed']} not read) and "
            f"{v['unknown_total']} meaningless values."]
    return "\n".join(out)


BASELINE = os.path.join(os.path.dirname(EVAL), "baseline.json")

# What reading with the encoder costs in packd. The recipe cannot time Rust: these are packd's
# own TextEncoder, TermIndex and Vocabulary timed in a release build over the six values of the
# pipeline bench's free-text brief; update them with docs/performance.md "Free-text briefs" when
# the encoder, the anchors or the reading chain change.
PACKD_COST = (
    "Cost in packd (release build, 2 vCPUs AMD EPYC, 2026-12-07, an AddressSanitizer build on the "
    "other vCPU): `cargo bench --bench pipeline`'s free-text brief (six values, three of them Latin "
    "phrases) encodes in 448 µs with the encoder and 214 µs with synonyms only, most of that the "
    "misspelling check (each Latin value against the 23 732 synonyms' Latin ones of a length within "
    "its slips and a start in line, by optimal string alignment); the whole brief takes 752 µs. "
    "Contained synonyms are found in one Aho-Corasick pass; the encoder compares a value with the "
    "1 568 anchor vectors (each term's first four synonyms per language). Figures over time are in "
    "docs/performance.md."
)


def append_report(bundle_dir, config):
    """Appends the text encoder and free-text sections to the bundle's REPORT.md."""
    view = BundleView(bundle_dir)
    rows = load_eval()
    new = score(rows, view, view)
    base = None
    if os.path.exists(BASELINE):
        with open(BASELINE, encoding="utf-8") as f:
            base = json.load(f)
    size = os.path.getsize(os.path.join(bundle_dir, "text_encoder.bin"))
    n, dim = view.encoder.rows.shape
    lines = [
        "", "## Text encoder", "",
        f"`text_encoder.bin`: {n} pieces x {dim} int8 ({size / 1e6:.2f} MB), distilled at build time from "
        f"{tenc.TEACHER}: the teacher's SentencePiece pieces that English or Simplified Chinese briefs use, "
        "plus the most frequent Chinese words of jieba's dictionary (MIT), each embedded alone by the teacher, "
        f"centred, reduced by PCA to {dim} dimensions, weighted by smooth inverse frequency and quantised per row. "
        f"A value reads as a term when its cosine similarity to one of the term's anchors (its first "
        f"{tenc.ANCHORS_PER_LANGUAGE} synonyms per language) reaches "
        f"{config['threshold']} (field's own groups) or {config['threshold'] + config['margin']:.2f} (any group), "
        f"and it replaces a `contains` reading that lacks its term from {config['confident']}; "
        "the first two were chosen on `data/encoder_dev.tsv`, the last on the development set "
        "`data/freetext_dev.jsonl`, never on the evaluation set. In the mood and palette "
        f"fields a reading of the field's own terms at {OWN_FIELD_SIMILARITY} or closer comes before another "
        "group's exact synonym (\"earthy\" as a palette is earth tones, not the natural mood); that rule and "
        "its similarity were chosen on the development set `data/freetext_dev.jsonl`. A Latin value of "
        f"{ONE_EDIT_FROM} letters or more that no group lists reads as the one term with a synonym within one "
        f"slip of it (two from {TWO_EDITS_FROM} letters), and a product or audience value whose contained words "
        "all belong to other groups takes the encoder's reading among its own terms when one clears the "
        "threshold; the lengths were chosen on the development set.",
        "", PACKD_COST,
        "", "## Free-text briefs (held-out evaluation set)", "",
        "`eval/freetext.jsonl`: briefs written the way store staff type, English and Chinese twins, with the "
        "terms each value means; never used for training or tuning (eval/README.md). The knowledge base "
        "answers the gold reading; the model answers packd's reading of the typed text."
        + (" Baseline: the bundle before the text encoder and vocabulary growth (125 terms, exact synonyms, "
           "`contains` in keywords only), scored the same way (eval/baseline.json)." if base else ""),
        "", markdown(new, base),
    ]
    with open(os.path.join(bundle_dir, "REPORT.md"), "a", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    return new


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--baseline", help="an older bundle, read the way packd read briefs before issue 15")
    ap.add_argument("--eval", default=EVAL)
    ap.add_argument("--write-baseline", action="store_true", help=f"save the baseline's figures to {BASELINE}")
    a = ap.parse_args(argv)
    rows = load_eval(a.eval)
    new_bundle = BundleView(a.bundle)
    new = score(rows, new_bundle, new_bundle)
    base = score(rows, new_bundle, BundleView(a.baseline), legacy=True) if a.baseline else None
    if base and a.write_baseline:
        with open(BASELINE, "w", encoding="utf-8", newline="\n") as f:
            json.dump(base, f, indent=1, sort_keys=True)
            f.write("\n")
    print(markdown(new, base))


if __name__ == "__main__":
    main()
