"""Start-up stays light: heavy libraries load only when a workflow needs them."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
{setup}
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r})))
"""


def loaded_after(setup: str, heavy: set[str]) -> set[str]:
    code = PROBE.format(setup=setup, heavy=heavy)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return {m.split(".")[0] for m in json.loads(out.stdout)}


HEAVY = {"httpx", "jmespath", "jsonpath", "regex", "rich", "typer"}


def test_engine_and_sdk_import_no_heavy_library():
    assert loaded_after("import conv3n.engine, conv3n.sdk, conv3n.expr", HEAVY) == set()


def test_running_a_workflow_without_http_does_not_import_httpx(tmp_path):
    workflow = tmp_path / "wf.json"
    workflow.write_text(json.dumps({"version": 1, "nodes": [{"id": "a", "type": "std/noop"}]}))
    setup = (
        "import asyncio, pathlib\n"
        "from conv3n.runtime import run_file\n"
        f"asyncio.run(run_file(pathlib.Path({str(workflow)!r})))"
    )
    assert loaded_after(setup, {"aiohttp", "httpx", "jmespath", "jsonpath", "regex"}) == set()


def test_the_first_regular_expression_loads_regex():
    setup = (
        "from conv3n import expr\n"
        "assert expr.compile_config(\"{{ match('abc', 'b+') }}\").render(expr.Scope()) is True"
    )
    assert loaded_after(setup, {"regex"}) == {"regex"}


def test_logging_imports_structlog_without_rich():
    setup = (
        "from conv3n.observability import logging as logs\n"
        "logs.configure(format='console')\n"
        "import logging\n"
        "try:\n"
        "    1 / 0\n"
        "except ZeroDivisionError:\n"
        "    logging.getLogger('conv3n.test').exception('boom')\n"
    )
    assert loaded_after(setup, {"rich", "structlog"}) == {"structlog"}


def test_rich_still_imports_after_structlog():
    setup = (
        "import conv3n.observability.logging, structlog.dev\n"
        "from rich.table import Table\n"
        "assert structlog.dev.rich is None  # structlog formats plainly\n"
    )
    assert loaded_after(setup, {"rich"}) == {"rich"}


def test_prometheus_client_loads_at_the_first_scrape():
    before = "from conv3n.observability import Metrics\nm = Metrics()\nm.trigger_fired('webhook')\n"
    assert loaded_after(before, {"prometheus_client"}) == set()
    scraped = before + "text, _ = m.render()\nassert b'conv3n_trigger_fires_total' in text\n"
    assert loaded_after(scraped, {"prometheus_client"}) == {"prometheus_client"}
