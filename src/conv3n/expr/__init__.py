"""The expression language of SPEC §3: `{{ ... }}` templates over a safe subset of Python.

Pure: no I/O. `compile_config` + `Compiled.render` serve the engine; `compile_expression` +
`evaluate` serve blocks that evaluate expressions themselves.
"""

from conv3n.expr.evaluator import Scope, evaluate
from conv3n.expr.functions import FUNCTIONS, METHODS, EvalError, to_json_text, to_text
from conv3n.expr.parse import (
    DOLLAR_NAMES,
    Expression,
    ParseError,
    Template,
    compile_expression,
    split_template,
)
from conv3n.expr.render import (
    Compiled,
    ConfigParseErrors,
    RenderError,
    compile_config,
    iter_strings,
    render_value,
    to_json_value,
)

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
