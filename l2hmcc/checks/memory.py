"""Device memory: the estimated peak per rank against one device of the job's system.

An out-of-memory error ends a job in its first minute, after its wait in the queue; the
estimate (``l2hmcc.memory``, no torch) is made at compile time instead. ``train.py --dry-run``
measures the same peak on a fake device. Codes: W360 (the peak exceeds the device).
"""

from __future__ import annotations

from l2hmcc import memory, systems
from l2hmcc.diagnostics import Diagnostic, Label, error
from l2hmcc.ir import Spec
from l2hmcc.spanmap import SpanMap

CODES_USED = ("W360",)


def _ranks(spec: Spec, devices_per_node: int, cluster: bool) -> int:
    """Nodes × ranks per node (default one per device on a cluster with a backend)."""
    rpn = spec.job.ranks_per_node
    if rpn is None:
        distributed = spec.distributed.backend != "none"
        rpn = devices_per_node if cluster and distributed else 1
    return spec.job.nodes * rpn


def device_memory(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """W360: the estimated peak memory per rank exceeds one device of the job's system."""
    system = systems.get(spec.job.system)
    if system is None or not system.is_cluster or not system.node.device_memory_bytes:
        return []
    capacity = system.node.device_memory_bytes
    world = _ranks(spec, system.node.devices_per_node, system.is_cluster)
    est = memory.estimate(spec, world_size=world)
    if est.peak <= capacity:
        return []
    # The span goes where the bytes come from: the chains (activations, chains) or the
    # lattice (the networks' parameters grow with its volume).
    state = est.parameters + est.gradients + est.optimizer + est.wrapper
    per_chain = est.peak - state
    if per_chain >= state:
        primary, what = "train.chains", f"{spec.train.chains} chains per rank"
        other = "lattice.shape"
    else:
        primary, what = "lattice.shape", "networks sized by this lattice"
        other = "train.chains"
    chains_fit = max(0, int(spec.train.chains * (capacity - state) / max(per_chain, 1)))
    fix = (
        f"about {chains_fit} chain{'s' if chains_fit > 1 else ''} per rank would fit"
        if chains_fit >= 1
        else "fewer or smaller network layers (network.hidden), a smaller lattice, or fp32"
    )
    if spec.distributed.backend == "deepspeed":
        fix += "; ZeRO stage 2 also partitions the gradients"
    device = system.node.accelerator
    return [
        error(
            "W360",
            f"the estimated peak memory per rank, {memory.format_bytes(est.peak)}, exceeds one "
            f"{device} ({memory.format_bytes(capacity)}) on {system.title}",
            spans.value(primary),
            what,
            secondary=[Label(spans.value(other))] if spans.written(other) else [],
            help=f"{est.describe()}; {fix}. `train.py --dry-run` measures it on a fake device",
        )
    ]
