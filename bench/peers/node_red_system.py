"""Node-RED under test: `node red.js` on Node 24 with a settings file that binds 127.0.0.1 and
switches off telemetry, update notifications, the palette catalogue and installs.

The flows are bench/peers/workflows/node-red/flows.json, copied into a fresh user dir before the
start. Node-RED has no health endpoint: GET /settings answers once the admin API is up, and the
flows' URLs once the flows are started. It has no one-shot CLI run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import install
from system import WORKFLOWS, System

SETTINGS = """// written by bench/peers/node_red_system.py
module.exports = {
    uiHost: "127.0.0.1",
    uiPort: %(port)d,
    flowFile: "flows.json",
    credentialSecret: false,
    flowFilePretty: false,
    diagnostics: { enabled: false, ui: false },
    runtimeState: { enabled: false, ui: false },
    telemetry: { enabled: false, updateNotification: false },
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
    functionExternalModules: false,
    editorTheme: {
        palette: { catalogues: [] },
        projects: { enabled: false },
        tours: false,
        multiplayer: { enabled: false },
    },
    logging: { console: { level: "warn", metrics: false, audit: false } },
};
"""


class NodeRed(System):
    name = "node-red"
    label = "Node-RED"

    def __init__(self, work: Path, port: int, root: Path) -> None:
        super().__init__(work, port)
        self.root = root
        self.user_dir = work / "node-red-home"

    def command(self) -> list[str]:
        red = install.node_red_dir(self.root) / "node_modules" / "node-red" / "red.js"
        return [
            str(install.node_bin(self.root)),
            str(red),
            "--userDir",
            str(self.user_dir),
            "--settings",
            str(self.user_dir / "settings.js"),
            "--port",
            str(self.port),
            "--no-telemetry",
        ]

    def env(self) -> dict[str, str]:
        return install.node_env(self.root)

    def health_url(self) -> str:
        return self.base_url + "/settings"

    def webhook_url(self, workflow: str) -> str:
        return f"{self.base_url}/bench-{workflow}"

    def version(self) -> str:
        return install.package_version(install.node_red_dir(self.root), "node-red")

    def prepare(self, workflows: list[str]) -> None:
        if self.user_dir.exists():
            shutil.rmtree(self.user_dir)
        self.user_dir.mkdir(parents=True)
        (self.user_dir / "settings.js").write_text(SETTINGS % {"port": self.port})
        flows = json.loads((WORKFLOWS / "node-red" / "flows.json").read_text())
        (self.user_dir / "flows.json").write_text(json.dumps(flows))
