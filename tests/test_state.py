"""How an adapter writes and reads its own fitted state (adapters/state.py): values by
hand, the round trip of every kind of value, and each refusal's message."""
import json

import numpy as np
import pytest

from adapters import TabularAdapter, TextAdapter
from adapters.state import decode_value, encode_value

SENTS = ["the cat sat", "a dog ran", "the dog sat"]


def test_values_encode_as_plain_json_and_decode_back():
    a = np.arange(6, dtype=np.int16).reshape(2, 3)
    assert encode_value(a) == {"__array__": [[0, 1, 2], [3, 4, 5]], "dtype": "int16"}
    assert encode_value(np.array(["x", 1], dtype=object)) == {"__array__": ["x", 1], "dtype": "object"}
    assert encode_value((1, np.int64(2), [np.float32(0.5), "s"])) == [1, 2, [0.5, "s"]]
    assert encode_value({"k": (np.bool_(True),)}) == {"k": [True]}
    assert type(encode_value(np.int64(2))) is int and type(encode_value(np.float32(0.5))) is float
    for v in (a, np.array([1.5, -2.0], np.float32), np.array([[True, False]])):
        back = decode_value(json.loads(json.dumps(encode_value(v))))
        assert back.dtype == v.dtype and back.shape == v.shape
        np.testing.assert_array_equal(back, v)
    assert decode_value({"plain": 1}) == {"plain": 1} and decode_value(3) == 3


def test_a_fitted_adapter_round_trips_through_json():
    t = TextAdapter(positions=4, embedding=None, lowercase=True).fit(SENTS)
    state = t.to_state()
    assert state["class"] == "TextAdapter" and state["params"]["lowercase"] is True
    assert set(state["fitted"]) >= {"vocabulary_", "n_positions_", "grid_shape_"}
    back = TextAdapter.from_state(json.loads(json.dumps(state)))
    assert back.grid_shape_ == t.grid_shape_ and isinstance(back.grid_shape_, tuple)
    assert back.vocabulary_ == t.vocabulary_ and back.get_params() == t.get_params()
    assert back.transform(["The cat ran"]) == t.transform(["The cat ran"])
    # the fitting-only values are not written: the corpus and the starting vectors
    svd = TextAdapter(embedding="svd", corpus=SENTS * 3, dim=2, random_state=0).fit(SENTS)
    written = svd.to_state()
    assert written["params"]["corpus"] is None and written["params"]["embedding"] is None
    assert "embedding_" not in written["fitted"] and hasattr(svd, "embedding_")
    # arrays keep their dtype and shape
    tab = TabularAdapter().fit(np.arange(12, dtype=np.float64).reshape(4, 3))
    again = TabularAdapter.from_state(json.loads(json.dumps(tab.to_state())))
    np.testing.assert_array_equal(again.transform(np.ones((2, 3))), tab.transform(np.ones((2, 3))))


def test_an_unfitted_adapter_has_no_state():
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        TextAdapter().to_state()


@pytest.mark.parametrize("change,message", [
    (lambda s: {**s, "class": "AudioAdapter"}, r"^the state is of a 'AudioAdapter', not a TextAdapter$"),
    (lambda s: {**s, "params": None}, r"^the TextAdapter state needs 'params' and 'fitted' mappings$"),
    (lambda s: {**s, "fitted": []}, r"^the TextAdapter state needs 'params' and 'fitted' mappings$"),
    (lambda s: {**s, "params": {**s["params"], "colour": 1, "bogus": 2}},
     r"^the TextAdapter state has unknown parameters \['bogus', 'colour'\]$"),
    (lambda s: {**s, "fitted": {**s["fitted"], "oops": 1}},
     r"^the TextAdapter state has a fitted value named 'oops'$"),
    (lambda s: {**s, "fitted": {**s["fitted"], 7: 1}},
     r"^the TextAdapter state has a fitted value named 7$"),
])
def test_a_bad_state_is_refused_with_what_is_wrong(change, message):
    state = TextAdapter(positions=4, embedding=None).fit(SENTS).to_state()
    with pytest.raises(ValueError, match=message):
        TextAdapter.from_state(change(state))


def test_object_arrays_encode_their_items_and_private_attributes_are_not_written():
    v = np.array([np.int64(3), np.array([1, 2], np.int8), "s"], dtype=object)
    assert encode_value(v) == {"__array__": [3, {"__array__": [1, 2], "dtype": "int8"}, "s"],
                               "dtype": "object"}
    json.dumps(encode_value(v))                      # plain JSON all the way down
    t = TextAdapter(positions=4, embedding=None).fit(SENTS)
    t._scratch_ = np.ones(3)                         # private, though it ends in "_"
    assert "_scratch_" not in t.to_state()["fitted"]
