"""User-written email templates, rendered without trusting them.

Admins write subjects and bodies in Jinja2 ({{ contact_name }}, {% if %}, {% for %}). A template is untrusted
input that runs on the server for every recipient, so it gets:

- Jinja2's ImmutableSandboxedEnvironment (no attribute walks to `__globals__`/`__subclasses__`, no mutation),
  with autoescaping for the HTML part and no `safe` filter, so contact data can never become markup;
- plain dicts of strings and numbers as data (never ORM objects), and no globals but a bounded `range`;
- a small set of statements (output, `if`, `for` nested at most two deep; no `set`, `with`, macros, includes),
  a whitelist of filters and string methods whose results are bounded, no `*` or `**` on text, a cap on how
  many variables a template may reference;
- at render time a cap on the output size and a deadline, enforced by a watchdog that interrupts the render.

`compile_template` checks a template when it is saved (syntax, unknown variables, the rules above, a trial
render), so most problems are reported to the admin before anything is sent.
"""

from __future__ import annotations

import ctypes
import heapq
import itertools
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.filters import FILTERS
from jinja2.runtime import LoopContext, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from app.services.errors import ValidationFailed

MAX_SOURCE_CHARS = 100_000
MAX_OUTPUT_CHARS = 1_000_000
MAX_RENDER_SECONDS = 1.0
MAX_LOOP_DEPTH = 2
MAX_RANGE = 1_000
MAX_VARIABLE_REFERENCES = 2_000
MAX_POWER = 64

_ALLOWED_STATEMENTS = (nodes.Template, nodes.Output, nodes.If, nodes.For)
_GROWING_FILTERS = {"replace", "join"}
_SAFE_FILTERS = {
    "abs",
    "capitalize",
    "count",
    "d",
    "default",
    "e",
    "escape",
    "first",
    "float",
    "int",
    "last",
    "length",
    "lower",
    "round",
    "string",
    "striptags",
    "title",
    "trim",
    "truncate",
    "upper",
    "urlencode",
}
# String methods a template may call: none of them can make a string much longer than its inputs.
_STR_METHODS = {
    "capitalize",
    "casefold",
    "endswith",
    "isalnum",
    "isalpha",
    "isdigit",
    "islower",
    "isspace",
    "istitle",
    "isupper",
    "lower",
    "lstrip",
    "removeprefix",
    "removesuffix",
    "rstrip",
    "split",
    "startswith",
    "strip",
    "swapcase",
    "title",
    "upper",
    "replace",
}
_DICT_METHODS = {"get", "items", "keys", "values"}


class TemplateProblem(ValidationFailed):
    """A template that cannot be saved or rendered; the message says why, for the admin who wrote it."""

    def __init__(self, message: str, field: str = "template"):
        super().__init__({field: message})


class _RenderTimeout(BaseException):
    """Raised inside a render that passed its deadline (BaseException: template code cannot catch it)."""


def _projected_replace(text: str, old: str, new: str, count: int = -1) -> int:
    occurrences = (len(text) + 1) if old == "" else text.count(old)
    if count is not None and count >= 0:
        occurrences = min(occurrences, count)
    return len(text) + occurrences * (len(new) - len(old))


def _check_size(size: int) -> None:
    if size > MAX_OUTPUT_CHARS:
        raise SecurityError(f"the result would be longer than {MAX_OUTPUT_CHARS:,} characters")


def _bounded_replace(eval_ctx: Any, text: Any, old: Any, new: Any, count: int | None = None) -> Any:
    _check_size(_projected_replace(str(text), str(old), str(new), -1 if count is None else count))
    return FILTERS["replace"](eval_ctx, text, old, new, count)


def _bounded_join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> Any:
    items = list(value)[: MAX_OUTPUT_CHARS + 1]
    _check_size(sum(len(str(i)) for i in items) + len(str(d)) * max(0, len(items) - 1))
    return FILTERS["join"](eval_ctx, items, d, attribute)


_bounded_replace.jinja_pass_arg = FILTERS["replace"].jinja_pass_arg  # type: ignore[attr-defined]
_bounded_join.jinja_pass_arg = FILTERS["join"].jinja_pass_arg  # type: ignore[attr-defined]


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise SecurityError(f"range() may count at most {MAX_RANGE:,} numbers")
    return numbers


class _Quiet(Undefined):
    """An unknown name renders as nothing (unknown names are refused when a template is saved; one removed
    since, such as a deleted custom field, must not stop a send)."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        return self

    __getitem__ = __getattr__  # type: ignore[assignment]


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*" and (isinstance(left, str | list | tuple) or isinstance(right, str | list | tuple)):
            raise SecurityError("text cannot be repeated with *")
        if operator == "**" and (not isinstance(right, int | float) or abs(right) > MAX_POWER):
            raise SecurityError(f"powers above {MAX_POWER} are not allowed")
        if operator == "%" and isinstance(left, str):
            raise SecurityError("text cannot be formatted with %")
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, str) and attribute not in _STR_METHODS:
            raise SecurityError(f"the text method {attribute}() is not allowed in templates")
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, str) and isinstance(argument, str):
            return self.getattr(obj, argument)
        return super().getitem(obj, argument)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (Jinja's signature)
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str):
            if name not in _STR_METHODS:
                raise SecurityError(f"the text method {name}() is not allowed in templates")
            if name == "replace" and len(args) >= 2:
                _check_size(_projected_replace(owner, str(args[0]), str(args[1]), *args[2:3]))
        elif owner is not None and not _allowed_method(owner, name):
            raise SecurityError(f"{name}() is not allowed in templates")
        return super().call(__context, __obj, *args, **kwargs)


def _allowed_method(owner: Any, name: str) -> bool:
    """Methods of the data (plain dicts) and of `loop`; str methods are checked by `_Sandbox.call` itself."""
    return (isinstance(owner, dict) and name in _DICT_METHODS) or isinstance(owner, LoopContext)


def _environment(html: bool) -> _Sandbox:
    env = _Sandbox(autoescape=html, undefined=_Quiet, trim_blocks=True, lstrip_blocks=True)
    env.filters = {name: FILTERS[name] for name in _SAFE_FILTERS}
    env.filters.update(replace=_bounded_replace, join=_bounded_join)
    env.tests = {name: env.tests[name] for name in ("defined", "undefined", "none", "number", "string", "even", "odd")}
    env.globals = {"range": _bounded_range}
    return env


_ENVIRONMENTS = {True: _environment(True), False: _environment(False)}


# --- the watchdog ------------------------------------------------------------------------------------------


class _Watchdog:
    """One thread that interrupts renders past their deadline (PyThreadState_SetAsyncExc: the exception is
    raised in the rendering thread at its next bytecode, which template loops always reach)."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._heap: list[tuple[float, int, int]] = []
        self._active: dict[int, int] = {}  # ticket -> thread id
        self._fired: set[int] = set()
        self._tickets = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> int:
        ticket = next(self._tickets)
        with self._lock:
            self._active[ticket] = threading.get_ident()
            heapq.heappush(self._heap, (time.monotonic() + seconds, ticket, threading.get_ident()))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="template-watchdog", daemon=True)
                self._thread.start()
            self._lock.notify()
        return ticket

    def disarm(self, ticket: int) -> bool:
        """Stop watching; True when the deadline fired (a pending interruption is withdrawn)."""
        with self._lock:
            thread_id = self._active.pop(ticket, None)
            fired = ticket in self._fired
            self._fired.discard(ticket)
            if fired and thread_id is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)
        return fired

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._heap and self._heap[0][1] not in self._active:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._lock.wait()
                    continue
                deadline, ticket, thread_id = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._lock.wait(wait)
                    continue
                heapq.heappop(self._heap)
                self._fired.add(ticket)
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(_RenderTimeout))


_WATCHDOG = _Watchdog()


# --- compiling and rendering -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledTemplate:
    source: str
    html: bool
    _template: Any

    def render(self, data: Mapping[str, Any]) -> str:
        """The template filled with `data` (names to strings, numbers, booleans or None). TemplateProblem when
        it uses something not allowed, runs past its deadline or writes too much."""
        context = {k: v for k, v in data.items() if v is None or isinstance(v, str | int | float | bool)}
        pieces: list[str] = []
        size = 0
        ticket = _WATCHDOG.arm(MAX_RENDER_SECONDS)
        timed_out = False
        try:
            try:
                for piece in self._template.generate(context):
                    size += len(piece)
                    if size > MAX_OUTPUT_CHARS:
                        raise TemplateProblem(f"This template writes more than {MAX_OUTPUT_CHARS:,} characters.")
                    pieces.append(piece)
            finally:
                timed_out = _WATCHDOG.disarm(ticket)
        except _RenderTimeout:
            timed_out = True
        except SecurityError as exc:
            raise TemplateProblem(f"This template uses something that is not allowed: {exc}.") from None
        except AttributeError as exc:  # the sandbox refused an internal attribute (`__class__`, `__globals__`)
            raise TemplateProblem(f"This template uses something that is not allowed: {exc}.") from None
        except (UndefinedError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
            raise TemplateProblem(f"This template could not be filled in: {exc}.") from None
        if timed_out:
            raise TemplateProblem(
                f"This template takes longer than {MAX_RENDER_SECONDS:g} s to fill in; simplify its loops."
            )
        return "".join(pieces)


def _statement_problem(tree: nodes.Template) -> str | None:
    references = 0

    def walk(node: nodes.Node, depth: int) -> str | None:
        nonlocal references
        if isinstance(node, nodes.Stmt) and not isinstance(node, _ALLOWED_STATEMENTS):
            tag = type(node).__name__.lower().replace("assignblock", "set").replace("assign", "set")
            return f"{{% {tag} %}} is not available in email templates: use {{% if %}} and {{% for %}} only"
        if isinstance(node, nodes.For):
            depth += 1
            if depth > MAX_LOOP_DEPTH:
                return f"loops can be nested at most {MAX_LOOP_DEPTH} deep"
        if isinstance(node, nodes.Name):
            if node.name == "self":  # Jinja's reference to the template itself: nothing an email needs
                return "{{ self }} is not available in email templates"
            references += 1
            if references > MAX_VARIABLE_REFERENCES:
                return f"a template may use variables at most {MAX_VARIABLE_REFERENCES:,} times"
        for child in node.iter_child_nodes():
            if problem := walk(child, depth):
                return problem
        return None

    return walk(tree, 0)


def _loop_names(tree: nodes.Template) -> set[str]:
    names = set()
    for loop in tree.find_all(nodes.For):
        names.add("loop")
        names.update(n.name for n in loop.target.find_all(nodes.Name))
        if isinstance(loop.target, nodes.Name):
            names.add(loop.target.name)
    return names


def compile_template(
    source: str, *, html: bool, allowed: Iterable[str], field: str = "template", sample: Mapping[str, Any] | None = None
) -> CompiledTemplate:
    """Check and compile a template. `allowed` are the variable names it may use; `sample` (defaults to
    every allowed name set to a short text) is rendered once, so runtime problems show up at save time."""
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateProblem(f"A template can be at most {MAX_SOURCE_CHARS:,} characters long.", field)
    env = _ENVIRONMENTS[html]
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"Line {exc.lineno}: {exc.message}.", field) from None
    if problem := _statement_problem(tree):
        raise TemplateProblem(f"This template cannot be used: {problem}.", field)
    allowed = set(allowed)
    try:
        undeclared = meta.find_undeclared_variables(tree)
    except TemplateSyntaxError as exc:  # a filter that does not exist or is not allowed
        raise TemplateProblem(f"Line {exc.lineno}: {exc.message}", field) from None
    unknown = sorted(undeclared - allowed - set(env.globals) - _loop_names(tree))
    if unknown:
        names = ", ".join("{{ " + n + " }}" for n in unknown)
        raise TemplateProblem(
            f"Unknown variable{'s' if len(unknown) > 1 else ''}: {names}. Use one of the listed variables.", field
        )
    try:
        compiled = CompiledTemplate(source=source, html=html, _template=env.from_string(tree))
    except TemplateSyntaxError as exc:  # e.g. a filter that does not exist or is not allowed
        raise TemplateProblem(f"Line {exc.lineno}: {exc.message}", field) from None
    try:
        compiled.render(sample if sample is not None else {name: "Sample" for name in allowed})
    except TemplateProblem as exc:
        raise TemplateProblem(exc.message, field) from None
    return compiled
