"""Images -> grids ``(n, channels, height, width)``."""
from __future__ import annotations

import os

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .state import StateMixin

__all__ = ["ImageAdapter"]


def _load_files(paths):
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("reading image files needs Pillow: pip install 'gridnet-toolkit[image]' "
                          "(or pass the images as arrays)") from None
    out = []
    for p in paths:
        name = os.fspath(p)
        try:
            with Image.open(name) as im:
                im = im.convert("RGB") if im.mode not in ("L", "RGB") else im
                out.append(np.asarray(im))
        except FileNotFoundError:
            raise ValueError(f"{name}: no such file") from None
        except Exception as exc:
            raise ValueError(f"{name}: cannot read the image ({exc})") from None
    return out


class ImageAdapter(StateMixin, TransformerMixin, BaseEstimator):
    """Images -> float32 grids ``(n, channels, height, width)``.

    Axes: channels (1 grey or 3 RGB), image rows top to bottom, columns left to right.

    Parameters
    ----------
    size : (int, int) or None
        Resize every image to ``(height, width)`` with scipy.ndimage (linear
        interpolation); None keeps the size (all images must then agree).
    color : {"keep", "grey", "rgb"}, default "keep"
        "grey" averages the channels (ITU-R 601 weights for RGB); "rgb" repeats a grey
        channel three times.
    scale : {"unit", "standard", None}, default "unit"
        "unit": integers divided by their type's maximum (uint8 by 255); floats mapped
        with the minimum and maximum learned in ``fit`` onto [0, 1]. "standard": each
        channel standardised with the mean and standard deviation learned in ``fit``.
    data_format : {"auto", "channels_first", "channels_last"}, default "auto"
        How to read 4-D arrays; "auto" takes a last axis of 1, 3 or 4 as channels when
        the second axis is not.

    Input: an array ``(n, h, w)``, ``(n, h, w, c)`` or ``(n, c, h, w)`` (uint8 or
    float), or a list of image file paths (needs Pillow), or a list of arrays of
    different sizes (with ``size``).

    Examples
    --------
    >>> import numpy as np
    >>> from adapters import ImageAdapter
    >>> imgs = np.zeros((2, 28, 28, 3), np.uint8)
    >>> ImageAdapter(size=(14, 14), color="grey").fit_transform(imgs).shape
    (2, 1, 14, 14)
    """

    def __init__(self, *, size=None, color="keep", scale="unit", data_format="auto"):
        self.size = size
        self.color = color
        self.scale = scale
        self.data_format = data_format

    def _check_params(self):
        if self.color not in ("keep", "grey", "rgb"):
            raise ValueError(f"color must be 'keep', 'grey' or 'rgb'; got {self.color!r}")
        if self.scale not in ("unit", "standard", None):
            raise ValueError(f"scale must be 'unit', 'standard' or None; got {self.scale!r}")
        if self.data_format not in ("auto", "channels_first", "channels_last"):
            raise ValueError(f"data_format must be 'auto', 'channels_first' or 'channels_last'; "
                             f"got {self.data_format!r}")
        if self.size is not None:
            try:
                h, w = (int(v) for v in self.size)
            except (TypeError, ValueError):
                raise ValueError(f"size must be (height, width); got {self.size!r}") from None
            if h < 1 or w < 1:
                raise ValueError(f"size must be positive; got {self.size!r}")

    def _to_chw(self, a, i):
        """One image -> (c, h, w) array of its own dtype."""
        a = np.asarray(a)
        if a.dtype.kind not in "fiub":
            raise ValueError(f"image {i} has dtype {a.dtype}; expected numbers")
        if a.ndim == 2:
            return a[None]
        if a.ndim != 3:
            raise ValueError(f"image {i} has shape {a.shape}; expected (h, w), (h, w, c) or (c, h, w)")
        last = self.data_format == "channels_last" or (
            self.data_format == "auto" and a.shape[-1] in (1, 3, 4) and a.shape[0] not in (1, 3, 4))
        return np.moveaxis(a, -1, 0) if last else a

    def _images(self, X):
        """X -> (float32 grids (n, c, h, w), whether the images came as floats)."""
        if isinstance(X, (str, os.PathLike)):
            raise ValueError("X must be a list of images or paths, not a single path")
        if isinstance(X, np.ndarray):
            if X.ndim not in (3, 4):
                raise ValueError(f"X has shape {X.shape}; expected (n, h, w), (n, h, w, c) or (n, c, h, w)")
            imgs = list(X)
        else:
            imgs = list(X)
            if imgs and all(isinstance(p, (str, os.PathLike)) for p in imgs):
                imgs = _load_files(imgs)
        if not imgs:
            raise ValueError("X is empty: no images")
        out = []
        for i, a in enumerate(imgs):
            a = self._to_chw(a, i)
            if a.dtype.kind in "iu":
                a = a.astype(np.float32) / (np.float32(np.iinfo(a.dtype).max) if self.scale == "unit" else 1)
            a = a.astype(np.float32, copy=False)
            if not np.isfinite(a).all():
                raise ValueError(f"image {i} contains NaN or infinite values")
            c = a.shape[0]
            if c == 4:
                a, c = a[:3], 3          # drop alpha
            if self.color == "grey" and c == 3:
                a = np.tensordot(np.array([0.299, 0.587, 0.114], np.float32), a, axes=1)[None]
            elif self.color == "rgb" and c == 1:
                a = np.repeat(a, 3, axis=0)
            if self.size is not None and a.shape[1:] != tuple(self.size):
                from scipy.ndimage import zoom
                h, w = self.size
                a = zoom(a, (1, h / a.shape[1], w / a.shape[2]), order=1, grid_mode=True,
                         mode="nearest")
            out.append(a)
        shapes = {a.shape for a in out}
        if len(shapes) > 1:
            raise ValueError(f"images have different shapes {sorted(shapes)[:3]}...; set size=(h, w)")
        floats = all(np.asarray(a).dtype.kind == "f" for a in imgs)
        return np.stack(out).astype(np.float32, copy=False), floats

    def fit(self, X, y=None):
        """Learn the scaling statistics on training images."""
        self._check_params()
        grids, floats = self._images(X)
        self.grid_shape_ = grids.shape[1:]
        self.min_ = self.max_ = self.mean_ = self.scale_ = None
        if self.scale == "unit" and floats:
            self.min_, self.max_ = float(grids.min()), float(grids.max())
        elif self.scale == "standard":
            self.mean_ = grids.mean(axis=(0, 2, 3))
            std = grids.std(axis=(0, 2, 3))
            self.scale_ = np.where(std > 1e-6, std, 1.0).astype(np.float32)
        return self

    def transform(self, X):
        """Images -> float32 (n, c, h, w)."""
        check_is_fitted(self, "grid_shape_")
        grids, floats = self._images(X)
        if grids.shape[1:] != tuple(self.grid_shape_):
            raise ValueError(f"images give grids of shape {grids.shape[1:]}; the adapter was fitted "
                             f"on {tuple(self.grid_shape_)}")
        if self.scale == "unit" and floats and self.min_ is not None:
            span = self.max_ - self.min_
            grids = (grids - self.min_) / (span if span > 0 else 1.0)
        elif self.scale == "standard":
            grids = (grids - self.mean_[:, None, None]) / self.scale_[:, None, None]
        return grids.astype(np.float32, copy=False)
