"""Benchmarks users run: `mtcc bench --single` (isolated latency against ONNX Runtime
and OpenVINO) and the baselines it drives."""
