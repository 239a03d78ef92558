"""Self-checks for the exercises at the end of each notebook.

Each notebook ``NN`` has a module ``helpers.exercises.nbNN`` whose functions take the learner's
answer, print a one-line verdict (with a hint when the answer is wrong) and return a ``Verdict``
(true when right). Reference solutions live in ``solutions/nbNN.py`` at the top of the repository; the tests
call every check with the reference solution (must pass) and with a plausible wrong answer
(must fail), so no check accepts everything.

Writing a check::

    @exercise("Exercise 1: softmax with a temperature")
    def temperature_softmax(fn):
        expect(fn(...) ..., "hint shown when this condition fails")
"""

import functools

import torch

__all__ = ["Incorrect", "Verdict", "exercise", "expect", "expect_close"]


class Verdict:
    """What a self-check returns: true when the answer is right.

    It shows nothing in a notebook (the check has already printed its one-line verdict), so an
    exercise cell ends in that line rather than in a bare ``True``/``False``.
    """

    def __init__(self, passed: bool):
        self.passed = passed

    def __bool__(self):
        return self.passed

    def __repr__(self):
        return f"Verdict(passed={self.passed})"

    def _ipython_display_(self):
        pass


class Incorrect(Exception):
    """Raised inside a check when the answer is wrong; its message is the hint."""


def expect(condition, hint: str):
    """Fail the check with ``hint`` unless ``condition`` holds."""
    if not condition:
        raise Incorrect(hint)


def expect_close(actual, expected, hint: str, *, atol: float = 1e-5, rtol: float = 1e-4):
    """Fail the check with ``hint`` unless ``actual`` has ``expected``'s shape and values."""
    if not isinstance(actual, torch.Tensor):
        try:
            actual = torch.as_tensor(actual, dtype=torch.as_tensor(expected).dtype)
        except (TypeError, ValueError, RuntimeError):
            raise Incorrect(f"expected a tensor, got {type(actual).__name__}. {hint}") from None
    expected = torch.as_tensor(expected)
    if tuple(actual.shape) != tuple(expected.shape):
        raise Incorrect(f"expected shape {tuple(expected.shape)}, got {tuple(actual.shape)}. {hint}")
    if not torch.allclose(actual.detach().to(expected.dtype), expected, atol=atol, rtol=rtol):
        raise Incorrect(hint)


def exercise(title: str):
    """Turn a checker into a self-check that prints a verdict and returns a ``Verdict``.

    The checker raises ``Incorrect(hint)`` for a wrong answer. A learner's function that still
    raises ``NotImplementedError`` counts as not attempted; any other error in the learner's
    code is reported by name, never as a traceback from inside the check.
    """

    def wrap(checker):
        @functools.wraps(checker)
        def check(*args, **kwargs):
            try:
                checker(*args, **kwargs)
            except NotImplementedError:
                print(f"[not attempted] {title}: replace `raise NotImplementedError` with your answer.")
                return Verdict(False)
            except Incorrect as wrong:
                print(f"[try again] {title}. Hint: {wrong}")
                return Verdict(False)
            except Exception as error:  # the learner's code failed; say how, without a traceback
                print(f"[try again] {title}. Your code raised {type(error).__name__}: {error}")
                return Verdict(False)
            print(f"[correct] {title}.")
            return Verdict(True)

        check.title = title
        return check

    return wrap
