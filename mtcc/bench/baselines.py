"""The systems mtcc is compared with: ONNX Runtime (and OpenVINO when installed).

Also the source of truth for numerics: tests compare mtcc's outputs with ONNX
Runtime's on seeded random inputs.
"""
from __future__ import annotations

import numpy as np

from ..errors import EnvironmentProblem


def random_inputs(model, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded N(0,1) inputs (integers in [0, 8) for integer inputs), keyed by input name."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for info in model.inputs:
        dtype = np.dtype(info.dtype)
        if np.issubdtype(dtype, np.integer):
            feeds[info.name] = rng.integers(0, 8, size=info.shape).astype(dtype)
        elif dtype == np.bool_:
            feeds[info.name] = rng.integers(0, 2, size=info.shape).astype(bool)
        else:
            feeds[info.name] = rng.standard_normal(info.shape).astype(dtype)
    return feeds


def random_feeds(inputs: list[dict], seed: int = 0) -> dict[str, np.ndarray]:
    """random_inputs for inputs as a manifest lists them ([{"name", "shape", "dtype"}])."""
    import types

    return random_inputs(types.SimpleNamespace(inputs=[types.SimpleNamespace(**i) for i in inputs]), seed)


class OnnxRuntime:
    name = "onnxruntime"

    def __init__(self, model, threads: int = 1):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(model.proto.SerializeToString(), opts,
                                            providers=["CPUExecutionProvider"])
        self.names = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(self.names, feeds)


class OpenVino:
    """OpenVINO on the CPU; precision "f32" for a like-for-like comparison, or None for
    the plugin's default (bf16 on AMX CPUs: faster, less exact).  `config` entries
    override the defaults below (e.g. {"ENABLE_CPU_PINNING": False} where several
    processes share cores)."""

    name = "openvino"

    def __init__(self, model, threads: int = 1, precision: str | None = "f32", config: dict | None = None):
        try:
            import openvino as ov
        except ImportError as e:
            raise EnvironmentProblem(f"openvino is not installed ({e})") from None
        core = ov.Core()
        settings = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"}
        if precision:
            settings["INFERENCE_PRECISION_HINT"] = precision
        settings.update(config or {})
        ov_model = core.read_model(model.proto.SerializeToString())
        self.compiled = core.compile_model(ov_model, "CPU", settings)
        self.request = self.compiled.create_infer_request()
        if precision is None:
            self.name = "openvino-default"

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        result = self.request.infer(feeds)
        return [np.asarray(result[o]) for o in self.compiled.outputs]
