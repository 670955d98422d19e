"""Benchmarks: isolated latency against ONNX Runtime / OpenVINO (single.py); the
multi-tenant QoS benchmark follows."""
