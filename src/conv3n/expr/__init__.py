"""The expression language of SPEC §3: `{{ ... }}` templates over a safe subset of Python.

Pure: no I/O. `compile_config` + `Compiled.render` serve the engine; `compile_expression` +
`evaluate` serve blocks that evaluate expressions themselves. docs/expressions.md is the
user's guide; limits.py holds the bounds on time and memory.
"""

from conv3n.expr.evaluator import Scope, evaluate
from conv3n.expr.functions import FUNCTIONS, METHODS
from conv3n.expr.kinds import EvalError, to_json_text, to_text
from conv3n.expr.parse import DOLLAR_NAMES, Expression, ParseError, compile_expression
from conv3n.expr.render import (
    Compiled,
    ConfigParseErrors,
    RenderError,
    compile_config,
    iter_strings,
    render_value,
    to_json_value,
)
from conv3n.expr.template import Template, split_template

__all__ = [
    "DOLLAR_NAMES",
    "FUNCTIONS",
    "METHODS",
    "Compiled",
    "ConfigParseErrors",
    "EvalError",
    "Expression",
    "ParseError",
    "RenderError",
    "Scope",
    "Template",
    "compile_config",
    "compile_expression",
    "evaluate",
    "iter_strings",
    "render_value",
    "split_template",
    "to_json_text",
    "to_json_value",
    "to_text",
]
