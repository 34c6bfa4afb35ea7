"""`make bench`: every conv3n benchmark in turn; each result goes into its section of RESULTS.md.

engine.py and storage.py write their own sections; for the others the table they print is
kept under a heading of their own, with the date and machine.
"""

import contextlib
import io
import os
import platform
import runpy
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from engine import write_section  # noqa: E402

OWN_SECTION = ("engine.py", "storage.py")
PRINTED = {
    "server.py": "## Server: webhooks under load (issue 4, bench/server.py)",
    "code.py": "## custom/code in Python: call overhead (issue 5, bench/code.py)",
    "code_js.py": "## custom/code in JavaScript: call overhead (issue 5, bench/code_js.py)",
    "database.py": "## std/database: queries per second (issue 5, bench/database.py)",
}


def run(script: str) -> str:
    """Run one benchmark script as `__main__`; what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        runpy.run_path(str(HERE / script), run_name="__main__")
    text = out.getvalue()
    print(text, flush=True)
    return text


if __name__ == "__main__":
    chosen = sys.argv[1:] or [*OWN_SECTION, *PRINTED]
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
    for script in chosen:
        sys.argv = [script]
        printed = run(script)
        if script in PRINTED:
            when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
            body = f"Measured {when} on {machine} by `python bench/{script}`.\n\n{printed}"
            write_section(f"{PRINTED[script]}\n\n{body}", HERE / "RESULTS.md")
