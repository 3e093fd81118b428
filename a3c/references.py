"""Code named by reference ('module:attribute'), imported only when the caller allows it.

A checkpoint or a config file may name code: the module of a 'module:Env-v0' id, an env factory,
wrappers, a custom torso. Loading such a file must never run that code by itself (a file is data),
so every import of a named module goes through `resolve`, which refuses unless told that the
caller trusts it: the user typed the name (training), or passed ``trust_code=True`` /
``--trust-code`` when loading a file.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from a3c.errors import UntrustedCodeError

TRUST_HINT = "if you trust the file, pass --trust-code (trust_code=True in Python)"
_REFERENCE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


def reference_of(obj: Any, allow_main: bool = False) -> str | None:
    """'module:qualname' of a class or function that can be imported again, else None (a lambda,
    a function defined inside another, an object made at run time).

    allow_main: also name what the running script defines ('__main__:make_env'); worker processes
    forked for this run can resolve it, a later process cannot.
    """
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not name or "<" in name or (module == "__main__" and not allow_main):
        return None
    try:
        found = _get(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    return f"{module}:{name}" if found is obj else None


def is_reference(text: str) -> bool:
    return _REFERENCE.fullmatch(text) is not None


def check_trusted(module: str, what: str, trusted: bool) -> None:
    """Raise UntrustedCodeError unless importing `module` (for `what`) is allowed."""
    if not trusted:
        raise UntrustedCodeError(f"{what} names the module {module!r}, which would run its code on "
                                 f"import; it was not imported: {TRUST_HINT}")


def resolve(reference: str, what: str, trusted: bool, error: type[Exception]) -> Any:
    """The object 'module:attribute' names, imported only if trusted.

    `error` is the exception type for a reference that is malformed or does not resolve (the
    caller's: EnvError for an env factory, ConfigError for a torso, ...).
    """
    if not is_reference(reference):
        raise error(f"{what}: {reference!r} is not a reference of the form module:attribute")
    module, _, name = reference.partition(":")
    check_trusted(module, what, trusted)
    try:
        imported = importlib.import_module(module)
    except ImportError as exc:
        raise error(f"{what}: cannot import module {module!r}: {exc}") from None
    try:
        return _get(imported, name)
    except AttributeError:
        raise error(f"{what}: module {module!r} has no attribute {name!r}") from None


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj
