"""The docs' commands, run: every fenced shell block of README.md and docs/*.md marked runnable
(`<!-- runnable -->` on the line before the ```bash fence) runs in a temporary folder, the blocks
of one file in order in the same folder, and must exit 0. Unmarked blocks are illustrations
(remote servers, credentials, commands that run until stopped).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

MARK = re.compile(r"<!-- runnable -->\n```(?:bash|sh)\n(.*?)```", re.S)
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def runnable_blocks(doc: Path) -> list[str]:
    return MARK.findall(doc.read_text())


def test_the_docs_mark_runnable_blocks():
    marked = {doc.name: len(runnable_blocks(doc)) for doc in DOCS}
    assert marked["README.md"] >= 3 and marked["ingest.md"] >= 2, marked


@pytest.mark.parametrize("doc", [d for d in DOCS if runnable_blocks(d)], ids=lambda d: d.name)
def test_runnable_blocks_run(doc: Path, tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGROLL_", "AWS_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # logroll, python
    env["HOME"] = str(tmp_path / "home")  # remote destinations keep state under ~/.cache
    for i, block in enumerate(runnable_blocks(doc)):
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, f"{doc.name} block {i + 1} failed:\n{block}\n{proc.stderr[-3000:]}"
