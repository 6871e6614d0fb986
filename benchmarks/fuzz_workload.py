"""Fuzz campaign over every trace format: mutated real snippets from ../shared/traces fed to
build_workload(). Prints inputs, accepted/refused/crash counts and each crash signature.

  python benchmarks/fuzz_workload.py --inputs 100000 --seed 1     # the issue's campaign (~minutes)
  python benchmarks/fuzz_workload.py --inputs 2000                # quick look

Target: 0 crashes (anything but a one-line UserInputError, or an accepted workload that breaks an
invariant: positive bounded lengths, sorted finite arrivals, unique ids).
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.workload.fuzzing import mutate, run_one, seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--show", type=int, default=3, help="example inputs kept per crash signature")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    pool = seeds()
    counts: collections.Counter[str] = collections.Counter()
    crashes: dict[str, list[str]] = collections.defaultdict(list)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.inputs):
            seed = pool[i % len(pool)]
            data = mutate(seed.data, rng)
            outcome = run_one(seed, data, Path(tmp) / "case")
            counts[outcome.kind] += 1
            if outcome.kind == "crash" and len(crashes[outcome.detail]) < args.show:
                crashes[outcome.detail].append(f"{seed.name}: {data[:160]!r}")
    wall = time.perf_counter() - start
    print(
        f"inputs {args.inputs}  accepted {counts['accepted']}  refused {counts['refused']}  "
        f"crashes {counts['crash']}  signatures {len(crashes)}  ({wall:.0f} s, {args.inputs / wall:.0f}/s)"
    )
    for signature, examples in sorted(crashes.items()):
        print(f"- {signature}")
        for example in examples:
            print(f"    {example}")
    sys.exit(1 if counts["crash"] else 0)


if __name__ == "__main__":
    main()
