"""The block registry of a configured process: installed packages plus the blocks folder.

Called wherever the CLI, the Runtime or the server need block types (`conv3n run`, `validate`,
`blocks`, `serve`). The blocks folder (CONV3N_BLOCKS_DIR) holds process blocks; a bad manifest
there is reported and skipped, a namespace that clashes with an installed package is an error.
"""

import logging

from conv3n.runtime.settings import Settings
from conv3n.sdk import BlockRegistry

log = logging.getLogger("conv3n.runtime")


def discover_blocks(settings: Settings) -> tuple[BlockRegistry, list[str]]:
    """Every installed block package and every block of the blocks folder, with one message
    per bad manifest (skipped).

    Raises:
        BlockRegistryError: a folder namespace is also claimed by an installed package.
    """
    registry = BlockRegistry.discover()
    folder = settings.blocks_dir
    if not folder.is_dir():
        if settings.blocks_dir_path is None and not folder.exists():
            return registry, []  # the default folder is optional
        return registry, [f"CONV3N_BLOCKS_DIR: {folder} is not a folder"]
    # imported only when there is a folder: jsonschema is not needed otherwise
    from conv3n.blocks import process

    found = process.load_folder(folder)
    for namespace, specs in found.namespaces.items():
        registry.add(namespace, specs, origin=f"the blocks folder {folder}")
    return registry, list(found.problems)


def block_registry(settings: Settings) -> BlockRegistry:
    """`discover_blocks`, each bad manifest logged as a warning."""
    registry, problems = discover_blocks(settings)
    for problem in problems:
        log.warning("skipped a block manifest: %s", problem)
    return registry
