"""`make bench`: every conv3n benchmark in turn; each rewrites its section of RESULTS.md."""

import runpy
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    for script in ("engine.py", "storage.py", "server.py", "code_js.py"):
        runpy.run_path(str(HERE / script), run_name="__main__")
