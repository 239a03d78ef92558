"""helpers.timing: medians of repeated runs, and printouts that tests/sanitize.cfg masks."""

import configparser
import re
from pathlib import Path

from helpers import timing

SANITIZE = Path(__file__).resolve().parent / "sanitize.cfg"


def masked(text: str) -> str:
    config = configparser.ConfigParser()
    config.read(SANITIZE, encoding="utf-8")
    for section in config.sections():
        text = re.sub(config[section]["regex"], config[section]["replace"], text)
    return text


def test_median_time_runs_warmup_and_repeats():
    calls = []
    seconds = timing.median_time(lambda: calls.append(1), repeat=3, warmup=2)
    assert len(calls) == 5 and seconds >= 0


def test_show_time_picks_a_unit():
    assert timing.show_time(2.5) == "2.5 s (timed)"
    assert timing.show_time(0.0123) == "12.3 ms (timed)"
    assert timing.show_time(4e-7) == "0.4 µs (timed)"
    assert timing.show_ratio(3.14159) == "×3.1 (timed)"


def test_every_printout_is_masked_the_same_way():
    for text in [timing.show_time(2.5), timing.show_time(1e-4), timing.show_time(7e-9), timing.show_ratio(12.0),
                 timing.show_ratio(0.5)]:
        assert masked(f"took {text} in all") == "took TIME (timed) in all", text
    # Plain numbers are compared, not masked.
    assert masked("accuracy 0.93 at 12 ms") == "accuracy 0.93 at 12 ms"


def test_median_time_on_the_cpu_counts_processor_time_not_sleep():
    # Sleeping costs wall time but no processor time: the CPU clock must not count it.
    import time

    assert timing.median_time(lambda: time.sleep(0.05), repeat=1, warmup=0, device="cpu") < 0.02
    assert timing.median_time(lambda: time.sleep(0.05), repeat=1, warmup=0) >= 0.05
