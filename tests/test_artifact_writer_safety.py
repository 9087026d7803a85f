"""Artifact writers: never replace what is not an artifact, clean up after killed writers,
survive concurrent writers of one folder, and turn I/O errors into one line."""

import os
import subprocess
import sys
import threading

import pytest
from click.testing import CliRunner

from amu_tf.artifacts import Artifact, ArtifactWriter, remove_stale_temporaries
from amu_tf.errors import ArtifactError


def _write(uri, value):
    with ArtifactWriter(uri, "CohortTable") as w:
        (w.path / "v.txt").write_text(value)
    return w.artifact


def _in_threads(target, n):
    """Run ``target(i)`` for i in 0..n-1 in n threads at once and wait for all."""
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_an_existing_file_or_foreign_folder_is_never_replaced(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    with pytest.raises(ArtifactError, match="exists and is a file; it is not replaced"):
        _write(f, "x")
    assert f.read_text() == "mine"
    d = tmp_path / "photos"
    d.mkdir()
    (d / "a.jpg").write_text("j")
    with pytest.raises(ArtifactError, match="a folder that is not an artifact"):
        _write(d, "x")
    assert (d / "a.jpg").is_file()
    (tmp_path / "empty").mkdir()
    _write(tmp_path / "empty", "ok")  # an empty folder is fine
    _write(tmp_path / "empty", "again")  # and an artifact is replaced as a whole
    assert (tmp_path / "empty" / "v.txt").read_text() == "again"


def test_leftovers_of_killed_writers_are_removed_by_the_next_writer(tmp_path):
    uri = tmp_path / "cohort"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (tmp_path / f".cohort.tmp-{dead}-abc").mkdir()
    (tmp_path / f".cohort.old-{dead}-def").mkdir()
    alive = tmp_path / f".cohort.tmp-{os.getpid()}-live"  # a writer still at work
    alive.mkdir()
    _write(uri, "v")
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert left == [alive.name]
    assert remove_stale_temporaries(uri) == 0


def test_concurrent_writers_of_one_folder_all_succeed(tmp_path):
    uri = tmp_path / "shared"
    errors = []

    def work(i):
        try:
            for k in range(10):
                _write(uri, f"{i}-{k}")
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    _in_threads(work, 8)
    assert not errors, errors[:3]
    assert Artifact.load(uri).type == "CohortTable"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("out", ["/proc/amu-test-out", "/dev/null/sub"])
def test_unwritable_out_is_one_line_for_ingest(tmp_path, out):
    from amu_tf.data.synthetic import generate_default_cohorts
    from pipelines.cli import amu

    spec = generate_default_cohorts(tmp_path / "syn", n_per_cohort=10)[0]
    res = CliRunner().invoke(amu, ["ingest", str(spec), "--out", out])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("Error")]
    assert len(lines) == 1 and "Traceback" not in res.output


def test_finished_artifacts_are_not_private_to_their_writer(tmp_path):
    import stat

    art = _write(tmp_path / "a", "v")
    mode = stat.S_IMODE(os.stat(art.uri).st_mode)
    mask = os.umask(0)
    os.umask(mask)
    assert mode == 0o777 & ~mask  # not mkdtemp's 0700


def test_a_killed_exports_hidden_version_folder_is_removed_by_the_next_export(tmp_path):
    from amu_tf.serving.serving_versions import VersionWriter

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    model_dir = tmp_path / "sm" / "amu"
    (model_dir / f".version.tmp-{dead}-abc").mkdir(parents=True)
    with VersionWriter(model_dir) as w:
        (w.path / "saved_model.pb").write_text("x")
    assert w.version == 1 and w.final_path == model_dir / "1"
    assert sorted(p.name for p in model_dir.iterdir()) == ["1"]
    with pytest.raises(RuntimeError):
        with VersionWriter(model_dir) as w:
            raise RuntimeError("export failed")
    assert sorted(p.name for p in model_dir.iterdir()) == ["1"]  # nothing half-written


def test_concurrent_exports_get_distinct_complete_versions(tmp_path):
    from amu_tf.serving.serving_versions import VersionWriter

    model_dir, done, errors = tmp_path / "sm" / "amu", [], []

    def export(i):
        try:
            with VersionWriter(model_dir) as w:
                (w.path / "saved_model.pb").write_text(str(i))
            done.append(w.version)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    _in_threads(export, 10)
    assert not errors and sorted(done) == list(range(1, 11))
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(map(str, range(1, 11)))
    assert all((model_dir / str(v) / "saved_model.pb").is_file() for v in done)


KILLED_WRITER = """
import sys, time
from amu_tf.artifacts import ArtifactWriter
with ArtifactWriter(sys.argv[1], "CohortTable") as w:
    (w.path / "part.txt").write_text("half")
    print("writing", flush=True)
    time.sleep(60)  # killed here, mid-write
"""


def test_a_writer_killed_mid_write_leaves_nothing_visible_and_the_rerun_cleans_up(tmp_path):
    import signal

    uri = tmp_path / "cohort"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(uri)], cwd=root,
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "writing"
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert not uri.exists()  # nothing half-written is visible
    assert [q.name for q in tmp_path.iterdir() if q.name.startswith(".cohort.tmp-")]
    _write(uri, "complete")  # the rerun succeeds and removes the killed writer's leftovers
    assert (uri / "v.txt").read_text() == "complete"
    assert not [q for q in tmp_path.iterdir() if q.name.startswith(".")]


def test_writing_over_a_symlink_replaces_the_link_and_leaves_no_hidden_folder(tmp_path):
    """`amu transform T --out LINK` where LINK points at another artifact: the link is
    replaced by the new artifact, the folder it pointed at is untouched, and nothing hidden
    (``.LINK.old-*``) is left beside it."""
    target = tmp_path / "target"
    _write(target, "old")
    link = tmp_path / "link"
    link.symlink_to(target)
    _write(link, "new")
    assert not link.is_symlink() and (link / "v.txt").read_text() == "new"
    assert (target / "v.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "target"]
