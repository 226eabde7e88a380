"""What `make run` installs (the core, `pip install logroll`) is enough for `import logroll` and the
CLI: every third-party module they load belongs to a core dependency or to one of its own
requirements. A fresh clone once failed with `No module named 'numpy'`, which this venv (with the
dev extra) had all along."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata

from conftest import ROOT

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def core_closure() -> set[str]:
    """The core dependencies and, recursively, what they require without extras."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    todo = [NAME.match(d).group(0) for d in declared]  # type: ignore[union-attr]
    seen: set[str] = set()
    while todo:
        name = canonical(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [NAME.match(r).group(0) for r in requires if "extra ==" not in r]  # type: ignore[union-attr]
    return seen


def loaded_modules(imports: str) -> set[str]:
    code = f"import sys, json{imports}; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {m.split(".")[0] for m in json.loads(proc.stdout)}


def test_import_and_cli_need_only_the_core():
    # a bare interpreter's own (site's .pth hooks, such as setuptools' _distutils_hack) are not ours
    loaded = loaded_modules(", logroll, logroll.cli") - loaded_modules("")
    owners = metadata.packages_distributions()
    core = core_closure()
    outside = {
        m: sorted(owners[m])
        for m in loaded
        if m in owners and m != "logroll" and not any(canonical(d) in core for d in owners[m])
    }
    assert outside == {}, f"modules loaded by `import logroll` from packages not in the core: {outside}"
