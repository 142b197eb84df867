"""Quick checks: a --quick rebuild into two temp dirs is byte-identical; the INT8 model runs in
onnxruntime and matches the FP32 model; manifest hashes are current.  Run:
    engines/recipe/.venv/bin/python -m pytest engines/recipe/tests -q
(Set PACKD_BUNDLE to also verify an installed bundle, default engines/packd-default.)"""
import hashlib
import json
import os
import subprocess
import sys
import tomllib

import numpy as np
import onnxruntime as ort
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
RECIPE = os.path.dirname(HERE)
BUNDLE = os.environ.get("PACKD_BUNDLE", os.path.join(RECIPE, "..", "packd-default"))


def _build(out):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    subprocess.run([sys.executable, "-m", "packd_recipe.build", "--out", out, "--quick"], cwd=RECIPE, env=env,
                   check=True, stdout=subprocess.DEVNULL)


def _tree(d):
    out = {}
    for root, _, fs in os.walk(d):
        for f in fs:
            p = os.path.join(root, f)
            out[os.path.relpath(p, d)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def test_quick_rebuild_is_deterministic(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    _build(a)
    _build(b)
    ta, tb = _tree(a), _tree(b)
    assert ta == tb
    _check_bundle(a)


def _check_bundle(d):
    man = tomllib.loads(open(os.path.join(d, "manifest.toml"), encoding="utf-8").read())
    listed = {f["path"] for f in man["files"]}
    for f in man["files"]:
        p = os.path.join(d, f["path"])
        assert os.path.getsize(p) == f["size"], f["path"]
        assert hashlib.sha256(open(p, "rb").read()).hexdigest() == f["sha256"], f["path"]
    present = {os.path.relpath(os.path.join(r, x), d).replace(os.sep, "/") for r, _, fs in os.walk(d) for x in fs}
    assert present - {"manifest.toml"} == listed
    vec = json.load(open(os.path.join(d, man["model"]["selftest"]), encoding="utf-8"))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s32 = ort.InferenceSession(os.path.join(d, "model.onnx"), providers=["CPUExecutionProvider"])
    s8 = ort.InferenceSession(os.path.join(d, "model.int8.onnx"), so, providers=["CPUExecutionProvider"])
    s8opt = ort.InferenceSession(os.path.join(d, "model.int8.onnx"), providers=["CPUExecutionProvider"])
    names = ["styles", "palettes", "fonts", "layout"]
    for case in vec["cases"]:
        feed = {k: np.array(v, np.float32)[None] for k, v in case["inputs"].items()}
        for sess, prec in ((s32, "fp32"), (s8, "int8"), (s8opt, "int8")):
            outs = sess.run(names, feed)
            for n, o in zip(names, outs):
                dev = np.abs(o.reshape(-1) - np.array(case["expected"][prec][n])).max()
                assert dev <= vec["tolerance"][prec], (case["name"], prec, n, dev)
        # INT8 must stay close to FP32 as well
        o32 = s32.run(names, feed)
        o8 = s8.run(names, feed)
        for n, a, b in zip(names, o32, o8):
            assert np.abs(a - b).max() < 0.25, (case["name"], n)


@pytest.mark.skipif(not os.path.exists(os.path.join(BUNDLE, "manifest.toml")), reason="no installed bundle")
def test_installed_bundle():
    _check_bundle(BUNDLE)


@pytest.mark.skipif(not os.path.exists(os.path.join(BUNDLE, "text_encoder.bin")), reason="no installed bundle")
def test_a_reused_text_encoder_must_match_the_build():
    sys.path.insert(0, RECIPE)
    from packd_recipe import build

    vocab = json.load(open(os.path.join(BUNDLE, "vocabulary.json"), encoding="utf-8"))
    assert build.reused_text_encoder(BUNDLE, vocab).rows.shape[1] == build.CONFIG["text_encoder"]["dim"]
    with pytest.raises(SystemExit, match="vocabulary differs"):
        build.reused_text_encoder(BUNDLE, dict(vocab, version="other"))
    settings = build.CONFIG["text_encoder"]
    build.CONFIG["text_encoder"] = dict(settings, threshold=settings["threshold"] + 0.05)
    try:
        with pytest.raises(SystemExit, match="settings"):
            build.reused_text_encoder(BUNDLE, vocab)
    finally:
        build.CONFIG["text_encoder"] = settings


@pytest.mark.skipif(not os.path.exists(os.path.join(BUNDLE, "knowledge.toml")), reason="no installed bundle")
def test_the_teacher_scores_each_brief_alike_in_chunks():
    sys.path.insert(0, RECIPE)
    from packd_recipe import freetext_eval

    bundle = freetext_eval.BundleView(BUNDLE)
    teacher = bundle.teacher()
    rng = np.random.default_rng(1)
    X = (rng.random((300, len(bundle.vocab["terms"]))) < 0.03).astype(float)
    I = np.zeros((300, 24)); R = np.zeros((300, 16))
    I[::3, 0] = 1.0  # every third brief with a reference image, the step that needs chunks
    I[::3, 1:16] = rng.random((100, 15))
    I[::3, 16:21] = 0.2
    I[::3, 21] = 0.5
    whole, chunked = teacher.score(X, I, R), teacher.score_in_chunks(X, I, R, chunk=64)
    for k in whole:
        np.testing.assert_allclose(chunked[k], whole[k], atol=1e-12, err_msg=k)
