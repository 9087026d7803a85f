"""The lock (requirements/lock.txt, made by `make lock`) pins every dependency setup.py names,
at a version inside setup.py's range, so `make install` and CI get one known set."""

import ast
import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _setup_requirements():
    tree = ast.parse((ROOT / "setup.py").read_text())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, "id", "") == "setup")
    kw = {k.arg: ast.literal_eval(k.value) for k in call.keywords
          if k.arg in ("install_requires", "extras_require")}
    reqs = list(kw["install_requires"])
    for extra in ("dev", "jax"):  # the extras the lock is made with
        reqs += kw["extras_require"][extra]
    return [Requirement(r) for r in reqs]


def _lock():
    pins = {}
    for line in (ROOT / "requirements" / "lock.txt").read_text().splitlines():
        m = re.match(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if m:
            pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def test_the_lock_pins_every_dependency_inside_its_range():
    pins = _lock()
    assert pins["tensorflow"].startswith("2.21.")
    for req in _setup_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in requirements/lock.txt: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"{req.name}=={pins[name]} in the lock is outside setup.py's {req.specifier}"
