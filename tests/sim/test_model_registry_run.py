"""The analytical model's registry entry is the front door's own path: run on
its own (each mapping evaluated there) it gives the front door's numbers."""

from __future__ import annotations

import pytest

import hw_models
import sim
from sim import models
from workloads import library


@pytest.mark.parametrize(("name", "preset"), [("mlp", "eyeriss_like"), ("gemm", "tpu_like")])
def test_analytical_entry_is_the_front_doors_answer(name: str, preset: str) -> None:
    arch = hw_models.load(preset)
    wl = library.build(name)
    ev = sim.evaluate(wl, arch, mapper="greedy")
    einsums = list(getattr(wl, "einsums", [wl]))
    alone = models.MODELS["analytical"].run(einsums, arch, ev.mappings)
    for key in ("latency_s", "energy_pj"):
        assert getattr(alone, key) == pytest.approx(getattr(ev.metrics, key), rel=1e-12), key
    assert alone.traffic_bytes.keys() == ev.metrics.traffic_bytes.keys()
    for level, per_tensor in ev.metrics.traffic_bytes.items():
        assert alone.traffic_bytes[level] == pytest.approx(per_tensor, rel=1e-12), level
