"""The bundle container: round trip, identical bytes, and every refusal (issue 6)."""
from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
import tvm

from mtcc import cpu
from mtcc.bundle import container as bundle
from mtcc.bundle.container import open_bundle, write_bundle
from mtcc.errors import BadInput, EnvironmentProblem
from conftest import HOST_MCPU

LIB = b"\x7fELF not really a library " * 300  # spans several 512-byte blocks


def _manifest(**over) -> dict:
    m = {
        "model": {"name": "tiny", "sha256": "0" * 64},
        "target": {"string": "llvm -mcpu=x86-64-v4 -num-cores=2", "mcpu": "x86-64-v4", "num_cores": 2},
        "cpu_features": ["avx2", "avx512bw", "avx512f", "fma"],
        "tvm_version": tvm.__version__,
        "inputs": [{"name": "x", "shape": [1, 3, 16, 16], "dtype": "float32"}],
        "outputs": [{"name": "y", "shape": [1, 8, 16, 16], "dtype": "float32"}],
        "blocks": [{"id": 0, "calls": [0, 1]}],
        "variants": [{"task": "conv", "ids": [0, 1], "latency_us": {"1": [10.5, 12.0]}}],
        "library": "lib/model.so",
    }
    m.update(over)
    return m


def _members() -> dict[str, bytes]:
    return {
        "lib/model.so": LIB,
        "weights/w.npy": bundle.npy_bytes(np.arange(24, dtype=np.float32).reshape(2, 3, 4)),
        "plan.json": bundle.canonical_json({"calls": []}),
    }


@pytest.fixture
def host_cpu(monkeypatch):
    """A CPU with everything the test manifests ask for, whatever machine runs the tests."""
    monkeypatch.setenv(cpu.FAKE_ENV, "avx2,avx512bw,avx512f,fma,sse4_1")


@pytest.fixture
def good(tmp_path, host_cpu):
    path = tmp_path / "m.mtcc"
    write_bundle(path, _manifest(), _members())
    return path


def _refused(path, exc=BadInput, *words):
    with pytest.raises(exc) as info:
        open_bundle(path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg, msg
    for w in words:
        assert w in msg, msg
    return info.value


def _retar(path, entries):
    """Rewrite the container with (name, bytes) entries as given, bypassing the writer."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in entries:
            tar.addfile(bundle._tarinfo(name, len(data)), io.BytesIO(data))
    path.write_bytes(buf.getvalue())


def _entries(path):
    with tarfile.open(path, "r:") as tar:
        return [(i.name, tar.extractfile(i).read()) for i in tar.getmembers()]


def _member_offset(path, name):
    with tarfile.open(path, "r:") as tar:
        return tar.getmember(name).offset_data


def test_round_trip(good, tmp_path):
    b = open_bundle(good)
    assert b.manifest["format"] == "mtcc-bundle" and b.manifest["format_version"] == 1
    assert b.manifest["members"]["lib/model.so"] == {"sha256": bundle.sha256(LIB), "size": len(LIB)}
    assert b.manifest["variants"] == _manifest()["variants"]
    assert sorted(b.names) == sorted(_members())
    assert b.member("lib/model.so") == LIB
    np.testing.assert_array_equal(b.array("weights/w.npy"), np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    assert b.json("plan.json") == {"calls": []}
    lib = b.extract_library(tmp_path)
    assert lib.read_bytes() == LIB
    with tarfile.open(good, "r:") as tar:  # fixed layout: manifest first, then sorted, no owners/times
        infos = tar.getmembers()
    assert [i.name for i in infos] == ["manifest.json", "lib/model.so", "plan.json", "weights/w.npy"]
    assert all(i.mtime == 0 and i.uid == 0 and i.uname == "" and i.mode == 0o644 for i in infos)


def test_same_members_same_bytes(tmp_path, host_cpu):
    a = write_bundle(tmp_path / "a.mtcc", _manifest(), _members())
    shuffled = dict(reversed(list(_members().items())))
    b = write_bundle(tmp_path / "b.mtcc", dict(reversed(list(_manifest().items()))), shuffled)
    assert (tmp_path / "a.mtcc").read_bytes() == (tmp_path / "b.mtcc").read_bytes()
    assert a["sha256"] == b["sha256"] and a["size"] == (tmp_path / "a.mtcc").stat().st_size
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("keep", ["half", "minus_one", "inside_member", "headers_only"])
def test_truncated(good, keep):
    data = good.read_bytes()
    cut = {"half": len(data) // 2, "minus_one": len(data) - 1,
           "inside_member": _member_offset(good, "lib/model.so") + 1024, "headers_only": 512}[keep]
    good.write_bytes(data[:cut])
    _refused(good, BadInput, "truncated or not an mtcc bundle")


def test_flipped_byte_in_member(good):
    data = bytearray(good.read_bytes())
    data[_member_offset(good, "lib/model.so") + 700] ^= 0x01
    good.write_bytes(data)
    err = _refused(good, BadInput, "'lib/model.so'", "sha256 mismatch")
    assert err.exit_code == 2


def test_flipped_byte_anywhere_is_refused(good):
    """Headers (checksummed), manifest (self-hash), members (sha256) and padding (zeros)."""
    data = good.read_bytes()
    for pos in list(range(0, 1024)) + list(range(1024, len(data), 61)):
        flipped = bytearray(data)
        flipped[pos] ^= 0x20
        good.write_bytes(flipped)
        with pytest.raises(BadInput):
            open_bundle(good)


def test_missing_member(good):
    _retar(good, [(n, d) for n, d in _entries(good) if n != "weights/w.npy"])
    _refused(good, BadInput, "'weights/w.npy'", "missing")


def test_unlisted_member(good):
    _retar(good, _entries(good) + [("extra.bin", b"surprise")])
    _refused(good, BadInput, "'extra.bin'", "not listed")


def test_unknown_format_version(good):
    entries = _entries(good)
    manifest = json.loads(entries[0][1])
    manifest["format_version"] = 7
    _retar(good, [("manifest.json", bundle.canonical_json(manifest))] + entries[1:])
    _refused(good, BadInput, "format version 7")


def test_altered_manifest(good):
    entries = _entries(good)
    manifest = json.loads(entries[0][1])
    manifest["variants"][0]["latency_us"]["1"][0] = 1.0  # well-formed, but not what was packed
    _retar(good, [("manifest.json", bundle.canonical_json(manifest))] + entries[1:])
    _refused(good, BadInput, "manifest.json", "sha256 mismatch")


def test_cpu_lacking_feature(good, monkeypatch):
    monkeypatch.setenv(cpu.FAKE_ENV, "avx2,avx512f,fma")  # no avx512bw
    err = _refused(good, EnvironmentProblem, "avx512bw")
    assert err.exit_code == 3
    open_bundle(good, check_environment=False)  # still readable for inspection


def test_other_tvm_version(tmp_path, host_cpu):
    path = tmp_path / "old.mtcc"
    write_bundle(path, _manifest(tvm_version="0.19.0"), _members())
    err = _refused(path, EnvironmentProblem, "0.19.0", tvm.__version__)
    assert err.exit_code == 3


@pytest.mark.parametrize("name", ["../evil.so", "/etc/passwd", "lib/../../x", "a//b", "./x"])
def test_path_traversal_refused(good, name):
    entries = _entries(good)
    manifest = json.loads(entries[0][1])
    manifest["members"][name] = {"sha256": bundle.sha256(b"x"), "size": 1}
    _retar(good, [("manifest.json", bundle.canonical_json(manifest))] + entries[1:] + [(name, b"x")])
    _refused(good, BadInput, "unsafe member name")
    with pytest.raises(BadInput, match="unsafe|absolute|'\\.'"):
        write_bundle(good.parent / "w.mtcc", _manifest(), {**_members(), name: b"x"})


@pytest.mark.parametrize("kind", ["missing", "directory", "empty", "garbage", "gzip"])
def test_not_a_bundle(tmp_path, kind):
    path = tmp_path / "x.mtcc"
    if kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(bytes(range(256)) * 8)
    elif kind == "gzip":  # compressed containers are not the format
        import gzip
        path.write_bytes(gzip.compress(b"\0" * 4096))
    with pytest.raises(BadInput) as info:
        open_bundle(path)
    assert str(path) in str(info.value)


def test_required_features():
    v4 = cpu.required_features_for_mcpu("x86-64-v4")
    assert {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl", "avx2", "fma", "bmi2"} <= set(v4)
    assert "amx_int8" in cpu.required_features_for_mcpu("sapphirerapids")
    assert "avx512_vnni" in cpu.required_features_for_mcpu("znver4")
    assert "pku" not in cpu.required_features_for_mcpu("znver4")  # system features are not code
    assert cpu.normalize("sse4.1") == "sse4_1" and cpu.normalize("AVX512VNNI") == "avx512_vnni"


def test_cpuinfo_parsing(tmp_path, monkeypatch):
    monkeypatch.delenv(cpu.FAKE_ENV, raising=False)
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse4_1 avx2 avx512bw\n\nprocessor\t: 1\n")
    assert cpu.cpu_features(info) == {"fpu", "sse4_1", "avx2", "avx512bw"}
    assert cpu.cpu_features(tmp_path / "none") == set()
    assert cpu.missing_features(["avx512bw", "avx512f"], {"avx512bw"}) == ["avx512f"]


def test_real_library_loads(tmp_path, monkeypatch):
    """A compiled model in a bundle: verified, extracted, loaded, same numbers as in memory."""
    import onnx
    from tvm import relax

    from mtcc import frontend, target
    from mtcc.tune import compile as build
    from tests import onnx_factory

    monkeypatch.delenv(cpu.FAKE_ENV, raising=False)
    onnx.save(onnx_factory.tiny_conv(), tmp_path / "tiny.onnx")
    model, mod = frontend.import_model(tmp_path / "tiny.onnx")
    tgt = target.make_target(HOST_MCPU, 1)
    compiled = build.compile_module(mod, tgt)
    compiled.executable.export_library(tmp_path / "model.so")
    manifest = bundle.make_manifest(
        model_name=model.name, model_sha256=model.sha256, target=tgt, blocks=[], variants=[],
        inputs=[i.as_dict() for i in model.inputs], outputs=[o.as_dict() for o in model.outputs])
    write_bundle(tmp_path / "tiny.mtcc", manifest, {"lib/model.so": (tmp_path / "model.so").read_bytes()})

    b = open_bundle(tmp_path / "tiny.mtcc")
    (tmp_path / "x").mkdir()
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(b.extract_library(tmp_path / "x"))), tvm.cpu())
    x = np.random.default_rng(0).normal(size=(1, 3, 16, 16)).astype(np.float32)
    got = vm["main"](tvm.runtime.tensor(x)).numpy()
    np.testing.assert_allclose(got, compiled.session().run(x)[0], rtol=1e-6, atol=1e-6)


def test_feed_checker_accepts_what_check_feeds_accepts_and_names_the_rest():
    # The servers' fast input check: valid requests pass as the very arrays given; every
    # fault gets check_feeds' own message, naming the input.
    from collections import OrderedDict

    import numpy as np

    from mtcc.errors import BadInput
    from mtcc.runtime.loader import FeedChecker, check_feeds

    inputs = [{"name": "x", "shape": [1, 3], "dtype": "float32"}, {"name": "ids", "shape": [2], "dtype": "int64"}]
    check = FeedChecker(inputs)
    x, ids = np.zeros((1, 3), "float32"), np.arange(2)
    got = check({"ids": ids, "x": x}, "submit m")
    assert got[0] is x and got[1] is ids
    # not a dict, or not numpy: the general path, same result
    for feeds in (OrderedDict(x=x, ids=ids), {"x": x, "ids": ids.tolist()}):
        assert [a.tolist() for a in check(feeds, "submit m")] == [x.tolist(), ids.tolist()]
    bad = [{"x": x}, {"x": x, "ids": ids, "y": x}, {"x": x.astype("float64"), "ids": ids},
           {"x": np.zeros((3, 1), "float32"), "ids": ids}, {"x": x, "ids": ids.astype(">i8")}, [x, ids]]
    for feeds in bad:
        with pytest.raises(BadInput) as fast:
            check(feeds, "submit m")
        with pytest.raises(BadInput) as full:
            check_feeds(inputs, feeds, "submit m")
        assert str(fast.value) == str(full.value)
