"""Regular expressions for `match()` and `findall()`, bounded in size, memory and time.

Uses the `regex` package rather than `re` for its `timeout=` argument: catastrophic backtracking
(`(a|aa)+$`) stops after `limits.MAX_REGEX_SECONDS`. Compiling expands counted repeats
(`x{1000000}` takes hundreds of megabytes), so their expanded size is bounded before compiling.
`regex` is imported with the first pattern: most workflows use none, and it costs a process
1.8 MiB and 10 ms of every `conv3n run`'s start.
"""

import functools
import re
from typing import Any

from conv3n.expr import kinds, limits

_TIMEOUT = (
    f"regular expression took longer than {limits.MAX_REGEX_SECONDS} s (simplify the pattern)"
)
_COUNT = re.compile(r"\{(\d*)(,\d*)?\}")


def expanded_size(pattern: str) -> int:
    """About how many pattern items `pattern` becomes once counted repeats (`{n}`, `{n,m}`) are
    expanded: the minimum counts multiply through nested groups."""
    totals, lasts = [0], [0]  # per open group: size so far, size of the last item
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        size = 1
        if ch == "\\":
            i += 2
        elif ch == "[":
            i = _class_end(pattern, i + 1)
        elif ch == "(":
            totals.append(0)
            lasts.append(0)
            i += 1
            continue
        elif ch == ")" and len(totals) > 1:
            size = max(totals.pop(), 1)
            lasts.pop()
            i += 1
        elif ch == "{" and (count := _COUNT.match(pattern, i)) and count.group(1):
            times = max(int(count.group(1)), 1)
            totals[-1] += lasts[-1] * (times - 1)
            lasts[-1] *= times
            i = count.end()
            continue
        else:
            i += 1
        totals[-1] += size
        lasts[-1] = size
    return sum(totals)


def _class_end(pattern: str, i: int) -> int:
    """Index just past the `]` closing a character class whose contents start at i."""
    n = len(pattern)
    if i < n and pattern[i] == "^":
        i += 1
    if i < n and pattern[i] == "]":
        i += 1
    while i < n and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return i + 1


@functools.lru_cache(maxsize=128)
def _compiled(pattern: str) -> Any:
    """The pattern compiled, or EvalError. Our own small cache instead of regex's (500
    patterns of any size)."""
    import regex  # type: ignore[import-untyped]  # ships no type information

    try:
        return regex.compile(pattern, cache_pattern=False)
    except regex.error as exc:
        raise kinds.EvalError(f"invalid regular expression: {exc}") from None


def compile_pattern(pattern: Any) -> Any:
    """The compiled pattern.

    Raises:
        EvalError: not a string, too long (as written or expanded), or invalid.
    """
    if not isinstance(pattern, str):
        kind = kinds.type_name(pattern)
        raise kinds.EvalError(f"a regular expression must be a string, not a {kind}")
    limit = limits.MAX_PATTERN_CHARS
    if len(pattern) > limit:
        raise kinds.EvalError(f"regular expression longer than {limit:,} characters")
    if expanded_size(pattern) > limit:
        raise kinds.EvalError(f"regular expression repeats too much (over {limit:,} items)")
    return _compiled(pattern)


def _subject(text: Any, function: str) -> str:
    if not isinstance(text, str):
        raise kinds.EvalError(f"{function}() searches a string, not a {kinds.type_name(text)}")
    return text


def match(text: str, pattern: str) -> bool:
    """Whether `pattern` matches anywhere in `text`."""
    compiled = compile_pattern(pattern)
    try:
        found = compiled.search(_subject(text, "match"), timeout=limits.MAX_REGEX_SECONDS)
    except TimeoutError:
        raise kinds.EvalError(_TIMEOUT) from None
    return found is not None


def findall(text: str, pattern: str) -> list[Any]:
    """Every match: the whole match, the group, or a list of the groups."""
    compiled = compile_pattern(pattern)
    groups: int = compiled.groups
    found: list[Any] = []
    try:
        for hit in compiled.finditer(_subject(text, "findall"), timeout=limits.MAX_REGEX_SECONDS):
            if len(found) >= limits.MAX_ITEMS:
                raise kinds.EvalError(f"findall() found more than {limits.MAX_ITEMS:,} matches")
            if groups == 0:
                found.append(hit.group())
            elif groups == 1:
                found.append(hit.group(1) or "")
            else:
                found.append(list(hit.groups("")))
    except TimeoutError:
        raise kinds.EvalError(_TIMEOUT) from None
    return found
