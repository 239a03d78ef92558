"""helpers.seeds: one setting moves every seed of the series, and nothing turns an int into
random numbers behind its back."""

import json
import random
import re
from pathlib import Path

import pytest
import torch

from helpers import data, seeds, tasks
from helpers.train import fit_seeds

ROOT = Path(__file__).resolve().parent.parent


def test_seed_is_the_identity_without_an_offset(monkeypatch):
    monkeypatch.delenv(seeds.OFFSET_VARIABLE, raising=False)
    assert seeds.offset() == 0
    assert [seeds.seed(n) for n in (0, 1, 7, 1234)] == [0, 1, 7, 1234]
    assert torch.equal(torch.rand(3, generator=seeds.generator(5)),
                       torch.rand(3, generator=torch.Generator().manual_seed(5)))
    assert seeds.rng(3).random() == random.Random(3).random()


def test_offset_moves_every_seed_by_the_stride(monkeypatch):
    monkeypatch.setenv(seeds.OFFSET_VARIABLE, "3")
    assert seeds.seed(7) == 7 + 3 * seeds.STRIDE
    assert torch.equal(torch.rand(3, generator=seeds.generator(7)),
                       torch.rand(3, generator=torch.Generator().manual_seed(7 + 3 * seeds.STRIDE)))
    seeds.manual_seed(7)
    drawn = torch.rand(2)
    torch.manual_seed(7 + 3 * seeds.STRIDE)
    assert torch.equal(drawn, torch.rand(2))


def test_bad_seeds_and_offsets_raise_clear_errors(monkeypatch):
    with pytest.raises(TypeError, match="must be an int, got float 1.5"):
        seeds.seed(1.5)
    with pytest.raises(ValueError, match=">= 0, got -1"):
        seeds.seed(-1)
    monkeypatch.setenv(seeds.OFFSET_VARIABLE, "two")
    with pytest.raises(ValueError, match="HELPERS_SEED_OFFSET must be an integer, got 'two'"):
        seeds.offset()


def test_the_offset_reaches_data_tasks_and_model_initialisation(monkeypatch):
    def draw():
        pairs = data.make_pairs(5, seed=1)
        few = tasks.first_word_pairs(4, 2, 5, seed=2)
        models, _ = fit_seeds(lambda: torch.nn.Linear(2, 1), [0, 1], lambda step: torch.ones(1, 2),
                              lambda m, x: m(x).pow(2).mean(), steps=1)
        return pairs, few, [m.weight.detach().clone() for m in models]

    monkeypatch.delenv(seeds.OFFSET_VARIABLE, raising=False)
    base = draw()
    assert draw()[0] == base[0]
    monkeypatch.setenv(seeds.OFFSET_VARIABLE, "1")
    moved = draw()
    assert moved[0] != base[0] and moved[1] != base[1]
    assert not torch.equal(moved[2][0], base[2][0])


RAW_SEEDING = re.compile(r"torch\.manual_seed\(|Generator\([^)]*\)\.manual_seed\(|random\.Random\(|np\.random\.seed\(")


def test_helpers_seed_only_through_the_seeds_module():
    offenders = [f"{path.relative_to(ROOT)}:{number}"
                 for path in sorted((ROOT / "helpers").rglob("*.py")) if path.name != "seeds.py"
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if RAW_SEEDING.search(line.split("#")[0]) and "``" not in line]
    assert offenders == [], f"seed through helpers.seeds instead: {offenders}"


def test_notebooks_seed_only_through_helpers():
    offenders = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for index, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] == "code" and RAW_SEEDING.search("".join(cell["source"])):
                offenders.append(f"{path.name} cell {index}")
    assert offenders == [], f"notebooks seed through helpers.manual_seed/generator: {offenders}"
