"""Compiling the kernels on any x86-64 CPU: the flags, the targets, remembered failures."""

import os
import shutil
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest
import tensorflow as tf

from amu_tf.kernels import build
from amu_tf.kernels import tiny_attention as kernel

COMPILERS = [c for c in ("g++", "clang++") if shutil.which(c)]
#: CPUs the kernel must compile for, whether or not this machine has them (only loading needs
#: the CPU): the x86-64 ISA levels, and Intel and AMD server parts with and without AVX-512
#: (sapphirerapids turns AVX512-FP16 on, which TensorFlow's Eigen headers cannot compile)
TARGETS = ("x86-64-v2", "x86-64-v3", "x86-64-v4", "sapphirerapids", "icelake-server",
           "znver3", "znver4")
needs_compiler = pytest.mark.skipif(not COMPILERS, reason="no C++ compiler (g++ or clang++)")


@pytest.fixture(scope="module")
def target_results(tmp_path_factory):
    """Every (compiler, target) compiled to an object file, two at a time (two cores)."""
    out = tmp_path_factory.mktemp("targets")
    jobs = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        for cxx in COMPILERS:
            for march in TARGETS:
                if build.compiler_accepts(cxx, f"-march={march}"):
                    folder = out / f"{cxx}-{march}"
                    folder.mkdir()
                    jobs[cxx, march] = pool.submit(build.check_target, tf, kernel.SOURCE, march,
                                                   cxx=shutil.which(cxx), out_dir=folder)
        return {key: job.result() for key, job in jobs.items()}


@needs_compiler
@pytest.mark.slow
@pytest.mark.parametrize("cxx", COMPILERS or ["none"])
@pytest.mark.parametrize("march", TARGETS)
def test_kernel_compiles_for_target(target_results, cxx, march):
    if (cxx, march) not in target_results:
        pytest.skip(f"{cxx} {build.compiler_version(shutil.which(cxx))!r} does not know "
                    f"-march={march}")
    assert target_results[cxx, march] is None, f"{cxx} -march={march}: {target_results[cxx, march]}"


@needs_compiler
def test_unsafe_extensions_are_switched_off_where_the_compiler_knows_them():
    cxx = shutil.which(COMPILERS[0])
    flags = build.target_flags(cxx, "sapphirerapids")
    assert flags[0] == "-march=sapphirerapids"
    assert ("-mno-avx512fp16" in flags) == build.compiler_accepts(cxx, "-mno-avx512fp16")
    assert not build.compiler_accepts(cxx, "-mno-no-such-extension-at-all")


def test_isa_level_from_cpu_flags():
    avx2 = {"cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3", "avx", "avx2",
            "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
    avx512 = avx2 | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl", "avx512_fp16"}
    if build.isa_level(avx2) is None:
        pytest.skip("not an x86-64 machine")
    assert build.isa_level(avx2) == "x86-64-v3"
    assert build.isa_level(avx512) == "x86-64-v4"
    assert build.isa_level(avx512 - {"avx512vl"}) == "x86-64-v3"
    assert build.isa_level({"sse4_2"}) == "x86-64"


def test_targets_try_native_then_the_isa_level_unless_forced(monkeypatch):
    monkeypatch.delenv(build.MARCH_ENV, raising=False)
    targets = build.candidate_targets()
    assert targets[0] == "native"
    monkeypatch.setenv(build.MARCH_ENV, "x86-64-v2")
    assert build.candidate_targets() == ["x86-64-v2"]


@needs_compiler
def test_cache_key_separates_targets_and_cpus(monkeypatch):
    native = build.library_path(tf, kernel.SOURCE, "k", "native")
    assert native == build.library_path(tf, kernel.SOURCE, "k", "native")
    assert native != build.library_path(tf, kernel.SOURCE, "k", "x86-64-v2")
    monkeypatch.setattr(build, "cpu_flags", lambda: frozenset({"sse2"}))
    assert native != build.library_path(tf, kernel.SOURCE, "k", "native")


def _fake_compiler(folder, body):
    """An executable standing in for a compiler: answers --version and -E, runs ``body``
    for a compile, and counts its compiles in ``calls``."""
    script = folder / "fakecxx"
    script.write_text(
        "#!/bin/sh\n"
        'case "$*" in *--version*) echo "fakecxx 1.0"; exit 0;; *" -E "*) exit 0;; esac\n'
        f'echo x >> "{folder}/calls"\n' + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_failed_build_names_compiler_and_flags_and_is_remembered(monkeypatch, tmp_path):
    monkeypatch.setenv("AMU_TF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(build.MARCH_ENV, raising=False)
    cxx = _fake_compiler(tmp_path, 'echo "x.h:1:2: error: no such instruction" >&2; exit 1')
    monkeypatch.setenv("CXX", str(cxx))
    with pytest.raises(build.KernelBuildError) as first:
        build.build(tf, kernel.SOURCE, "k")
    message = str(first.value)
    assert "\n" not in message
    assert "fakecxx -march=native" in message and "error: no such instruction" in message
    n_calls = len((tmp_path / "calls").read_text().split())
    assert n_calls == len(build.candidate_targets())  # native, then the ISA level
    with pytest.raises(build.KernelBuildError, match="remembered"):
        build.build(tf, kernel.SOURCE, "k")  # a new process would not compile again either
    assert len((tmp_path / "calls").read_text().split()) == n_calls
    assert not list((tmp_path / "cache" / "kernels").glob("*.so"))
    assert build.clear_failures() == 1
    with pytest.raises(build.KernelBuildError, match="no such instruction"):
        build.build(tf, kernel.SOURCE, "k")  # forgotten: tries again
    assert len((tmp_path / "calls").read_text().split()) == 2 * n_calls


def test_killed_builds_leave_no_partial_library(monkeypatch, tmp_path):
    monkeypatch.setenv("AMU_TF_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "kernels"
    folder.mkdir(parents=True)
    dead = folder / ".building-999999999-abc.so"  # a builder that was killed
    dead.write_bytes(b"")
    alive = folder / f".building-{os.getpid()}-abc.so"  # one still running
    alive.write_bytes(b"")
    # the compile writes its output and succeeds: the result is renamed into place
    cxx = _fake_compiler(tmp_path, 'while [ "$1" != "-o" ]; do shift; done; echo lib > "$2"')
    monkeypatch.setenv("CXX", str(cxx))
    path = build.build(tf, kernel.SOURCE, "k")
    assert path.read_text() == "lib\n" and path.parent == folder
    assert not dead.exists() and alive.exists()
    assert [p.name for p in folder.glob(".building-*")] == [alive.name]


def test_no_compiler_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    with pytest.raises(build.KernelBuildError, match="no C\\+\\+ compiler found .*"
                       "no-such-compiler is not a program"):
        build.build(tf, kernel.SOURCE, "k")


def test_amu_doctor_names_cpu_compiler_flags_kernel_and_gpu(monkeypatch):
    from click.testing import CliRunner

    from pipelines.cli import amu

    monkeypatch.setenv(kernel.ENV_SWITCH, "0")
    out = CliRunner().invoke(amu, ["doctor"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].startswith("cpu: ")
    assert any(ln.startswith("compiler: ") for ln in lines)
    assert "attention kernel: off (AMU_TF_KERNELS=0)" in out.output
    assert lines[-1].startswith("gpu: ")
    if COMPILERS:
        assert "kernel flags: -march=native" in out.output
    monkeypatch.setenv("CXX", "no-such-compiler")
    out = CliRunner().invoke(amu, ["doctor"])
    assert "compiler: no C++ compiler found ($CXX=no-such-compiler is not a program)" \
        in out.output
