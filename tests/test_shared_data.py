"""The examples' loader for WordNet as unlabeled text (examples/shared_data.py)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from shared_data import read_wordnet  # noqa: E402

# three synsets in WordNet 3.0's data-file layout: offset, lexicographer file, type,
# word count (hex), words with lex ids, pointer count, pointers, "|" gloss
NOUNS = """  1 This software and database is being provided ...
00001740 03 n 01 entity 0 000 | that which is perceived to have its own distinct existence
00002137 03 n 02 abstraction 0 abstract_entity 0 001 @ 00001740 n 0000 | a general concept
05093581 07 n 01 width 0 001 @ 00002137 n 0000 | the extent of something from side to side; "the width of the road"
"""
VERBS = "01617210 41 v 01 organize 0 000 | create (as an entity)\n"


def _folder(tmp_path, nouns=NOUNS):
    (tmp_path / "data.noun").write_text(nouns, encoding="latin-1")
    (tmp_path / "data.verb").write_text(VERBS, encoding="latin-1")
    (tmp_path / "data.adj").write_text("", encoding="latin-1")
    (tmp_path / "data.adv").write_text("", encoding="latin-1")
    return tmp_path


def test_read_wordnet_sentences(tmp_path):
    out = read_wordnet(_folder(tmp_path))
    assert len(out) == 4
    # words, hypernyms two levels up, the lexicographer file, the gloss
    assert out[2] == ("width abstraction abstract entity entity lex07 the extent of something "
                      "from side to side;  the width of the road ")
    assert out[3] == "organize lex41 create (as an entity)"
    assert read_wordnet(tmp_path, levels=0)[2].startswith("width lex07 ")


def test_read_wordnet_errors(tmp_path):
    with pytest.raises(SystemExit, match="wordnet-base"):
        read_wordnet(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"data.noun, line 2: not a WordNet synset line"):
        read_wordnet(_folder(tmp_path, "  1 licence\n00001740 03 n zz entity\n"))
