"""``wordnet-supersense``: real sparse text, offline. Predict a WordNet noun's supersense.

WordNet 3.0 (Princeton University; Debian/Ubuntu package ``wordnet-base``, files under
``/usr/share/wordnet/``) lists 82,115 noun synsets in ``data.noun``, one per line::

    02084071 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 023 @ 02083346 n 0000 ... | a member of the genus Canis ...

that is ``offset lex_filenum ss_type w_cnt (word lex_id)... p_cnt (pointer)... | gloss``
(``w_cnt`` is hexadecimal; WordNet's ``wndb(5)``). ``lex_filenum`` 03..28 names the
lexicographer file, i.e. one of the 26 noun **supersenses** (:data:`SUPERSENSES`, from
WordNet's ``lexnames(5)``, which the package does not ship). The file starts with the licence,
each of its lines indented by two spaces; they are skipped.

The problem: from the bag of words of a synset's lemmas (``domestic_dog`` -> ``domestic``,
``dog``) and its gloss (definition and examples), lower-cased and split into runs of letters
and digits, predict its supersense: 26 classes, long-tailed (``noun.artifact`` is 14 % of the
synsets, ``noun.motive`` 0.05 %), a realistic Zipf vocabulary ("of", "a", "the" are in half the
glosses; about 40 % of the words occur once).

Choices, and why:

* **Vocabulary-indexed, not hashed.** The corpus is fixed and its vocabulary small (about 75,000
  words), so each word gets its own row: the table is exactly as large as needed, an id decodes
  back to its word, and no two words share a row. Hashing would mix unrelated words into one row
  and turn hash collisions into Hogwild! "collisions" that real text does not have; it suits
  unbounded streams, which this is not. Ids are ranked by training frequency (id 0 = the most
  common word, ties alphabetical), so "frequent word" means "small id".
* **The vocabulary comes from the training split only**; a test word never seen in training
  is dropped (its row could not have been trained). Bags keep repeated words (counts).
* **Fixed split:** a synset is a test sample when ``crc32(its 8-digit offset) % 5 == 0``
  (about 20 %; :func:`is_test`). Offsets identify synsets in WordNet 3.0 on every machine, so
  the split is the same everywhere and needs no seed.
* **One tensor:** samples are rows of ``max_tokens`` ids (default 32: the first 32 tokens, whole
  for about 96 % of the synsets; a longer gloss loses the tail of its example sentences),
  padded with the id ``features`` (= vocabulary size), which
  :class:`~costtrain.data.sparse.SparseLinear` leaves out of the sum and never writes.

Parsing and encoding take about 2 s (a 2-core box); the result is kept in memory for this
process (a second load copies it), nothing is written to disk.
"""
from __future__ import annotations

import functools
import re
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CorruptDataError
from ..utils import CosttrainError, whole

DATA_FILE = "data.noun"
# lexnames(5): lex_filenum 3..28 are the noun files; class c is lex_filenum 3 + c.
SUPERSENSES = (
    "noun.Tops", "noun.act", "noun.animal", "noun.artifact", "noun.attribute", "noun.body",
    "noun.cognition", "noun.communication", "noun.event", "noun.feeling", "noun.food",
    "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person",
    "noun.phenomenon", "noun.plant", "noun.possession", "noun.process", "noun.quantity",
    "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time")
FIRST_LEX = 3
MAX_TOKENS = 32
TEST_BUCKETS = 5  # crc32(offset) % TEST_BUCKETS == 0: test
TOKEN = re.compile(r"[a-z0-9]+")
LICENCE = "WordNet 3.0 license (Princeton University)"


@dataclass(frozen=True)
class Synset:
    """One line of ``data.noun``: what the dataset uses of it."""

    offset: int
    lex_filenum: int
    lemmas: tuple[str, ...]
    gloss: str

    @property
    def label(self) -> int:
        """The class index: ``lex_filenum - 3`` (0 = ``noun.Tops``)."""
        return self.lex_filenum - FIRST_LEX

    def tokens(self) -> list[str]:
        """The bag of words: lemmas (``_`` splits words) then the gloss, lower-cased."""
        return TOKEN.findall(" ".join(self.lemmas).replace("_", " ").lower()
                             + " " + self.gloss.lower())


def _bad(path: Path, number: int, what: str) -> CorruptDataError:
    return CorruptDataError(f"{path}, line {number}: {what}; this is not WordNet's data.noun "
                            "(or it is damaged): reinstall wordnet-base or pass the folder of "
                            "an intact WordNet 3.0 dict/.")


def parse_data_noun(path: str | Path) -> list[Synset]:
    """Read the synsets of a WordNet ``data.noun``; a malformed line is an error naming it."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptDataError(f"{path}: cannot read ({exc}); reinstall wordnet-base.") from None
    out = []
    for number, line in enumerate(lines, 1):
        if line.startswith("  ") or not line.strip():
            continue  # the licence header
        head, bar, gloss = line.partition(" | ")
        fields = head.split()
        try:
            offset, lex, ss_type, count = int(fields[0]), int(fields[1]), fields[2], int(fields[3], 16)
        except (IndexError, ValueError):
            raise _bad(path, number, "expected 'offset lex_filenum n w_cnt ...'") from None
        if ss_type != "n":
            raise _bad(path, number, f"synset type {ss_type!r}, expected 'n' (a noun)")
        if not FIRST_LEX <= lex < FIRST_LEX + len(SUPERSENSES):
            raise _bad(path, number, f"lex_filenum {lex:02d} is not a noun file (03..28)")
        lemmas = tuple(fields[4:4 + 2 * count:2])
        if not bar or count < 1 or len(lemmas) != count:
            raise _bad(path, number, "truncated line (words or gloss missing)")
        out.append(Synset(offset, lex, lemmas, gloss.strip()))
    if not out:
        raise CorruptDataError(f"{path}: no synsets in it; reinstall wordnet-base.")
    return out


def is_test(offset: int) -> bool:
    """The fixed split: the synset at `offset` is a test sample (about 1 in 5)."""
    return zlib.crc32(b"%08d" % offset) % TEST_BUCKETS == 0


def build_vocabulary(bags: list[list[str]]) -> list[str]:
    """Every word of `bags`, most frequent first (ties alphabetical): word ``i`` gets id ``i``."""
    counts = Counter(w for bag in bags for w in bag)
    return sorted(counts, key=lambda w: (-counts[w], w))


def encode(bags: list[list[str]], index: dict[str, int], width: int) -> np.ndarray:
    """Bags of words as an (N, width) int64 array of ids, unknown words dropped, padded with
    ``len(index)`` (the padding id), longer bags cut to their first `width` ids."""
    rows = [[index[w] for w in bag if w in index][:width] for bag in bags]
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    out = np.full((len(bags), width), len(index), dtype=np.int64)
    out[np.arange(width) < lengths[:, None]] = [j for r in rows for j in r]
    return out


@functools.lru_cache(maxsize=2)
def _encoded(path: str, size: int, mtime_ns: int, width: int) -> dict:
    """Parse and encode once per file version (size and mtime are part of the key)."""
    t0 = time.perf_counter()
    synsets = parse_data_noun(path)
    test = np.array([is_test(s.offset) for s in synsets])
    bags = [s.tokens() for s in synsets]
    labels = np.array([s.label for s in synsets], dtype=np.int64)
    train_bags = [b for b, t in zip(bags, test) if not t]
    test_bags = [b for b, t in zip(bags, test) if t]
    vocabulary = build_vocabulary(train_bags)
    index = {w: i for i, w in enumerate(vocabulary)}
    lengths = np.array([len(b) for b in train_bags])
    known = sum(w in index for b in test_bags for w in b)
    info = dict(synsets=len(synsets), vocabulary=len(vocabulary), max_tokens=width,
                tokens_per_sample=float(np.minimum(lengths, width).mean()),
                truncated=float((lengths > width).mean()),
                test_unknown_words=1 - known / max(1, sum(map(len, test_bags))),
                split=f"test = crc32(offset) % {TEST_BUCKETS} == 0", licence=LICENCE)
    arrays = (encode(train_bags, index, width), labels[~test],
              encode(test_bags, index, width), labels[test])
    info["parse_seconds"] = round(time.perf_counter() - t0, 3)
    return dict(arrays=arrays, vocabulary=vocabulary, info=info)


def read_wordnet(path: str | Path, max_tokens: int = MAX_TOKENS) -> dict[str, Any]:
    """The fields of the ``wordnet-supersense`` :class:`~costtrain.data.datasets.Dataset` (which
    :func:`costtrain.data.datasets.load_dataset` builds) from the ``data.noun`` at `path`."""
    whole(max_tokens, "wordnet-supersense: max_tokens")
    path = Path(path)
    st = path.stat()
    found = _encoded(str(path), st.st_size, st.st_mtime_ns, max_tokens)
    trx, tr_y, tex, te_y = (torch.from_numpy(a.copy()) for a in found["arrays"])
    return dict(name="wordnet-supersense", train_x=trx, train_y=tr_y, test_x=tex, test_y=te_y,
                classes=list(SUPERSENSES), mean=(), std=(), source=str(path),
                features=len(found["vocabulary"]), vocabulary=list(found["vocabulary"]),
                info=dict(found["info"]))
