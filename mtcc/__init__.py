"""mtcc: a multi-tenant, interference-aware compiler toolchain for ONNX models on CPUs.

Python API (mirrors the CLI):
    mtcc.inspect(path, input_shapes=None)  -> dict   what mtcc will tune
    mtcc.compile(path, schedules=DIR)      -> Compiled (.session().run(*arrays))
    mtcc.pack(path, schedules=DIR, out=F)  -> dict     one verified, deterministic bundle file
    mtcc.load(F)                           -> LoadedBundle (.run(*arrays), .variants, .select)
    mtcc.Server({name: F, ...}, cores, policy, qos_ms) -> a multi-tenant server (.submit, .stats)
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


def pack(model, schedules, out, input_shapes=None, max_blocks=None, min_block_us=None, target=None, progress=None):
    """See mtcc.packing.packer.pack: MODEL + schedules folder -> one bundle file; returns its summary."""
    from .packing import pack as _pack

    return _pack(model, schedules, out, input_shapes=input_shapes, max_blocks=max_blocks,
                 min_block_us=min_block_us, target=target, progress=progress)


def load(path):
    """See mtcc.runtime.loader.load: verifies a bundle completely, then loads it (LoadedBundle)."""
    from .runtime.loader import load as _load

    return _load(path)


def __getattr__(name):
    # mtcc.Server, imported on first use (it pulls in numpy and multiprocessing).
    if name == "Server":
        from .runtime.server import Server

        return Server
    raise AttributeError(f"module 'mtcc' has no attribute {name!r}")


__all__ = ["Server", "inspect", "compile", "pack", "load", "MtccError", "BadInput", "EnvironmentProblem", "FellShort", "__version__"]
