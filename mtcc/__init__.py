"""mtcc: a multi-tenant, interference-aware compiler toolchain for ONNX models on CPUs.

Python API (mirrors the CLI):
    mtcc.inspect(path, input_shapes=None)  -> dict   what mtcc will tune
    mtcc.compile(path, schedules=DIR)      -> Compiled (.session().run(*arrays))
"""
from .errors import BadInput, EnvironmentProblem, FellShort, MtccError

__version__ = "0.1.0"


def inspect(path, input_shapes=None, target=None):
    """See mtcc.api.inspect (imported lazily: TVM takes a second to load)."""
    from .api import inspect as _inspect

    return _inspect(path, input_shapes=input_shapes, target=target)


def compile(model, schedules=None, target=None, input_shapes=None, layout=None):  # noqa: A001
    """See mtcc.api.compile: an ONNX model built with the best records of a schedules folder."""
    from .api import compile as _compile

    return _compile(model, schedules=schedules, target=target, input_shapes=input_shapes, layout=layout)


__all__ = ["inspect", "compile", "MtccError", "BadInput", "EnvironmentProblem", "FellShort", "__version__"]
