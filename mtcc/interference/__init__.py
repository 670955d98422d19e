"""Interference: stressors, probes and the per-machine calibration of levels.

    from mtcc.interference import calibrate, CacheStressor, StreamStressor
    cal = calibrate(seconds_budget=60, out="calibration.json")   # progress on stderr
    with StreamStressor(cores=[1]):                               # pressure on core 1
        ...                                                       # measure on core 0

See calibration.py for how levels are defined and docs/method.md ("Interference
without hardware counters") for why a software proxy.
"""
from .calibration import (DEFAULT_TOLERANCE, LEVELS, calibrate, choose_levels, compare, load,
                          pressure_check, save, stressor_for_level)
from .probe_process import ProbeProcess
from .probes import PROBES, make_probe, time_probe
from .stressors import CacheStressor, SpinStressor, Stressor, StreamStressor, make_stressor

__all__ = [
    "calibrate", "pressure_check", "save", "load", "compare", "choose_levels", "stressor_for_level", "LEVELS",
    "DEFAULT_TOLERANCE", "Stressor", "CacheStressor", "StreamStressor", "SpinStressor",
    "make_stressor", "ProbeProcess", "PROBES", "make_probe", "time_probe",
]
