"""Presets and architectures: pure functions from hyperparameters and grid shape to layers.

:func:`build_network` is what :class:`gridnet.GridNetClassifier` calls; the other
functions return new, unbuilt layers and touch nothing else. The presets:

- ``"image"``: ``conv_blocks`` blocks of [Conv2D(k x k, "same",
  ReLU), MaxPool2D(pool_size, pool_stride)], the features doubling from ``filters``
  in each block, then Flatten, Dense(``dense_units``, ReLU), Dropout, Dense(classes).
  A kernel or pooling window never exceeds the grid: on a 1-high strip (a table)
  the network is one-dimensional (1 x k kernels, pooling along the width).
- ``"audio"``: the same, three blocks from 16 features, for log-mel spectrograms
  (height = frequency, width = time), after a RowCenter that adds a second channel,
  each band's mean over the clip taken out (after the augmentation: noise).
- ``"text"``: the sentence CNN (Kim, 2014) for word-by-position grids ``(n, 1,
  positions, width)``: a convolution one position tall and the full width learns a
  ``embed_dim``-wide vector per word, then branches of ``filters`` features of each
  height in ``kernel_size`` (3, 4, 5) with ReLU and max over positions,
  concatenated, Dropout, Dense(classes). When the one-hot grid carries starting
  vectors (``TextAdapter(embedding=...)``), the word vectors start from them (and
  ``embed_dim`` is their width): Kim's CNN-non-static; when it also carries fixed
  vectors (pretrained, the default), they are a second, untrained channel beside
  them (Kim's multichannel), and a bag of the sentence's words and word pairs
  (fastText's sentence vector, ``ngram_dim`` wide, learning faster than the CNN)
  runs beside the CNN, joined before the output layer (``ngram_dim=0``: none; a
  grid without pretrained vectors has none unless ``ngram_dim`` is given). Two such
  networks are trained and their logits averaged (``TRAINING``'s ``ensemble_size``;
  :func:`build_ensemble`).
"""
from __future__ import annotations

import copy
import logging
import numbers

import numpy as np

from .core import (Branches, Conv2D, Dense, Dropout, Embedding, Flatten, GlobalMaxPool, MaxPool2D,
                   Network, NgramBag, NgramLinear, RowCenter)
from .core import is_onehot, stack
from .core.bag import ngram_ids
from .core.layers import as_pair

logger = logging.getLogger(__name__)

__all__ = ["PRESETS", "TRAINING", "training_defaults", "training_settings", "check_preset", "infer_preset", "hyperparameters", "conv_layers", "text_layers", "head_layers",
           "preset_layers", "classifier_network", "choose_preset", "build_network", "build_ensemble", "bag_buckets", "ensemble_members", "ensemble_size", "ARCHITECTURE", "start_embedding", "set_fixed", "EMBED_START_STD"]

#: Default hyperparameters of each preset (used for every parameter left at None).
PRESETS = {
    None: dict(conv_blocks=2, filters=32, kernel_size=3, pool_size=2, dense_units=128,
               dropout=0.25, center_rows=False),
    "image": dict(conv_blocks=2, filters=32, kernel_size=3, pool_size=2, dense_units=128,
                  dropout=0.25, center_rows=False),
    "audio": dict(conv_blocks=3, filters=16, kernel_size=3, pool_size=2, dense_units=128,
                  dropout=0.3, center_rows=True),
    "text": dict(filters=100, kernel_size=(3, 4, 5), embed_dim=128, dense_units=0,
                 dropout=0.5, ngram_dim=None),
}

#: Training defaults of each preset, for ``augment="auto"``, ``n_iter_no_change=None``,
#: ``tol=None``, ``ema_momentum="auto"`` and ``ensemble_size="auto"``: each chosen on dev
#: data (the figures are in docs/benchmarks.md, "Settings chosen on dev data").
#: Elsewhere: no augmentation, no average, a patience of 5 epochs, a tolerance of 1e-4,
#: and one network.
TRAINING = {"audio": {"augment": "noise_warp_spec_augment", "n_iter_no_change": 7, "tol": 1e-3,
                      "ema_momentum": 0.995},
            "image": {"ema_momentum": 0.99}, "text": {"ensemble_size": 2}}
DEFAULT_PATIENCE = 5
DEFAULT_TOL = 1e-4


def training_defaults(preset):
    """(augment callable or None, n_iter_no_change, ema_momentum or None, tol) of ``preset``."""
    from .augment import audio_augment
    t = TRAINING.get(preset, {})
    augment = None
    if t.get("augment"):      # noise, warp, shifts: new voices, noise; fragments: rejection
        augment = audio_augment()
    return (augment, t.get("n_iter_no_change", DEFAULT_PATIENCE), t.get("ema_momentum"),
            t.get("tol", DEFAULT_TOL))


def ensemble_size(preset, value, partial=False):
    """How many networks a fit trains and averages: ``value``, or for "auto" the
    preset's (1 for ``partial_fit``, which streams batches into one network)."""
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(f"ensemble_size must be 'auto' or a positive int; got {value!r}")
        return 1 if partial else int(TRAINING.get(preset, {}).get("ensemble_size", 1))
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"ensemble_size must be 'auto' or a positive int; got {value!r}")
    return int(value)


def training_settings(preset, augment, n_iter_no_change, ema_momentum, tol=None):
    """The classifier's training parameters made concrete: ``(augment_,
    n_iter_no_change_, ema_momentum_, tol_)``, the preset's where "auto" or None was
    given."""
    default_augment, patience, ema, default_tol = training_defaults(preset)
    return (default_augment if isinstance(augment, str) else augment,
            int(n_iter_no_change or patience),
            ema if isinstance(ema_momentum, str) else ema_momentum,
            float(default_tol if tol is None else tol))


#: Entry standard deviation of the starting word vectors a one-hot grid carries, once
#: scaled (a random column starts at sqrt(2 / width), about 0.015 for 9,000 words); the
#: first value tried, kept (docs/benchmarks.md).
EMBED_START_STD = 0.05

#: the classifier's parameters that shape its network (None: the preset's value)
ARCHITECTURE = ("conv_blocks", "filters", "kernel_size", "pool_size", "pool_stride",
                "dense_units", "dropout", "embed_dim", "ngram_dim", "center_rows")
#: The text preset's n-gram bag beside the CNN when the grid carries pretrained vectors
#: (``ngram_dim=None``; 0 otherwise, as before): its width, its rows (the words and word
#: pairs are hashed into them) and how much faster than the CNN it learns (the layer's
#: ``scale``). Chosen on dev data; the figures are in docs/benchmarks.md.
NGRAM_DIM = 16
NGRAM_BUCKETS = 2**17
NGRAM_SCALE = 30.0


def check_preset(preset):
    """A ``ValueError`` unless ``preset`` names one of :data:`PRESETS` (or is None)."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {list(PRESETS)}; got {preset!r}")


def hyperparameters(preset, **given):
    """The preset's hyperparameters with every ``given`` value that is not None
    instead."""
    check_preset(preset)
    hp = {name: PRESETS[preset].get(name) for name in ARCHITECTURE}
    hp.update({k: v for k, v in given.items() if v is not None})
    return hp


#: grids at least this high and wide get the deeper "audio" preset when none is given
LARGE_GRID = 16


def infer_preset(grid_shape, onehot=False):
    """The preset for grids of ``grid_shape`` (c, h, w) when none is given: "text" for
    a one-hot word grid, "audio" (three blocks) for a grid at least :data:`LARGE_GRID`
    high and wide, "image" (two blocks) otherwise (small pictures, one-row strips)."""
    if onehot:
        return "text"
    _, h, w = grid_shape
    return "audio" if min(h, w) >= LARGE_GRID else "image"


def head_layers(dense_units, dropout):
    """Flatten, then the optional hidden Dense(dense_units, ReLU) and Dropout."""
    layers = [Flatten()]
    if int(dense_units or 0):
        layers.append(Dense(int(dense_units), activation="relu"))
    if float(dropout or 0.0):
        layers.append(Dropout(float(dropout)))
    return layers


def conv_layers(grid_shape, *, conv_blocks, filters, kernel_size, pool_size, pool_stride=None,
                dense_units=128, dropout=0.0, center_rows=False, **_):
    """``conv_blocks`` blocks of [Conv2D(k x k, "same", ReLU), MaxPool2D], the features
    doubling from ``filters`` in each block (or one value per block), then the head;
    with ``center_rows``, a :class:`~gridnet.core.layers.RowCenter` first that gives
    the grid and the grid with each row centred, as two channels.

    A kernel or pooling window never exceeds the grid: on a 1-high strip (a table) the
    network is one-dimensional, 1 x k kernels and pooling along the width only.
    grid_shape: (c, h, w).
    """
    c, h, w = grid_shape
    if not isinstance(center_rows, (bool, np.bool_)):
        raise ValueError(f"center_rows must be True, False or None; got {center_rows!r}")
    blocks = int(conv_blocks)
    filters = (list(filters) if isinstance(filters, (list, tuple))
               else [int(filters) * 2 ** b for b in range(blocks)])
    if len(filters) != blocks:
        raise ValueError(f"filters lists {len(filters)} values for {blocks} conv_blocks")
    window = as_pair(pool_size, "pool_size")
    kernel = as_pair(kernel_size, "kernel_size")
    layers = [RowCenter(keep_input=True)] if center_rows else []
    for f in filters:
        # a kernel never exceeds the grid either: on a 1-high strip it is 1 x k (a
        # 3 x 3 kernel would multiply two rows of padding)
        k = (min(kernel[0], h), min(kernel[1], w))
        layers.append(Conv2D(int(f), k, padding="same", activation="relu"))
        pw = (min(window[0], h), min(window[1], w))
        if pw != (1, 1):
            ps = as_pair(pool_stride, "pool_stride") if pool_stride is not None else pw
            ps = (min(ps[0], pw[0]), min(ps[1], pw[1]))
            layers.append(MaxPool2D(pw, ps))
            h, w = (h - pw[0]) // ps[0] + 1, (w - pw[1]) // ps[1] + 1
    return layers + head_layers(dense_units, dropout)


def text_layers(grid_shape, *, filters, kernel_size, embed_dim, dense_units=0, dropout=0.0,
                embedding_dim=None, fixed_dim=0, trained=None, ngram_dim=0, ngram_rows=None, **_):
    """The sentence CNN (Kim, 2014) for word-by-position grids ``(1, positions,
    width)``: a convolution one position tall and the full width learns an
    ``embed_dim``-wide vector per word (``embedding_dim``, the width of starting
    vectors, when given), then branches of ``filters`` features of each height in
    ``kernel_size`` with ReLU and max over positions, concatenated, then the head.

    With ``fixed_dim`` (pretrained vectors kept fixed beside the learned ones, Kim's
    multichannel) the first layer is an :class:`~gridnet.core.Embedding` instead, with
    a learned vector for the first ``trained`` columns only. With ``ngram_dim``, a
    :class:`~gridnet.core.NgramBag` of the sentence's words and word pairs runs beside
    the CNN (fastText's sentence vector), joined before the output layer; its table
    compact with ``ngram_rows`` rows (see :class:`~gridnet.core.NgramBag`)."""
    c, h, w = grid_shape
    heights = [kernel_size] if isinstance(kernel_size, numbers.Integral) else list(kernel_size)
    if max(heights) > h:
        raise ValueError(
            f"the text preset's tallest filter spans {max(heights)} positions, but the "
            f"grids have only {h}; use more positions or smaller kernel_size")
    emb = int(embedding_dim if embedding_dim is not None else embed_dim)
    first = (Embedding(emb, trained=trained, fixed_dim=int(fixed_dim)) if fixed_dim
             else Conv2D(emb, (1, w)))
    layers = [first,
              Branches([[Conv2D(int(filters), (k, 1), padding="same", activation="relu"),
                         GlobalMaxPool("height")] for k in heights])]
    if int(ngram_dim or 0):
        bag = NgramBag(int(ngram_dim), NGRAM_BUCKETS, trained, scale=NGRAM_SCALE, rows=ngram_rows)
        layers = [Branches([layers, [bag]])]
    return layers + head_layers(dense_units, dropout)


def preset_layers(preset, grid_shape, hp, embedding=None, embed_dim_given=None, fixed=None,
                  trained=None):
    """The body of the network (everything but the output layer) for ``preset``.

    ``embedding`` ``(w, d)``: starting vectors for the text preset's word vectors (its
    width ``d`` becomes ``embed_dim``; ``embed_dim_given``, the user's explicit value,
    must then agree). ``fixed`` ``(w, d')``: vectors kept fixed beside them, for every
    column; ``trained``: how many leading columns learn their own.
    """
    if preset != "text":
        return conv_layers(grid_shape, **hp)
    if fixed is not None:
        hp = {**hp, "fixed_dim": int(fixed.shape[1]), "trained": trained}
    if hp.get("ngram_dim") is None:
        hp = {**hp, "ngram_dim": NGRAM_DIM if fixed is not None else 0}
    dim = None
    if embedding is not None:
        dim = int(embedding.shape[1])
        if embed_dim_given is not None and int(embed_dim_given) != dim:
            raise ValueError(
                f"embed_dim={embed_dim_given}, but the grid's starting embedding has "
                f"{dim} dimensions; leave embed_dim at None to take theirs")
    return text_layers(grid_shape, embedding_dim=dim, **hp)


def classifier_network(body, grid_shape, n_classes, rng):
    """A built :class:`~gridnet.core.Network`: ``body``, a Flatten when it ends in a
    grid, and the output ``Dense(n_classes)``."""
    net = Network(body)
    try:
        shape = net.build(grid_shape, rng)
    except ValueError as exc:
        raise ValueError(f"the network cannot take grids of shape {grid_shape} (smaller than "
                         f"its receptive field?): {exc}") from None
    if len(shape) != 1:
        net.append(Flatten(), rng)
    net.append(Dense(n_classes), rng)
    return net


def choose_preset(preset, layers, grid_shape, onehot):
    """The preset a fit uses: None with explicit ``layers``, else ``preset``, else the
    one :func:`infer_preset` picks for the grid."""
    if layers is not None:
        return None
    return infer_preset(grid_shape, onehot) if preset is None else preset


def bag_buckets(grid):
    """The distinct buckets, sorted, of a one-hot word grid's words and word pairs, as
    the text preset's :class:`~gridnet.core.NgramBag` hashes them; None for another grid
    or one without a word."""
    if not is_onehot(grid):
        return None
    trained = getattr(grid, "trained", None)
    used = np.unique(ngram_ids(np.asarray(grid.indices), grid.shape[3] if trained is None else trained,
                               NGRAM_BUCKETS)[1])
    return used if len(used) else None


def build_network(preset, layers, given, grid, n_classes, rng, compact=True):
    """The classifier's built network for ``grid`` (n, c, h, w): the copied ``layers``
    or ``preset``'s (``given``: the architecture parameters, None meaning the preset's),
    then the output layer; a one-hot word grid's vectors (``embedding``, ``fixed``,
    ``trained``) start and fix the text preset's word vectors. With ``compact``, the
    text preset's n-gram bag has rows for the buckets ``grid`` holds only (the same
    training; ``partial_fit``, which meets its sentences later, builds the whole table;
    a ``warm_start`` fit keeps the first fit's rows: n-grams new to it are read by the
    CNN and the TF-IDF member, not learned by the bag).
    -> (network, how many embedding columns started from the grid's vectors)."""
    grid_shape = tuple(int(s) for s in grid.shape[1:])
    embedding, fixed = getattr(grid, "embedding", None), getattr(grid, "fixed", None)
    if layers is not None or preset != "text":
        if embedding is not None or fixed is not None:
            logger.info("the grid carries word vectors; only the text preset uses them")
        embedding = fixed = None
    if layers is not None:
        body = copy.deepcopy(list(layers))
        if not body:
            raise ValueError("layers is an empty list; pass None for the preset's layers")
    used = bag_buckets(grid) if compact and layers is None and preset == "text" else None
    if layers is None:
        hp = hyperparameters(preset, **given)
        body = preset_layers(preset, grid_shape, hp if used is None else {**hp, "ngram_rows": len(used)},
                             embedding, given.get("embed_dim"), fixed, getattr(grid, "trained", None))
    net = classifier_network(body, grid_shape, n_classes, rng)
    for bag in stack.leaves(net.layers) if used is not None else ():
        if isinstance(bag, NgramBag) and bag.rows is not None:
            bag.set_columns(used)
    started = 0
    if embedding is not None:
        started = start_embedding(word_vectors_layer(net), embedding)
    if fixed is not None:
        set_fixed(word_vectors_layer(net), fixed)
    return net, started


def build_ensemble(size, preset, layers, given, grid, n_classes, streams, compact=True):
    """``size`` networks as :func:`build_network` makes them, the first from
    ``streams(0)["init"]`` (the single network of ``size=1``), the others from their
    own streams, averaged in one :class:`~gridnet.core.Branches` (``join="mean"``).
    -> (network, embedding columns started)."""
    nets = [build_network(preset, layers, given, grid, n_classes, streams(m)["init"], compact)
            for m in range(size)]
    if size == 1:
        return nets[0]
    return Network.average([net for net, _ in nets]), nets[0][1]


def ensemble_members(net):
    """The networks an ensemble averages that training trains (views sharing their
    layers), or ``[net]``; a linear member (:mod:`gridnet.wide`, fitted, not trained)
    is left out."""
    first = net.layers[0] if len(net.layers) == 1 else None
    if isinstance(first, Branches) and first.join == "mean":
        return [first.member(b) for b in range(len(first.branches))
                if not isinstance(first.branches[b][0], NgramLinear)]
    return [net]


def _scale(E, found):
    """The factor that gives the found rows of ``E`` entries of standard deviation
    :data:`EMBED_START_STD`."""
    return np.float32(EMBED_START_STD / max(float(E[found].std()), 1e-12))


def word_vectors_layer(net):
    """The layer of ``net`` that learns the word vectors: the first Conv2D or
    Embedding, looking inside Branches."""
    from .core.stack import leaves
    return next(layer for layer in leaves(net.layers) if isinstance(layer, (Conv2D, Embedding)))


def start_embedding(conv, embedding):
    """Set the columns of the embedding convolution or :class:`~gridnet.core.Embedding`
    (``W``: ``(d, k)``) from the first ``k`` rows of ``embedding`` ``(w, d)`` that hold a
    vector, scaled so that their entries have standard deviation
    :data:`EMBED_START_STD`; return how many columns were set."""
    W = conv.params["W"]
    E = np.asarray(embedding[:W.shape[1]], dtype=np.float32)
    found = np.any(E != 0, axis=1)
    if not found.any():
        return 0
    W[:, found] = (E[found] * _scale(E, found)).T
    return int(found.sum())


def set_fixed(layer, fixed):
    """Fill an :class:`~gridnet.core.Embedding`'s fixed vectors from ``fixed`` ``(w, d)``,
    on the scale :func:`start_embedding` gives the learned ones (rows of zeros stay 0)."""
    F = np.asarray(fixed, dtype=np.float32)
    found = np.any(F != 0, axis=1)
    buf = layer.buffers["fixed"]
    buf[...] = 0
    if found.any():
        buf[found] = F[found] * _scale(F, found)
