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
    store.write_task(KEY, "ok", 1.0, _rows(3), {0: np.full((1, 2, 2), 0.5)})
    assert store.finished() == {("mnist", "gaussian", "vae", 25, 0.1, 0)}
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
    assert store.results().empty and store.finished() == set()


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
