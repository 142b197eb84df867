"""Colour science helpers (numpy): sRGB <-> CIELAB (D65), CIEDE2000, WCAG contrast,
Ou et al. (2004) colour-emotion warm-cool index, Hasler & Suesstrunk (2003) colourfulness.

Conventions follow docs/bundle-format.md: sRGB transfer function, D65 white
(0.95047, 1.0, 1.08883), CIE 1976 with epsilon 216/24389 and kappa 24389/27.
"""
import numpy as np

WHITE = np.array([0.95047, 1.0, 1.08883])
EPS = 216.0 / 24389.0
KAPPA = 24389.0 / 27.0
M_RGB2XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                      [0.2126729, 0.7151522, 0.0721750],
                      [0.0193339, 0.1191920, 0.9503041]])
M_XYZ2RGB = np.linalg.inv(M_RGB2XYZ)


def hex_to_rgb(h):
    h = h.lstrip('#')
    return np.array([int(h[i:i + 2], 16) for i in (0, 2, 4)], dtype=np.float64) / 255.0


def rgb_to_hex(rgb):
    v = np.clip(np.round(np.asarray(rgb) * 255.0), 0, 255).astype(int)
    return '#%02X%02X%02X' % tuple(v)


def srgb_to_linear(c):
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c):
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(np.maximum(c, 0), 1 / 2.4) - 0.055)


def rgb_to_lab(rgb):
    """rgb: [...,3] in 0..1 -> Lab [...,3]."""
    lin = srgb_to_linear(rgb)
    xyz = lin @ M_RGB2XYZ.T
    r = xyz / WHITE
    f = np.where(r > EPS, np.cbrt(r), (KAPPA * r + 16.0) / 116.0)
    L = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([L, a, b], axis=-1)


def lab_to_rgb_unclipped(lab):
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = fy - lab[..., 2] / 200.0
    def finv(f):
        return np.where(f ** 3 > EPS, f ** 3, (116.0 * f - 16.0) / KAPPA)
    xyz = np.stack([finv(fx), finv(fy), finv(fz)], axis=-1) * WHITE
    lin = xyz @ M_XYZ2RGB.T
    return lin


def lch_to_rgb(L, C, h_deg):
    """Gamut-map by reducing chroma until the colour fits in sRGB; returns rgb 0..1."""
    C = float(C)
    for _ in range(60):
        hr = np.deg2rad(h_deg)
        lin = lab_to_rgb_unclipped([L, C * np.cos(hr), C * np.sin(hr)])
        if np.all(lin >= -1e-6) and np.all(lin <= 1 + 1e-6):
            break
        C *= 0.93
    return np.clip(linear_to_srgb(np.clip(lin, 0, 1)), 0, 1)


def hex_to_lab(h):
    return rgb_to_lab(hex_to_rgb(h))


def lab_to_lch(lab):
    lab = np.asarray(lab)
    C = np.hypot(lab[..., 1], lab[..., 2])
    h = np.rad2deg(np.arctan2(lab[..., 2], lab[..., 1])) % 360.0
    return C, h


def relative_luminance(rgb):
    lin = srgb_to_linear(rgb)
    return 0.2126 * lin[..., 0] + 0.7152 * lin[..., 1] + 0.0722 * lin[..., 2]


def wcag_contrast(hex1, hex2):
    l1 = float(relative_luminance(hex_to_rgb(hex1)))
    l2 = float(relative_luminance(hex_to_rgb(hex2)))
    hi, lo = max(l1, l2), min(l1, l2)
    return (hi + 0.05) / (lo + 0.05)


def ou_warm_cool(lab):
    """Ou, Luo, Woodcock & Wright (2004), Color Res. Appl. 29(3): WC = -0.5 + 0.02 C^1.07 cos(h - 50deg)."""
    C, h = lab_to_lch(lab)
    return -0.5 + 0.02 * np.power(C, 1.07) * np.cos(np.deg2rad(h - 50.0))


def ciede2000(lab1, lab2):
    """Vectorised CIEDE2000 (Sharma, Wu & Dalal 2005). Broadcasts over leading dims."""
    lab1 = np.asarray(lab1, dtype=np.float64)
    lab2 = np.asarray(lab2, dtype=np.float64)
    L1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    L2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]
    C1 = np.hypot(a1, b1)
    C2 = np.hypot(a2, b2)
    Cb = (C1 + C2) / 2.0
    G = 0.5 * (1 - np.sqrt(Cb ** 7 / (Cb ** 7 + 25.0 ** 7)))
    a1p = (1 + G) * a1
    a2p = (1 + G) * a2
    C1p = np.hypot(a1p, b1)
    C2p = np.hypot(a2p, b2)
    h1p = np.rad2deg(np.arctan2(b1, a1p)) % 360
    h2p = np.rad2deg(np.arctan2(b2, a2p)) % 360
    dLp = L2 - L1
    dCp = C2p - C1p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, dh)
    dh = np.where(dh < -180, dh + 360, dh)
    dh = np.where(C1p * C2p == 0, 0.0, dh)
    dHp = 2 * np.sqrt(C1p * C2p) * np.sin(np.deg2rad(dh / 2))
    Lbp = (L1 + L2) / 2
    Cbp = (C1p + C2p) / 2
    hsum = h1p + h2p
    hbp = np.where(np.abs(h1p - h2p) > 180, np.where(hsum < 360, (hsum + 360) / 2, (hsum - 360) / 2), hsum / 2)
    hbp = np.where(C1p * C2p == 0, hsum, hbp)
    T = (1 - 0.17 * np.cos(np.deg2rad(hbp - 30)) + 0.24 * np.cos(np.deg2rad(2 * hbp))
         + 0.32 * np.cos(np.deg2rad(3 * hbp + 6)) - 0.20 * np.cos(np.deg2rad(4 * hbp - 63)))
    dtheta = 30 * np.exp(-((hbp - 275) / 25) ** 2)
    Rc = 2 * np.sqrt(Cbp ** 7 / (Cbp ** 7 + 25.0 ** 7))
    Sl = 1 + 0.015 * (Lbp - 50) ** 2 / np.sqrt(20 + (Lbp - 50) ** 2)
    Sc = 1 + 0.045 * Cbp
    Sh = 1 + 0.015 * Cbp * T
    Rt = -np.sin(np.deg2rad(2 * dtheta)) * Rc
    return np.sqrt((dLp / Sl) ** 2 + (dCp / Sc) ** 2 + (dHp / Sh) ** 2 + Rt * (dCp / Sc) * (dHp / Sh))


def hasler_colourfulness(rgb255, weights):
    """Hasler & Suesstrunk (2003) M = sigma_rgyb + 0.3 mu_rgyb on 0..255 sRGB, pixel-weighted."""
    rgb255 = np.asarray(rgb255, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    rg = rgb255[:, 0] - rgb255[:, 1]
    yb = 0.5 * (rgb255[:, 0] + rgb255[:, 1]) - rgb255[:, 2]
    mrg, myb = (w * rg).sum(), (w * yb).sum()
    srg = np.sqrt(max((w * (rg - mrg) ** 2).sum(), 0.0))
    syb = np.sqrt(max((w * (yb - myb) ** 2).sum(), 0.0))
    return float(np.sqrt(srg ** 2 + syb ** 2) + 0.3 * np.sqrt(mrg ** 2 + myb ** 2))


def image_features(hexes, weights):
    """The contract's image feature vector (float32[24]) for an image made of the given
    colours in the given pixel proportions (used for synthetic training/selftest images)."""
    f = np.zeros(24, dtype=np.float64)
    order = sorted(range(len(hexes)), key=lambda i: (-weights[i], i))[:5]
    w = np.array([weights[i] for i in order], dtype=np.float64)
    w = w / w.sum()
    labs = np.array([hex_to_lab(hexes[i]) for i in order])
    f[0] = 1.0
    for k, lab in enumerate(labs):
        f[1 + 3 * k:4 + 3 * k] = [lab[0] / 100.0, lab[1] / 128.0, lab[2] / 128.0]
        f[16 + k] = w[k]
    Ls = labs[:, 0]
    mL = (w * Ls).sum()
    f[21] = mL / 100.0
    f[22] = np.sqrt(max((w * (Ls - mL) ** 2).sum(), 0.0)) / 100.0
    rgb255 = np.array([hex_to_rgb(hexes[i]) * 255.0 for i in order])
    f[23] = min(max(hasler_colourfulness(rgb255, w) / 100.0, 0.0), 1.5)
    return f


def brand_features(hexes):
    f = np.zeros(16, dtype=np.float64)
    for k, h in enumerate(hexes[:4]):
        lab = hex_to_lab(h)
        f[4 * k:4 * k + 4] = [1.0, lab[0] / 100.0, lab[1] / 128.0, lab[2] / 128.0]
    return f
