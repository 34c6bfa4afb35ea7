"""Settings: the only reader of CONV3N_* environment variables (SPEC §9)."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    """Process-wide configuration, read once at the edge.

    Attributes:
        data_dir: the data folder (database, keys, files root).
        env_allow: environment variable names visible as `$env`.
        max_subworkflow_depth: how deep std/subworkflow may nest.
    """

    data_dir: Path = Path(".conv3n")
    env_allow: tuple[str, ...] = ()
    max_subworkflow_depth: int = 10
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Settings from `CONV3N_*` variables (the process environment by default)."""
        env = dict(os.environ if environ is None else environ)
        allow = tuple(n.strip() for n in env.get("CONV3N_ENV_ALLOW", "").split(",") if n.strip())
        depth = env.get("CONV3N_MAX_SUBWORKFLOW_DEPTH", "10")
        return cls(
            data_dir=Path(env.get("CONV3N_DATA_DIR", ".conv3n")),
            env_allow=allow,
            max_subworkflow_depth=int(depth) if depth.isdigit() else 10,
            environ=env,
        )

    def visible_env(self) -> dict[str, str]:
        """The allow-listed variables that are set: what `$env` shows."""
        return {name: self.environ[name] for name in self.env_allow if name in self.environ}
