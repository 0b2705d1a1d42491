"""The worker's own load-time validation (azure-functions-runtime, Python 3.13): what makes the real
host report FunctionLoadError, run offline on a function app script."""

from __future__ import annotations

import types
from pathlib import Path


def validate_app(script: str | Path) -> list[str]:
    """Index `script` as the Python worker does and return the names of the functions it accepts.

    Raises the worker's FunctionLoadError (or the indexing error) when a binding does not match.
    """
    from azure_functions_runtime.bindings.meta import load_binding_registry
    from azure_functions_runtime.functions import Registry
    from azure_functions_runtime.loader import index_function_app

    load_binding_registry()
    protos = types.SimpleNamespace(BindingInfo=types.SimpleNamespace(in_=0, out=1, inout=2, undefined=0))
    registry = Registry()
    names = []
    for function in index_function_app(str(script)):
        info = registry.add_indexed_function(function=function, protos=protos)
        names.append(info.name)
    return names
