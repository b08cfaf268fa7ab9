"""``calculator``: arithmetic for the model, evaluated by walking Python's ``ast`` — never ``eval``.

Only numbers, ``+ - * / // % **`` (and ``^`` as power, as on calculators), unary signs, brackets and a few
functions from :mod:`math` are understood — ``[ ]`` and ``{ }`` group like parentheses, as in school arithmetic
(small models like to write ``{1234} + 4321``); anything else (names, attributes, calls to other functions, strings,
comprehensions …) is refused with a message the model can act on. Work is bounded: the input length, the size of
the expression tree, and the size of every intermediate integer are capped, so no expression can make the
process spin or eat memory (``9 ** 9 ** 9`` is refused before it is computed).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable

from langchain_core.tools import BaseTool, ToolException, tool

MAX_EXPRESSION_CHARS = 500
MAX_NODES = 200
MAX_INT_BITS = 4096  # about 1,200 decimal digits
MAX_EXPONENT = 10_000

Number = int | float
_BRACKETS = str.maketrans("[]{}", "()()")

_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.BitXor: operator.pow,  # "2^10" means a power to anyone but a programmer
}
_UNARY: dict[type[ast.unaryop], Callable[[Number], Number]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
FUNCTIONS: dict[str, Callable[..., Number]] = {
    "abs": abs,
    "round": round,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "floor": math.floor,
    "ceil": math.ceil,
}
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


class CalculatorError(ValueError):
    """An expression the calculator will not or cannot evaluate; the message is meant for the model."""


def evaluate(expression: str) -> Number:
    """The value of ``expression``, or ``CalculatorError`` saying what is wrong with it."""
    text = expression.strip()
    if not text:
        raise CalculatorError("The expression is empty.")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"The expression is longer than {MAX_EXPRESSION_CHARS} characters.")
    try:
        tree = ast.parse(text.translate(_BRACKETS), mode="eval")
    except SyntaxError as exc:
        raise CalculatorError("The expression is not valid arithmetic.") from exc
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise CalculatorError("The expression is too complex.")
    try:
        return _eval(tree.body)
    except ZeroDivisionError as exc:
        raise CalculatorError("Division by zero.") from exc
    except OverflowError as exc:
        raise CalculatorError("The result is too large.") from exc
    except (ValueError, TypeError) as exc:
        if isinstance(exc, CalculatorError):
            raise
        raise CalculatorError("A function was given a value outside its domain.") from exc


def format_number(value: Number) -> str:
    """Integers in full; floats to 12 significant digits, without a trailing ``.0`` on whole numbers."""
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(value, ".12g")
    return str(value)


def _eval(node: ast.expr) -> Number:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise CalculatorError("Only numbers are allowed.")
        return _checked(node.value)
    if isinstance(node, ast.BinOp):
        binary = _BINARY.get(type(node.op))
        if binary is None:
            raise CalculatorError(f"The operator {type(node.op).__name__} is not supported.")
        left, right = _eval(node.left), _eval(node.right)
        if binary is operator.pow:
            _check_power(left, right)
        return _checked(binary(left, right))
    if isinstance(node, ast.UnaryOp):
        unary = _UNARY.get(type(node.op))
        if unary is None:
            raise CalculatorError(f"The operator {type(node.op).__name__} is not supported.")
        return _checked(unary(_eval(node.operand)))
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise CalculatorError(f"Unknown name {node.id!r}; known constants: {', '.join(CONSTANTS)}.")
    if isinstance(node, ast.Call):
        return _call(node)
    if isinstance(node, ast.Attribute):
        raise CalculatorError("Attributes are not allowed.")
    raise CalculatorError(f"{type(node).__name__} is not allowed in arithmetic.")


def _call(node: ast.Call) -> Number:
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        name = node.func.id if isinstance(node.func, ast.Name) else "that"
        raise CalculatorError(f"{name!r} is not a known function; known: {', '.join(FUNCTIONS)}.")
    if node.keywords or not 1 <= len(node.args) <= 2 or any(isinstance(a, ast.Starred) for a in node.args):
        raise CalculatorError(f"{node.func.id}() takes one or two plain arguments.")
    args = [_eval(arg) for arg in node.args]
    if node.func.id == "round" and len(args) == 2 and (not isinstance(args[1], int) or abs(args[1]) > 100):
        raise CalculatorError("round() takes a whole number of digits between -100 and 100.")
    return _checked(FUNCTIONS[node.func.id](*args))


def _check_power(base: Number, exponent: Number) -> None:
    if abs(exponent) > MAX_EXPONENT:
        raise CalculatorError(f"Exponents are limited to ±{MAX_EXPONENT}.")
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        if abs(base).bit_length() * exponent > MAX_INT_BITS:
            raise CalculatorError("The result is too large.")


def _checked(value: Number) -> Number:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalculatorError("The result is too large.")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError("The result is not a finite number.")
    return value


def make_calculator() -> BaseTool:
    """The ``calculator`` tool (a new instance each time; nothing is built at import)."""

    @tool("calculator")
    async def calculator(expression: str) -> str:
        """Evaluate an arithmetic expression written with digits and operators, and return the result.

        Supports + - * / // % ** (or ^), brackets, pi, e, and sqrt, exp, log, log10, log2, sin, cos, tan,
        floor, ceil, abs, round; for example "2 * (3 + 4) ** 2". Use it for any arithmetic instead of computing
        in your head.
        """
        try:
            return format_number(evaluate(expression))
        except CalculatorError as exc:
            raise ToolException(f"Cannot evaluate {expression[:80]!r}: {exc}") from exc

    return calculator
