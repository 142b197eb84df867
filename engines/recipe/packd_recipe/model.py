"""Student network in numpy (manual forward/backward + Adam), ONNX export (FP32 and
explicit-QDQ INT8, per-tensor symmetric), calibration."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

C_LAY = 16          # channels of the 4x3 layout seed
H = 256


def init_params(V, S, P, F, seed):
    rng = np.random.default_rng(seed)
    def he(i, o):
        return (rng.standard_normal((i, o)) * np.sqrt(2.0 / i)).astype(np.float64)
    p = {
        "W1b": he(V, H) * 0.7, "W1i": he(24, H) * 0.7, "W1r": he(16, H) * 0.7, "b1": np.zeros(H),
        "W2": he(H, H), "b2": np.zeros(H),
        "Ws": he(H, S) * 0.5, "bs": np.zeros(S),
        "Wp": he(H, P) * 0.5, "bp": np.zeros(P),
        "Wf": he(H, F) * 0.5, "bf": np.zeros(F),
        "Wl": he(H, C_LAY * 12) * 0.5, "bl": np.zeros(C_LAY * 12),
        "Wct": rng.standard_normal((C_LAY, C_LAY, 4, 4)) * np.sqrt(2.0 / C_LAY), "bct": np.zeros(C_LAY),
        "Wc": rng.standard_normal((3, C_LAY, 3, 3)) * np.sqrt(1.0 / (C_LAY * 9)), "bc": np.zeros(3),
    }
    return p


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def im2col(a):
    """a (B,C,16,12) -> cols (B,16,12,C*9) for a 3x3 conv, pad 1."""
    B, C, Hh, W = a.shape
    ap = np.pad(a, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.empty((B, C, 3, 3, Hh, W))
    for di in range(3):
        for dj in range(3):
            cols[:, :, di, dj] = ap[:, :, di:di + Hh, dj:dj + W]
    return cols.transpose(0, 4, 5, 1, 2, 3).reshape(B, Hh, W, C * 9)


def col2im(dcols, C, Hh=16, W=12):
    B = dcols.shape[0]
    d = dcols.reshape(B, Hh, W, C, 3, 3).transpose(0, 3, 4, 5, 1, 2)
    dap = np.zeros((B, C, Hh + 2, W + 2))
    for di in range(3):
        for dj in range(3):
            dap[:, :, di:di + Hh, dj:dj + W] += d[:, :, di, dj]
    return dap[:, :, 1:-1, 1:-1]


def forward(p, xb, xi, xr, q=None, dithered=None):
    """q: optional dict of activation scales for fake-quant simulation (and quantised weights in p).
    dithered: the tensors quantised as a half-step pair (default DITHERED, the explicit INT8 graph;
    () is TensorRT's implicit INT8 from the calibration cache, which quantises every tensor once)."""
    dithered = DITHERED if dithered is None else dithered
    if q is None:
        fq = lambda name, x: x
    else:
        step = lambda name, x: np.clip(np.round(x / q[name]), -128, 127) * q[name]
        # DITHERED tensors: the mean of two quantisations half a step apart (see export_int8)
        fq = lambda name, x: (0.5 * (step(name, x) + step(name, x + q[name] / 2) - q[name] / 2)
                              if name in dithered else step(name, x))
    c = {}
    xb, xi, xr = fq("brief", xb), fq("image", xi), fq("brand", xr)
    c["xb"], c["xi"], c["xr"] = xb, xi, xr
    z1 = xb @ p["W1b"] + p["b1"] + xi @ p["W1i"] + xr @ p["W1r"]
    h1 = np.maximum(z1, 0); c["h1"] = h1
    h1q = fq("h1", h1); c["h1q"] = h1q
    z2 = h1q @ p["W2"] + p["b2"]
    h2 = np.maximum(z2, 0); c["h2"] = h2
    h2q = fq("h2", h2); c["h2q"] = h2q
    out = {"styles": sigmoid(h2q @ p["Ws"] + p["bs"]), "palettes": sigmoid(h2q @ p["Wp"] + p["bp"]),
           "fonts": sigmoid(h2q @ p["Wf"] + p["bf"])}
    B = xb.shape[0]
    g = (h2q @ p["Wl"] + p["bl"]).reshape(B, C_LAY, 4, 3)
    gq = fq("layout_seed", g); c["gq"] = gq
    G = gq.transpose(0, 2, 3, 1).reshape(B * 12, C_LAY)
    ct = (G @ p["Wct"].reshape(C_LAY, -1)).reshape(B, 4, 3, C_LAY, 4, 4)
    ct = ct.transpose(0, 3, 1, 4, 2, 5).reshape(B, C_LAY, 16, 12) + p["bct"][None, :, None, None]
    a = np.maximum(ct, 0); c["a"] = a
    aq = fq("layout_up", a)
    cols = im2col(aq); c["cols"] = cols
    zl = cols @ p["Wc"].reshape(3, -1).T + p["bc"]          # (B,16,12,3)
    out["layout"] = sigmoid(zl.transpose(0, 3, 1, 2))
    return out, c


HEAD_W = {"styles": 1.0, "palettes": 2.0, "fonts": 1.0, "layout": 1.0}


def backward(p, c, out, tgt, mask=None):
    """BCE gradients (mean per head). mask: optional per-sample-per-head weights dict (B,)"""
    B = c["xb"].shape[0]
    g = {}
    dh2 = 0
    for head, W, b in (("styles", "Ws", "bs"), ("palettes", "Wp", "bp"), ("fonts", "Wf", "bf")):
        w = HEAD_W[head] / (B * out[head].shape[1])
        dz = (out[head] - tgt[head]) * w
        if mask is not None and head in mask:
            dz = dz * mask[head][:, None]
        g[W] = c["h2q"].T @ dz
        g[b] = dz.sum(0)
        dh2 = dh2 + dz @ p[W].T
    dzl = (out["layout"] - tgt["layout"]) * (HEAD_W["layout"] / (B * 3 * 16 * 12) * 4.0)
    dzl = dzl.transpose(0, 2, 3, 1)                          # (B,16,12,3)
    g["Wc"] = (dzl.reshape(-1, 3).T @ c["cols"].reshape(-1, C_LAY * 9)).reshape(p["Wc"].shape)
    g["bc"] = dzl.reshape(-1, 3).sum(0)
    dcols = dzl @ p["Wc"].reshape(3, -1)
    da = col2im(dcols, C_LAY)
    dct = da * (c["a"] > 0)
    g["bct"] = dct.sum((0, 2, 3))
    dctr = dct.reshape(B, C_LAY, 4, 4, 3, 4).transpose(0, 2, 4, 1, 3, 5).reshape(B * 12, C_LAY * 16)
    G = c["gq"].transpose(0, 2, 3, 1).reshape(B * 12, C_LAY)
    g["Wct"] = (G.T @ dctr).reshape(p["Wct"].shape)
    dG = dctr @ p["Wct"].reshape(C_LAY, -1).T                # (B*12, C)
    dg = dG.reshape(B, 4, 3, C_LAY).transpose(0, 3, 1, 2).reshape(B, -1)
    g["Wl"] = c["h2q"].T @ dg
    g["bl"] = dg.sum(0)
    dh2 = dh2 + dg @ p["Wl"].T
    dz2 = dh2 * (c["h2"] > 0)
    g["W2"] = c["h1q"].T @ dz2
    g["b2"] = dz2.sum(0)
    dz1 = (dz2 @ p["W2"].T) * (c["h1"] > 0)
    g["W1b"] = c["xb"].T @ dz1
    g["W1i"] = c["xi"].T @ dz1
    g["W1r"] = c["xr"].T @ dz1
    g["b1"] = dz1.sum(0)
    return g


def bce(out, tgt):
    r = {}
    for k in ("styles", "palettes", "fonts", "layout"):
        o = np.clip(out[k], 1e-7, 1 - 1e-7)
        t = tgt[k]
        ent = -(t * np.log(np.clip(t, 1e-7, 1)) + (1 - t) * np.log(np.clip(1 - t, 1e-7, 1)))
        r[k] = float((-(t * np.log(o) + (1 - t) * np.log(1 - o)) - ent).mean())
    return r


def equalise_channels(p, X, I, R, cap, pct):
    """Per-channel range equalisation of the hidden layers before per-tensor activation
    quantisation (the cross-layer scaling of Nagel et al., "Data-Free Quantization", 2019):
    ReLU commutes with positive scaling, so multiplying channel c of h1 (or h2) by f_c and
    dividing the next layer's weights for c by f_c leaves the FP32 function unchanged, while a
    channel whose range is far below the tensor's gets int8 steps that are f_c times finer
    relative to it. f_c = tensor range / channel range (percentile `pct` over the calibration
    briefs), at most `cap`; dead channels keep 1."""
    q = dict(p)
    layers = (("h1", [("W1b", "b1"), ("W1i", None), ("W1r", None)], ["W2"]),
              ("h2", [("W2", "b2")], ["Ws", "Wp", "Wf", "Wl"]))
    factors = {}
    for tensor, producers, consumers in layers:
        _, c = forward(q, X, I, R)
        channel = np.percentile(c[tensor], pct, axis=0)
        whole = np.percentile(c[tensor], pct)
        f = np.where(channel > 1e-6, np.minimum(whole / np.maximum(channel, 1e-9), cap), 1.0)
        for W, b in producers:
            q[W] = q[W] * f[None, :]
            if b:
                q[b] = q[b] * f
        for W in consumers:
            q[W] = q[W] / f[:, None]
        factors[tensor] = f
    return q, factors


def train(p, data, epochs, batch, lr, seed, log=print, wd=1e-5, masks=None, qat_scales=None,
          qat_forwards=("dithered",)):
    """Adam + cosine LR. qat_scales: quantisation-aware fine-tuning (fake-quant forward with per-tensor
    int8 weights and activation scales, straight-through gradients to the float weights). qat_forwards
    (with qat_scales): the forwards each step trains, gradients summed: "dithered" (the explicit INT8
    graph, h1/h2 as half-step pairs), "single" (TensorRT's implicit INT8 from the calibration cache,
    h1/h2 quantised once) and "float" (the float forward of the same int8 weights, i.e. the FP32 model
    as shipped), so all three stay together where rankings are close."""
    X, I, R, T = data
    N = X.shape[0]
    rng = np.random.default_rng(seed)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    b1, b2, eps = 0.9, 0.999, 1e-8
    steps = epochs * (N // batch)
    t = 0
    for ep in range(epochs):
        perm = rng.permutation(N)
        for s in range(N // batch):
            idx = np.sort(perm[s * batch:(s + 1) * batch])
            pf = p if qat_scales is None else quantise_weights(p)[2]
            tg = {k: T[k][idx] for k in T}
            mk = None if masks is None else {k: masks[k][idx] for k in masks}
            passes = [(None, None)] if qat_scales is None else [QAT_FORWARDS[f](qat_scales) for f in qat_forwards]
            g = None
            for q, dith in passes:
                out, c = forward(pf, X[idx], I[idx], R[idx], q=q, dithered=dith)
                gq = backward(pf, c, out, tg, mk)
                g = gq if g is None else {k: g[k] + gq[k] for k in g}
            t += 1
            lr_t = lr * 0.5 * (1 + np.cos(np.pi * min(t / steps, 1.0)))
            for k in p:
                m[k] = b1 * m[k] + (1 - b1) * g[k]
                v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
                mh = m[k] / (1 - b1 ** t)
                vh = v[k] / (1 - b2 ** t)
                p[k] -= lr_t * (mh / (np.sqrt(vh) + eps) + (wd * p[k] if k.startswith("W") else 0))
        pf = p if qat_scales is None else quantise_weights(p)[2]
        out, _ = forward(pf, X[:2048], I[:2048], R[:2048], q=qat_scales)
        kl = bce(out, {k: T[k][:2048] for k in T})
        log(f"  epoch {ep + 1}/{epochs}  excess BCE " + " ".join(f"{k}={v:.4f}" for k, v in kl.items()))
    return p


# QAT forward name -> (activation scales, dithered tensors) for forward()
QAT_FORWARDS = {"dithered": lambda q: (q, None), "single": lambda q: (q, ()), "float": lambda q: (None, None)}


# ------------------------------------------------------------------ ONNX
OPSET = 13


def _f32(a):
    return np.asarray(a, dtype=np.float32)


def export_fp32(p, V, S, P, F, path=None):
    inits = []
    def C(name, arr):
        inits.append(numpy_helper.from_array(_f32(arr), name))
        return name
    n = []
    n.append(helper.make_node("Gemm", ["brief", C("W1b", p["W1b"]), C("b1", p["b1"])], ["z1_brief"], name="gemm_brief"))
    n.append(helper.make_node("Gemm", ["image", C("W1i", p["W1i"])], ["z1_image"], name="gemm_image"))
    n.append(helper.make_node("Gemm", ["brand", C("W1r", p["W1r"])], ["z1_brand"], name="gemm_brand"))
    n.append(helper.make_node("Add", ["z1_brief", "z1_image"], ["z1_a"], name="add1"))
    n.append(helper.make_node("Add", ["z1_a", "z1_brand"], ["z1"], name="add2"))
    n.append(helper.make_node("Relu", ["z1"], ["h1"], name="relu1"))
    n.append(helper.make_node("Gemm", ["h1", C("W2", p["W2"]), C("b2", p["b2"])], ["z2"], name="gemm2"))
    n.append(helper.make_node("Relu", ["z2"], ["h2"], name="relu2"))
    for head, W, b in (("styles", "Ws", "bs"), ("palettes", "Wp", "bp"), ("fonts", "Wf", "bf")):
        n.append(helper.make_node("Gemm", ["h2", C(W, p[W]), C(b, p[b])], [f"{head}_logits"], name=f"gemm_{head}"))
        n.append(helper.make_node("Sigmoid", [f"{head}_logits"], [head], name=f"sigmoid_{head}"))
    n.append(helper.make_node("Gemm", ["h2", C("Wl", p["Wl"]), C("bl", p["bl"])], ["layout_seed_flat"], name="gemm_layout"))
    inits.append(numpy_helper.from_array(np.array([-1, C_LAY, 4, 3], dtype=np.int64), "seed_shape"))
    n.append(helper.make_node("Reshape", ["layout_seed_flat", "seed_shape"], ["layout_seed"], name="reshape_seed"))
    n.append(helper.make_node("ConvTranspose", ["layout_seed", C("Wct", p["Wct"]), C("bct", p["bct"])], ["layout_up_pre"],
                              name="deconv_up", kernel_shape=[4, 4], strides=[4, 4]))
    n.append(helper.make_node("Relu", ["layout_up_pre"], ["layout_up"], name="relu_up"))
    n.append(helper.make_node("Conv", ["layout_up", C("Wc", p["Wc"]), C("bc", p["bc"])], ["layout_logits"],
                              name="conv_out", kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
    n.append(helper.make_node("Sigmoid", ["layout_logits"], ["layout"], name="sigmoid_layout"))
    return _model(n, inits, V, S, P, F, "packd-default fp32")


# The symbolic batch dimension of every input and output.
BATCH_DIM = "batch"
# Most briefs packd may run through the model in one call (the manifest's `max_batch`); the
# TensorRT GPU engine's optimisation profile spans 1..MAX_BATCH.
MAX_BATCH = 8


def _model(nodes, inits, V, S, P, F, name):
    vi = lambda nm, shape, t=TensorProto.FLOAT: helper.make_tensor_value_info(nm, t, shape)
    # The first dimension is the batch: packd runs briefs waiting together in one call (up to the
    # manifest's max_batch); every row is computed independently of the others.
    N = BATCH_DIM
    g = helper.make_graph(nodes, name, [vi("brief", [N, V]), vi("image", [N, 24]), vi("brand", [N, 16])],
                          [vi("styles", [N, S]), vi("palettes", [N, P]), vi("fonts", [N, F]), vi("layout", [N, 3, 16, 12])],
                          initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="packd-recipe", producer_version="1.0.0")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


# activation tensors quantised in the INT8 model (tensor name in the fp32 model -> consumer input)
ACT_Q = {"brief": "brief", "image": "image", "brand": "brand", "h1": "h1", "h2": "h2",
         "seed": "layout_seed", "up": "layout_up"}
WEIGHTS = ["W1b", "W1i", "W1r", "W2", "Ws", "Wp", "Wf", "Wl", "Wct", "Wc"]
# Hidden tensors quantised twice, the second time half an int8 step higher; the next Gemm reads
# both (a Concat) with halved weights, so it sees their mean: the rounding error of a quantiser
# with half the step, i.e. one more bit, from plain per-tensor INT8 Q/DQ. The palette and font
# rankings have near-ties (sibling palettes) that single-step rounding of h1/h2 reorders.
DITHERED = ("h1", "h2")


def weight_scale(w):
    return float(np.float32(max(np.abs(w).max(), 1e-8) / 127.0))


def quantise_weights(p):
    """Per-tensor symmetric int8 weights -> (int8 arrays, scales, dequantised float copy)."""
    qi, sc, deq = {}, {}, dict(p)
    for k in WEIGHTS:
        s = weight_scale(p[k].astype(np.float32))
        q = np.clip(np.round(p[k].astype(np.float32) / np.float32(s)), -127, 127).astype(np.int8)
        qi[k], sc[k] = q, s
        deq[k] = q.astype(np.float64) * np.float64(np.float32(s))
    return qi, sc, deq


def snap_weights(p):
    """Replace every quantised weight tensor by its dequantised int8 value (exactly representable in float32)."""
    _, _, deq = quantise_weights(p)
    out = dict(p)
    for k in WEIGHTS:
        out[k] = deq[k].astype(np.float32).astype(np.float64)
    return out


def export_int8(p, act_scales, V, S, P, F):
    """Explicit QDQ: Q->DQ on every activation input of Gemm/ConvTranspose/Conv, DQ on int8 weights.
    Symmetric (zero point 0, int8), per-tensor scales. The DITHERED tensors h1 and h2 are quantised
    twice (as is and plus half a step), and their consumers read Concat(both) with the int8 weights
    stacked twice at half the scale; the half step comes back out of the float bias."""
    qi, sc, _ = quantise_weights(p)
    inits = []
    nodes = []
    def C(name, arr, dtype=np.float32):
        inits.append(numpy_helper.from_array(np.asarray(arr, dtype=dtype), name))
        return name
    zp = C("zp_int8", np.array(0, dtype=np.int8), np.int8)
    def qdq_act(t):
        key = [k for k, v in ACT_Q.items() if v == t][0]
        s = C(f"{t}_scale", np.array(act_scales[t], dtype=np.float32))
        nodes.append(helper.make_node("QuantizeLinear", [t, s, zp], [f"{t}_q"], name=f"q_{t}"))
        nodes.append(helper.make_node("DequantizeLinear", [f"{t}_q", s, zp], [f"{t}_dq"], name=f"dq_{t}"))
        return f"{t}_dq"
    def W(k):
        C(f"{k}_int8", qi[k], np.int8)
        s = C(f"{k}_scale", np.array(sc[k], dtype=np.float32))
        nodes.append(helper.make_node("DequantizeLinear", [f"{k}_int8", s, zp], [k], name=f"dq_{k}"))
        return k
    def Bf(k):
        return C(k, p[k])
    def dithered(t):
        s = C(f"{t}_scale", np.array(act_scales[t], dtype=np.float32))
        half = C(f"{t}_half_step", np.array(act_scales[t] / 2, dtype=np.float32))
        nodes.append(helper.make_node("Add", [t, half], [f"{t}_hi"], name=f"add_{t}_half_step"))
        for src in (t, f"{t}_hi"):
            nodes.append(helper.make_node("QuantizeLinear", [src, s, zp], [f"{src}_q"], name=f"q_{src}"))
            nodes.append(helper.make_node("DequantizeLinear", [f"{src}_q", s, zp], [f"{src}_dq"], name=f"dq_{src}"))
        nodes.append(helper.make_node("Concat", [f"{t}_dq", f"{t}_hi_dq"], [f"{t}_pair"], name=f"concat_{t}", axis=1))
        return f"{t}_pair"
    def W_pair(k):
        C(f"{k}_pair_int8", np.concatenate([qi[k], qi[k]], 0), np.int8)
        s = C(f"{k}_pair_scale", np.array(np.float32(sc[k]) / np.float32(2), dtype=np.float32))
        nodes.append(helper.make_node("DequantizeLinear", [f"{k}_pair_int8", s, zp], [f"{k}_pair"], name=f"dq_{k}_pair"))
        return f"{k}_pair"
    def B_pair(b, k, t):
        # Concat(q(x), q(x + s/2)) @ [W/2; W/2] = (q(x) + q(x + s/2)) / 2 @ W, which is the mean
        # of the two quantisations plus (s/4) colsum(W): subtract that from the bias
        deq = qi[k].astype(np.float64) * np.float64(np.float32(sc[k]))
        return C(f"{b}_pair", p[b] - np.float64(np.float32(act_scales[t])) / 4 * deq.sum(0))
    xb, xi, xr = qdq_act("brief"), qdq_act("image"), qdq_act("brand")
    nodes.append(helper.make_node("Gemm", [xb, W("W1b"), Bf("b1")], ["z1_brief"], name="gemm_brief"))
    nodes.append(helper.make_node("Gemm", [xi, W("W1i")], ["z1_image"], name="gemm_image"))
    nodes.append(helper.make_node("Gemm", [xr, W("W1r")], ["z1_brand"], name="gemm_brand"))
    nodes.append(helper.make_node("Add", ["z1_brief", "z1_image"], ["z1_a"], name="add1"))
    nodes.append(helper.make_node("Add", ["z1_a", "z1_brand"], ["z1"], name="add2"))
    nodes.append(helper.make_node("Relu", ["z1"], ["h1"], name="relu1"))
    nodes.append(helper.make_node("Gemm", [dithered("h1"), W_pair("W2"), B_pair("b2", "W2", "h1")], ["z2"], name="gemm2"))
    nodes.append(helper.make_node("Relu", ["z2"], ["h2"], name="relu2"))
    h2 = dithered("h2")
    for head, Wk, b in (("styles", "Ws", "bs"), ("palettes", "Wp", "bp"), ("fonts", "Wf", "bf")):
        nodes.append(helper.make_node("Gemm", [h2, W_pair(Wk), B_pair(b, Wk, "h2")], [f"{head}_logits"], name=f"gemm_{head}"))
        nodes.append(helper.make_node("Sigmoid", [f"{head}_logits"], [head], name=f"sigmoid_{head}"))
    nodes.append(helper.make_node("Gemm", [h2, W_pair("Wl"), B_pair("bl", "Wl", "h2")], ["layout_seed_flat"], name="gemm_layout"))
    inits.append(numpy_helper.from_array(np.array([-1, C_LAY, 4, 3], dtype=np.int64), "seed_shape"))
    nodes.append(helper.make_node("Reshape", ["layout_seed_flat", "seed_shape"], ["layout_seed"], name="reshape_seed"))
    nodes.append(helper.make_node("ConvTranspose", [qdq_act("layout_seed"), W("Wct"), Bf("bct")], ["layout_up_pre"],
                                  name="deconv_up", kernel_shape=[4, 4], strides=[4, 4]))
    nodes.append(helper.make_node("Relu", ["layout_up_pre"], ["layout_up"], name="relu_up"))
    nodes.append(helper.make_node("Conv", [qdq_act("layout_up"), W("Wc"), Bf("bc")], ["layout_logits"],
                                  name="conv_out", kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
    nodes.append(helper.make_node("Sigmoid", ["layout_logits"], ["layout"], name="sigmoid_layout"))
    return _model(nodes, inits, V, S, P, F, "packd-default int8 qdq")


def all_tensor_model(m):
    """Copy of an fp32 model exposing every node output (for calibration)."""
    m2 = onnx.ModelProto()
    m2.CopyFrom(m)
    existing = {o.name for o in m2.graph.output}
    for node in m2.graph.node:
        for o in node.output:
            if o not in existing:
                m2.graph.output.append(helper.make_empty_tensor_value_info(o))
    return m2
