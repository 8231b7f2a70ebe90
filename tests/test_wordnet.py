"""wordnet-supersense: the data.noun parser on small files written here, the fixed split, the
vocabulary and padding, where the file is looked for; then the real WordNet 3.0 package with
every trainer and the CLI (skipped only where wordnet-base is not installed, outside CI)."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from conftest import data_noun_line, write_data_noun

import costtrain.data.datasets as data
from costtrain.cli import main
from costtrain.data.datasets import CorruptDataError, DataNotFoundError, load_dataset
from costtrain.data.wordnet import SUPERSENSES, is_test, parse_data_noun
from costtrain.train.baseline import train_baseline
from costtrain.utils import CosttrainError

WORDS = {5: ["dog", "cat", "horse", "fur"], 6: ["chair", "tool", "engine", "metal"],
         13: ["bread", "sauce", "sweet", "eaten"], 20: ["oak", "leaf", "flower", "root"]}
FILLER = ["of", "a", "the", "or", "and", "small", "kind", "usually", "having", "any"]


def corpus(n: int = 400, seed: int = 0) -> list[str]:
    """A learnable data.noun: each class has its own words, mixed with common filler words."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        lex = list(WORDS)[i % len(WORDS)]
        gloss = " ".join(rng.choice(WORDS[lex]) if rng.random() < 0.4 else rng.choice(FILLER)
                         for _ in range(rng.randint(3, 12)))
        lines.append(data_noun_line(1000 + 97 * i, lex, [f"Thing_{i}"], gloss))
    return lines


@pytest.fixture
def fake(tmp_path, monkeypatch) -> Path:
    """A folder with a learnable data.noun; the system copy is hidden from the search."""
    monkeypatch.delenv("COSTTRAIN_DATA", raising=False)
    monkeypatch.delenv("WNSEARCHDIR", raising=False)
    monkeypatch.setitem(data.DEBIAN_DIRS, data.WORDNET, tmp_path / "no-system-copy")
    monkeypatch.chdir(tmp_path)
    write_data_noun(tmp_path / "wn", corpus())
    return tmp_path / "wn"


# --- the parser and the encoding, on files written here -------------------------------------

def test_parser_skips_the_licence_and_reads_words_and_gloss(tmp_path):
    many = [f"w{i}" for i in range(11)]  # 11 words: w_cnt is hexadecimal, "0b"
    path = write_data_noun(tmp_path, [
        data_noun_line(1740, 3, ["entity"], "that which is perceived or known", pointers=3),
        data_noun_line(2084071, 5, ["dog", "domestic_dog", "Canis_familiaris"],
                       'a member of the genus Canis; "the dog barked all night"'),
        data_noun_line(9999999, 28, many, "a time", pointers=0)])
    s = parse_data_noun(path)
    assert [x.offset for x in s] == [1740, 2084071, 9999999]
    assert [x.lex_filenum for x in s] == [3, 5, 28] and [x.label for x in s] == [0, 2, 25]
    assert s[1].lemmas == ("dog", "domestic_dog", "Canis_familiaris")
    assert s[1].gloss == 'a member of the genus Canis; "the dog barked all night"'
    assert s[1].tokens() == ["dog", "domestic", "dog", "canis", "familiaris", "a", "member",
                             "of", "the", "genus", "canis", "the", "dog", "barked", "all",
                             "night"]
    assert s[2].lemmas == tuple(many)
    assert SUPERSENSES[s[1].label] == "noun.animal" and len(SUPERSENSES) == 26


@pytest.mark.parametrize("line,what", [
    ("00001740 05 v 01 run 0 000 | to move fast  \n", "synset type 'v'"),
    ("00001740 44 n 01 run 0 000 | a gloss  \n", "lex_filenum 44 is not a noun file"),
    ("00001740 05 n 03 run 0 000 | a gloss  \n", "truncated line"),
    ("00001740 05 n 01 run 0 000\n", "truncated line"),
    ("garbage\n", "expected 'offset lex_filenum n w_cnt"),
])
def test_a_malformed_line_is_an_error_naming_file_and_line(tmp_path, line, what):
    path = write_data_noun(tmp_path, [data_noun_line(1000, 5, ["dog"], "an animal"), line])
    with pytest.raises(CorruptDataError, match=f"data.noun, line 5: {what}"):
        parse_data_noun(path)  # 3 licence lines, then line 4, then the bad one


def test_a_file_without_synsets_is_an_error(tmp_path):
    with pytest.raises(CorruptDataError, match="no synsets"):
        parse_data_noun(write_data_noun(tmp_path, []))


def test_the_split_is_fixed_by_offset_about_one_in_five():
    flags = [is_test(o) for o in range(100_000, 120_000)]
    assert 0.18 < sum(flags) / len(flags) < 0.22
    assert flags == [is_test(o) for o in range(100_000, 120_000)]  # no seed, no state


def test_dataset_from_a_small_file(fake):
    ds = load_dataset("wordnet-supersense", fake)
    offsets = [1000 + 97 * i for i in range(400)]
    assert len(ds.test_y) == sum(map(is_test, offsets)) and len(ds.train_y) + len(ds.test_y) == 400
    assert ds.classes == list(SUPERSENSES) and ds.source == str(fake / "data.noun")
    assert set(ds.train_y.tolist()) == {lex - 3 for lex in WORDS}
    assert ds.input_shape == (ds.features,) and ds.features == len(ds.vocabulary)
    # vocabulary from the training split, most frequent first; id `features` pads
    synsets = parse_data_noun(fake / "data.noun")
    train_words = [w for s in synsets if not is_test(s.offset) for w in s.tokens()]
    counts = [train_words.count(w) for w in ds.vocabulary]
    assert counts == sorted(counts, reverse=True) and set(ds.vocabulary) == set(train_words)
    pad = ds.features
    assert int(ds.train_x.max()) == pad and int(ds.train_x.min()) >= 0
    first = next(s for s in synsets if not is_test(s.offset))
    ids = [i for i in ds.train_x[0].tolist() if i != pad]
    assert [ds.vocabulary[i] for i in ids] == first.tokens()[:32]
    assert ds.info["max_tokens"] == 32 and ds.info["synsets"] == 400


def test_test_words_unseen_in_training_are_dropped_and_long_bags_cut(tmp_path, monkeypatch):
    monkeypatch.setitem(data.DEBIAN_DIRS, data.WORDNET, tmp_path / "none")
    train = [o for o in range(1000, 2000) if not is_test(o)][:3]
    test = [o for o in range(1000, 2000) if is_test(o)][:1]
    write_data_noun(tmp_path, [data_noun_line(train[0], 5, ["dog"], "a b c d e f g h"),
                               data_noun_line(train[1], 6, ["chair"], "a seat"),
                               data_noun_line(train[2], 5, ["cat"], "a pet"),
                               data_noun_line(test[0], 6, ["stool"], "a seat unseen")])
    ds = load_dataset("wordnet-supersense", tmp_path, max_tokens=4)
    assert ds.train_x.shape == (3, 4) and ds.test_x.shape == (1, 4)
    words = [ds.vocabulary[i] for i in ds.test_x[0].tolist() if i < ds.features]
    assert words == ["a", "seat"]  # "stool" and "unseen" never occur in training
    assert [ds.vocabulary[i] for i in ds.train_x[0].tolist()] == ["dog", "a", "b", "c"]
    assert ds.info["truncated"] == pytest.approx(1 / 3)
    with pytest.raises(CosttrainError, match="max_tokens must be an integer >= 1"):
        load_dataset("wordnet-supersense", tmp_path, max_tokens=0)
    with pytest.raises(CosttrainError, match="unknown setting.*k; known: max_tokens"):
        load_dataset("wordnet-supersense", tmp_path, k=3)


def test_where_data_noun_is_looked_for(fake, tmp_path, monkeypatch):
    other = write_data_noun(tmp_path / "other" / "dict", corpus(50)).parent
    monkeypatch.setenv("COSTTRAIN_DATA", str(tmp_path / "other"))  # dict/ below it
    assert load_dataset("wordnet-supersense").source == str(other / "data.noun")
    assert load_dataset("wordnet-supersense", fake).source == str(fake / "data.noun")  # root first
    monkeypatch.delenv("COSTTRAIN_DATA")
    monkeypatch.setenv("WNSEARCHDIR", str(other))  # WordNet's own variable
    assert load_dataset("wordnet-supersense").source == str(other / "data.noun")


def test_not_found_names_the_package_and_the_path_options(fake, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataNotFoundError) as e:
        load_dataset("wordnet-supersense", empty)
    msg = str(e.value)
    assert "apt-get install wordnet-base" in msg and "--data-dir" in msg
    assert "WNSEARCHDIR" in msg and str(empty) in msg and "does not download" in msg
    assert main(["run", "--dataset", "wordnet-supersense", "--model", "sparse-linear",
                 "--data-dir", str(empty)]) == 2
    assert "apt-get install wordnet-base" in capsys.readouterr().err


def test_a_small_file_trains_with_the_baseline_and_the_cli(fake, tmp_path, capsys):
    ds = load_dataset("wordnet-supersense", fake)
    r = train_baseline("sparse-linear", ds, epochs=5, threads=1, lr=1.0)
    assert r.test_accuracy > 0.8  # each class has its own words
    out = tmp_path / "r.json"
    assert main(["run", "--dataset", "wordnet-supersense", "--model", "sparse-linear",
                 "--data-dir", str(fake), "--subset", "100", "--no-progress",
                 "--out", str(out)]) == 0
    assert "wordnet-supersense, 100 training" in capsys.readouterr().out
    (res,) = json.loads(out.read_text())
    assert res["samples"] == 100 and res["config"]["dataset"] == "wordnet-supersense"


# --- the real WordNet 3.0 (Debian's wordnet-base) --------------------------------------------

# Synsets whose supersense is known (offset -> lexicographer file): the names of SUPERSENSES
# are WordNet's lexnames(5); these check that their order matches the data.
KNOWN = {1740: "noun.Tops", 306900: "noun.act", 2084071: "noun.animal", 3001627: "noun.artifact",
         4674968: "noun.attribute", 5560787: "noun.body", 5803379: "noun.cognition",
         6286395: "noun.communication", 7300960: "noun.event", 7516354: "noun.feeling",
         7739125: "noun.food", 7970406: "noun.group", 8932568: "noun.location",
         9178821: "noun.motive", 9416076: "noun.object", 10694258: "noun.person",
         11408559: "noun.phenomenon", 12268246: "noun.plant", 13250542: "noun.possession",
         13489037: "noun.process", 13651218: "noun.quantity", 13811410: "noun.relation",
         13873502: "noun.shape", 14061805: "noun.state", 14845743: "noun.substance",
         15201505: "noun.time"}
HEADS = {2084071: "dog", 3001627: "chair", 7739125: "apple", 10694258: "teacher"}


def test_real_wordnet_nouns(wordnet):
    synsets = {s.offset: s for s in parse_data_noun(wordnet.source)}
    assert len(synsets) == 82_115 == wordnet.info["synsets"]
    assert {synsets[o].label for o in KNOWN} == set(range(26))
    assert {o: SUPERSENSES[synsets[o].label] for o in KNOWN} == KNOWN
    assert all(synsets[o].lemmas[0] == w for o, w in HEADS.items())
    assert len(wordnet.train_y) + len(wordnet.test_y) == 82_115
    assert len(wordnet.test_y) == sum(map(is_test, synsets))
    assert set(wordnet.train_y.tolist()) == set(range(26)) == set(wordnet.test_y.tolist())
    assert wordnet.classes[int(wordnet.train_y.bincount().argmax())] == "noun.artifact"
    assert wordnet.vocabulary[:3] == ["of", "a", "the"]  # glosses: "a ... of ..."
    assert 10 < wordnet.info["tokens_per_sample"] < 20 and wordnet.info["truncated"] < 0.1
    assert int(wordnet.train_x.max()) == wordnet.features  # the padding id


def test_padding_is_never_written_on_real_text(wordnet):
    from costtrain.data.sparse import SparseLinear
    net = SparseLinear(wordnet.features, wordnet.num_classes)
    x, y = wordnet.train_x[:64], wordnet.train_y[:64]
    torch.nn.functional.cross_entropy(net(x), y).backward()
    rows = net.bag.weight.grad.coalesce().indices()[0]
    assert wordnet.features not in rows.tolist()
    assert set(rows.tolist()) == set(x[x < wordnet.features].tolist())
