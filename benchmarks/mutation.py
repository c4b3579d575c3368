"""Mutation testing of the modules whose rules a user trusts: how many of mutmut's
mutants of each does its own test file kill?

    python benchmarks/mutation.py [--only persist,state] [--list]

Run by hand (``pip install mutmut``; a few minutes a module). Each module is mutated in
a fresh copy of the checkout's committed tree (``git archive HEAD``), with only the tests
that guard it, so that a mutant caught elsewhere by chance does not count. Prints
killed / survived / timed out (and the rest) per module, and with ``--list`` the
surviving mutants by name, each with its changed lines.
"""
from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: module -> the tests that guard it
TARGETS = {
    "persist": ("gridnet/persist.py", ["tests/test_persist.py"]),
    "state": ("adapters/state.py", ["tests/test_state.py"]),
    "locality-report": ("gridnet/locality/report.py", ["tests/test_locality_report.py"]),
    "cli-data": ("gridnet/cli/data.py", ["tests/test_cli_data.py"]),
}


def _copy(tmp):
    """The committed tree, unpacked in ``tmp``."""
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive.stdout, check=True)


def run(module, tests, timeout, show=False):
    """mutmut on ``module`` with ``tests``: ({status: [mutant names]}, {survivor: its
    diff} when ``show``)."""
    with tempfile.TemporaryDirectory() as tmp:
        _copy(tmp)
        with open(Path(tmp) / "pyproject.toml", "a") as fh:
            fh.write("\n[tool.mutmut]\n"
                     f'source_paths = ["{module}"]\n'
                     'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]\n'
                     f"pytest_add_cli_args_test_selection = {tests!r}\n"
                     'also_copy = ["adapters", "gridnet", "tests", "examples"]\n'.replace("'", '"'))
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
        try:
            subprocess.run([sys.executable, "-m", "mutmut", "run"], cwd=tmp, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout)
        except subprocess.TimeoutExpired:      # what it checked so far is still counted
            print(f"({module}: stopped after {timeout} s)", file=sys.stderr)
        out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"],
                             cwd=tmp, env=env, capture_output=True, text=True).stdout
        found = collections.defaultdict(list)
        for line in out.splitlines():
            if ": " in line:
                mutant, status = line.strip().rsplit(": ", 1)
                found[status].append(mutant)
        diffs = {name: subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=tmp,
                                      env=env, capture_output=True, text=True).stdout
                 for name in (found.get("survived", []) if show else [])}
    return found, diffs


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(TARGETS))
    p.add_argument("--list", action="store_true", help="list the surviving mutants")
    p.add_argument("--timeout", type=int, default=3600, help="seconds a module may take")
    args = p.parse_args(argv)
    print("| module | mutants | killed | survived | timed out | other | killed share |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    survivors = {}
    for key in args.only.split(","):
        module, tests = TARGETS[key]
        found, diffs = run(module, tests, args.timeout, show=args.list)
        total = sum(len(v) for v in found.values())
        killed, survived, slow = (len(found.get(s, [])) for s in ("killed", "survived", "timeout"))
        other = ", ".join(f"{len(v)} {s}" for s, v in sorted(found.items())
                          if s not in ("killed", "survived", "timeout")) or "0"
        share = f"{killed / total:.1%}" if total else "-"
        print(f"| {module} | {total} | {killed} | {survived} | {slow} | {other} | {share} |",
              flush=True)
        survivors[module] = diffs
    if args.list:
        for module, diffs in survivors.items():
            print(f"\nsurvivors in {module}:")
            for name, diff in diffs.items():
                changed = [line for line in diff.splitlines()
                           if line[:1] in "+-" and not line.startswith(("+++", "---"))]
                print(f"  {name}")
                for line in changed:
                    print(f"      {line.strip()}")


if __name__ == "__main__":
    main()
