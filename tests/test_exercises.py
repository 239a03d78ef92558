"""Every self-check must accept the reference solution and reject a plausible wrong answer.

For each notebook module ``helpers.exercises.nbNN`` there is a ``solutions/nbNN.py`` whose
``CASES`` maps each check's name to ``{"right": args, "wrong": [args, ...]}``.
"""

import importlib
import pkgutil

import pytest

import helpers.exercises


def _checks():
    for info in pkgutil.iter_modules(helpers.exercises.__path__):
        module = importlib.import_module(f"helpers.exercises.{info.name}")
        for name in sorted(vars(module)):
            check = getattr(module, name)
            if callable(check) and hasattr(check, "title"):
                yield pytest.param(info.name, name, check, id=f"{info.name}.{name}")


CHECKS = list(_checks())


def _cases(module_name):
    return importlib.import_module(f"solutions.{module_name}").CASES


def test_there_are_checks():
    assert len(CHECKS) >= 2


@pytest.mark.parametrize("module_name, name, check", CHECKS)
def test_reference_solution_passes(module_name, name, check, capsys):
    cases = _cases(module_name)
    assert name in cases, f"solutions/{module_name}.py has no CASES entry for {name}"
    assert bool(check(*cases[name]["right"])) is True, capsys.readouterr().out
    assert "[correct]" in capsys.readouterr().out


@pytest.mark.parametrize("module_name, name, check", CHECKS)
def test_wrong_answers_fail_with_a_hint(module_name, name, check, capsys):
    wrong = _cases(module_name)[name]["wrong"]
    assert wrong, f"{name} needs at least one wrong answer"
    for args in wrong:
        assert bool(check(*args)) is False, f"{name} accepted a wrong answer"
        out = capsys.readouterr().out
        assert "[try again]" in out and "Hint:" in out, out


@pytest.mark.parametrize("module_name, name, check", CHECKS)
def test_unattempted_answers_are_reported_as_such(module_name, name, check, capsys):
    def not_done(*args, **kwargs):
        raise NotImplementedError

    right = _cases(module_name)[name]["right"]
    # Only checks that take the learner's function can see an unattempted stub.
    if not any(callable(arg) for arg in right):
        pytest.skip("this check takes a value, not a function")
    args = tuple(not_done if callable(arg) else arg for arg in right)
    assert bool(check(*args)) is False
    assert "[not attempted]" in capsys.readouterr().out
