"""Real text for notebook 14: the 1990 US Census name lists, read from an installed package.

The PyPI package ``names`` (version 0.3.0, MIT license) ships three frequency tables from the
1990 US Census inside its package folder; the data are public domain (the package's README says
so). Nothing is downloaded at run time: ``pip install names==0.3.0`` puts the files on disk and
this module reads them from there.

- ``dist.all.last``: 88,799 surnames;
- ``dist.female.first``, ``dist.male.first``: 4,275 and 1,219 first names.

Each line holds a name in capitals, its frequency (percent of the population), the cumulative
frequency and the rank::

    SMITH          1.006  1.006      1

The pipeline, top to bottom: ``read_names`` (parse, lowercase, deduplicate) -> ``split`` (train,
dev and test by item, fixed by a hash of the name, so a name never lands in two splits) ->
``CharVocab`` (characters to ids, with a boundary token that starts and ends every name) ->
``encode_batch`` (names to padded ``(inputs, targets)`` tensors for next-character prediction).
"""

import hashlib
import importlib.resources
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

__all__ = [
    "PACKAGE", "INSTALL_HINT", "FILES", "PAD", "BOUNDARY", "data_files", "parse", "read_names", "split",
    "CharVocab", "encode_batch",
]

PACKAGE = "names"
INSTALL_HINT = "pip install names==0.3.0"
# Which files make up each list.
FILES = {
    "last": ("dist.all.last",),
    "first": ("dist.female.first", "dist.male.first"),
}
PAD, BOUNDARY = "<pad>", "."


# --------------------------------------------------------------------------------------------
# Reading the files
# --------------------------------------------------------------------------------------------


def data_files(which: str = "last", *, root: str | Path | None = None) -> list[Path]:
    """Paths of the census files that make up ``which`` (``"last"`` or ``"first"``).

    Args:
        which: a key of ``FILES``.
        root: a folder holding the files (tests use one); by default the installed ``names``
            package's own folder.

    Raises:
        ModuleNotFoundError: the ``names`` package is not installed (the message says how to
            install it).
        FileNotFoundError: the package (or ``root``) lacks one of the files.
    """
    if which not in FILES:
        raise ValueError(f"which must be one of {sorted(FILES)}, got {which!r}")
    if root is None:
        try:
            root = importlib.resources.files(PACKAGE)
        except ModuleNotFoundError as missing:
            raise ModuleNotFoundError(
                f"notebook 14 reads the US Census name lists shipped inside the '{PACKAGE}' package, "
                f"which is not installed: run `{INSTALL_HINT}` (no download happens at run time after that)",
                name=PACKAGE,
            ) from missing
    paths = [Path(str(root)) / name for name in FILES[which]]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(
                f"{path.name} is missing from the '{PACKAGE}' package folder; reinstall it with `{INSTALL_HINT}`"
            )
    return paths


def parse(text: str) -> list[tuple[str, float]]:
    """``(name, frequency)`` pairs from the text of one census file, names lowercased.

    Blank lines are skipped; a line that is not ``NAME FREQUENCY CUMULATIVE RANK`` raises a
    ``ValueError`` naming the line.
    """
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            if len(fields) != 4:
                raise ValueError
            name, frequency = fields[0].lower(), float(fields[1])
        except ValueError:
            raise ValueError(f"line {number} is not 'NAME FREQUENCY CUMULATIVE RANK': {line!r}") from None
        if not name.isalpha():
            raise ValueError(f"line {number}: the name {fields[0]!r} has characters other than letters")
        pairs.append((name, frequency))
    return pairs


def read_names(which: str = "last", *, root: str | Path | None = None) -> list[tuple[str, float]]:
    """Every distinct name of the list with its frequency (percent), most frequent first.

    A name listed twice (a first name in both the female and the male file) keeps its larger
    frequency. Ties keep the files' order.
    """
    frequency: dict[str, float] = {}
    for path in data_files(which, root=root):
        for name, value in parse(path.read_text(encoding="ascii")):
            frequency[name] = max(value, frequency.get(name, value))
    return sorted(frequency.items(), key=lambda pair: -pair[1])


# --------------------------------------------------------------------------------------------
# Splitting by item
# --------------------------------------------------------------------------------------------


def _bucket(name: str) -> float:
    """A number in [0, 1) fixed by the name alone (the same on every machine and Python)."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def split(names: Iterable[str], fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> dict[str, list[str]]:
    """Split distinct names into ``train``, ``dev`` and ``test`` by a hash of each name.

    A name's split depends on the name only, not on the list it came in or its position: adding
    or removing other names never moves it, and a name cannot fall in two splits. Each split
    keeps the input's order. The sizes follow ``fractions`` up to sampling noise.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1 (train, dev, test), "
                         f"got {tuple(fractions)}")
    names = list(names)
    if len(set(names)) != len(names):
        raise ValueError("split takes distinct names: deduplicate first (read_names does)")
    edges = (fractions[0], fractions[0] + fractions[1])
    parts = {"train": [], "dev": [], "test": []}
    for name in names:
        bucket = _bucket(name)
        parts["train" if bucket < edges[0] else "dev" if bucket < edges[1] else "test"].append(name)
    return parts


# --------------------------------------------------------------------------------------------
# Characters to ids
# --------------------------------------------------------------------------------------------


class CharVocab:
    """Characters <-> ids, with two special tokens: ``<pad>`` (id 0) and the boundary ``.`` (id 1).

    A name is one item: ``encode("ada")`` is the boundary, the characters, the boundary
    (``.ada.``). The first boundary is what a model reads before the first letter; the last one
    is the end of the name, which the model must predict like any character.

    Args:
        characters: the ordinary characters, in id order after the two special tokens.
    """

    def __init__(self, characters: Iterable[str]):
        characters = list(characters)
        self.itos = [PAD, BOUNDARY, *characters]
        if len(set(self.itos)) != len(self.itos) or any(len(c) != 1 for c in characters):
            raise ValueError(f"characters must be distinct single characters other than {BOUNDARY!r}: {characters}")
        self.stoi = {token: index for index, token in enumerate(self.itos)}
        self.pad_id, self.boundary_id = 0, 1

    @classmethod
    def from_names(cls, names: Iterable[str]) -> "CharVocab":
        """The vocabulary of every character in ``names``, sorted."""
        return cls(sorted({c for name in names for c in name}))

    def __len__(self) -> int:
        return len(self.itos)

    def __repr__(self) -> str:
        return f"CharVocab({len(self)} tokens: {''.join(self.itos[2:])!r} + <pad>, {BOUNDARY!r})"

    def encode(self, name: str) -> list[int]:
        """``[boundary, *characters, boundary]`` as ids; raises ``ValueError`` on an unknown character."""
        unknown = sorted({c for c in name if c not in self.stoi or c == BOUNDARY})
        if unknown:
            known = "".join(self.itos[2:])
            raise ValueError(f"characters not in the vocabulary: {unknown} in {name!r}; known: {known}")
        return [self.boundary_id, *(self.stoi[c] for c in name), self.boundary_id]

    def decode(self, ids) -> str:
        """The characters of ``ids`` up to the first boundary after the first character.

        A leading boundary is skipped, as is padding; decoding stops at the boundary that ends
        the name, so ``decode(encode(name)) == name``.
        """
        characters = []
        for index in (ids.tolist() if isinstance(ids, torch.Tensor) else ids):
            if index == self.boundary_id:
                if characters:
                    break
                continue
            if index != self.pad_id:
                characters.append(self.itos[index])
        return "".join(characters)


def encode_batch(names: Sequence[str], vocab: CharVocab, length: int | None = None,
                 ignore_index: int = -100) -> tuple[torch.Tensor, torch.Tensor]:
    """Names as next-character prediction: ``(inputs, targets)``, each ``(len(names), length)``.

    Row ``i`` is ``.name.`` shifted: ``inputs`` drops the last token, ``targets`` the first, so
    position ``t`` of ``inputs`` is asked to predict position ``t`` of ``targets``. Rows are
    right-padded: inputs with ``<pad>``, targets with ``ignore_index`` (which
    ``F.cross_entropy`` skips). ``length`` defaults to the longest name plus one.
    """
    rows = [vocab.encode(name) for name in names]
    longest = max(len(row) for row in rows) - 1
    length = longest if length is None else length
    if length < longest:
        raise ValueError(f"length {length} is too short: the longest name needs {longest} positions")
    inputs, targets = [], []  # flat lists, one row after another
    for row in rows:
        pad = length - (len(row) - 1)
        inputs += row[:-1] + [vocab.pad_id] * pad
        targets += row[1:] + [ignore_index] * pad
    shape = (len(rows), length)
    inputs, targets = torch.tensor(inputs).view(shape), torch.tensor(targets).view(shape)
    return inputs, targets  # (N, length), (N, length)
