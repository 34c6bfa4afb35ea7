"""n8n under test: `n8n start` on Node 24 with its own SQLite in a fresh user folder.

Before the start, the workflows of bench/peers/workflows/n8n/ are imported with
`n8n import:workflow --separate --input=DIR` and published with `n8n publish:workflow --id=ID`
(n8n 2.x). Everything that phones home is off (PEERS.md's list); executions are saved as n8n
does by default. `/healthz` answers before the webhooks are registered, so readiness is
`/healthz/readiness` and the start figure is the first webhook answered. The one-shot figure is
`n8n execute --id=ID`, run while the server is stopped, of each workflow's CLI variant (an
Execute Workflow Trigger and the webhook's body instead of the Webhook node, no Respond node;
`n8n execute` cannot start from a Webhook node).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import flows
import install
from system import WORKFLOWS, System

ONE_SHOT_ROUNDS = 3

QUIET = {
    "N8N_DIAGNOSTICS_ENABLED": "false",
    "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
    "N8N_TEMPLATES_ENABLED": "false",
    "N8N_PERSONALIZATION_ENABLED": "false",
    "N8N_COMMUNITY_PACKAGES_ENABLED": "false",
    "N8N_LICENSE_AUTO_RENEW_ENABLED": "false",
    "N8N_AI_ENABLED": "false",
    "N8N_DISABLED_MODULES": "mcp-registry",
    "N8N_HIRING_BANNER_ENABLED": "false",
}


class N8n(System):
    name = "n8n"
    label = "n8n"

    def __init__(self, work: Path, port: int, root: Path) -> None:
        super().__init__(work, port)
        self.root = root
        self.home = work / "n8n-home"

    def _cli(self, *args: str) -> list[str]:
        n8n = install.n8n_dir(self.root) / "node_modules" / "n8n" / "bin" / "n8n"
        return [str(install.node_bin(self.root)), str(n8n), *args]

    def command(self) -> list[str]:
        return self._cli("start")

    def env(self) -> dict[str, str]:
        env = install.node_env(self.root)
        env.update(QUIET)
        env.update(
            {
                "N8N_USER_FOLDER": str(self.home),
                "N8N_LISTEN_ADDRESS": "127.0.0.1",
                "N8N_HOST": "127.0.0.1",
                "N8N_PORT": str(self.port),
                "N8N_ENCRYPTION_KEY": "bench-peers-not-a-secret",
                "N8N_SECURE_COOKIE": "false",
                "N8N_LOG_LEVEL": "warn",
                "N8N_WEBHOOK_URL": f"http://127.0.0.1:{self.port}/",
            }
        )
        return env

    def health_url(self) -> str:
        return self.base_url + "/healthz/readiness"

    def webhook_url(self, workflow: str) -> str:
        return f"{self.base_url}/webhook/bench-{workflow}"

    def version(self) -> str:
        return install.package_version(install.n8n_dir(self.root), "n8n")

    def _run_cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            self._cli(*args),
            env=self.env(),
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"n8n {' '.join(args)} failed ({done.returncode}):\n"
                f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            )
        return done

    def prepare(self, workflows: list[str]) -> None:
        if self.home.exists():
            shutil.rmtree(self.home)
        self.home.mkdir(parents=True)
        source = self.work / "n8n-import"
        if source.exists():
            shutil.rmtree(source)
        source.mkdir(parents=True)
        for workflow in workflows:
            for name in (f"{workflow}.json", f"{workflow}-cli.json"):
                shutil.copy(WORKFLOWS / "n8n" / name, source / name)
        self._run_cli("import:workflow", "--separate", f"--input={source}")
        for workflow in workflows:
            self._run_cli("publish:workflow", f"--id={flows.n8n_id(workflow)}")

    def one_shot(self, workflow: str) -> list[float] | None:
        """`n8n execute --id=ID --rawOutput` of the CLI variant. A run counts when it printed
        the successful execution: n8n 2.41 on Node 24 sometimes dies of SIGSEGV while it shuts
        down after the execution (its isolated-vm bridge starting late), which costs no time."""
        env = self.env()
        env["N8N_LOG_LEVEL"] = "info"  # the execution's JSON is printed at info level
        command = self._cli("execute", f"--id={flows.n8n_id(workflow, cli=True)}", "--rawOutput")
        times = []
        for _ in range(ONE_SHOT_ROUNDS):
            started = time.perf_counter()
            done = subprocess.run(
                command,
                env=env,
                cwd=self.work,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            times.append(time.perf_counter() - started)
            if '"status": "success"' not in done.stdout:
                raise RuntimeError(
                    f"n8n execute ({workflow}) failed ({done.returncode}):\n"
                    f"{done.stdout[-1500:]}\n{done.stderr[-1500:]}"
                )
        return times
