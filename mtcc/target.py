"""Choosing and naming the compilation target.

TVM 0.27 takes targets as dicts.  An unknown `mcpu` (including "native") only logs
an error and silently builds for a generic x86 without AVX, so every name is
checked with LLVM before use.  The portable choice for this project's machines
(Intel Sapphire Rapids and AMD Zen 4, both AVX-512) is `x86-64-v4`
(avx512f/bw/cd/dq/vl): committed schedules use it.
"""
from __future__ import annotations

import json
import os
import re

from .errors import BadInput

PORTABLE_MCPU = "x86-64-v4"
TRIPLE = "x86_64-unknown-linux-gnu"
# x86-64 microarchitecture levels, newest first: what code compiled for each may use.
PORTABLE_LEVELS = ("x86-64-v4", "x86-64-v3", "x86-64-v2", "x86-64")


def available_cores() -> int:
    """Cores this process may run on (respects taskset / cgroup affinity)."""
    return len(os.sched_getaffinity(0))


def host_mcpu() -> str:
    """LLVM's name for this CPU (e.g. znver4; Sapphire Rapids reads as rocketlake)."""
    from tvm.target import codegen

    return str(codegen.llvm_get_system_cpu())


def runnable_here(mcpu: str) -> bool:
    """Whether this CPU has every extension code compiled for `mcpu` may use."""
    from .cpu import missing_features, required_features_for_mcpu

    return not missing_features(required_features_for_mcpu(mcpu))


def host_portable_mcpu() -> str:
    """The newest portable level this CPU runs: x86-64-v4 (AVX-512) on the project's
    usual machines, x86-64-v3 (AVX2) on many hosted CI runners and older servers."""
    return next((level for level in PORTABLE_LEVELS if runnable_here(level)), PORTABLE_LEVELS[-1])


def _check_mcpu(mcpu: str, flag: str) -> None:
    from tvm.target import codegen

    if not codegen.llvm_is_valid_cpu(mcpu, TRIPLE):
        raise BadInput(
            f"{flag}: LLVM does not know the CPU '{mcpu}' (try {PORTABLE_MCPU}, znver4, "
            "sapphirerapids, skylake-avx512)"
        )


def make_target(mcpu: str | None = None, num_cores: int | None = None, flag: str = "--target"):
    """A TVM llvm target for `mcpu` (default: the host) using `num_cores` threads."""
    import tvm

    mcpu = mcpu or host_mcpu()
    _check_mcpu(mcpu, flag)
    return tvm.target.Target(
        {"kind": "llvm", "mcpu": mcpu, "num-cores": int(num_cores or available_cores())}
    )


def parse_target(spec: str | None, num_cores: int | None = None):
    """Accepts None (host), an mcpu name ("x86-64-v4"), "llvm -mcpu=NAME [-num-cores=N]"
    or a JSON dict as TVM takes it."""
    import tvm

    if spec is None or spec in ("", "host", "native"):
        return make_target(None, num_cores)
    spec = spec.strip()
    if spec.startswith("{"):
        try:
            config = json.loads(spec)
        except json.JSONDecodeError as e:
            raise BadInput(f"--target: not valid JSON ({e.msg})") from None
        if config.get("kind") != "llvm":
            raise BadInput("--target: only llvm (CPU) targets are supported")
        _check_mcpu(config.get("mcpu", "generic"), "--target")
        config.setdefault("num-cores", num_cores or available_cores())
        return tvm.target.Target(config)
    if spec.startswith("llvm"):
        mcpu = re.search(r"-mcpu=(\S+)", spec)
        cores = re.search(r"-num-cores=(\d+)", spec)
        return make_target(mcpu.group(1) if mcpu else None,
                           int(cores.group(1)) if cores else num_cores)
    return make_target(spec, num_cores)


def target_mcpu(target) -> str:
    return str(target.attrs.get("mcpu", "generic"))


def target_cores(target) -> int:
    return int(target.attrs.get("num-cores", 1))


def target_name(target) -> str:
    """Folder-friendly name, e.g. "llvm-x86-64-v4"."""
    return f"{target.kind.name}-{target_mcpu(target)}"


def describe(target) -> str:
    return f"llvm -mcpu={target_mcpu(target)} -num-cores={target_cores(target)}"
