"""What the machine is: CPU model, cache sizes, cores, counters, vCPU sharing.

Read from /proc and /sys (Linux); anything missing reads as None rather than
failing, because calibration must still record what it could measure.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from pathlib import Path

# The workplace's TSC-gap tool lives beside the repository (../shared/tools); a user
# elsewhere can point MTCC_VCPU_SHARING_TOOL at a copy.  Absent: the state is "unknown".
VCPU_SHARING_TOOL = Path(os.environ.get("MTCC_VCPU_SHARING_TOOL")
                         or Path(__file__).resolve().parents[3] / "shared" / "tools" / "vcpu-sharing")
_SIZE_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def _parse_size(text: str) -> int:
    text = text.strip()
    return int(text[:-1]) * _SIZE_UNITS[text[-1]] if text[-1] in _SIZE_UNITS else int(text)


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def description() -> dict:
    """This machine as a tune run and a bench report record it: the CPU's model name,
    LLVM's name for it (the model name hides the generation on these VMs: "AMD EPYC"
    is a Zen 3 or a Zen 4), cores, Python."""
    from ..target import host_mcpu

    return {"cpu": cpu_model() or platform.processor(), "llvm_cpu": host_mcpu(), "cores": os.cpu_count(),
            "python": platform.python_version()}


def caches(cpu: int = 0) -> list[dict]:
    """Data and unified caches of `cpu`: level, size in bytes and which CPUs share it."""
    found = []
    for index in sorted(Path(f"/sys/devices/system/cpu/cpu{cpu}/cache").glob("index*")):
        try:
            kind = (index / "type").read_text().strip()
            if kind == "Instruction":
                continue
            found.append({"level": int((index / "level").read_text()), "type": kind,
                          "bytes": _parse_size((index / "size").read_text()),
                          "shared_cpu_list": (index / "shared_cpu_list").read_text().strip()})
        except (OSError, ValueError):
            continue
    return found


def cache_bytes(level: int, default: int) -> int:
    """Size of the level-`level` cache of cpu0, or `default` when /sys does not say."""
    sizes = [c["bytes"] for c in caches() if c["level"] == level]
    return max(sizes) if sizes else default


def llc_bytes() -> int:
    """Last-level cache size.  On a VM this may be the host's figure (docs/tvm-notes.md: 480 MiB)."""
    return cache_bytes(3, cache_bytes(2, 32 << 20))


def cores() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def hardware_counters() -> dict:
    """Whether `perf stat` can count instructions; else the runtime uses the software proxy."""
    if not shutil.which("perf"):
        return {"available": False, "reason": "perf not installed", "proxy": "software"}
    try:
        out = subprocess.run(["perf", "stat", "-x,", "-e", "instructions", "true"],
                             capture_output=True, text=True, timeout=10).stderr
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"available": False, "reason": f"perf failed: {e}", "proxy": "software"}
    if "<not supported>" in out or "<not counted>" in out or "instructions" not in out:
        return {"available": False, "reason": "perf stat: instructions <not supported>",
                "proxy": "software"}
    return {"available": True, "reason": "perf stat counts instructions", "proxy": "counters"}


def vcpu_sharing(seconds: float = 1.0) -> dict:
    """Run the shared vcpu-sharing tool: are cpu0 and cpu1 truly concurrent right now?
    On some hosts they take turns on one physical CPU and every co-run reads ~2x."""
    if not VCPU_SHARING_TOOL.exists() or len(cores()) < 2:
        return {"state": "unknown", "reason": "tool absent or fewer than 2 cores"}
    try:
        proc = subprocess.run([str(VCPU_SHARING_TOOL), "--json", "--seconds", str(seconds)],
                              capture_output=True, text=True, timeout=30 + 3 * seconds)
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError) as e:
        return {"state": "unknown", "reason": f"vcpu-sharing failed: {e}"}


def load_average() -> list[float]:
    """Other work on the machine adds noise to every ratio: record how much there was."""
    return [round(x, 2) for x in os.getloadavg()]


def cpu_slug() -> str:
    """A file-name-friendly name of this CPU, e.g. "amd-epyc" (per-machine calibration files)."""
    import re

    name = (cpu_model() or "unknown-cpu").lower()
    return re.sub(r"[^a-z0-9]+", "-", name).strip("-")[:60] or "unknown-cpu"
