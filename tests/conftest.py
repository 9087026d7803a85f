import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import pytest  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


#: the files whose tests take longest (``make test --durations``), collected first: pytest-xdist
#: (``--dist loadfile``) hands whole files to the two workers in collection order, so a slow
#: file left for the end keeps one worker busy while the other idles (longest first balances)
SLOW_FILES_FIRST = (
    "test_run.py", "test_interpret.py", "test_protocols.py", "test_jax_backend.py",
    "test_sklearn_contract.py", "test_bad_input_second_pass.py", "test_clinical_outputs.py",
    "test_kernel_build.py", "test_biomarkers.py", "test_interpret_cli.py",
    "test_cohort_robust_recipes.py", "test_distributed.py", "test_interpret_component.py",
    "test_bad_input_ingest_predict.py", "test_model_bundle.py", "test_signature_library.py",
    "test_compass_parity.py", "test_recipes.py",
)


def pytest_collection_modifyitems(config, items):
    """The slowest files first (see ``SLOW_FILES_FIRST``; the order within a file is kept);
    tests marked ``tensorflow_only`` skip under another Keras backend (``make test-jax``)."""
    rank = {name: i for i, name in enumerate(SLOW_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"needs the TensorFlow backend (KERAS_BACKEND={backend})")
    for item in items:
        if "tensorflow_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data():
    """../shared/data beside the checkout; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data not present")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _seed():
    import keras

    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session()


def _chromium():
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture
def browser_check(tmp_path):
    """``browser_check(html_path, min_images)`` opens a page in headless Chromium (Debian's
    ``chromium``, which .ci/run installs): it must load with no console message, decode every
    image (at least ``min_images``), and give a screenshot that is not blank. Where Chromium
    is absent it checks nothing and returns None, except in CI (``CI`` set), where it
    fails."""
    import re
    import subprocess

    import numpy as np

    exe = _chromium()

    def check(html_path, min_images=1):
        if exe is None:  # None: not checked here
            if os.environ.get("CI"):
                pytest.fail("CI has no chromium: .ci/run installs Debian's chromium package")
            return None
        html_path = Path(html_path)
        common = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-extensions", f"--user-data-dir={tmp_path / 'profile'}",
                  "--virtual-time-budget=10000"]
        # the page plus a probe that counts the images the browser decoded after load
        probe = tmp_path / "probe.html"
        script = ("<script>window.addEventListener('load', () => { const imgs = "
                  "Array.from(document.images); const ok = imgs.filter(i => i.complete && "
                  "i.naturalWidth > 0).length; document.body.setAttribute('data-images', "
                  "ok + '/' + imgs.length); });</script>")
        probe.write_text(html_path.read_text(encoding="utf-8").replace(
            "</body>", script + "</body>"), encoding="utf-8")
        dom = subprocess.run(common + ["--enable-logging=stderr", "--log-level=0",
                                       "--dump-dom", probe.as_uri()],
                             capture_output=True, text=True, timeout=180)
        counted = re.search(r'data-images="(\d+)/(\d+)"', dom.stdout)
        assert counted, f"the page did not finish loading: {dom.stderr[-2000:]}"
        ok, total = map(int, counted.groups())
        assert ok == total >= min_images, f"{ok} of {total} images decoded"
        console = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln]
        assert not console, console[:5]
        shot = tmp_path / "screenshot.png"
        subprocess.run(common + [f"--screenshot={shot}", "--window-size=1200,1800",
                                 html_path.as_uri()], capture_output=True, timeout=180)
        from PIL import Image

        pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
        assert pixels.std() > 5, "the screenshot is blank"
        return shot

    return check
