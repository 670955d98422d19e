"""Which instruction-set extensions this CPU has, and which a compiled target needs.

A bundle records the extensions its code may use; loading refuses it on a CPU that
lacks one (exit 3) instead of dying on SIGILL mid-inference.  Names follow Linux's
/proc/cpuinfo flags ("avx512bw", "avx512_vnni", "sse4_1"); LLVM's spellings
("avx512vnni", "sse4.1", "amx-int8") are accepted everywhere and normalized.

MTCC_FAKE_CPU_FEATURES="avx2,fma,..." replaces the detected set, so tests (and
users checking a bundle for another machine) can simulate a CPU.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

FAKE_ENV = "MTCC_FAKE_CPU_FEATURES"

# LLVM feature → /proc/cpuinfo flag, for the extensions generated numeric code can
# contain.  LLVM also lists tuning hints ("fast-gather") and system features (pku,
# shstk, rdpid, xsave) that compiled kernels never execute: requiring those would
# refuse good machines, e.g. VMs that hide pku, so they are left out on purpose.
# Baseline x86-64 (sse, sse2, cmov, cx8) is implied by the triple and not listed.
LLVM_TO_LINUX = {
    "sse3": "pni",
    "ssse3": "ssse3",
    "sse4.1": "sse4_1",
    "sse4.2": "sse4_2",
    "sse4a": "sse4a",
    "popcnt": "popcnt",
    "lzcnt": "abm",
    "bmi": "bmi1",
    "bmi2": "bmi2",
    "movbe": "movbe",
    "cx16": "cx16",
    "f16c": "f16c",
    "fma": "fma",
    "avx": "avx",
    "avx2": "avx2",
    "avxvnni": "avx_vnni",
    "avx512f": "avx512f",
    "avx512bw": "avx512bw",
    "avx512cd": "avx512cd",
    "avx512dq": "avx512dq",
    "avx512vl": "avx512vl",
    "avx512ifma": "avx512ifma",
    "avx512vbmi": "avx512vbmi",
    "avx512vbmi2": "avx512_vbmi2",
    "avx512vnni": "avx512_vnni",
    "avx512bitalg": "avx512_bitalg",
    "avx512vpopcntdq": "avx512_vpopcntdq",
    "avx512bf16": "avx512_bf16",
    "avx512fp16": "avx512_fp16",
    "amx-tile": "amx_tile",
    "amx-int8": "amx_int8",
    "amx-bf16": "amx_bf16",
    "gfni": "gfni",
    "vaes": "vaes",
    "vpclmulqdq": "vpclmulqdq",
    "pclmul": "pclmulqdq",
    "aes": "aes",
    "sha": "sha_ni",
    "adx": "adx",
}
_ALIASES = {**LLVM_TO_LINUX, "sse4_1": "sse4_1", "sse4_2": "sse4_2", "lzcnt": "abm"}


def normalize(name: str) -> str:
    """One spelling per extension: the /proc/cpuinfo flag."""
    name = name.strip().lower()
    return _ALIASES.get(name, name)


def _parse(names: Iterable[str]) -> set[str]:
    return {normalize(n) for n in names if n.strip()}


def cpu_features(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The extensions this CPU reports (empty when unknown, e.g. not Linux x86).

    Linux clears a flag when the kernel does not enable the state it needs (AVX-512
    without XSAVE support, say), so the flags are what user code may really run."""
    fake = os.environ.get(FAKE_ENV)
    if fake is not None:
        return _parse(fake.replace(" ", ",").split(","))
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":  # the first CPU stands for all: flags are uniform on x86 Linux
            return _parse(value.split())
    return set()


def from_llvm(llvm_features: Iterable[str]) -> list[str]:
    """LLVM feature names → the sorted /proc/cpuinfo flags that matter for running code."""
    return sorted({LLVM_TO_LINUX[f] for f in llvm_features if f in LLVM_TO_LINUX})


def required_features(target) -> list[str]:
    """The extensions code compiled for this TVM llvm target may use, as LLVM sees them
    (mcpu plus any `mattr` additions or removals)."""
    from tvm.target import codegen

    return from_llvm(str(f) for f in codegen.llvm_get_cpu_features(target))


def required_features_for_mcpu(mcpu: str) -> list[str]:
    """E.g. "x86-64-v4" → [..., "avx2", "avx512bw", "avx512cd", "avx512dq", "avx512f", ...]."""
    import tvm

    return required_features(tvm.target.Target({"kind": "llvm", "mcpu": mcpu}))


def missing_features(required: Iterable[str], have: set[str] | None = None) -> list[str]:
    """The required extensions this CPU (or `have`) lacks, sorted."""
    have = cpu_features() if have is None else _parse(have)
    return sorted(_parse(required) - have)


def check_can_run(target, what: str) -> None:
    """EnvironmentProblem (exit 3) before `what` runs code compiled for `target` on a CPU
    lacking one of its extensions: a clear refusal instead of SIGILL mid-inference.
    Inspecting, tuning for another machine (with --rpc-tracker) and packing run no such
    code and are not checked."""
    from .errors import EnvironmentProblem

    missing = missing_features(required_features(target))
    if missing:
        mcpu = str(target.attrs.get("mcpu", "?"))
        raise EnvironmentProblem(f"{what}: this CPU lacks {', '.join(missing)}, needed by code compiled for "
                                 f"{mcpu}; run it on a CPU that has them, or compile for this CPU "
                                 f"(e.g. --target x86-64-v3)")
