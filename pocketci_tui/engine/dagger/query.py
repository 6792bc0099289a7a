"""The introspection query and its answer: one GraphQL document, parsed into a catalog.

:func:`catalog_query` fetches the module name, its objects, their functions and their arguments
in one round trip, instead of the typed API's one request per field, and tolerates
``defaultValue: null`` (no default), which the typed API rejects. :func:`parse_catalog` turns
the answer into a :class:`~pocketci_tui.model.ModuleCatalog`; :func:`catalog_to_json` and
:func:`catalog_from_json` are the form the cache files keep it in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pocketci_tui.model import ArgSpec, FunctionSpec, ModuleCatalog


class CatalogError(Exception):
    """Introspection failed; the message says what failed and what to do about it."""


MAX_FUNCTIONS = 256
"""The most functions a module's main object may declare; a larger catalog is refused."""

MAX_ARGS = 64
"""The most arguments one function may declare; a larger catalog is refused."""

MAX_NAME = 1024
"""The longest module, function or argument name read; a longer one refuses the catalog."""

MAX_DEFAULT = 64 * 1024
"""The longest default value (JSON) of an argument; a longer one refuses the catalog."""

MAX_DESCRIPTION = 1000
"""Characters of a function's description kept."""


def _name(value: Any, what: str, module_dir: Path) -> str:
    text = str(value)
    if len(text) > MAX_NAME:
        raise CatalogError(
            f"the Dagger module at {module_dir} has a {what} name of {len(text)} characters, "
            f"more than the {MAX_NAME} pocketci-tui reads"
        )
    return text


_PRIMITIVES = {
    "STRING_KIND": "String",
    "INTEGER_KIND": "Int",
    "FLOAT_KIND": "Float",
    "BOOLEAN_KIND": "Boolean",
    "VOID_KIND": "Void",
}

_TYPE_FIELDS = "kind optional asObject { name } asInterface { name } asEnum { name } " + (
    "asScalar { name }"
)


def _type_selection(depth: int) -> str:
    """Select a TypeDef's kind and name, following list element types ``depth`` levels."""
    if depth == 0:
        return _TYPE_FIELDS
    return f"{_TYPE_FIELDS} asList {{ elementTypeDef {{ {_type_selection(depth - 1)} }} }}"


def catalog_query(module_ref: str) -> str:
    """Return the GraphQL document that introspects the module at ``module_ref`` at once.

    The argument is written inline as a GraphQL string literal, as the SDK's query builder
    does (JSON string escapes are valid GraphQL string escapes).
    """
    return (
        "query ModuleCatalog { "
        f"moduleSource(refString: {json.dumps(module_ref)}) {{ asModule {{ name "
        "objects { asObject { name functions { name description "
        f"args {{ name defaultValue typeDef {{ {_type_selection(3)} }} }} }} }} }} }} }} }}"
    )


def _type_name(type_def: dict[str, Any]) -> str:
    kind = str(type_def.get("kind") or "")
    if kind == "LIST_KIND":
        element = (type_def.get("asList") or {}).get("elementTypeDef") or {}
        return f"[{_type_name(element)}]"
    for key in ("asObject", "asInterface", "asEnum", "asScalar"):
        named = type_def.get(key)
        if isinstance(named, dict) and named.get("name"):
            return str(named["name"])
    return _PRIMITIVES.get(kind, kind.removesuffix("_KIND").title() or "Unknown")


def _default_json(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _bounded_default(value: Any, function: str, module_dir: Path) -> str | None:
    text = _default_json(value)
    if text is not None and len(text) > MAX_DEFAULT:
        raise CatalogError(
            f"an argument of the function {function!r} of the Dagger module at {module_dir} "
            f"has a default of {len(text)} characters, more than the {MAX_DEFAULT} "
            "pocketci-tui reads"
        )
    return text


def main_object_name(module_name: str) -> str:
    """The main object's name: the module name in PascalCase (``my-ci`` -> ``MyCi``).

    Follows strcase ``ToCamel``: words break at ``_``, space, ``-`` and ``.``, and after
    digits; letters inside a word keep their case.
    """
    out: list[str] = []
    cap_next = True
    for ch in module_name.strip():
        if ch.isascii() and ch.isalpha():
            out.append(ch.upper() if cap_next else ch)
            cap_next = False
        elif ch.isascii() and ch.isdigit():
            out.append(ch)
            cap_next = True
        else:
            cap_next = ch in "_ -."
    return "".join(out)


def parse_catalog(data: dict[str, Any], module_dir: Path) -> ModuleCatalog:
    """Turn the answer to :func:`catalog_query` into a :class:`ModuleCatalog`.

    Raises:
        CatalogError: The answer lacks the module or its main object.
    """
    try:
        module = data["moduleSource"]["asModule"]
        name = _name(module["name"], "module", module_dir)
        objects = module["objects"] or []
    except (KeyError, TypeError) as exc:
        raise CatalogError(f"unexpected introspection answer for {module_dir}: {exc}") from exc
    wanted = main_object_name(name)
    main = None
    for obj in objects:
        as_object = (obj or {}).get("asObject")
        if isinstance(as_object, dict) and as_object.get("name") == wanted:
            main = as_object
            break
    if main is None:
        raise CatalogError(
            f"the Dagger module {name!r} at {module_dir} has no main object {wanted!r}; "
            "check that its code defines it"
        )
    declared = main.get("functions") or []
    if len(declared) > MAX_FUNCTIONS:
        raise CatalogError(
            f"the Dagger module {name!r} at {module_dir} declares {len(declared)} functions, "
            f"more than the {MAX_FUNCTIONS} pocketci-tui reads; split it into smaller modules"
        )
    functions = []
    for fn in declared:
        fn_name = _name(fn["name"], "function", module_dir)
        raw_args = fn.get("args") or []
        if len(raw_args) > MAX_ARGS:
            raise CatalogError(
                f"the function {fn_name!r} of the Dagger module at {module_dir} declares "
                f"{len(raw_args)} arguments, more than the {MAX_ARGS} pocketci-tui reads"
            )
        args = tuple(
            ArgSpec(
                name=_name(a["name"], "argument", module_dir),
                type_name=_name(_type_name(a.get("typeDef") or {}), "type", module_dir),
                optional=bool((a.get("typeDef") or {}).get("optional")),
                default_json=_bounded_default(a.get("defaultValue"), fn_name, module_dir),
            )
            for a in raw_args
        )
        functions.append(
            FunctionSpec(
                name=fn_name,
                args=args,
                description=str(fn.get("description") or "")[:MAX_DESCRIPTION],
            )
        )
    return ModuleCatalog(module_name=name, functions=tuple(functions))


def catalog_to_json(catalog: ModuleCatalog) -> dict[str, Any]:
    """A JSON-able form of ``catalog`` (the cache files' payload)."""
    return {
        "module_name": catalog.module_name,
        "functions": [
            {
                "name": f.name,
                "description": f.description,
                "args": [
                    {
                        "name": a.name,
                        "type_name": a.type_name,
                        "optional": a.optional,
                        "default_json": a.default_json,
                    }
                    for a in f.args
                ],
            }
            for f in catalog.functions
        ],
    }


def catalog_from_json(data: dict[str, Any]) -> ModuleCatalog:
    """Inverse of :func:`catalog_to_json`."""
    return ModuleCatalog(
        module_name=str(data["module_name"]),
        functions=tuple(
            FunctionSpec(
                name=str(f["name"]),
                description=str(f.get("description", "")),
                args=tuple(
                    ArgSpec(
                        name=str(a["name"]),
                        type_name=str(a["type_name"]),
                        optional=bool(a["optional"]),
                        default_json=a["default_json"],
                    )
                    for a in f["args"]
                ),
            )
            for f in data["functions"]
        ),
    )
