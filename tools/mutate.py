"""Mutation testing of the numeric core with mutmut 3 (``make mutate``).

``python tools/mutate.py run [MODULE ...] [--jobs N]`` runs mutmut on each core
module listed in ``pyproject.toml`` (``[tool.mutmut] only_mutate``), or on the
ones named (a path such as ``copbench/stats.py``). Each module runs in its own
sandbox, ``.mutmut/<module>/``: a copy of the packages, the tests and a
``pyproject.toml`` whose ``[tool.mutmut]`` mutates only that module and selects
only the test files ``[tool.cop-mutate.tests]`` maps it to. mutmut keeps its
state in the sandbox's ``mutants/``, so a rerun resumes: mutants already
checked are not run again unless their function (or the config) changed.

``python tools/mutate.py report [--out docs/testing.md]`` counts each module's
mutants from the sandboxes (killed, survived, equivalent, excluded, not run)
and writes the table between the markers of ``docs/testing.md``, with the
commit measured. A surviving mutant is *equivalent* when
``[tool.cop-mutate.equivalent]`` lists it with a one-line reason, and
*excluded* when all it changes is the text of a message (a string literal with a
space in it: prose, not a key, flag or name) or the level of a log call.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import time

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SANDBOXES = ROOT / ".mutmut"
COPIED = ("copdata", "copbench", "copmodel", "tests")
BEGIN, END = "<!-- mutation-table:begin -->", "<!-- mutation-table:end -->"
# mutmut 3's exit codes (mutmut.stats.status_by_exit_code)
KILLED = {1, 3, 37}
SURVIVED = {0}
TIMEOUT = {36, 24, -24, 152, 255}


def load_config() -> tuple[dict, dict]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return data["tool"]["mutmut"], data["tool"].get("cop-mutate", {})


def slug(module: str) -> str:
    return module.removesuffix(".py").replace("/", ".")


def _toml_list(values) -> str:
    return "[" + ", ".join(json.dumps(str(v)) for v in values) + "]"


def prepare_sandbox(module: str, mutmut_cfg: dict, cop_cfg: dict) -> Path:
    tests = cop_cfg["tests"].get(module)
    if not tests:
        raise SystemExit(f"{module}: no test files in [tool.cop-mutate.tests] of pyproject.toml")
    box = SANDBOXES / slug(module)
    box.mkdir(parents=True, exist_ok=True)
    for name in COPIED:  # fresh copies; mutmut's state (box/mutants) stays
        shutil.rmtree(box / name, ignore_errors=True)
        shutil.copytree(ROOT / name, box / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pytest_cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]
    lines = [
        "# written by tools/mutate.py from ../../pyproject.toml: do not edit",
        "[tool.mutmut]",
        f"source_paths = {_toml_list(mutmut_cfg['source_paths'])}",
        f"only_mutate = {_toml_list([module])}",
        f"do_not_mutate_patterns = {_toml_list(mutmut_cfg.get('do_not_mutate_patterns', []))}",
        f"pytest_add_cli_args = {_toml_list(mutmut_cfg.get('pytest_add_cli_args', []))}",
        f"pytest_add_cli_args_test_selection = {_toml_list(tests)}",
        f"timeout_multiplier = {float(mutmut_cfg.get('timeout_multiplier', 15.0))}",
        f"process_isolation = {json.dumps(mutmut_cfg.get('process_isolation', 'fork'))}",
        "use_git_change_detection = false",
        "",
        "[tool.pytest.ini_options]",
        f"testpaths = {_toml_list(pytest_cfg['ini_options'].get('testpaths', ['tests']))}",
        f"markers = {_toml_list(pytest_cfg['ini_options'].get('markers', []))}",
        "",
    ]
    (box / "pyproject.toml").write_text("\n".join(lines), encoding="utf-8")
    return box


def run(modules: list[str], jobs: int, recheck: bool = True) -> int:
    mutmut_cfg, cop_cfg = load_config()
    core = list(mutmut_cfg["only_mutate"])
    unknown = [m for m in modules if m not in core]
    if unknown:
        raise SystemExit(f"not a core module (see [tool.mutmut] only_mutate): {', '.join(unknown)}")
    failed = 0
    for module in modules or core:
        box = prepare_sandbox(module, mutmut_cfg, cop_cfg)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(CI="true", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                   TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
        print(f"== {module} (sandbox {box.relative_to(ROOT)}, {jobs} process(es))", flush=True)
        commit = git_commit()
        fresh = not _results(box, module)  # no earlier results: this run checks every mutant
        start = time.monotonic()
        mutmut = [sys.executable, "-c", "from mutmut.__main__ import cli; cli()"]
        # mutants already checked keep their result: this resumes an interrupted run
        code = subprocess.call(mutmut + ["run", "--max-children", str(jobs)], cwd=box, env=env)
        # ... but survivors (and mutants no test reached) are checked again, with the
        # tests as they are now: tests added since the last run may kill them
        again = [k for k, v in _results(box, module).items() if v in SURVIVED | {5, 33}]
        if code == 0 and again and recheck:
            print(f"== {module}: checking {len(again)} survivors again", flush=True)
            code = subprocess.call(mutmut + ["run", "--max-children", str(jobs), *again],
                                   cwd=box, env=env)
        seconds = time.monotonic() - start
        timing = box / "timing.json"
        runs = json.loads(timing.read_text(encoding="utf-8")) if timing.is_file() else []
        runs = runs if isinstance(runs, list) else []
        runs.append({"module": module, "seconds": round(seconds, 1), "jobs": jobs,
                     "exit_code": code, "commit": commit, "fresh": fresh})
        timing.write_text(json.dumps(runs, indent=1), encoding="utf-8")
        print(f"== {module}: mutmut exited {code} after {seconds:.0f} s", flush=True)
        failed += code != 0
    return 1 if failed else 0


# ---- report -------------------------------------------------------------------------

def _results(box: Path, module: str) -> dict[str, int | None]:
    meta = box / "mutants" / (module + ".meta")
    if not meta.is_file():
        return {}
    return json.loads(meta.read_text(encoding="utf-8")).get("exit_code_by_key", {})


def mutant_diff(box: Path, module: str, name: str) -> str:
    """The mutant's diff, from the mutated copy of the module (mutmut's own lookup)."""
    out = subprocess.run([sys.executable, "-c", "from mutmut.__main__ import cli; cli()",
                          "show", name], cwd=box, capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    return out.stdout


_STRING = re.compile(r"""(?:[rRbBuUfF]{0,2})("[^"]*"|'[^']*')""")


def is_message_only(diff: str) -> bool:
    """True when the mutant changes only prose: a string literal with a space in it
    (a message, not a key, flag or name), e.g. ``"XXsome textXX"`` or its case."""
    removed = [ln[1:] for ln in diff.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    added = [ln[1:] for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    if len(removed) != len(added) or not removed:
        return False
    for old, new in zip(removed, added):
        if _STRING.sub("S", old) != _STRING.sub("S", new):
            # the message replaced by None: raise ValueError("some text") -> raise ValueError(None)
            prose = [m.group(0) for m in _STRING.finditer(old) if " " in m.group(1).strip("\"'")]
            if prose and any(old.replace(m, "None", 1) == new for m in prose):
                continue
            return False  # something outside a string literal changed
        old_s, new_s = _STRING.findall(old), _STRING.findall(new)
        for a, b in zip(old_s, new_s):
            if a != b and " " not in a.strip("\"'"):
                return False
    return True


def git_commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", *COPIED], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return out.stdout.strip() + (" (+ uncommitted changes)" if dirty else "")


def _earlier(out: Path | None) -> tuple[dict[str, str], dict[str, list[str]], set[str]]:
    """The rows, notes and commits of the table already in ``out``: a module measured
    in another clone (its sandbox is not here) keeps its last measured row."""
    if out is None or not out.is_file():
        return {}, {}, set()
    text = out.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        return {}, {}, set()
    table = text.split(BEGIN, 1)[1].split(END, 1)[0]
    rows, notes = {}, {}
    for line in table.splitlines():
        m = re.match(r"\| `([^`]+)` \|", line)
        if m and "not measured" not in line:
            rows[m.group(1)] = line
        m = re.match(r"- `([^`]+)`", line)
        if m:
            notes.setdefault(m.group(1), []).append(line)
    head = re.search(r"commit\(s\) (.*?) \(the last run", table)
    commits = set(re.findall(r"`([^`]+)`", head.group(1))) if head else set()
    return rows, notes, commits


def _commit_cell(row: str, old_commits: set[str]) -> str:
    """A kept row with its commit cell (rows of tables before the commit column get
    the earlier table's commit list)."""
    if row.count("|") >= 12:
        return row
    earlier = ", ".join(sorted(old_commits)) or "?"
    return f"{row} one of {earlier} |"


def report(out: Path | None) -> int:
    mutmut_cfg, cop_cfg = load_config()
    equivalent = cop_cfg.get("equivalent", {})
    rows, notes, commits = [], [], set()
    old_rows, old_notes, old_commits = _earlier(out)
    for module in mutmut_cfg["only_mutate"]:
        box = SANDBOXES / slug(module)
        results = _results(box, module)
        if not results or all(v is None for v in results.values()):
            if module in old_rows:  # measured elsewhere: keep its last row and notes
                rows.append(_commit_cell(old_rows[module], old_commits))
                prefix = slug(module) + "."
                notes += [ln for name, lines in old_notes.items()
                          if name.startswith(prefix) for ln in lines]
                continue
            rows.append(f"| `{module}` | not measured | | | | | | | | | |")
            continue
        killed = sum(1 for v in results.values() if v in KILLED)
        timeouts = sum(1 for v in results.values() if v in TIMEOUT)
        survivors = sorted(k for k, v in results.items() if v in SURVIVED)
        no_tests = sum(1 for v in results.values() if v in {5, 33})
        not_run = sum(1 for v in results.values() if v is None)
        eq = [k for k in survivors if k in equivalent]
        excluded = [k for k in survivors if k not in equivalent
                    and is_message_only(mutant_diff(box, module, k))]
        open_ = [k for k in survivors if k not in equivalent and k not in excluded]
        counted = killed + timeouts + len(open_) + no_tests
        score = 100.0 * (killed + timeouts) / counted if counted else float("nan")
        timing = box / "timing.json"
        runs = json.loads(timing.read_text()) if timing.is_file() else []
        runs = runs if isinstance(runs, list) else [{**runs, "fresh": True}]  # a single first run
        # mutmut checks every mutant again when the selection or settings change, so
        # the longest recorded run is a full one
        seconds = max((r["seconds"] for r in runs), default=None)
        commit = runs[-1].get("commit", "?") if runs else "?"
        rows.append(f"| `{module}` | {len(results)} | {killed + timeouts} | {len(eq)} | {len(excluded)} "
                    f"| {len(open_)} | {no_tests} | {not_run} | {score:.0f} % | "
                    f"{'' if seconds is None else f'{seconds / 60:.0f} min'} | {commit} |")
        for k in eq:
            notes.append(f"- `{k}`: {equivalent[k]}")
        for k in open_:
            first = next((ln for ln in mutant_diff(box, module, k).splitlines()
                          if ln.startswith("+") and not ln.startswith("+++")), "+?")
            notes.append(f"- `{k}` survives: `{first[1:].strip()[:100]}`")
    table = "\n".join([
        f"Measured with mutmut 3; each row names the commit of the module's last run "
        f"(\"+ uncommitted changes\": run on that commit's working tree with the tests of the "
        f"next commit). Written {time.strftime('%Y-%m-%d')} by `python tools/mutate.py report`.",
        "",
        "| module | mutants | killed | equivalent | excluded (message text) | survived | no test reaches it | not run | score | longest run (1 process) | commit |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *rows,
        "",
        "Score = killed / (mutants - equivalent - excluded - not run): a timeout counts as killed, "
        "a mutant no selected test reaches counts as not killed. Times are wall-clock on a shared "
        "2-core machine running other jobs (load average 8-12), so an idle machine is faster.",
        "",
        "Equivalent and surviving mutants:",
        "",
        *(notes or ["- none"]),
    ])
    if out is None:
        print(table)
        return 0
    text = out.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{out}: no {BEGIN} ... {END} markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    out.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}", encoding="utf-8")
    print(f"wrote the table to {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run mutmut on core modules (all when none is named)")
    p_run.add_argument("modules", nargs="*", help="e.g. copbench/stats.py")
    p_run.add_argument("--jobs", type=int, default=1, help="mutmut worker processes (default 1)")
    p_run.add_argument("--no-recheck", dest="recheck", action="store_false",
                       help="do not run the surviving mutants of earlier runs again")
    p_rep = sub.add_parser("report", help="per-module table from the sandboxes' results")
    p_rep.add_argument("--out", type=Path, default=None, help="docs file with the table markers")
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.modules, args.jobs, args.recheck)
    return report(args.out)


if __name__ == "__main__":
    sys.exit(main())
