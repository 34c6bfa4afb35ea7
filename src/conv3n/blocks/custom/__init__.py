"""The custom blocks (`custom/...`): user code in Python, JavaScript and TypeScript.

`BLOCKS` is the target of the `custom` entry point in the `conv3n.blocks` group.
"""

from conv3n.blocks.custom import code

BLOCKS = (code.code,)

__all__ = ["BLOCKS"]
