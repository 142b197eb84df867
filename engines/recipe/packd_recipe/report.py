"""Quality report (REPORT.md) and example swatch PNGs."""
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import colour as col
from . import model
from . import vocab as vocmod

FIELD_OF_GROUP = {"product": "product", "audience": "audience", "mood": "mood", "season": "mood",
                  "occasion": "mood", "palette": "palette", "keyword": "keywords"}


def ndcg_at_k(pred, gain, k=5):
    order = np.argsort(-pred, kind="stable")[:k]
    ideal = np.sort(gain)[::-1][:k]
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    idcg = (ideal * disc).sum()
    return float((gain[order] * disc).sum() / idcg) if idcg > 0 else 1.0


def topk(a, k=5):
    return np.argsort(-a, kind="stable")[:k]


def palette_distance(la, lb):
    d = col.ciede2000(la[:, None, :], lb[None, :, :])
    return 0.5 * (d.min(1).mean() + d.min(0).mean())


def run_all(sess, X, I, R):
    outs = {k: [] for k in ("styles", "palettes", "fonts", "layout")}
    for i in range(X.shape[0]):
        o = sess.run(None, {"brief": X[i:i + 1].astype(np.float32), "image": I[i:i + 1].astype(np.float32),
                            "brand": R[i:i + 1].astype(np.float32)})
        for k, v in zip(outs, o):
            outs[k].append(v[0])
    return {k: np.array(v) for k, v in outs.items()}


def lang_check(vocab, enc, rng, n_pairs=2000):
    terms = vocab["terms"]
    syn_fail = 0
    syn_total = 0
    for t in terms:
        field = FIELD_OF_GROUP[t["group"]]
        for s in t["en"] + t["zh"]:
            syn_total += 1
            if enc.match(field, s) != [t["index"]]:
                syn_fail += 1
    by_group = {g: [t for t in terms if t["group"] == g] for g in vocab["groups"]}
    same = 0
    for _ in range(n_pairs):
        chosen = []
        chosen.append(by_group["product"][int(rng.integers(len(by_group["product"])))])
        for g, k in (("audience", 2), ("mood", 2), ("season", 1), ("occasion", 1), ("palette", 1), ("keyword", 2)):
            for _ in range(int(rng.integers(0, k + 1))):
                chosen.append(by_group[g][int(rng.integers(len(by_group[g])))])
        def brief(lang):
            b = {"audience": [], "mood": [], "keywords": []}
            for t in chosen:
                s = t[lang][int(rng.integers(len(t[lang])))]
                f = FIELD_OF_GROUP[t["group"]]
                if f in ("product", "palette"):
                    b[f] = s
                else:
                    b[f].append(s)
            return b
        ve, we = enc.encode(brief("en"))
        vz, wz = enc.encode(brief("zh"))
        same += int(ve == vz and not we and not wz)
    return syn_total, syn_fail, n_pairs, same


def render_example(path, title, terms, pals_top, styles_top, fonts_top, heat):
    W, Hh = 620, 264
    img = Image.new("RGB", (W, Hh), (250, 250, 248))
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    d.text((10, 6), title, fill=(20, 20, 20), font=font)
    d.text((10, 20), ("terms: " + ", ".join(terms))[:110], fill=(90, 90, 90), font=font)
    y = 40
    for p, s in pals_top:
        x = 10
        for h in p["colors"]:
            d.rectangle([x, y, x + 34, y + 34], fill=h)
            x += 36
        d.text((x + 6, y + 4), f"{p['name']}  ({p['family']})", fill=(20, 20, 20), font=font)
        d.text((x + 6, y + 18), f"score {s:.2f}  text/bg {p['attributes']['contrast']:.1f}:1", fill=(90, 90, 90), font=font)
        y += 40
    d.text((10, y + 4), "styles: " + ", ".join(f"{n} {s:.2f}" for n, s in styles_top), fill=(20, 20, 20), font=font)
    d.text((10, y + 20), ("fonts: " + " | ".join(f"{f['heading']} + {f['body']} {s:.2f}" for f, s in fonts_top[:2]))[:100],
           fill=(20, 20, 20), font=font)
    d.text((10, y + 34), ("CJK: " + " | ".join(f"{f['heading_cjk']} + {f['body_cjk']}" for f, s in fonts_top[:2]))[:100],
           fill=(20, 20, 20), font=font)
    hm = np.clip(np.stack([heat[0], heat[1], heat[2]], -1) * 255, 0, 255).astype(np.uint8)
    him = Image.fromarray(hm, "RGB").resize((96, 128), Image.NEAREST)
    img.paste(him, (W - 110, 40))
    d.text((W - 110, 172), "layout R=logo", fill=(90, 90, 90), font=font)
    d.text((W - 110, 184), "G=product B=text", fill=(90, 90, 90), font=font)
    img = img.quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    img.save(path, optimize=True)


FONT_PROBES = [
    ("国潮 tea", {"product": "茶", "keywords": ["国潮"]}),
    ("mooncake, traditional, 国潮", {"product": "月饼", "mood": ["传统"], "keywords": ["国潮"]}),
    ("handmade bakery, hand drawn", {"product": "bakery", "mood": ["warm"], "keywords": ["hand drawn"]}),
    ("kids snacks, cute", {"product": "snacks", "audience": ["kids"], "mood": ["cute"]}),
    ("elegant perfume", {"product": "perfume", "mood": ["elegant"]}),
    ("zen tea, ink wash", {"product": "tea", "mood": ["calm"], "keywords": ["水墨", "禅意"]}),
    ("streetwear apparel", {"product": "apparel", "audience": ["gen z"], "keywords": ["潮牌"]}),
    ("clinical skincare", {"product": "skincare", "mood": ["minimal"], "keywords": ["clinical"]}),
]


def family_match(sess, vocab, sampler, pals, n):
    """For each palette family term: n random text-only briefs (random product/audience/mood/keywords as in
    training, every other palette term removed) naming that family; share of top-3 palettes of that family."""
    fam_of = np.array([p["family"] for p in pals])
    pal_terms = [t for t in vocab["terms"] if t["group"] == "palette"]
    pal_idx = [t["index"] for t in pal_terms]
    rows = []
    for t in pal_terms:
        X, I, R = sampler.batch(n, p_img=0.0, p_brand=0.0)
        X[:, pal_idx] = 0.0
        X[:, t["index"]] = 1.0
        O = run_all(sess, X, I, R)["palettes"]
        top3 = np.array([topk(o, 3) for o in O])
        fam = t["id"].split(":", 1)[1]
        rows.append((t, fam, float((fam_of[top3] == fam).mean())))
    # the guochao keyword names no family but lists chinese_red_gold / jewel_tones in knowledge.toml
    g = [t for t in vocab["terms"] if t["id"] == "keyword:guochao"][0]
    X, I, R = sampler.batch(n, p_img=0.0, p_brand=0.0)
    X[:, pal_idx] = 0.0
    X[:, g["index"]] = 1.0
    O = run_all(sess, X, I, R)["palettes"]
    top3 = np.array([topk(o, 3) for o in O])
    gshare = float(np.isin(fam_of[top3], ["chinese_red_gold", "jewel_tones"]).mean())
    gred = float((fam_of[top3] == "chinese_red_gold").mean())
    # Chinese New Year / 春节 (an occasion, written in the mood field) lists chinese_red_gold only
    g = [t for t in vocab["terms"] if t["id"] == "occasion:chinese_new_year"][0]
    X, I, R = sampler.batch(n, p_img=0.0, p_brand=0.0)
    X[:, pal_idx] = 0.0
    X[:, g["index"]] = 1.0
    O = run_all(sess, X, I, R)["palettes"]
    top3 = np.array([topk(o, 3) for o in O])
    cny = float((fam_of[top3] == "chinese_red_gold").mean())
    return rows, gshare, (gred, cny)


def spread(O, k):
    s = -np.sort(-O, axis=1)
    return {r: float(np.median(s[:, r - 1])) for r in k}


def write_report(out, ctx):
    from .build import EXAMPLE_BRIEFS
    rng = np.random.default_rng(12345)
    vocab, enc, teacher, sampler = ctx["vocab"], ctx["enc"], ctx["teacher"], ctx["sampler"]
    pals, fonts, styles = ctx["pals"], ctx["fonts"], ctx["styles"]
    s32, s8 = ctx["s32"], ctx["s8"]
    n = 150 if ctx["quick"] else 600
    # held-out combinations (never in training) and in-distribution briefs
    sampler.rng = np.random.default_rng(777)
    Xh, Ih, Rh = sampler.batch(n, force_pairs=ctx["heldout"])
    Xi, Ii, Ri = sampler.batch(n)
    res = {}
    for tag, (X, I, R) in (("held-out", (Xh, Ih, Rh)), ("in-distribution", (Xi, Ii, Ri))):
        T = teacher.score(X, I, R)
        O = run_all(s32, X, I, R)
        r = {}
        for h in ("styles", "palettes", "fonts"):
            r[h] = float(np.mean([ndcg_at_k(O[h][i], T[h][i]) for i in range(n)]))
            r[h + "_top1"] = float(np.mean([topk(O[h][i], 1)[0] == topk(T[h][i], 1)[0] for i in range(n)]))
        r["layout_mae"] = float(np.abs(O["layout"] - T["layout"]).mean())
        res[tag] = (r, O, T, X, I, R)
    # INT8 vs FP32 on held-out + in-dist
    X = np.concatenate([Xh, Xi]); I = np.concatenate([Ih, Ii]); R = np.concatenate([Rh, Ri])
    O32 = {k: np.concatenate([res["held-out"][1][k], res["in-distribution"][1][k]]) for k in res["held-out"][1]}
    O8 = run_all(s8, X, I, R)
    q = {}
    for h in ("styles", "palettes", "fonts"):
        q[h] = (float(np.mean([len(set(topk(O8[h][i])) & set(topk(O32[h][i]))) / 5 for i in range(len(X))])),
                float(np.mean([np.array_equal(topk(O8[h][i]), topk(O32[h][i])) for i in range(len(X))])),
                float(np.abs(O8[h] - O32[h]).max()))
    q["layout"] = (None, None, float(np.abs(O8["layout"] - O32["layout"]).max()))
    # ORT int8 vs numpy fake-quant reference, and vs ORT without graph optimisations
    from .build import ort_session
    _, _, deq = model.quantise_weights(ctx["params"])
    deq = {k: (np.float32(v).astype(np.float64)) for k, v in deq.items()}
    qs = {k: ctx["scales"][v] for k, v in model.ACT_Q.items()}
    qs = {model.ACT_Q[k]: ctx["scales"][model.ACT_Q[k]] for k in model.ACT_Q}
    Onp, _ = model.forward(deq, X, I, R, q=qs)
    dev_np_heads = {k: float(np.abs(Onp[k] - O8[k]).max()) for k in O8}
    dev_np = max(dev_np_heads.values())
    # TensorRT 10.3's implicit INT8 (model.onnx + model.calib.cache, the DLA path on JetPack 6)
    # quantises h1 and h2 once: the same scales without the half-step second quantisation
    Oimp, _ = model.forward(deq, X, I, R, q=qs, dithered=())
    q_implicit = {h: float(np.mean([len(set(topk(Oimp[h][i])) & set(topk(O32[h][i]))) / 5 for i in range(len(X))]))
                  for h in ("styles", "palettes", "fonts")}
    s8o = ort_session(os.path.join(out, "model.int8.onnx"), opt=True)
    O8o = run_all(s8o, X[:200], I[:200], R[:200])
    dev_noopt = max(float(np.abs(O8o[k] - O8[k][:200]).max()) for k in O8)
    dev_noopt_heads = {k: float(np.abs(O8o[k] - O8[k][:200]).max()) for k in O8}
    # language
    syn_total, syn_fail, npairs, same = lang_check(vocab, enc, rng)
    # diversity of returned palettes (student fp32 top-5)
    plab = [np.array([col.hex_to_lab(h) for h in p["colors"]]) for p in pals]
    divs, mins = [], []
    for i in range(0, len(X), 3):
        t5 = topk(O32["palettes"][i])
        ds = [palette_distance(plab[a], plab[b]) for ai, a in enumerate(t5) for b in t5[ai + 1:]]
        divs.append(np.mean(ds)); mins.append(np.min(ds))
    contr = np.array([p["attributes"]["contrast"] for p in pals])
    wcag_roles = min(col.wcag_contrast(p["roles"]["text"], p["roles"]["background"]) for p in pals)

    # named palette family -> share of top-3 palettes from that family (FP32 and INT8)
    nfam = 30 if ctx["quick"] else 100
    sampler.rng = np.random.default_rng(4242)
    fam32, g32, (gred32, cny32) = family_match(s32, vocab, sampler, pals, nfam)
    sampler.rng = np.random.default_rng(4242)
    fam8, g8, (gred8, cny8) = family_match(s8, vocab, sampler, pals, nfam)
    # score spread (FP32 student) over the held-out + in-distribution briefs
    spr = {h: spread(O32[h], (1, 3, 5, 10)) for h in ("styles", "palettes", "fonts")}
    # example brief 1: top-10 scores
    x1 = np.array(enc.encode(EXAMPLE_BRIEFS[0][1])[0])
    feed1 = {"brief": x1[None].astype(np.float32), "image": np.zeros((1, 24), np.float32), "brand": np.zeros((1, 16), np.float32)}
    e32 = dict(zip(["styles", "palettes", "fonts", "layout"], [v[0] for v in s32.run(None, feed1)]))
    e8 = dict(zip(["styles", "palettes", "fonts", "layout"], [v[0] for v in s8.run(None, feed1)]))
    # CJK faces of the student's top pairings
    ftop1 = [topk(o, 1)[0] for o in O32["fonts"]]
    ftop3 = [k for o in O32["fonts"] for k in topk(o, 3)]
    noto_both = float(np.mean([fonts[k]["heading_cjk"] == "Noto Sans SC" and fonts[k]["body_cjk"] == "Noto Sans SC" for k in ftop3]))
    noto_any = float(np.mean([fonts[k]["body_cjk"] == "Noto Sans SC" for k in ftop3]))
    head_cjk = sorted({fonts[k]["heading_cjk"] for k in ftop1})
    body_cjk = sorted({fonts[k]["body_cjk"] for k in ftop1})
    probe_lines = []
    for label, b in FONT_PROBES:
        xp = np.array(enc.encode(b)[0])
        op = s32.run(None, {"brief": xp[None].astype(np.float32), "image": np.zeros((1, 24), np.float32), "brand": np.zeros((1, 16), np.float32)})[2][0]
        cells = ["%s + %s / %s + %s (%.2f)" % (fonts[k]["heading"], fonts[k]["body"], fonts[k]["heading_cjk"], fonts[k]["body_cjk"], op[k]) for k in topk(op, 2)]
        probe_lines.append("| %s | %s | %s |" % (label, cells[0], cells[1]))

    # examples
    ex_lines = []
    for j, (name, b) in enumerate(EXAMPLE_BRIEFS[:10]):
        x = np.array(enc.encode(b)[0])
        o = s32.run(None, {"brief": x[None].astype(np.float32), "image": np.zeros((1, 24), np.float32), "brand": np.zeros((1, 16), np.float32)})
        o = dict(zip(["styles", "palettes", "fonts", "layout"], [v[0] for v in o]))
        terms = [vocab["terms"][k]["id"] for k in np.where(x > 0)[0]]
        ptop = [(pals[k], float(o["palettes"][k])) for k in topk(o["palettes"], 3)]
        stop = [(styles[k]["name"], float(o["styles"][k])) for k in topk(o["styles"], 3)]
        ftop = [(fonts[k], float(o["fonts"][k])) for k in topk(o["fonts"], 2)]
        fn = f"examples/{j + 1:02d}-{name}.png"
        render_example(os.path.join(out, fn), f"{j + 1}. {name}", terms, ptop, stop, ftop, o["layout"])
        brief_txt = "; ".join(f"{k}: {v}" for k, v in b.items() if v)
        ptxt = ", ".join("%s / %s (%.2f)" % (p["name"], p["name_zh"], s) for p, s in ptop)
        stxt = ", ".join("%s (%.2f)" % (nm, s) for nm, s in stop)
        f0 = ftop[0][0]
        ftxt = "%s + %s / %s + %s" % (f0["heading"], f0["body"], f0["heading_cjk"], f0["body_cjk"])
        ex_lines.append("| %d | %s | %s | %s | %s | ![](%s) |" % (j + 1, brief_txt, ptxt, stxt, ftxt, fn))

    c = ctx["config"]
    rh, ri = res["held-out"][0], res["in-distribution"][0]
    V, S, P, F = len(vocab["terms"]), len(styles), len(pals), len(fonts)
    fsz = lambda f: os.path.getsize(os.path.join(out, f))
    L = []
    L += [f"# packd-default {c['version']} - quality report", "",
          "Generated by `engines/recipe/build.sh` (deterministic: two full builds on the same machine give byte-identical bundles; numbers below are from the build that produced this bundle).", "",
          "## Bundle", "",
          f"* Shapes: `brief` [1,{V}], `image` [1,24], `brand` [1,16] -> `styles` [1,{S}], `palettes` [1,{P}], `fonts` [1,{F}], `layout` [1,3,16,12].",
          f"* Catalogues: {S} styles, {P} palettes ({len(set(p['family'] for p in pals))} families; {ctx['pstats']['fixed']} contrast-fixed, {ctx['pstats']['dropped']} dropped of {ctx['pstats']['generated']} generated), {F} font pairings (all OFL-1.1 families), {len(ctx['layouts'])} layout templates.",
          f"* Vocabulary: {V} terms (" + ", ".join(f"{g} {sum(t['group'] == g for t in vocab['terms'])}" for g in vocab["groups"]) + f"), {sum(len(t['en']) + len(t['zh']) for t in vocab['terms'])} synonyms (English and Simplified Chinese, unique after normalisation); every term has an entry in `knowledge.toml`.",
          f"* {'Every term appears' if ctx['term_counts'].min() > 0 else 'NOT every term appears'} in the training set (fewest: {int(ctx['term_counts'].min())} of {ctx['n_train']} briefs, `{vocab['terms'][int(np.argmin(ctx['term_counts']))]['id']}`) and in the {len(ctx['calib_briefs'])} calibration briefs in both its English and its Chinese form.",
          f"* Student: MLP {V}+24+16 -> {model.H} -> {model.H} -> heads; layout head Gemm -> Reshape [N,16,4,3] -> ConvTranspose k4 s4 -> Relu -> Conv 3x3 -> Sigmoid. Trained {c['epochs'] if not ctx['quick'] else 3} epochs on {ctx['n_train']} teacher-labelled briefs (BCE with head weights " + ", ".join(f"{k} {v:g}" for k, v in model.HEAD_W.items()) + f", Adam, batch {c['batch']}, lr {c['lr']:g}, cosine LR).",
          f"* Files: model.onnx {fsz('model.onnx')} B, model.int8.onnx {fsz('model.int8.onnx')} B.",
          "", "## Student vs teacher (NDCG@5, teacher target scores as gains)", "",
          f"Held-out set: {n} briefs each containing one of {len(ctx['heldout'])} product x mood combinations that were excluded from training. In-distribution: {n} fresh random briefs. 35 % carry a synthetic reference image, 35 % brand colours.", "",
          "| head | NDCG@5 held-out | NDCG@5 in-dist | top-1 = teacher top-1 (held-out) |", "|---|---|---|---|"]
    for h in ("styles", "palettes", "fonts"):
        L.append(f"| {h} | {rh[h]:.4f} | {ri[h]:.4f} | {rh[h + '_top1']:.3f} |")
    L += ["", f"Layout heatmap mean absolute error vs teacher: held-out {rh['layout_mae']:.4f}, in-dist {ri['layout_mae']:.4f}.", "",
          "## INT8 vs FP32 (onnxruntime; INT8 run with graph optimisations off = reference Q/DQ semantics)", "",
          f"Over {len(X)} briefs (held-out + in-distribution). Top-5 agreement = mean |top5(int8) ∩ top5(fp32)| / 5.", "",
          "| head | top-5 set agreement | identical ordered top-5 | max abs deviation |", "|---|---|---|---|"]
    for h in ("styles", "palettes", "fonts"):
        L.append(f"| {h} | {q[h][0] * 100:.2f} % | {q[h][1] * 100:.1f} % | {q[h][2]:.4f} |")
    L += [f"| layout (heatmap) | - | - | {q['layout'][2]:.4f} |", "",
          f"* ORT INT8 (plain Q/DQ) vs an independent numpy fake-quant reference (round-half-even, clip to [-128,127]): max deviation {dev_np:.2e} (" + ", ".join(f"{k} {v:.1e}" for k, v in dev_np_heads.items()) + ").",
          f"* ORT INT8 with graph optimisations (fused integer kernels) vs without (plain Q/DQ, used for the self-test vectors): max deviation {dev_noopt:.2e} (" + ", ".join(f"{k} {v:.1e}" for k, v in dev_noopt_heads.items()) + ").",
          f"* Self-test tolerance: fp32 {c['fp32_tolerance']}, int8 {c['int8_tolerance']}. The int8 value is about twice the largest deviation measured between two valid executions of the same INT8 graph "
          f"(numpy vs ORT {dev_np:.3f}; ORT fused vs plain {dev_noopt:.3f}): one activation landing on the other side of a rounding boundary (e.g. in `layout_up`, scale {ctx['scales']['layout_up']:.3f}) moves a heatmap cell by up to ~0.03, and tract may round differently from onnxruntime.",
          "* TensorRT 10.3 implicit INT8 (`model.onnx` + `model.calib.cache`, JetPack 6 / DLA), simulated with numpy: h1 and h2 are quantised once there (no half-step pair), top-5 set agreement "
          + ", ".join(f"{h} {v * 100:.2f} %" for h, v in q_implicit.items()) + ".",
          "* INT8 graph: every Gemm, ConvTranspose and Conv reads int8 activations and weights (per-tensor, symmetric). The hidden tensors h1 and h2 are quantised twice, as is and half a step higher, and the next Gemms read both (Concat, weights stacked at half scale, the half step folded into the bias): their mean has the rounding error of a quantiser with half the step. Before calibration each hidden channel is scaled to the tensor's range (at most x" + f"{c['equalise_cap']:g}" + ", undone in the next layer's weights: the FP32 function is unchanged). Quantisation-aware fine-tuning (" + f"{c['qat_epochs']}" + " epochs) trains the forwards " + ", ".join(c["qat_forwards"]) + " of the same int8 weights together (dithered: this graph; single: the implicit-INT8 path below; float: the FP32 model).",
          "* The FP32 model carries the int8-representable weights (q x scale) that quantisation-aware fine-tuning trained, so FP32 and INT8 differ only in activation rounding.",
          ("* Goal (>= 99 % top-5 set agreement per head, explicit INT8 / implicit INT8): " + ", ".join(f"{h} {'met' if q[h][0] >= 0.99 else 'NOT met'} / {'met' if q_implicit[h] >= 0.99 else 'NOT met'}" for h in ("styles", "palettes", "fonts")) + "."
           + ("" if all(min(q[h][0], q_implicit[h]) >= 0.99 for h in ("styles", "palettes", "fonts")) else
              " Where it is not met the cause is near-ties that remain in the student even with the teacher's tie-break term (`tie_break` in knowledge.toml): sibling palettes of one family (same recipe, neighbouring hues) whose student scores differ by less than int8 activation rounding, so rank 5 and 6 swap; serve from the FP32/FP16 model where the exact order of near-identical items matters.")), "",
          "## Score spread (graded teacher targets)", "",
          "The teacher's targets are graded per brief: logit(target) = L_top + (L_top - L_k) x (raw - raw_best) / max(raw_best - raw_k, floor), where the best item gets `top` scaled by how clearly it stands above the median (tanh(gap / clear_gap)) and the k-th best gets `kth` (parameters in `knowledge.toml`, `[teacher.grading]`). The student's median scores by rank, over the held-out + in-distribution briefs:", "",
          "| head | rank 1 | rank 3 | rank 5 | rank 10 |", "|---|---|---|---|---|"]
    for h in ("styles", "palettes", "fonts"):
        L.append(f"| {h} | {spr[h][1]:.2f} | {spr[h][3]:.2f} | {spr[h][5]:.2f} | {spr[h][10]:.2f} |")
    b1 = EXAMPLE_BRIEFS[0][1]
    L += ["", f"Example brief 1 ({'; '.join(f'{k}: {v}' for k, v in b1.items() if v)}), top-10 palettes (FP32 / INT8):", "",
          "| rank | palette | family | FP32 | INT8 |", "|---|---|---|---|---|"]
    for r, k in enumerate(topk(e32["palettes"], 10)):
        L.append(f"| {r + 1} | {pals[k]['name']} / {pals[k]['name_zh']} | {pals[k]['family']} | {e32['palettes'][k]:.3f} | {e8['palettes'][k]:.3f} |")
    L += ["", "Top-5 styles: " + ", ".join(f"{styles[k]['name']} {e32['styles'][k]:.2f}" for k in topk(e32["styles"], 5)) + ".",
          "Top-5 font pairings: " + ", ".join(f"{fonts[k]['heading']} / {fonts[k]['heading_cjk']} {e32['fonts'][k]:.2f}" for k in topk(e32["fonts"], 5)) + ".", "",
          "## Named palette family", "",
          f"For each palette-family term: {nfam} random text-only briefs (random product, audience, mood, keywords as in training; no other palette term) that name the family. Share of the top-3 palettes whose catalogue family is the named one (goal >= 0.8).", "",
          "| palette term (en / zh example) | family | FP32 | INT8 |", "|---|---|---|---|"]
    for (t, fam, a), (_, _, b8) in zip(fam32, fam8):
        L.append(f"| {t['en'][0]} / {t['zh'][0]} | {fam} | {a:.2f} | {b8:.2f} |")
    L += [f"| keyword 国潮 / guochao (no palette term) | chinese_red_gold or jewel_tones (its families in knowledge.toml) | {g32:.2f} | {g8:.2f} |",
          f"| (same, chinese_red_gold only) | chinese_red_gold | {gred32:.2f} | {gred8:.2f} |",
          f"| mood 春节 / Chinese New Year (no palette term) | chinese_red_gold | {cny32:.2f} | {cny8:.2f} |", "",
          f"Minimum over the {len(fam32)} families: FP32 {min(a for _, _, a in fam32):.2f}, INT8 {min(a for _, _, a in fam8):.2f}. The named family's fit (family membership plus the look: chroma/lightness/hue of the term) is weighted `named_family_weight` against the rest of the brief, which orders the palettes inside the family.", "",
          "## CJK faces", "",
          f"Every pairing names a Latin heading/body and a CJK heading/body (all OFL-1.1). Over the {len(O32['fonts'])} report briefs the student's top-1 pairings use {len(head_cjk)} different CJK heading faces ({', '.join(head_cjk)}) and {len(body_cjk)} CJK body faces ({', '.join(body_cjk)}); Noto Sans SC as the CJK body face in {noto_any * 100:.0f} % of top-3 pairings, as both CJK faces in {noto_both * 100:.0f} %.", "",
          "| brief | top pairing (heading + body / CJK heading + CJK body) | second |", "|---|---|---|"]
    L += probe_lines
    L += ["",
          "## English vs Chinese", "",
          f"* Every synonym matches exactly its own term in its field: {syn_total - syn_fail}/{syn_total}.",
          f"* {npairs} random briefs written once with random English synonyms and once with random Chinese synonyms: {same}/{npairs} encode to identical vectors (no warnings).",
          "  The Python encoder implements the contract's normalise (NFKC, lower case, `-`/`_` -> space, whitespace collapse) and exact-then-contained matching (an ASCII-only synonym inside a keyword must not have an ASCII letter or digit right before or after it: `ins风` matches `ins`, `steam` does not match `tea`).", "",
          "## Palette diversity and legibility", "",
          f"* Pairwise palette distance among the student's top-5 (CIEDE2000, symmetric mean nearest-colour distance): mean {np.mean(divs):.1f}, median {np.median(divs):.1f}; smallest pair per brief: median {np.median(mins):.1f}, min {np.min(mins):.1f}.",
          f"* WCAG 2.x contrast of text on background over all {P} catalogue palettes: min {contr.min():.2f}:1 (recomputed from roles: {wcag_roles:.2f}:1), median {np.median(contr):.2f}:1, all >= 4.5.", "",
          "## Examples (FP32, no image, no brand colours)", "",
          "| # | brief | top palettes | top styles | top font pairing | swatch |", "|---|---|---|---|---|---|"]
    L += ex_lines
    L += ["", "## Expected placement on the Orin DLA (TensorRT 10)", "",
          "Not measured on a Jetson here; expectation from the DLA supported-layer list:", "",
          "* Gemm with constant weights (`gemm_brief`, `gemm_image`, `gemm_brand`, `gemm2`, the four head Gemms) -> FullyConnected/1x1 convolution: DLA.",
          "* Add, Relu, Sigmoid (ElementWise / Activation): DLA.",
          "* ConvTranspose k4 s4 (`deconv_up`, kernel == stride, no padding) and Conv 3x3 pad 1 (`conv_out`): DLA (Deconvolution and Convolution within DLA limits).",
          "* Reshape [N,192] -> [N,16,4,3] (`reshape_seed`): a Shuffle; on DLA only if TensorRT can express it as a DLA-supported shuffle, otherwise it is the one GPU fallback point (two reformat copies of 768 bytes).",
          "* Q/DQ pairs in model.int8.onnx fold into INT8 layers; model.calib.cache supplies implicit-quantisation scales for the FP32 model on DLA.",
          "* No Gather/TopK/LayerNorm/GELU; one dynamic dimension, the batch (1 to `max_batch` = 8; the DLA engines are built at a fixed batch of 1, the GPU engine with a profile over 1..8); opset 13.", ""]
    with open(os.path.join(out, "REPORT.md"), "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(L))
    return {"ndcg_held": rh, "ndcg_in": ri, "int8": q, "dev_np": dev_np, "dev_noopt": dev_noopt}
