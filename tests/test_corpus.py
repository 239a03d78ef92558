"""The census name loader: parsing, vocabulary round trip, splits by item, the missing-package message."""

import importlib.resources

import pytest
import torch

from helpers import corpus

LAST = """SMITH          1.006  1.006      1
JOHNSON        0.810  1.816      2

WILLIAMS       0.699  2.515      3
ADA            0.000  2.515      4
"""
FEMALE = "MARY           2.629  2.629      1\nJEAN           0.300  2.929      2\n"
MALE = "JAMES          3.318  3.318      1\nJEAN           0.010  3.328      2\n"


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "dist.all.last").write_text(LAST, encoding="ascii")
    (tmp_path / "dist.female.first").write_text(FEMALE, encoding="ascii")
    (tmp_path / "dist.male.first").write_text(MALE, encoding="ascii")
    return tmp_path


def test_parse_lowercases_and_reads_the_frequency():
    assert corpus.parse(LAST) == [("smith", 1.006), ("johnson", 0.81), ("williams", 0.699), ("ada", 0.0)]


@pytest.mark.parametrize("line", ["SMITH 1.006 1.006", "SMITH one 1.006 1", "O'NEIL 0.1 0.1 7"])
def test_parse_names_the_bad_line(line):
    with pytest.raises(ValueError, match="line 2"):
        corpus.parse("JONES 0.1 0.1 1\n" + line)


def test_read_names_deduplicates_and_sorts_by_frequency(folder):
    assert corpus.read_names("last", root=folder) == [("smith", 1.006), ("johnson", 0.81), ("williams", 0.699),
                                                      ("ada", 0.0)]
    first = corpus.read_names("first", root=folder)
    assert first == [("james", 3.318), ("mary", 2.629), ("jean", 0.3)]  # jean in both files: the larger frequency


def test_unknown_list_and_missing_file(folder):
    with pytest.raises(ValueError, match="which must be one of"):
        corpus.read_names("middle", root=folder)
    (folder / "dist.male.first").unlink()
    with pytest.raises(FileNotFoundError, match="dist.male.first.*pip install names==0.3.0"):
        corpus.read_names("first", root=folder)


def test_missing_package_says_how_to_install_it(monkeypatch):
    def not_installed(package):
        raise ModuleNotFoundError(f"No module named {package!r}", name=package)

    monkeypatch.setattr(importlib.resources, "files", not_installed)
    with pytest.raises(ModuleNotFoundError, match="pip install names==0.3.0") as error:
        corpus.read_names("last")
    assert error.value.name == "names"


def test_vocabulary_round_trip():
    names = ["smith", "ada", "zoe"]
    vocab = corpus.CharVocab.from_names(names)
    assert vocab.itos[:2] == [corpus.PAD, corpus.BOUNDARY] and len(vocab) == 2 + len(set("".join(names)))
    for name in names:
        ids = vocab.encode(name)
        assert ids[0] == ids[-1] == vocab.boundary_id and len(ids) == len(name) + 2
        assert vocab.decode(ids) == name
        assert vocab.decode(torch.tensor(ids + [vocab.pad_id] * 3)) == name
    assert vocab.decode([vocab.boundary_id, vocab.stoi["a"], vocab.boundary_id, vocab.stoi["d"]]) == "a"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("smith!")
    with pytest.raises(ValueError, match="distinct single characters"):
        corpus.CharVocab(["a", "."])


def test_encode_batch_shifts_and_pads():
    vocab = corpus.CharVocab.from_names(["ab", "b"])
    inputs, targets = corpus.encode_batch(["ab", "b"], vocab)
    a, b, boundary, pad = vocab.stoi["a"], vocab.stoi["b"], vocab.boundary_id, vocab.pad_id
    assert inputs.tolist() == [[boundary, a, b], [boundary, b, pad]]
    assert targets.tolist() == [[a, b, boundary], [b, boundary, -100]]
    inputs, targets = corpus.encode_batch(["b"], vocab, length=4)
    assert inputs.shape == targets.shape == (1, 4)
    with pytest.raises(ValueError, match="too short"):
        corpus.encode_batch(["ab"], vocab, length=2)


def test_split_is_disjoint_complete_and_deterministic():
    names = [f"name{i}" for i in range(3000)]
    parts = corpus.split(names)
    assert sorted(parts) == ["dev", "test", "train"]
    assert sorted(parts["train"] + parts["dev"] + parts["test"]) == sorted(names)
    assert not set(parts["train"]) & set(parts["dev"]) and not set(parts["dev"]) & set(parts["test"])
    assert not set(parts["train"]) & set(parts["test"])
    assert corpus.split(names) == parts
    assert 0.75 < len(parts["train"]) / len(names) < 0.85 and 0.07 < len(parts["test"]) / len(names) < 0.13
    # A name's split depends on the name alone: not on the order or on the other names.
    shuffled = corpus.split(list(reversed(names[:500])))
    for part in parts:
        assert set(shuffled[part]) == set(parts[part]) & set(names[:500])


def test_split_rejects_duplicates_and_bad_fractions():
    with pytest.raises(ValueError, match="distinct"):
        corpus.split(["ada", "ada"])
    with pytest.raises(ValueError, match="fractions"):
        corpus.split(["ada"], (0.5, 0.5, 0.5))
