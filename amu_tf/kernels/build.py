"""Compiling amu-tf's C++ TensorFlow ops: the compiler, the flags, the cache.

The ops are compiled on first use with the system's C++ compiler against the installed
TensorFlow's headers and cached in ``$AMU_TF_CACHE_DIR/kernels`` (default
``~/.cache/amu_tf/kernels``) under a name that hashes the source, TensorFlow's version, the
compiler's version, the full command line and the CPU's flags, so one home folder shared by
machines of different CPUs or compilers is safe.

**Flags.** The kernel is tuned for the CPU it runs on (``-march=native``), minus the
instruction-set extensions listed in :data:`UNSAFE_EXTENSIONS`: TensorFlow's bundled Eigen
headers do not compile with them (AVX512-FP16 under g++ 12: ``PacketMathFP16.h: expected
initializer before '<'``), and an op compiled with a narrower instruction set is as fast here
(it uses no half-precision arithmetic). Each ``-mno-...`` is passed only when the compiler
knows it (g++ < 12 does not know avx512fp16, and cannot turn it on either). If that build
still fails, the x86-64 ISA level the CPU supports (``x86-64-v4``, ``-v3``, ``-v2``, read from
``/proc/cpuinfo``) is tried before giving up. ``AMU_TF_KERNEL_MARCH`` forces one target.

**Failures are remembered**: a build that failed writes ``<library>.failed`` with its one-line
reason, and later processes report it without compiling again (the key includes the
compiler's version, so installing another compiler retries); ``amu doctor --rebuild`` or
deleting the file retries by hand. The library is compiled under a temporary name and renamed
into place, so a partial library is never loaded; temporary files of killed builds are removed
by the next build.
"""

import fcntl
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from amu_tf.artifacts import pid_alive

#: extensions that TensorFlow's headers cannot be compiled with: always switched off
UNSAFE_EXTENSIONS = ("avx512fp16",)
#: environment variables: the compiler, and a forced ``-march`` target
CXX_ENV = "CXX"
MARCH_ENV = "AMU_TF_KERNEL_MARCH"
_BASE_FLAGS = ("-shared", "-fPIC", "-O3", "-fopenmp-simd", "-w")
#: CPU flags (``/proc/cpuinfo``) each x86-64 ISA level needs beyond the previous one
_ISA_LEVELS = (
    ("x86-64-v4", {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}),
    ("x86-64-v3", {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}),
    ("x86-64-v2", {"cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"}),
)


class KernelBuildError(RuntimeError):
    """The op could not be compiled; the message is one line naming compiler and flags."""


def cache_dir():
    root = os.environ.get("AMU_TF_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "amu_tf"
    )
    return Path(root) / "kernels"


def compiler():
    """The C++ compiler to use (``$CXX``, else g++, c++, clang++), or None."""
    env = os.environ.get(CXX_ENV)
    if env:
        return shutil.which(env)
    for name in ("g++", "c++", "clang++"):
        found = shutil.which(name)
        if found:
            return found
    return None


@functools.lru_cache(maxsize=None)
def compiler_version(cxx):
    """The first line of ``cxx --version`` ("" when it cannot be run)."""
    try:
        done = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    lines = (done.stdout or "").strip().splitlines()
    return lines[0] if done.returncode == 0 and lines else ""


@functools.lru_cache(maxsize=None)
def compiler_accepts(cxx, *flags):
    """Whether ``cxx`` accepts these flags (preprocesses an empty file with them)."""
    try:
        done = subprocess.run([cxx, *flags, "-E", "-x", "c++", os.devnull],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def cpu_flags():
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_model():
    """The CPU's model name, for logs and benchmark tables."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def isa_level(flags=None):
    """The highest x86-64 micro-architecture level (``x86-64-v4`` ... ``x86-64``) that a CPU
    with these ``/proc/cpuinfo`` flags supports, or None off x86-64."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return None
    flags = cpu_flags() if flags is None else frozenset(flags)
    needed = set()
    levels = []
    for name, extra in reversed(_ISA_LEVELS):  # v2, then v3 (needs v2's), then v4
        needed |= extra
        levels.append((name, frozenset(needed)))
    best = "x86-64"
    for name, req in levels:
        if req <= flags:
            best = name
    return best


def target_flags(cxx, march="native"):
    """``-march=<march>`` and a ``-mno-<ext>`` for each of :data:`UNSAFE_EXTENSIONS` that
    the compiler knows."""
    flags = [f"-march={march}"]
    for ext in UNSAFE_EXTENSIONS:
        if compiler_accepts(cxx, f"-mno-{ext}"):
            flags.append(f"-mno-{ext}")
    return flags


def candidate_targets():
    """The ``-march`` targets to try, in order: ``$AMU_TF_KERNEL_MARCH`` alone, else native
    then the CPU's ISA level."""
    forced = os.environ.get(MARCH_ENV)
    if forced:
        return [forced]
    level = isa_level()
    return ["native"] + ([level] if level else [])


def compile_command(tf, source, out_path, cxx, march="native", shared=True):
    """The full command line compiling ``source`` into ``out_path`` (a shared library, or an
    object file when ``shared`` is False: for checking that a target compiles)."""
    base = list(_BASE_FLAGS) if shared else ["-c", *_BASE_FLAGS[1:]]
    link = tf.sysconfig.get_link_flags() if shared else []
    return [cxx, *base, *target_flags(cxx, march), str(source), "-o", str(out_path),
            *tf.sysconfig.get_compile_flags(), *link]


def no_compiler_message():
    env = os.environ.get(CXX_ENV)
    where = f"${CXX_ENV}={env} is not a program" if env else "no g++, c++ or clang++ on PATH"
    return f"no C++ compiler found ({where}): install g++, or set ${CXX_ENV}"


def library_path(tf, source, stem, march="native"):
    """Where the op compiled from ``source`` for this TensorFlow, compiler, target and CPU
    lives (built or not)."""
    cxx = compiler() or "none"
    key = hashlib.sha256()
    key.update(Path(source).read_bytes())
    key.update(tf.__version__.encode())
    key.update(compiler_version(cxx).encode())
    key.update(" ".join(compile_command(tf, source, "OUT", cxx, march)).encode())
    key.update(" ".join(sorted(cpu_flags())).encode())
    key.update(platform.machine().encode())
    return _writable(cache_dir()) / f"{stem}_{key.hexdigest()[:16]}.so"


def _writable(folder):
    """``folder``, or a private temporary folder when it cannot be written (read-only home
    on some CI and cluster set-ups)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.NamedTemporaryFile(dir=folder).close()
        return folder
    except OSError:
        fallback = Path(tempfile.gettempdir()) / f"amu_tf-{os.getuid()}" / "kernels"
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback


def failure_path(path):
    return path.with_name(path.name + ".failed")


def _remove_stale_temporaries(folder):
    """Remove ``.building-<pid>-*`` files whose builder process is gone (killed builds)."""
    for tmp in folder.glob(".building-*"):
        try:
            pid = int(tmp.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if not pid_alive(pid):
            tmp.unlink(missing_ok=True)


def _first_error(done):
    lines = (done.stderr or done.stdout or "").strip().splitlines()
    errors = [ln for ln in lines if "error" in ln]
    return (errors or lines[-1:] or ["unknown error"])[0].strip()


def build(tf, source, stem, announce=None):
    """Compile ``source`` if its cached library is missing; return the library's path.

    Tries each of :func:`candidate_targets` in turn. Raises :class:`KernelBuildError` with
    one line (the compiler, the flags of the last try, its first error) when none compiles,
    and remembers that failure. Concurrent builders wait on a file lock.
    """
    cxx = compiler()
    if cxx is None:
        raise KernelBuildError(no_compiler_message())
    targets = candidate_targets()
    paths = [library_path(tf, source, stem, march) for march in targets]
    for path in paths:
        if path.exists():
            return path
    first = paths[0]
    failed = failure_path(first)
    if failed.exists():
        raise KernelBuildError(failed.read_text().strip()
                               + f" (remembered: delete {failed} or run `amu doctor --rebuild`"
                               " to try again)")
    with open(first.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            for path in paths:
                if path.exists():
                    return path
            if failed.exists():
                raise KernelBuildError(failed.read_text().strip())
            _remove_stale_temporaries(first.parent)
            if announce:
                announce()
            reasons = []
            for march, path in zip(targets, paths):
                reason = _compile_to(tf, source, path, cxx, march)
                if reason is None:
                    return path
                reasons.append(reason)
            message = ("compiling the kernel failed: " + "; then ".join(reasons))
            failed.write_text(message + "\n")
            raise KernelBuildError(message)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _compile_to(tf, source, path, cxx, march):
    """Compile into ``path`` (aside, then renamed); None on success, else the reason."""
    fd, tmp = tempfile.mkstemp(prefix=f".building-{os.getpid()}-", suffix=".so",
                               dir=path.parent)
    os.close(fd)
    command = compile_command(tf, source, tmp, cxx, march)
    try:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            flags = " ".join(target_flags(cxx, march))
            return f"{Path(cxx).name} {flags}: {_first_error(done)}"
        os.replace(tmp, path)
        return None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def check_target(tf, source, march, cxx=None, out_dir=None):
    """Compile ``source`` to an object file for ``march`` (a CPU the host need not have:
    only loading needs it). Returns None on success, else the first error line."""
    cxx = cxx or compiler()
    out_dir = Path(out_dir or tempfile.mkdtemp(prefix="amu_tf-target-"))
    out = out_dir / f"{march}.o"
    done = subprocess.run(compile_command(tf, source, out, cxx, march, shared=False),
                          capture_output=True, text=True)
    return None if done.returncode == 0 else _first_error(done)


def clear_failures():
    """Forget remembered build failures (``amu doctor --rebuild``); returns how many."""
    folder = _writable(cache_dir())
    gone = 0
    for f in folder.glob("*.failed"):
        f.unlink(missing_ok=True)
        gone += 1
    return gone


def describe(cxx=None):
    """Compiler, its version and the flags a build here would use, for ``amu doctor``."""
    cxx = cxx or compiler()
    if cxx is None:
        return {"compiler": None, "version": "", "targets": [], "flags": []}
    targets = candidate_targets()
    return {"compiler": cxx, "version": compiler_version(cxx), "targets": targets,
            "flags": target_flags(cxx, targets[0]), "cpu": cpu_model(),
            "isa_level": isa_level()}


def announce_build(what):
    print(f"amu-tf: compiling the {what} (once per machine, about 20 s)", file=sys.stderr,
          flush=True)
