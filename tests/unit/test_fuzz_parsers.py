"""Property-based fuzzing of the parsers of untrusted input (hypothesis): the IDX reader, the
`.npz` readers, config parsing and the upload decoder.

Any generated input gives a valid result or a one-line ZspaceError, never another exception
(hypothesis shrinks one to a minimal input), and no input adds more than
MEMORY_BOUND_MB to the peak RSS. The properties live in benchmarks/reliability_fuzz.py, which
runs them with 10,000 inputs per parser; here they run with a few hundred, deterministically.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from zspace.errors import ZspaceError

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import reliability_fuzz  # noqa: E402  (the benchmark's properties, with fewer examples)

EXAMPLES = 300


@pytest.mark.parametrize("parser", reliability_fuzz.PARSERS)
def test_any_input_gives_a_result_or_a_one_line_error(parser, tmp_path):
    result = reliability_fuzz.fuzz_parser(parser, EXAMPLES, tmp_path, strict=True)
    assert result["unexpected"] == 0  # strict: the first one would have raised, shrunk
    assert result["inputs"] >= EXAMPLES // 2
    # both outcomes occur, so the generators reach past the first check
    assert result["valid"] > 0 and result["one_line_errors"] > 0
    assert result["peak_rss_growth_mb"] < reliability_fuzz.MEMORY_BOUND_MB


def _raise(error: Exception):
    raise error


def test_the_tally_counts_what_escapes():
    tally = reliability_fuzz.Tally()
    tally.run(lambda: 1)
    tally.run(lambda: _raise(ZspaceError("one line")))
    tally.run(lambda: _raise(ZspaceError("two\nlines")))
    tally.run(lambda: {}["missing"])
    assert (tally.inputs, tally.valid, tally.one_line_errors, tally.unexpected) == (4, 1, 1, 2)
    with pytest.raises(KeyError):
        reliability_fuzz.Tally(strict=True).run(lambda: {}["missing"])
