"""Install what the Makefile installs with `pip install ... --no-deps` (silero-vad, whose
package pins torch that callbridge never imports; and whatever else is added there), so the
image carries exactly the packages `make test` runs with. `--print` only lists them.

Usage (in the Dockerfile): python deploy/docker/install_no_deps.py Makefile
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path


def no_deps_requirements(makefile: str) -> list[str]:
    """The requirement strings after `--no-deps` on every `pip install` line."""
    found: list[str] = []
    for line in makefile.splitlines():
        if "--no-deps" not in line or line.strip().lstrip("@").startswith("#"):
            continue
        try:
            words = shlex.split(line)
        except ValueError:  # unbalanced quotes: not a command line
            continue
        if "pip" not in " ".join(words) or "install" not in words or "--no-deps" not in words:
            continue
        after = words[words.index("--no-deps") + 1 :]
        found += [w for w in after if not w.startswith("-") and "$" not in w]
    return found


def main(argv: list[str]) -> int:
    args = [a for a in argv if a != "--print"]
    if len(args) != 1:
        print("usage: install_no_deps.py [--print] Makefile", file=sys.stderr)
        return 2
    requirements = no_deps_requirements(Path(args[0]).read_text())
    if not requirements:
        print("install_no_deps.py: no `pip install --no-deps` line found", file=sys.stderr)
        return 1
    if "--print" in argv:
        print("\n".join(requirements))
        return 0
    cmd = [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--no-deps", *requirements]
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
