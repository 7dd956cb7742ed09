"""Four small Sphinx fixes for the book, loaded by ``_config.yml`` (``sphinx.local_extensions``).

1. **Each inline script once.** With Sphinx 7.4, an inline script that an extension registers
   after the HTML builder started (sphinx-thebe's and sphinx-togglebutton's configuration
   snippets) is kept twice: once under the file name ``None`` and once under ``""``, which
   Sphinx compares as different. The thebe snippet declares ``const`` names, so its second copy
   throws "Identifier 'THEBE_JS_URL' has already been declared" in every reader's browser
   console. Duplicates are dropped just before a page is written.
2. **Lazy exports in the API reference.** ``minissl.methods`` imports each method on first use
   (a module-level ``__getattr__``, PEP 562), so ``dir()`` of the package, which autodoc uses
   to find members, does not list them. When autodoc documents such a module, it is given a
   ``__dir__`` that also lists the names of ``__all__`` that import.

3. **Short references in docstrings.** A docstring written in one module refers to a helper
   by its short name (``:func:`mask_patches```), but the API page documents the class under
   the package that re-exports it, where Sphinx looks for ``minissl.methods.mask_patches`` and
   gives up. A reference that Sphinx cannot resolve is resolved here when exactly one
   documented object of the right kind has that name as its last dotted part(s). A reference
   to an object that exists in the package but is not on the API page (an internal helper)
   is shown as code without a link. Anything else, such as a misspelt or removed name, stays
   unresolved, and the strict build (``-W -n``) reports it.

4. **Only the package's own members.** A class that subclasses another library's class gets
   methods written by that library (matplotlib generates a ``set`` method, with its own
   Sphinx roles, for every ``Figure`` subclass). Members whose ``__module__`` is outside the
   package are left out of the API page.

``tools/browser_check.py`` is the test that sees the first; the strict build and
``tests/test_browser.py`` see the others.
"""

from __future__ import annotations

import sys
import types
from typing import Any


def _key(js: Any) -> tuple:
    filename = getattr(js, "filename", js) or ""
    attributes = getattr(js, "attributes", {}) or {}
    return (filename, getattr(js, "priority", 500),
            tuple(sorted((k, str(v)) for k, v in attributes.items())))


def drop_duplicate_scripts(app: Any, pagename: str, templatename: str, context: dict,
                           doctree: Any) -> None:
    """``html-page-context`` handler: keep the first of equal scripts, in place."""
    files = context.get("script_files")
    if not isinstance(files, list):
        return
    seen: set[tuple] = set()
    kept = []
    for js in files:
        key = _key(js)
        if key not in seen:
            seen.add(key)
            kept.append(js)
    files[:] = kept


def list_lazy_exports(app: Any, what: str, name: str, obj: Any, options: Any,
                      lines: list[str]) -> None:
    """``autodoc-process-docstring`` handler: let ``dir(module)`` show lazy ``__all__`` names.

    autodoc emits this event for a module before it gathers the module's members.
    """
    if what != "module" or not isinstance(obj, types.ModuleType):
        return
    namespace = vars(obj)
    if "__getattr__" not in namespace or "__dir__" in namespace or "__all__" not in namespace:
        return
    exported = []
    for export in namespace["__all__"]:
        try:
            getattr(obj, export)
        except Exception:  # a name that does not import is left to the tests to report
            continue
        exported.append(export)
    names = sorted(set(namespace) | set(exported))
    obj.__dir__ = lambda: names


def resolve_by_suffix(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """``missing-reference`` handler: a unique documented object whose name ends in the target."""
    if node.get("refdomain") != "py":
        return None
    from sphinx.util.nodes import make_refnode

    target = node["reftarget"].lstrip(".~")
    domain = env.get_domain("py")
    objtypes = set(domain.objtypes_for_role(node["reftype"]) or ())
    found = {}
    for fullname, entry in domain.objects.items():
        if (fullname == target or fullname.endswith("." + target)) and entry.objtype in objtypes:
            found.setdefault((entry.docname, entry.node_id), fullname)
    if len(found) == 1:
        (docname, node_id), fullname = next(iter(found.items()))
        return make_refnode(app.builder, node["refdoc"], docname, node_id, contnode, fullname)
    if not found and _exists(target, tuple(app.config.book_fixes_packages)):
        return contnode
    return None


def _exists(target: str, packages: tuple[str, ...]) -> bool:
    """Whether ``target`` (dotted, full or short) names a module or object of ``packages``."""
    for modname, module in list(sys.modules.items()):
        if module is None or modname.split(".")[0] not in packages:
            continue
        if target == modname:
            return True
        rest = target[len(modname) + 1:] if target.startswith(modname + ".") else target
        obj: Any = module
        for part in rest.split("."):
            obj = vars(obj).get(part) if hasattr(obj, "__dict__") else None
            if obj is None:
                break
        else:
            return True
    return False


def skip_foreign_members(app: Any, what: str, name: str, obj: Any, skip: bool,
                         options: Any) -> bool | None:
    """``autodoc-skip-member`` handler: leave out methods another library defined."""
    module = getattr(obj, "__module__", None)
    if what == "class" and isinstance(module, str) and callable(obj):
        if module.split(".")[0] not in app.config.book_fixes_packages:
            return True
    return None


def setup(app: Any) -> dict:
    # Late priority: after every other handler has added its page-specific scripts.
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    app.connect("autodoc-process-docstring", list_lazy_exports)
    app.connect("missing-reference", resolve_by_suffix)
    app.connect("autodoc-skip-member", skip_foreign_members)
    app.add_config_value("book_fixes_packages", ["minissl"], "env")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
