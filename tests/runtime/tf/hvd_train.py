"""Run by tests/runtime/tf/test_distributed.py under ``horovodrun -np 2 --gloo``: one TF
trainer per rank with the Horovod backend (XLA gradients, allreduce outside XLA), one train
step, then each rank writes its parameters and chains to OUT/rank<r>.npz."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

from l2hmcc.runtime.common.config import DynamicsConfig, LossConfig, NetworkConfig, TrainConfig
from l2hmcc.runtime.tf.distributed import Horovod
from l2hmcc.runtime.tf.trainer import Trainer


def make(backend, mode):
    return Trainer(
        "U1",
        (4, 4),
        1.5,
        DynamicsConfig(leapfrog=1, step_size=0.1),
        NetworkConfig(hidden=(8,), head_init=0.5),
        LossConfig(),
        TrainConfig(steps=1, chains=4, lr=0.05, precision="fp64", log_every=0, seed=3),
        backend=backend,
        log=None,
        compile_mode=mode,
    )


if __name__ == "__main__":
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    out, mode = sys.argv[1], sys.argv[2]
    backend = Horovod()
    tr = make(backend, mode)
    tr.train()
    arrays = {f"param/{k}": v for k, v in tr.model.state_dict().items()}
    arrays["chains"] = tr.x.numpy()
    arrays["loss"] = tr.histories["train"]["loss"]
    arrays["compile_mode"] = np.array(tr.compile_mode)
    arrays["fused"] = np.array(tr._fused)  # xla-step: gradient and update XLA functions
    np.savez(os.path.join(out, f"rank{backend.rank}.npz"), **arrays)
