"""The teacher: scores every style, palette, font pairing and layout template for a batch of briefs,
reading ONLY knowledge.toml (parsed) and the catalogues."""
import numpy as np

from . import colour as col

GRID = (16, 12)


def member(x, lo, hi, soft):
    d = np.maximum(lo - x, 0) + np.maximum(x - hi, 0)
    return np.exp(-(d / soft) ** 2)


def hue_dist(a, b):
    d = np.abs(a - b) % 360.0
    return np.minimum(d, 360.0 - d)


def raster(box, soft):
    x, y, w, h = (box[k] for k in "xywh") if isinstance(box, dict) else box
    rows, cols = GRID
    yc = (np.arange(rows) + 0.5) / rows
    xc = (np.arange(cols) + 0.5) / cols
    sig = lambda v: 1.0 / (1.0 + np.exp(-v / soft))
    fy = sig(yc - y) * sig(y + h - yc)
    fx = sig(xc - x) * sig(x + w - xc)
    return np.outer(fy, fx)


class Teacher:
    def __init__(self, knowledge, vocab, styles, palettes, fonts, layouts):
        self.k = knowledge
        tp = knowledge["teacher"]
        self.tp = tp
        self.terms = [t["id"] for t in vocab["terms"]]
        self.V = len(self.terms)
        self.style_ids = [s["id"] for s in styles]
        self.S = len(styles)
        self.P = len(palettes)
        self.F = len(fonts)
        self.layout_ids = [l["id"] for l in layouts]
        self.L = len(layouts)
        gw = tp["group_weight"]
        self.gw = np.array([gw[t["group"]] for t in vocab["terms"]])
        self.is_pal = np.array([t["group"] == "palette" for t in vocab["terms"]], dtype=np.float64)
        # salience: how strongly a term steers the palette relative to the other terms of the brief
        # (culturally decisive terms such as guochao / Chinese New Year dominate the colour choice)
        self.sal = np.array([float(knowledge["terms"][t["id"]].get("salience", 1.0)) for t in vocab["terms"]])

        # palette arrays
        A = lambda k: np.array([p["attributes"][k] for p in palettes])
        self.pL, self.pC, self.pT = A("lightness"), A("chroma"), A("temperature")
        self.pfam = [p["family"] for p in palettes]
        maxn = 6
        self.plab = np.zeros((self.P, maxn, 3))
        self.pmask = np.zeros((self.P, maxn), bool)
        self.pchrom_h = np.full((self.P, maxn), np.nan)
        self.pchrom_w = np.zeros((self.P, maxn))
        for i, p in enumerate(palettes):
            for j, h in enumerate(p["colors"]):
                lab = col.hex_to_lab(h)
                self.plab[i, j] = lab
                self.pmask[i, j] = True
                C, hh = col.lab_to_lch(lab)
                if j > 0 and h != p["roles"]["text"]:
                    self.pchrom_h[i, j] = hh
                    self.pchrom_w[i, j] = min(1.0, C / 25.0)
        self.prim_h = np.array([col.lab_to_lch(col.hex_to_lab(p["roles"]["primary"]))[1] for p in palettes])
        self.acc_h = np.array([col.lab_to_lch(col.hex_to_lab(p["roles"]["accent"]))[1] for p in palettes])
        self.tie = ((np.arange(self.P) * 0.6180339887498949) % 1.0)
        self.prim_c = np.array([col.lab_to_lch(col.hex_to_lab(p["roles"]["primary"]))[0] for p in palettes])

        # spec fits
        self.TF = np.zeros((self.V, self.P))
        self.hasc = np.zeros(self.V)
        for i, tid in enumerate(self.terms):
            f = self.spec_fit(knowledge["terms"][tid])
            if f is not None:
                self.TF[i] = f
                self.hasc[i] = 1.0
        self.SF = np.zeros((self.S, self.P))
        for k, sid in enumerate(self.style_ids):
            self.SF[k] = self.spec_fit(knowledge["styles"][sid])
        self.Wst = np.zeros((self.V, self.S))
        for i, tid in enumerate(self.terms):
            for s, w in knowledge["terms"][tid].get("styles", {}).items():
                self.Wst[i, self.style_ids.index(s)] = w

        # fonts
        traits = sorted({t for f in fonts for t in f["traits"]})
        cats = sorted({f["category"] for f in fonts})
        self.traits, self.cats = traits, cats
        def tvec(lst, vocab_):
            v = np.zeros(len(vocab_))
            for t in lst:
                if t in vocab_:
                    v[vocab_.index(t)] = 1.0
            return v
        self.PairT = np.array([tvec(f["traits"], traits) / np.sqrt(len(f["traits"])) for f in fonts])
        self.PairC = np.array([tvec([f["category"]], cats) for f in fonts])
        self.TermT = np.array([tvec(knowledge["terms"][t].get("font_traits", []), traits) for t in self.terms])
        self.TermC = np.array([tvec(knowledge["terms"][t].get("font_categories", []), cats) for t in self.terms])
        self.StyT = np.array([tvec(knowledge["styles"][s].get("font_traits", []), traits) for s in self.style_ids])
        self.StyC = np.array([tvec(knowledge["styles"][s].get("font_categories", []), cats) for s in self.style_ids])

        # layouts
        def lvec(d):
            v = np.zeros(self.L)
            for k_, w in d.items():
                v[self.layout_ids.index(k_)] = w
            return v
        self.TermL = np.array([lvec(knowledge["terms"][t].get("layouts", {})) for t in self.terms])
        self.StyL = np.array([lvec(knowledge["styles"][s].get("layouts", {})) for s in self.style_ids])
        self.prior_L = lvec({"centered_hero": 0.3, "top_logo_band": 0.2, "minimal_stack": 0.2})
        soft = tp["heatmap_softness"]
        self.R = np.array([[raster(l["zones"][z], soft) for z in ("logo", "product", "text")] for l in layouts])  # (L,3,16,12)

    def spec_fit(self, spec):
        comps, ws = [], []
        if "lightness" in spec:
            comps.append(member(self.pL, *spec["lightness"], 0.12)); ws.append(1.0)
        if "chroma" in spec:
            comps.append(member(self.pC, *spec["chroma"], 0.08)); ws.append(1.0)
        if "temperature" in spec:
            comps.append(member(self.pT, *spec["temperature"], 0.35)); ws.append(1.0)
        if "hues" in spec:
            best = np.zeros(self.P)
            for c, w in spec["hues"]:
                d = hue_dist(np.nan_to_num(self.pchrom_h, nan=1e9), c)
                s = np.where(np.isnan(self.pchrom_h), 0.0, np.exp(-(d / w) ** 2) * self.pchrom_w)
                best = np.maximum(best, s.max(axis=1))
            comps.append(best); ws.append(1.0)
        if "families" in spec:
            fams = spec["families"]
            # earlier-listed families fit best
            v = np.array([1.0 - 0.15 * fams.index(f) if f in fams else 0.0 for f in self.pfam])
            comps.append(v); ws.append(1.5 * (1 + self.tp["family_bonus"]))
        if not comps:
            return None
        ws = np.array(ws)
        return (np.array(comps) * ws[:, None]).sum(0) / ws.sum()

    @staticmethod
    def grade(x, g):
        """Graded targets from raw fits x (B,N), parameters g from [teacher.grading.<head>]:
        logit(target) = L_top + (L_top - L_kth) * (x - max) / max(max - x_kth, floor), clipped below at `min`.
        The best item of a brief gets `top` scaled by the brief's clarity (how far the best stands above the
        median, relative to `clear_gap`); the k-th best gets about `kth`; the rest fall off smoothly."""
        lg = lambda p: np.log(p / (1.0 - p))
        xs = -np.sort(-x, axis=1)
        top = xs[:, :1]
        kth = xs[:, int(g["k"]) - 1:int(g["k"])]
        med = np.median(x, axis=1, keepdims=True)
        clarity = np.tanh(np.maximum(top - med, 0.0) / g["clear_gap"])
        p_top = g["empty"] + (g["top"] - g["empty"]) * clarity
        l_top = lg(p_top)
        slope = np.maximum(l_top - lg(g["kth"]), 0.0)
        r = (x - top) / np.maximum(top - kth, g["floor"])
        z = np.maximum(l_top + slope * r, lg(g["min"]))
        return 1.0 / (1.0 + np.exp(-z))

    def score_in_chunks(self, X, IMG, BR, chunk=32000):
        """`score` at most `chunk` briefs at a time (each brief is scored on its own): the image step
        holds briefs x 5 x palettes x 6 x 3 floats, over 20 GB for 96 000 briefs at once. 32 000,
        today's training set, is one chunk, so the shipped bundle rebuilds byte for byte."""
        parts = [self.score(X[i:i + chunk], IMG[i:i + chunk], BR[i:i + chunk]) for i in range(0, len(X), chunk)]
        return {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}

    def score(self, X, IMG, BR):
        """X (B,V) multi-hot; IMG (B,24); BR (B,16) -> dict of targets in [0,1]."""
        X = np.asarray(X, np.float64); IMG = np.asarray(IMG, np.float64); BR = np.asarray(BR, np.float64)
        B = X.shape[0]
        Xg = X * self.gw
        tot = Xg.sum(1, keepdims=True)
        Sr = Xg @ self.Wst / np.maximum(tot, 1e-9)                                  # (B,S) in [0,1]
        med = self.tp["style_mediation"]
        gr = self.tp["grading"]
        styles = self.grade(Sr, gr["styles"])

        # palettes: fit to the named palette family (if any) and to everything else in the brief
        Xc = Xg * self.hasc * (1.0 - self.is_pal) * self.sal
        num = Xc @ self.TF + med * Sr @ self.SF
        den = Xc.sum(1, keepdims=True) + med * Sr.sum(1, keepdims=True)
        rest = np.where(den > 1e-9, num / np.maximum(den, 1e-9), 0.5)
        Xp = X * self.is_pal
        npal = Xp.sum(1, keepdims=True)
        fam = Xp @ self.TF / np.maximum(npal, 1.0)
        lam = self.tp["named_family_weight"]
        term = np.where(npal > 0, lam * fam + (1.0 - lam) * rest, rest)
        mix = self.tp["palette_mix"]
        tot_p = mix["terms"] * term
        wsum = np.full((B, 1), mix["terms"])
        # image closeness
        has_img = IMG[:, 0] > 0.5
        if has_img.any():
            idx = np.where(has_img)[0]
            dom = np.stack([IMG[idx, 1 + 3 * k:4 + 3 * k] * np.array([100, 128, 128]) for k in range(5)], 1)  # (b,5,3)
            w = IMG[idx, 16:21]
            d = np.linalg.norm(dom[:, :, None, None, :] - self.plab[None, None], axis=-1)        # (b,5,P,6)
            d = np.where(self.pmask[None, None], d, 1e9).min(-1)                                 # (b,5,P)
            close = (w[:, :, None] * np.exp(-(d / 20.0) ** 2)).sum(1)
            lmatch = np.exp(-((self.pL[None] - IMG[idx, 21:22]) / 0.2) ** 2)
            imgs = 0.75 * close + 0.25 * lmatch
            tot_p[idx] += mix["image"] * imgs
            wsum[idx] += mix["image"]
        has_br = BR[:, 0] > 0.5
        if has_br.any():
            idx = np.where(has_br)[0]
            acc = np.zeros((len(idx), self.P)); cnt = np.zeros((len(idx), 1))
            for k in range(4):
                present = BR[idx, 4 * k] > 0.5
                lab = BR[idx, 4 * k + 1:4 * k + 4] * np.array([100, 128, 128])
                d = np.linalg.norm(lab[:, None, None, :] - self.plab[None], axis=-1)
                d = np.where(self.pmask[None], d, 1e9).min(-1)                                   # (b,P)
                near = np.exp(-(d / 18.0) ** 2)
                C, h = col.lab_to_lch(lab)
                rel = np.stack([hue_dist(self.prim_h[None], h[:, None] + a) for a in (0, 30, -30, 150, 180, 210)], 0).min(0)
                harm = np.exp(-(rel / 15.0) ** 2) * np.minimum(1, C[:, None] / 20.0) * np.minimum(1, self.prim_c[None] / 20.0)
                s = 0.6 * near + 0.4 * harm
                acc += np.where(present[:, None], s, 0); cnt += present[:, None]
            tot_p[idx] += mix["brand"] * acc / np.maximum(cnt, 1)
            wsum[idx] += mix["brand"]
        praw = tot_p / wsum
        tb = float(self.tp.get("tie_break", 0.0))
        if tb > 0:
            # tiny fixed per-palette offset (deterministic, from the catalogue index): separates sibling
            # palettes whose fits are otherwise equal, so the order inside a family is well defined
            praw = praw + tb * self.tie
        palettes = self.grade(praw, gr["palettes"])

        # fonts
        D = Xg @ self.TermT + med * Sr @ self.StyT
        Dc = Xg @ self.TermC + med * Sr @ self.StyC
        fraw = D @ self.PairT.T + 0.5 * Dc @ self.PairC.T
        fraw = fraw / np.maximum(tot + med * Sr.sum(1, keepdims=True), 1e-9)
        tbf = float(self.tp.get("tie_break_fonts", 0.0))
        if tbf > 0:
            # pairings with identical traits score exactly equal: a tiny fixed offset orders them
            fraw = fraw + tbf * ((np.arange(self.F) * 0.6180339887498949) % 1.0)
        fonts = self.grade(fraw, gr["fonts"])

        # layouts
        Lp = Xg @ self.TermL + med * Sr @ self.StyL
        Lp = Lp / np.maximum(tot, 1.0) + self.prior_L * 0.3
        order = np.argsort(-Lp, axis=1, kind="stable")[:, :3]
        top = np.take_along_axis(Lp, order, 1)
        ww = np.exp((top - top[:, :1]) / 0.1)
        ww /= ww.sum(1, keepdims=True)
        heat = np.einsum("bk,bkcij->bcij", ww, self.R[order])
        return {"styles": styles, "palettes": palettes, "fonts": fonts, "layout": heat, "layout_scores": Lp,
                "palette_raw": praw, "font_raw": fraw, "style_raw": Sr}
