"""mtcc: a multi-tenant, interference-aware compiler toolchain for ONNX models on CPUs.

Python API (mirrors the CLI):
    mtcc.inspect(path, input_shapes=None)  -> dict   what mtcc will tune
"""
from .errors import BadInput, EnvironmentProblem, FellShort, MtccError

__version__ = "0.1.0"


def inspect(path, input_shapes=None, target=None):
    """See mtcc.api.inspect (imported lazily: TVM takes a second to load)."""
    from .api import inspect as _inspect

    return _inspect(path, input_shapes=input_shapes, target=target)


__all__ = ["inspect", "MtccError", "BadInput", "EnvironmentProblem", "FellShort", "__version__"]
