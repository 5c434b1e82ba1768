"""The SQLite store: per-task transactions, resume keys, reconstructions, experiments."""
import sqlite3

import numpy as np
import pandas as pd
import pytest

from csbench.store import ResultStore

KEY = dict(dataset="mnist", measurement="gaussian", prior="vae", m=25, noise=0.1, seed=0)


def _rows(n, **extra):
    return [{**KEY, "m_requested": 25, "kind": "generative", "instance": i, "mse": 0.01 * (i + 1),
             "psnr": 20.0, "ssim": 0.5, "seconds": 0.1, "status": "ok", "error": "", "params": "{}",
             **extra} for i in range(n)]


def test_task_rows_and_finished_keys_round_trip(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    store.write_task(KEY, "ok", 1.0, _rows(3), {0: np.full((1, 2, 2), 0.5)}, fingerprint="abc")
    assert store.finished() == {("mnist", "gaussian", "vae", 25, 0.1, 0): "abc"}
    frame = store.results()
    assert len(frame) == 3 and frame.mse.tolist() == pytest.approx([0.01, 0.02, 0.03])
    image = store.reconstructions().image[0]
    assert image.shape == (1, 2, 2) and np.allclose(image, 128 / 255)


def test_rewriting_a_task_replaces_its_rows(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    store.write_task(KEY, "ok", 1.0, _rows(3))
    store.write_task(KEY, "ok", 1.0, _rows(3, mse=0.5))
    frame = store.results()
    assert len(frame) == 3 and (frame.mse == 0.5).all()


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    rows = _rows(2)
    rows[1]["mse"] = object()  # sqlite cannot store it: the transaction must roll back
    with pytest.raises(sqlite3.Error):
        store.write_task(KEY, "ok", 1.0, rows)
    assert store.results().empty and store.finished() == {}


def test_store_survives_reopening(tmp_path):
    ResultStore(tmp_path / "r.sqlite").write_task(KEY, "ok", 1.0, _rows(2))
    store = ResultStore(tmp_path / "r.sqlite")
    store.set_meta(config={"n_images": 2})
    assert len(store.results()) == 2 and store.meta() == {"config": {"n_images": 2}}


def test_experiment_tables_round_trip(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    table = pd.DataFrame({"k": [5, 10], "m": [20, 40], "success": [0.5, 1.0]})
    store.write_experiment("phase", table)
    pd.testing.assert_frame_equal(store.experiments()["phase"], table)


def test_failed_tasks_are_not_finished_so_a_rerun_retries_them(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    store.write_task(KEY, "failed", 1.0, _rows(2, status="failed", mse=None, error="boom"))
    assert store.finished() == {}
    store.write_task({**KEY, "prior": "tv"}, "skipped", 0.0, _rows(2, prior="tv", status="skipped"))
    assert list(store.finished()) == [("mnist", "gaussian", "tv", 25, 0.1, 0)]


def test_a_rerun_of_a_task_replaces_rows_reconstructions_and_tuning(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    points = [{"params": {"lam": 0.1}, "score": 0.2, "chosen": False},
              {"params": {"lam": 1.0}, "score": float("inf"), "chosen": False},
              {"params": {"lam": 0.01}, "score": 0.1, "chosen": True}]
    store.write_task(KEY, "ok", 1.0, _rows(3), {0: np.zeros((1, 2, 2)), 1: np.ones((1, 2, 2))}, "a", points)
    tuning = store.tuning()
    assert tuning.params.tolist() == ['{"lam": 0.1}', '{"lam": 1.0}', '{"lam": 0.01}']
    assert tuning.score.tolist()[0] == pytest.approx(0.2) and np.isnan(tuning.score[1])
    assert tuning.chosen.tolist() == [False, False, True]
    store.write_task(KEY, "ok", 1.0, _rows(2, mse=0.5), {0: np.ones((1, 2, 2))}, "b", points[:1])
    assert len(store.results()) == 2 and (store.results().mse == 0.5).all()
    assert len(store.reconstructions()) == 1 and len(store.tuning()) == 1
    assert store.finished()[tuple(KEY.values())] == "b"


def test_a_store_from_before_fingerprints_opens_and_reruns_everything(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE tasks (dataset TEXT, measurement TEXT, prior TEXT, m INTEGER, noise REAL, "
                 "seed INTEGER, status TEXT NOT NULL, seconds REAL, finished TEXT, "
                 "PRIMARY KEY (dataset, measurement, prior, m, noise, seed))")
    conn.execute("INSERT INTO tasks VALUES ('mnist', 'gaussian', 'vae', 25, 0.1, 0, 'ok', 1.0, '')")
    conn.commit()
    conn.close()
    assert ResultStore(path).finished() == {("mnist", "gaussian", "vae", 25, 0.1, 0): ""}


def test_a_file_that_is_not_a_store_is_a_clean_error(tmp_path):
    from csbench.errors import CsbenchError

    path = tmp_path / "results.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CsbenchError, match="cannot use .* as a result store"):
        ResultStore(path)


def test_read_only_opening_changes_no_byte_of_an_old_store(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE tasks (dataset TEXT, measurement TEXT, prior TEXT, m INTEGER, noise REAL, "
                 "seed INTEGER, status TEXT NOT NULL, seconds REAL, finished TEXT)")
    conn.execute("INSERT INTO tasks VALUES ('mnist', 'gaussian', 'vae', 25, 0.1, 0, 'ok', 1.0, '')")
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    store = ResultStore(path, read_only=True)
    assert store.tuning().empty and len(store.finished()) == 1 and store.meta() == {}
    store.close()
    assert path.read_bytes() == before
