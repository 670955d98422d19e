"""mtcc: a multi-tenant, interference-aware compiler toolchain for ONNX models on CPUs.

Python API (mirrors the CLI):
    mtcc.inspect(path, input_shapes=None)  -> dict   what mtcc will tune
    mtcc.compile(path, schedules=DIR)      -> Compiled (.session().run(*arrays))
    mtcc.pack(path, schedules=DIR, out=F)  -> dict     one verified, deterministic bundle file
    mtcc.load(F)                           -> LoadedBundle (.run(*arrays), .variants, .select)
"""
from .errors import BadInput, EnvironmentProblem, FellShort, MtccError
from .threads import default_thread_placement

# Before any TVM thread pool starts in this process (see mtcc/threads.py).
default_thread_placement()

__version__ = "0.1.0"


def inspect(path, input_shapes=None, target=None):
    """See mtcc.api.inspect (imported lazily: TVM takes a second to load)."""
    from .api import inspect as _inspect

    return _inspect(path, input_shapes=input_shapes, target=target)


def compile(model, schedules=None, target=None, input_shapes=None, layout=None):  # noqa: A001
    """See mtcc.api.compile: an ONNX model built with the best records of a schedules folder."""
    from .api import compile as _compile

    return _compile(model, schedules=schedules, target=target, input_shapes=input_shapes, layout=layout)


def pack(model, schedules, out, input_shapes=None, max_blocks=None, progress=None):
    """See mtcc.pack.pack: MODEL + schedules folder -> one bundle file; returns its summary."""
    from .packing import pack as _pack

    return _pack(model, schedules, out, input_shapes=input_shapes, max_blocks=max_blocks, progress=progress)


def load(path):
    """See mtcc.pack.load: verifies a bundle completely, then loads it (LoadedBundle)."""
    from .packing import load as _load

    return _load(path)


__all__ = ["inspect", "compile", "pack", "load", "MtccError", "BadInput", "EnvironmentProblem", "FellShort", "__version__"]
