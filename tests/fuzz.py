"""The property tests with thousands of generated inputs each (hypothesis profile "fuzz"), then how many
inputs each property was given:

    python -m tests.fuzz                 # about 2,000 inputs a property
    python -m tests.fuzz -k importer     # only the importers
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as d:
        counts = Path(d) / "counts.json"
        env = {**os.environ, "HYPOTHESIS_PROFILE": "fuzz", "FUZZ_COUNTS": str(counts)}
        rc = subprocess.call([sys.executable, "-m", "pytest", "tests/test_properties.py", "-q", "-p",
                              "no:cacheprovider", *argv], cwd=ROOT, env=env)
        tried = json.loads(counts.read_text()) if counts.exists() else {}
    print("\n| property | inputs tried |\n| --- | --- |")
    for name, n in sorted(tried.items()):
        print(f"| {name} | {n:,} |")
    print(f"| all | {sum(tried.values()):,} |")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
