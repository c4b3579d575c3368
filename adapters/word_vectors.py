"""Word vectors for the text adapter: fitted on a corpus (PPMI + truncated SVD) or read
from a word2vec/GloVe text file."""
from __future__ import annotations

import numpy as np

__all__ = ["cooccurrence", "ppmi_svd_vectors", "read_vectors"]


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
