"""Hard bounds on what one expression evaluation may build or spend.

They make resource bombs (huge powers, repetition, giant ranges, nested comprehensions) fail
fast with a clear error instead of hanging the engine or exhausting memory.
"""

MAX_SOURCE_CHARS = 20_000
"""Longest expression text accepted."""
MAX_STRING_CHARS = 10_000_000
"""Longest string an expression may build (repetition, concatenation, join, padding)."""
MAX_ITEMS = 1_000_000
"""Most items a built sequence may hold (repetition, range, nested weight)."""
MAX_INT_BITS = 100_000
"""Largest integer (in bits) a power, product or shift may produce."""
MAX_STEPS = 2_000_000
"""Most comprehension/generator iterations one evaluation may take."""
MAX_SECONDS = 2.0
"""Wall-clock budget of one evaluation, checked between iteration steps."""
