"""The long fuzz run (issue 9): the properties of tests/unit/test_fuzz_snmp.py and
tests/unit/test_fuzz_config.py with a larger budget, collecting failures instead of stopping
at the first.

1. Calibration: every property runs once with its CI budget, which measures its rate
   (inputs per second; they differ 100-fold, from random bytes to UDP polls).
2. Long run: every property runs again with as many inputs as its share of the remaining
   time allows, at most --inputs each. The whole run stays within --minutes.

Prints, per property, the inputs tried, the distinct failures (each with its first input)
and the seconds taken. Exit status 1 if any property failed.

usage (from the repository root):
    PYTHONPATH=. .venv/bin/python bench/fuzz.py [--inputs 100000] [--minutes 10] [--only snmp]

Network: the end-to-end property talks UDP to its own agent on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import sys
import time
from collections.abc import Callable

from tests import fuzz_strategies as fz

# (module, test function): the property tests, not the regression tests.
PROPERTIES: list[tuple[str, str]] = [
    ("tests.unit.test_fuzz_snmp", "test_any_bytes_decode_or_raise_ber_error"),
    ("tests.unit.test_fuzz_snmp", "test_bytes_after_a_valid_header_decode_or_raise_ber_error"),
    ("tests.unit.test_fuzz_snmp", "test_mutated_real_responses_decode_or_raise_ber_error"),
    ("tests.unit.test_fuzz_snmp", "test_structured_responses_with_wrong_elements"),
    ("tests.unit.test_fuzz_snmp", "test_odd_values_under_proper_tags"),
    ("tests.unit.test_fuzz_snmp", "test_polls_end_with_a_result_whatever_the_agent_answers"),
    ("tests.unit.test_fuzz_snmp", "test_real_poller_against_a_mutating_agent_on_loopback"),
    ("tests.unit.test_fuzz_config", "test_random_text"),
    ("tests.unit.test_fuzz_config", "test_random_bytes"),
    ("tests.unit.test_fuzz_config", "test_random_yaml_structures"),
    ("tests.unit.test_fuzz_config", "test_text_edits_of_the_shipped_and_test_configs"),
    ("tests.unit.test_fuzz_config", "test_structural_edits_of_the_shipped_and_test_configs"),
    ("tests.unit.test_fuzz_config", "test_alias_bombs_and_recursive_aliases"),
    ("tests.unit.test_fuzz_config", "test_deep_nesting"),
    ("tests.unit.test_fuzz_config", "test_secret_forms_with_missing_variables_and_files"),
]


def run(test: Callable[[], None], scale: float) -> tuple[fz.Tally, str]:
    """Run one property test at `scale` times its CI budget; (its tally, a note)."""
    os.environ[fz.SCALE_ENV] = f"{scale:.6f}"
    runs = len(fz.TALLIES)
    note = ""
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the test's own summary line
            test()
    except AssertionError as error:  # only the count check can fail: failures are collected
        note = f"stopped early: {(str(error) or 'inputs below the budget').splitlines()[0][:100]}"
    tally = fz.TALLIES[runs]
    tally.finish()
    if tally.inputs < tally.target and not note:
        note = "the strategy's input space ran out before the budget"
    return tally, note


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=100_000, help="at most this many per property")
    parser.add_argument("--minutes", type=float, default=10.0, help="bound on the whole run")
    parser.add_argument("--only", choices=["snmp", "config"], help="one file's properties")
    args = parser.parse_args()
    os.environ[fz.COLLECT_ENV] = "1"
    deadline = time.monotonic() + args.minutes * 60
    chosen = [(m, f) for m, f in PROPERTIES if args.only is None or args.only in m]
    tests = [getattr(importlib.import_module(module), name) for module, name in chosen]

    print(f"calibrating {len(tests)} properties at their CI budgets ...", flush=True)
    calibrated = []  # (inputs per second, CI budget)
    for test in tests:
        tally, _ = run(test, 1.0)
        calibrated.append((tally.inputs / max(tally.seconds, 1e-3), tally.target))
        print(f"  {tally.summary()}", flush=True)

    print(f"long run: up to {args.inputs} inputs per property, within {args.minutes:g} minutes "
          "in all", flush=True)
    results: list[tuple[fz.Tally, str]] = []
    for i, (test, (rate, ci_target)) in enumerate(zip(tests, calibrated, strict=True)):
        share = max(0.0, deadline - time.monotonic()) / (len(tests) - i)
        wanted = max(1, min(args.inputs, int(rate * share * 0.9)))  # 10% margin for setup
        tally, note = run(test, wanted / ci_target)
        results.append((tally, note))
        print(f"  {tally.summary()}" + (f"  [{note}]" if note else ""), flush=True)

    total = sum(t.inputs for t, _ in results)
    failed = [t for t, _ in results if t.failures]
    print(f"\n{'property':32} {'inputs':>9} {'failures':>9} {'seconds':>8}")
    for tally, _ in results:
        print(f"{tally.name:32} {tally.inputs:>9} {len(tally.failures):>9} {tally.seconds:>8.1f}")
    print(f"{'total':32} {total:>9} {sum(len(t.failures) for t in failed):>9}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
