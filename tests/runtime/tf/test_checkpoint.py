"""TensorFlow checkpoints: an atomic npz per step without pickle, the latest K kept, nested
state round trips; the stop flag set by SIGTERM."""

import os
import signal

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from l2hmcc.runtime.tf.checkpoint import (  # noqa: E402
    StopFlag,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)

pytestmark = pytest.mark.tf


def test_nested_state_round_trips_and_old_checkpoints_are_pruned(tmp_path) -> None:
    state = {
        "step": 7,
        "name": "u1",
        "none": None,
        "values": [1.5, 2],
        "model": {"vnets.0.x_layer.weight": np.arange(6.0).reshape(2, 3), "masks": np.eye(2) > 0},
        "rng": {"generator": tf.constant([1, 2, 3], tf.int64)},
        "empty": {},
    }
    for step in range(5):
        save_checkpoint(tmp_path, step, state, keep=2)
    names = [p.name for p in list_checkpoints(tmp_path)]
    assert names == ["ckpt-00000003.npz", "ckpt-00000004.npz"]
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    back = load_checkpoint(latest_checkpoint(tmp_path))
    assert back["step"] == 7 and back["name"] == "u1" and back["none"] is None
    assert back["values"] == [1.5, 2] and back["empty"] == {}
    np.testing.assert_array_equal(
        back["model"]["vnets.0.x_layer.weight"], np.arange(6.0).reshape(2, 3)
    )
    assert back["model"]["masks"].dtype == bool
    np.testing.assert_array_equal(back["rng"]["generator"], [1, 2, 3])
    with np.load(latest_checkpoint(tmp_path), allow_pickle=False) as data:
        assert "model/masks" in data.files


def test_keys_with_the_separator_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="must not contain"):
        save_checkpoint(tmp_path, 0, {"a/b": np.zeros(1)})


def test_stop_flag_is_set_by_sigterm() -> None:
    flag = StopFlag().install()
    try:
        assert not flag.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        assert flag.is_set() and flag.signal == signal.SIGTERM
    finally:
        flag.uninstall()
    assert signal.getsignal(signal.SIGTERM) is not flag._handler
