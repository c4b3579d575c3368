"""TextAdapter: tokens, vocabulary, positions, vector kinds, bad input."""
import pickle

import numpy as np
import pytest
from sklearn.base import clone

from adapters import OneHotGrid, TextAdapter
from adapters.word_vectors import cooccurrence

SENTS = ["The cat sat on the mat .", "The dog sat on the log !", "A cat and a dog ?", "the end"]


def test_onehot_grid_shape_vocab_and_axes():
    t = TextAdapter(embedding=None).fit(SENTS)         # the literal grid: training words only
    g = t.transform(SENTS)
    assert isinstance(g, OneHotGrid) and g.shape == (4, 1, 7, len(t.vocabulary_) + 1)
    assert t.vocabulary_["the"] == 1                      # most frequent word first
    dense = g.toarray()
    assert dense.dtype == np.float32 and dense.shape == g.shape
    # height is position, width is the word: row 1 of sentence 0 is "cat"
    assert dense[0, 0, 1, t.vocabulary_["cat"]] == 1 and dense[0, 0, 1].sum() == 1
    np.testing.assert_array_equal(dense.sum(axis=3)[:, 0], (g.indices >= 0).astype(np.float32))
    np.testing.assert_array_equal(np.asarray(g), dense)
    np.testing.assert_array_equal(TextAdapter(dense=True).fit(SENTS).transform(SENTS), dense)


def test_min_count_max_vocab_and_unknown_words():
    t = TextAdapter(min_count=2, lowercase=True, embedding=None).fit(SENTS)
    assert set(t.vocabulary_) == {"the", "cat", "sat", "on", "dog", "a"}
    assert TextAdapter(max_vocab=3, lowercase=True).fit(SENTS).vocabulary_ == {"the": 1, "cat": 2, "sat": 3}
    # case kept (the default): "The" and "the" are two words, each seen twice
    assert set(TextAdapter(min_count=2).fit(SENTS).vocabulary_) == {"The", "the", "cat", "sat", "on", "dog"}
    g = t.transform(["zebra giraffe", ""])
    assert g.indices[0].tolist()[:3] == [0, 0, -1]        # unknown words -> column 0
    assert (g.indices[1] == -1).all()                     # empty string: all padding
    assert g.toarray()[1].sum() == 0


def test_positions_truncate_and_pad():
    words = ["w%d" % i for i in range(6)]
    sent = [" ".join(words)]
    t = TextAdapter(positions=4).fit(sent)
    assert [t.vocabulary_["w0"], t.vocabulary_["w3"]] == t.transform(sent).indices[0, [0, 3]].tolist()
    t2 = TextAdapter(positions=4, truncate="start").fit(sent)
    assert t2.transform(sent).indices[0, 0] == t2.vocabulary_["w2"]
    t3 = TextAdapter(positions=8, pad="start").fit(sent)
    assert t3.transform(sent).indices[0, :2].tolist() == [-1, -1]
    assert TextAdapter().fit(SENTS).n_positions_ == 7


def test_tokenizer_lowercase_and_char_level():
    t = TextAdapter(tokenizer=str.split).fit(["Hello world", "hello"])
    assert set(t.vocabulary_) == {"Hello", "world", "hello"}          # case kept by default
    t = TextAdapter(tokenizer=str.split, lowercase=True).fit(["Hello world", "hello"])
    assert set(t.vocabulary_) == {"world", "hello"}
    c = TextAdapter(level="char").fit(["abc", "abd"])
    g = c.transform(["abd", "xyz"])
    assert g.shape == (2, 1, 3, 5)          # a, b, c, d + unknown
    assert g.indices[1].tolist() == [0, 0, 0]
    assert TextAdapter(level="char", vectors="hashing", n_features=64).fit(["ab"]).transform(["ab"]).shape == (1, 1, 2, 64)


def test_hashing_is_stable_and_needs_no_vocabulary():
    a = TextAdapter(vectors="hashing", n_features=128).fit(SENTS)
    g = a.transform(["unseen words hash too"])
    assert g.shape[3] == 128 and (g.indices[0, :4] >= 0).all()
    # the columns do not depend on what was fitted
    b = TextAdapter(vectors="hashing", n_features=128, positions=7).fit(["something else"])
    assert a.transform(SENTS) == b.transform(SENTS)
    assert a.transform(["cat"]).indices[0, 0] != a.transform(["dog"]).indices[0, 0]


def test_svd_vectors_put_words_of_alike_contexts_close():
    rng = np.random.default_rng(0)
    corpus = []
    for _ in range(300):
        animal = rng.choice(["cat", "dog"])
        tool = rng.choice(["hammer", "saw"])
        corpus.append(f"the {animal} eats and sleeps and purrs")
        corpus.append(f"the {tool} cuts wood and metal")
    t = TextAdapter(vectors="svd", dim=4, random_state=0).fit(corpus)
    v = {w: t.vectors_[t.vocabulary_[w]] for w in ("cat", "dog", "hammer", "saw")}
    cos = lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    assert cos(v["cat"], v["dog"]) > cos(v["cat"], v["hammer"]) + 0.3
    g = t.transform(["the cat eats", "zebra"])
    assert g.dtype == np.float32 and g.shape == (2, 1, 7, 4)
    np.testing.assert_array_equal(g[0, 0, 1], v["cat"])
    assert (g[1] == 0).all()                       # only unknown words: zero rows
    extra = TextAdapter(vectors="svd", dim=4, corpus=["zebra eats and sleeps"], random_state=0).fit(corpus)
    # the corpus shapes the vectors (its co-occurrences count) but adds no word
    assert extra.vocabulary_ == t.vocabulary_ and "zebra" not in extra.vocabulary_
    assert extra.vectors_.shape == t.vectors_.shape == (len(t.vocabulary_), 4)
    assert not np.allclose(extra.vectors_, t.vectors_)


def test_pretrained_vectors_file(tmp_path):
    path = tmp_path / "vec.txt"
    path.write_text("3 2\ncat 1.0 0.5\ndog 0.9 0.4\nthe 0 0\n", encoding="utf-8")
    t = TextAdapter(vectors=str(path), positions=3).fit(["the cat", "a dog"])
    g = t.transform(["cat dog a"])
    np.testing.assert_allclose(g[0, 0, :3], [[1.0, 0.5], [0.9, 0.4], [0, 0]], rtol=1e-6)
    assert t.coverage_ == pytest.approx(3 / 4)
    bad = tmp_path / "bad.txt"
    bad.write_text("cat 1 2\ndog 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.txt, line 2: 1 numbers"):
        TextAdapter(vectors=str(bad)).fit(["cat dog"])
    with pytest.raises(ValueError, match="neither"):
        TextAdapter(vectors=str(tmp_path / "none.txt")).fit(["cat"])


def test_bad_items_are_named():
    t = TextAdapter().fit(SENTS)
    with pytest.raises(TypeError, match="item 2 of X is float"):
        t.transform(["ok", "fine", float("nan")])
    with pytest.raises(TypeError, match="item 0 of X is NoneType"):
        TextAdapter().fit([None])
    with pytest.raises(TypeError, match="not a single string"):
        t.transform("just one sentence")
    with pytest.raises(ValueError, match="X is empty"):
        TextAdapter().fit([])


def test_deterministic_clone_pickle():
    t = TextAdapter(positions=6).fit(SENTS)
    assert t.transform(SENTS) == t.transform(SENTS)
    assert pickle.loads(pickle.dumps(t)).transform(SENTS) == t.transform(SENTS)
    assert clone(t).fit(SENTS).transform(SENTS) == t.transform(SENTS)
    g = t.transform(SENTS)
    assert pickle.loads(pickle.dumps(g)) == g and g[1:3].shape == (2, 1, 6, g.shape[3])


def test_large_vocabulary_stays_small_in_memory():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(12000)]
    sents = [" ".join(rng.choice(words, size=30)) for _ in range(5000)]
    t = TextAdapter(max_vocab=10000, positions=40, embedding=None).fit(sents)
    g = t.transform(sents)
    assert g.shape == (5000, 1, 40, 10001)
    assert g.indices.nbytes == 5000 * 40 * 4        # 0.8 MB, where the dense grid is 8 GB


def _loop_cooccurrence(docs, words, window):
    """The plain definition: for each known token, each known token at most
    ``window`` places away in the same document."""
    index = {w: i for i, w in enumerate(words)}
    C = np.zeros((len(words), len(words)))
    for doc in docs:
        for p, a in enumerate(doc):
            for q in range(max(0, p - window), min(len(doc), p + window + 1)):
                if q != p and a in index and doc[q] in index:
                    C[index[a], index[doc[q]]] += 1
    return C


@pytest.mark.parametrize("window", [1, 2, 5])
def test_cooccurrence_counts_match_the_plain_loop(window):
    rng = np.random.default_rng(window)
    words = [f"w{i}" for i in range(12)]
    docs = [[f"w{i}" for i in rng.integers(0, 15, rng.integers(0, 9))] for _ in range(40)]
    got = cooccurrence(docs, words, window).toarray()
    np.testing.assert_array_equal(got, _loop_cooccurrence(docs, words, window))
    assert got.sum() > 0


def _animal_tool_corpus(n=300, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        out.append(f"the {rng.choice(['cat', 'dog', 'lion'])} eats and sleeps and purrs")
        out.append(f"the {rng.choice(['hammer', 'saw', 'drill'])} cuts wood and metal")
    return out


def test_svd_embedding_rides_on_the_onehot_grid():
    corpus = _animal_tool_corpus()
    train = ["The cat sleeps", "a hammer cuts", "the dog"]     # lion, saw: only in the corpus
    t = TextAdapter(embedding="svd", corpus=corpus, dim=4, lowercase=False, random_state=0).fit(train)
    E = t.embedding_
    assert E.dtype == np.float32 and E.shape == (len(t.vocabulary_) + 1, 4)
    assert (E[0] == 0).all()                       # the unknown column has no vector
    # the vectors come from the corpus: cat and dog alike, cat and hammer not
    v = {w: E[t.vocabulary_[w]] for w in ("cat", "dog", "hammer")}
    cos = lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    assert cos(v["cat"], v["dog"]) > cos(v["cat"], v["hammer"]) + 0.3
    # case-folded: "The" starts where "the" does
    np.testing.assert_array_equal(E[t.vocabulary_["The"]], E[t.vocabulary_["the"]])
    g = t.transform(["the lion sleeps", "a cat"])
    assert isinstance(g, OneHotGrid) and g.embedding is E
    assert g[[1]].embedding is E and g[1].embedding is E
    assert t.embedding_coverage_ == pytest.approx(np.any(E[1:] != 0, axis=1).mean())
    # without embedding nothing rides along
    assert TextAdapter(embedding=None).fit(train).transform(train).embedding is None


def test_embedding_from_a_vectors_file(tmp_path):
    path = tmp_path / "vec.txt"
    path.write_text("cat 1.0 0.5\nCat 2.0 2.0\ndog 0.9 0.4\n", encoding="utf-8")
    t = TextAdapter(embedding=str(path), lowercase=False).fit(["Cat cat Dog bird"])
    E, col = t.embedding_, t.vocabulary_
    np.testing.assert_allclose(E[col["Cat"]], [2.0, 2.0])      # exact token first
    np.testing.assert_allclose(E[col["cat"]], [1.0, 0.5])
    np.testing.assert_allclose(E[col["Dog"]], [0.9, 0.4])      # then its lowercase form
    assert (E[col["bird"]] == 0).all()
    assert t.embedding_coverage_ == pytest.approx(3 / 4)


def test_embedding_parameter_errors(tmp_path):
    with pytest.raises(ValueError, match="vectors='onehot'"):
        TextAdapter(embedding="svd", vectors="hashing").fit(SENTS)
    with pytest.raises(ValueError, match="level='word'"):
        TextAdapter(embedding="svd", level="char").fit(SENTS)
    with pytest.raises(ValueError, match="dense=True"):
        TextAdapter(embedding="svd", dense=True).fit(SENTS)
    with pytest.raises(ValueError, match="none of these"):
        TextAdapter(embedding=str(tmp_path / "missing.txt")).fit(SENTS)
    with pytest.raises(TypeError, match="item 1 of corpus is int"):
        TextAdapter(embedding="svd", corpus=["fine", 3]).fit(SENTS)
    with pytest.raises(TypeError, match="corpus must be a list of sentences"):
        TextAdapter(vectors="svd", corpus="one string").fit(SENTS)
    with pytest.raises(ValueError, match=r"embedding must be \(3, d\)"):
        OneHotGrid(np.zeros((1, 2), int), 3, embedding=np.zeros((4, 2)))
