"""What a new user sees when installing: each slow step announced, no setuptools banners,
and a package that carries the explorer's files and the state tree's compiled C part."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FAKE_PYTHON = """#!/bin/sh
# Stands in for python3 and for the venv's python: records each call, creates the venv.
echo "$0 $*" >> "$CALLS"
case "$1" in
  --version) echo "Python 3.11.7" ;;
  -m) if [ "$2" = venv ]; then mkdir -p "$3/bin" && cp "$0" "$3/bin/python"; fi ;;
esac
"""


def _source_venv_script(project: Path, fake: Path, calls: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", f"set -euo pipefail; source {ROOT / 'scripts' / '_venv.sh'}"],
        cwd=project, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHON": str(fake), "SOMNODE_VENV": str(project / "venv"), "CALLS": str(calls)},
    )


def test_the_first_install_says_what_it_is_doing_and_a_second_run_is_silent(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "pyproject.toml", project)
    fake = tmp_path / "python3"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    calls = tmp_path / "calls"

    first = _source_venv_script(project, fake, calls)
    assert first.returncode == 0, first.stderr
    said = first.stderr.splitlines()
    assert any(line.startswith("creating the virtual environment") for line in said), said
    assert any(line.startswith("installing somnode and its dependencies") for line in said), said
    assert "pip install --quiet -e .[test]" in calls.read_text()

    again = _source_venv_script(project, fake, calls)
    assert again.returncode == 0 and again.stderr == ""


def test_the_package_builds_without_setuptools_banners_and_carries_the_explorer(tmp_path):
    source = tmp_path / "somnode"
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copy(ROOT / "README.md", source)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so")  # the wheel must compile the C part itself
    for package in ("node", "consensus"):
        shutil.copytree(ROOT / package, source / package, ignore=ignore)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(tmp_path / "dist"),
         str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    output = built.stdout + built.stderr
    for banner in ("Deprecat", "deprecat", "!!"):
        assert banner not in output, output
    (wheel,) = (tmp_path / "dist").glob("somnode-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "node/api/explorer/static/index.html" in names
    for module in ("node/ledger/_tree.", "node/core/_rfc6962."):
        assert any(name.startswith(module) and name.endswith(".so") for name in names), names
