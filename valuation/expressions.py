"""Value formulas as data: a tiny, safe expression language.

An indicator's value formula (built in or added by an admin) is text such as

    Q * reservoir_cost
    Q * sediment_share / soil_bulk_density * dredging_cost
    Q * abatement_cost[item]

It is parsed with Python's `ast` module and then checked against a whitelist: numbers, names,
`+ - * /`, unary minus/plus, parentheses, and `name[item]` (the price-book parameter
`name.<item of the quantity row>`). Anything else (calls, attributes, `**`, comparisons, strings,
lambdas ...) is refused, and the text is never handed to `eval`. Evaluation walks the checked
tree over numpy arrays, so a formula is vectorised over all rows of a run at once.

The same walker propagates physical dimensions (ecovalue.units), so a formula whose result is not
money (yuan) is refused when it is defined, not discovered when a run produces nonsense.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, cast

import numpy as np

from ecovalue.units import Dimension, combine, show_dimension

MAX_FORMULA_LENGTH = 500
MAX_NODES = 200

#: name of the physical quantity of the row inside a formula
QUANTITY = "Q"
#: the subscript that selects a per-item parameter: `market_price[item]`
ITEM = "item"

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,59}$")


class FormulaError(ValueError):
    """The formula text is not in the whitelisted language (message says why)."""


@dataclasses.dataclass(frozen=True)
class Formula:
    """A parsed, whitelisted formula."""

    text: str
    tree: ast.expr

    @property
    def parameters(self) -> tuple[str, ...]:
        """Parameter names used (item parameters as `name[]`), sorted, without Q."""
        return tuple(sorted(_names(self.tree) - {QUANTITY}))

    @property
    def uses_quantity(self) -> bool:
        return QUANTITY in _names(self.tree)

    @property
    def item_parameters(self) -> tuple[str, ...]:
        """Base names of `name[item]` parameters."""
        return tuple(sorted(n[:-2] for n in _names(self.tree) if n.endswith("[]")))



def _item_key(node: ast.Subscript) -> str:
    """`name[]` for `name[item]`: `parse` admits only a plain name before the brackets."""
    return cast(ast.Name, node.value).id + "[]"


def _names(node: ast.AST) -> set[str]:
    """Names a formula refers to; `name[item]` is reported as `name[]`."""
    if isinstance(node, ast.Subscript):
        return {_item_key(node)}
    if isinstance(node, ast.Name):
        return {node.id}
    found: set[str] = set()
    for child in ast.iter_child_nodes(node):
        found |= _names(child)
    return found


_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div)
_UNARY = (ast.UAdd, ast.USub)


def _check(node: ast.AST) -> None:
    if isinstance(node, ast.BinOp):
        if not isinstance(node.op, _BINOPS):
            raise FormulaError(f"operator {type(node.op).__name__} is not allowed; "
                               "use + - * / and parentheses")
        _check(node.left)
        _check(node.right)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, _UNARY):
            raise FormulaError(f"operator {type(node.op).__name__} is not allowed")
        _check(node.operand)
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise FormulaError(f"only numbers are allowed as constants, not {node.value!r}")
        if not np.isfinite(float(node.value)):
            raise FormulaError("constants must be finite numbers")
    elif isinstance(node, ast.Name):
        if node.id == ITEM:
            raise FormulaError("'item' may only appear as a subscript: name[item]")
        if not _NAME_RE.match(node.id):
            raise FormulaError(f"invalid name {node.id!r}")
        if node.id.startswith("__"):
            raise FormulaError(f"invalid name {node.id!r}")
    elif isinstance(node, ast.Subscript):
        if not (isinstance(node.value, ast.Name) and isinstance(node.slice, ast.Name)
                and node.slice.id == ITEM):
            raise FormulaError("subscripts must have the form name[item]")
        if node.value.id == QUANTITY or not _NAME_RE.match(node.value.id):
            raise FormulaError(f"invalid item parameter {node.value.id!r}")
    else:
        raise FormulaError(f"{type(node).__name__} is not allowed in a formula; use numbers, "
                           "names, + - * / and parentheses")


@lru_cache(maxsize=512)
def parse(text: str) -> Formula:
    """Parse and whitelist-check a formula; raises FormulaError with a human message."""
    if not isinstance(text, str) or not text.strip():
        raise FormulaError("the formula is empty")
    if len(text) > MAX_FORMULA_LENGTH:
        raise FormulaError(f"the formula is longer than {MAX_FORMULA_LENGTH} characters")
    if any(ch in text for ch in "\n\r;\\"):
        raise FormulaError("the formula must be a single expression on one line")
    try:
        module = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"syntax error at column {exc.offset}: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise FormulaError("the formula is too deeply nested") from None
    tree = module.body
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_NODES:
        raise FormulaError(f"the formula has more than {MAX_NODES} elements")
    try:
        _check(tree)
    except RecursionError:
        raise FormulaError("the formula is too deeply nested") from None
    return Formula(text.strip(), tree)


# --- evaluation --------------------------------------------------------------------------------

#: resolves a name (`Q`, `reservoir_cost`, `abatement_cost[]`) to a value: a scalar or an array
Resolver = Callable[[str], Any]


def evaluate(formula: Formula, resolve: Resolver) -> Any:
    """Evaluate over numpy arrays/scalars. `resolve("name[]")` returns the per-row array of the
    item parameter. Division by zero yields inf/nan (callers check finiteness)."""

    def walk(node: ast.AST) -> Any:
        if isinstance(node, ast.BinOp):
            left, right = walk(node.left), walk(node.right)
            op = node.op
            if isinstance(op, ast.Add):
                return left + right
            if isinstance(op, ast.Sub):
                return left - right
            if isinstance(op, ast.Mult):
                return left * right
            return np.divide(left, right)
        if isinstance(node, ast.UnaryOp):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.Constant):
            return float(cast(float, node.value))  # `parse` admits numbers only
        if isinstance(node, ast.Name):
            return resolve(node.id)
        if isinstance(node, ast.Subscript):
            return resolve(_item_key(node))
        raise FormulaError(f"unexpected {type(node).__name__}")  # pragma: no cover - checked

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return walk(formula.tree)


# --- dimensions --------------------------------------------------------------------------------


def dimension_of(formula: Formula, dimensions: Mapping[str, Dimension]) -> Dimension:
    """The physical dimension of the formula's result, given the dimension of every name
    (`name[]` for item parameters). Adding unlike dimensions raises FormulaError."""

    def walk(node: ast.AST) -> Dimension:
        if isinstance(node, ast.BinOp):
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, (ast.Add, ast.Sub)):
                if left != right:
                    raise FormulaError(
                        f"cannot add or subtract {show_dimension(left)} and "
                        f"{show_dimension(right)} in "
                        f"{ast.unparse(node)!r}")
                return left
            return combine(left, right, 1 if isinstance(node.op, ast.Mult) else -1)
        if isinstance(node, ast.UnaryOp):
            return walk(node.operand)
        if isinstance(node, ast.Constant):
            return ()
        # what is left is a name: `parse` admits no other node
        key = _item_key(node) if isinstance(node, ast.Subscript) else cast(ast.Name, node).id
        if key not in dimensions:
            raise FormulaError(f"the unit of {key.replace('[]', '[item]')!r} is not declared")
        return dimensions[key]

    return walk(formula.tree)
