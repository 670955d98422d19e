"""Packing: a model and its finished schedules folder into one bundle file.

    plan_builder  the call plan from the lowered module (TVM's own memory plan)
    blocks        the plan cut into layer blocks, each with its latency table
    packer        every kept variant built into one library; the bundle written
"""
from .packer import pack

__all__ = ["pack"]
