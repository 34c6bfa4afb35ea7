"""Process blocks: any executable, described by a manifest, speaking JSON lines on stdin/stdout.

`load_folder(path)` reads a blocks folder (the runtime's CONV3N_BLOCKS_DIR); `from_manifests`
builds the `BLOCKS` of a Python distribution's `conv3n.blocks` entry point. The protocol and
the manifest are described in docs/process-blocks.md.
"""

from conv3n.blocks.process.manifest import MANIFEST_NAMES, Manifest
from conv3n.blocks.process.pool import ProcessPool
from conv3n.blocks.process.spec import FolderBlocks, block_spec, from_manifests, load_folder

__all__ = [
    "MANIFEST_NAMES",
    "FolderBlocks",
    "Manifest",
    "ProcessPool",
    "block_spec",
    "from_manifests",
    "load_folder",
]
