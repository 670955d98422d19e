"""The front of the flow: an ONNX model into a Relax module, lowered and cut into the
operator tasks every later stage names.

    onnx_import  ONNX file -> checked model + Relax IRModule (shapes fixed, weights bound)
    layout       convolutions in NCHW16c (one AVX-512 register per 16 channels)
    tasks        the shared lowering (legalize + fuse), tasks, FLOPs, the call sequence
"""
from .onnx_import import Model, TensorInfo, import_model, load, parse_input_shapes, to_relax

__all__ = ["Model", "TensorInfo", "import_model", "load", "parse_input_shapes", "to_relax"]
