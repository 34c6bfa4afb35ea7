"""Hard bounds on what one expression evaluation may build or spend.

They make resource bombs (huge powers, repetition, giant ranges, nested comprehensions, slow
regular expressions) fail fast with a clear error instead of hanging the engine or exhausting
memory. Rendering a block config counts as one evaluation: its expressions share one budget.
"""

MAX_SOURCE_CHARS = 20_000
"""Longest expression text accepted."""
MAX_STRING_CHARS = 10_000_000
"""Longest string an expression may build (repetition, concatenation, join, padding, text)."""
MAX_ITEMS = 1_000_000
"""Most items a built list may hold (repetition, range, function and method results)."""
MAX_INT_BITS = 14_000
"""Largest integer (in bits) a power or product may produce: about 4,200 digits, which is what
Python will still turn into text."""
MAX_STEPS = 2_000_000
"""Most iteration steps one evaluation may take (comprehension items and key= calls)."""
MAX_SECONDS = 2.0
"""Wall-clock budget of one evaluation, checked between steps and after every call."""
ITEM_SIZE = 16
"""What one list item or object entry counts towards MAX_BUILT (a character counts 1)."""
MAX_BUILT = 100_000_000
"""Total size of the values one evaluation may build, counted as characters plus ITEM_SIZE per
item, with shared parts counted every time they appear (a bound on memory and on JSON size)."""
MAX_PATTERN_CHARS = 1_000
"""Longest regular expression accepted by match() and findall()."""
MAX_REGEX_SECONDS = 0.5
"""Longest one regular-expression search may run before it is stopped."""
