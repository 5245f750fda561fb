"""``results/`` stays navigable: every result folder is in the index with its status, every path the docs name exists,
and no lock file is committed.

The index is the table of ``results/README.md``: one row per folder ``reference/<profile>/``, ``studies/<name>/`` or
``archive/<name>/``, its first column the folder's status (current, not yet validated, not current, study record,
archived) and why.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
INDEX = RESULTS / "README.md"
KINDS = ("reference", "studies", "archive")  # the folders of results/, each holding one folder per result
IGNORED = {"local"}  # results/local: the user's own runs (git-ignored)
STATUSES = ("current", "not yet validated", "not current", "study record", "archived")
# where paths into results/ are named: the top-level README, docs, the package's sources and YAML, the results READMEs
DOC_GLOBS = ("README.md", "docs/**/*.md", "benchmark/**/*.py", "benchmark/**/*.yaml", "methods/**/*.py",
             "metrics/**/*.py", "datasets/**/*.py", "examples/**/*", "Makefile", "results/**/README.md",
             "results/**/*.py")
RESULTS_PATH = re.compile(r"results/[A-Za-z0-9_.\-/<>{}*]*")


def index_rows(text: str) -> dict[str, str]:
    """The index table's rows: folder (its second column, in backticks) -> status (its first column)."""
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 2 and (folder := re.fullmatch(r"`([^`]+)/`", cells[1])):
            rows[folder.group(1)] = cells[0]
    return rows


def result_folders(results: Path) -> tuple[set[str], set[str]]:
    """(the folders directly under ``results/`` other than the ignored ones, the folders one level below those)."""
    def folders(path: Path) -> list[Path]:
        return [p for p in path.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))]

    top = {p.name for p in folders(results)} - IGNORED
    return top, {f"{kind}/{p.name}" for kind in top for p in folders(results / kind)}


def test_index_parser_reads_the_folder_and_status_columns():
    text = "| status | folder | what |\n|---|---|---|\n| archived: old yardstick | `archive/x/` | a |\n"
    assert index_rows(text) == {"archive/x": "archived: old yardstick"}


def test_results_holds_only_references_studies_and_archives():
    top, _ = result_folders(RESULTS)
    assert top <= set(KINDS), f"results/ may hold only {KINDS} (and the git-ignored local/): found {sorted(top)}"


def test_every_result_folder_is_in_the_index_and_every_indexed_folder_exists():
    _, on_disk = result_folders(RESULTS)
    indexed = set(index_rows(INDEX.read_text()))
    assert on_disk - indexed == set(), "folders missing from the index in results/README.md"
    assert indexed - on_disk == set(), "results/README.md indexes folders that do not exist"


def test_the_first_column_says_current_or_archived_and_why():
    for folder, status in index_rows(INDEX.read_text()).items():
        kind, _, why = status.partition(":")
        assert kind in STATUSES and len(why.split()) >= 3, (
            f"results/README.md, {folder}: the status must start with one of {STATUSES}, then ': why' ({status!r})")
        if folder.startswith("archive/"):
            assert kind == "archived", folder
        if kind == "not yet validated":
            assert "code" in why, f"{folder}: say which code made it"
        if kind == "not current":
            assert "protocol" in why, f"{folder}: say which protocol made it"


def named_results_paths(text: str) -> set[str]:
    """``results/…`` paths named in ``text``, cut before any placeholder (``<profile>``, ``{md,csv}``, ``*``)."""
    paths = set()
    for match in RESULTS_PATH.findall(text):
        path = re.split(r"[<{*]", match)[0].rstrip(".")
        if path.split("/")[1:2] != ["local"]:  # the user's own, git-ignored
            paths.add(path)
    return paths


def test_named_results_paths_cut_placeholders_and_skip_local():
    text = "see `results/reference/<profile>/runs/`, results/local/mnist/ and results/studies/a/b.md."
    assert named_results_paths(text) == {"results/reference/", "results/studies/a/b.md"}


def test_every_results_path_named_in_the_docs_exists():
    missing = []
    for pattern in DOC_GLOBS:
        for doc in ROOT.glob(pattern):
            if not doc.is_file() or "local" in doc.relative_to(ROOT).parts[1:2]:
                continue
            text = doc.read_text(errors="ignore")
            missing += [f"{doc.relative_to(ROOT)}: {p}" for p in sorted(named_results_paths(text))
                        if not (ROOT / p).exists()]
    assert missing == [], "paths into results/ that do not exist (moved or renamed?):\n" + "\n".join(missing)


def test_relative_paths_in_results_readmes_exist():
    missing = []
    for readme in RESULTS.rglob("README.md"):
        for path in re.findall(r"`(\.\.?/[^`\s]*)`", readme.read_text()):
            if not (readme.parent / path).exists():
                missing.append(f"{readme.relative_to(ROOT)}: {path}")
    assert missing == [], "relative paths that do not resolve:\n" + "\n".join(missing)


def test_no_lock_file_is_tracked():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files", "--", "*.lock"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert tracked == [], f"lock files are committed (ignore them with *.lock in .gitignore): {tracked}"
    ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", "results/studies/x/leaderboard.lock"],
                             cwd=ROOT).returncode
    assert ignored == 0, ".gitignore must ignore *.lock"
