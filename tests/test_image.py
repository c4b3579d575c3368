"""ImageAdapter: layouts, scaling, resizing, colour, files, bad input."""
import pickle
import sys

import numpy as np
import pytest
from sklearn.base import clone

from adapters import ImageAdapter


def test_layouts_and_uint8_scaling():
    rng = np.random.default_rng(0)
    hw = rng.integers(0, 256, size=(3, 10, 12), dtype=np.uint8)
    hwc = np.stack([hw] * 3, axis=-1)
    chw = np.moveaxis(hwc, -1, 1)
    a = ImageAdapter().fit_transform(hw)
    assert a.shape == (3, 1, 10, 12) and a.dtype == np.float32
    np.testing.assert_allclose(a[:, 0], hw / 255.0, rtol=1e-6)
    b, c = ImageAdapter().fit_transform(hwc), ImageAdapter().fit_transform(chw)
    assert b.shape == c.shape == (3, 3, 10, 12)
    np.testing.assert_array_equal(b, c)
    np.testing.assert_array_equal(b[:, 1], a[:, 0])          # channels in the right place


def test_float_unit_scaling_is_fitted_on_training_images():
    x = np.array([[[0.0, 8.0], [16.0, 4.0]]])
    t = ImageAdapter().fit(x)
    np.testing.assert_allclose(t.transform(x)[0, 0], [[0, 0.5], [1, 0.25]])
    np.testing.assert_allclose(t.transform(x * 2)[0, 0, 1, 0], 2.0)   # not re-fitted at transform


def test_resize_colour_and_standardisation():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(4, 20, 30, 3), dtype=np.uint8)
    g = ImageAdapter(size=(10, 15), color="grey").fit_transform(rgb)
    assert g.shape == (4, 1, 10, 15)
    grey = (rgb @ np.array([0.299, 0.587, 0.114])) / 255
    assert abs(g.mean() - grey.mean()) < 0.01
    assert ImageAdapter(color="rgb").fit_transform(rgb[..., 0]).shape == (4, 3, 20, 30)
    s = ImageAdapter(scale="standard").fit(rgb)
    out = s.transform(rgb)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1, atol=1e-3)
    sizes = [np.zeros((8, 8), np.uint8), np.zeros((16, 12), np.uint8)]
    assert ImageAdapter(size=(4, 4)).fit_transform(sizes).shape == (2, 1, 4, 4)


def test_deterministic_clone_pickle():
    x = np.random.default_rng(0).random((5, 6, 6))
    t = ImageAdapter(size=(3, 3), scale="standard").fit(x)
    np.testing.assert_array_equal(t.transform(x), pickle.loads(pickle.dumps(t)).transform(x))
    np.testing.assert_array_equal(t.transform(x), clone(t).fit(x).transform(x))


def test_bad_input():
    with pytest.raises(ValueError, match="expected \\(n, h, w\\)"):
        ImageAdapter().fit(np.zeros((2, 3)))
    bad = np.zeros((2, 4, 4))
    bad[1, 2, 2] = np.nan
    with pytest.raises(ValueError, match="image 1 contains NaN"):
        ImageAdapter().fit(bad)
    with pytest.raises(ValueError, match="different shapes"):
        ImageAdapter().fit([np.zeros((4, 4)), np.zeros((5, 5))])
    t = ImageAdapter().fit(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="fitted on \\(1, 4, 4\\)"):
        t.transform(np.zeros((2, 5, 5)))
    with pytest.raises(ValueError, match="color must be"):
        ImageAdapter(color="cmyk").fit(np.zeros((2, 4, 4)))


def test_image_files(tmp_path):
    Image = pytest.importorskip("PIL.Image", reason="Pillow is an optional extra")
    paths = []
    for i in range(2):
        p = tmp_path / f"{i}.png"
        Image.fromarray(np.full((6, 7, 3), 60 * i, np.uint8)).save(p)
        paths.append(str(p))
    g = ImageAdapter().fit_transform(paths)
    assert g.shape == (2, 3, 6, 7)
    np.testing.assert_allclose(g[1], 60 / 255, rtol=1e-6)
    with pytest.raises(ValueError, match="missing.png: no such file"):
        ImageAdapter().fit([str(tmp_path / "missing.png")])


def test_missing_pillow_is_a_clear_message(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match="needs Pillow"):
        ImageAdapter().fit([str(tmp_path / "a.png")])
