"""Every preset's tree and figures, pinned to the values it had before the
architecture tree with per-tensor memories (issue 19) was added.

A shared-level preset (one memory per level serving every tensor) is the
special case of the tree, so its ``hw_models.to_dict``, its derived figures
and the analytical model's cycles and energy on fixed mappings must not
change. The reference figures in ``pinned/presets_before_tree.json`` were
computed from the code of main at 87bb2d5, before any change of this issue.

Re-pin (only after a deliberate change of a preset or of the analytical
model, and say so in the commit): ``python tests/hw_models/test_hw_pinned.py``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

import hw_models

PINNED = Path(__file__).resolve().parent / "pinned" / "presets_before_tree.json"

#: the presets of the first round (the ones this file pins)
FIRST_ROUND = (
    "a100",
    "eyeriss_like",
    "flat_cloud",
    "flat_edge",
    "fusemax_cloud",
    "h100",
    "h200",
    "tpu_like",
    "u250",
    "u280",
    "vu9p",
)


def derived(arch: Any) -> dict[str, Any]:
    """Figures computed from the tree through the public API."""
    return {
        "area_mm2": arch.area_mm2,
        "leakage_w": arch.leakage_w,
        "peak_ops_per_s": {
            cu.name: {op: cu.peak_ops_per_s(op, arch.clock_hz) for op in sorted(cu.ops_per_cycle)}
            for cu in arch.compute
        },
        "capacity_total_bytes": {
            lv.name: None if lv.capacity_bytes is None else lv.capacity_bytes * lv.instances
            for lv in arch.levels
        },
        "bandwidth_bytes_per_s": {
            lv.name: lv.read_bw_bytes_per_cycle * lv.instances * arch.clock_hz for lv in arch.levels
        },
    }


def _workloads() -> dict[str, Any]:
    from builders import gemm

    from workloads.ir import Access, AffineIndex, Einsum

    def ix(*terms):
        return AffineIndex(tuple((t, 1) if isinstance(t, str) else t for t in terms))

    # O[k,p,q] = I[c, p+r, q+s] * W[k,c,r,s]: a 3x3 convolution, 8-bit
    conv = Einsum(
        name="O",
        output=Access("O", (ix("k"), ix("p"), ix("q")), 8),
        inputs=(
            Access("I", (ix("c"), ix("p", "r"), ix("q", "s")), 8),
            Access("W", (ix("k"), ix("c"), ix("r"), ix("s")), 8),
        ),
        map_op="mul",
        reduce_op="sum",
        rank_sizes_items=(("k", 64), ("c", 32), ("p", 14), ("q", 14), ("r", 3), ("s", 3)),
    )
    return {
        "gemm_256_16b": gemm(256, 256, 256, bits=16),
        "gemm_96x200x50_8b": gemm(96, 200, 50, bits=8),
        "conv3x3_8b": conv,
    }


def model_figures(arch: Any) -> dict[str, Any]:
    """Analytical cycles and energy of SCALE-Sim's dataflow mappings (fixed,
    mapper-independent) for the presets with a DRAM -> buffer -> PE chain."""
    from mappers.dataflows import dataflow_mapping
    from sim.analytical.model import evaluate

    if arch.family == "gpu":
        return {}
    # an FPGA's DSP array is mapped as the 2D array it is laid out as
    main = arch.compute[0]
    as_array = dataclasses.replace(
        arch, compute=(dataclasses.replace(main, kind="array2d"), *arch.compute[1:])
    )
    out: dict[str, Any] = {}
    for wname, einsum in _workloads().items():
        for flow in ("os", "ws", "is"):
            m = dataflow_mapping(einsum, as_array, flow)
            met = evaluate(einsum, arch, m, check=False)
            out[f"{wname}/{flow}"] = {
                "cycles": met.cycles,
                "latency_s": met.latency_s,
                "energy_pj": met.energy_pj,
                "energy_breakdown_pj": dict(sorted(met.energy_breakdown_pj.items())),
            }
    return out


def snapshot(name: str) -> dict[str, Any]:
    arch = hw_models.load(name)
    return {
        "to_dict": hw_models.to_dict(arch),
        "derived": derived(arch),
        "model": model_figures(arch),
    }


def _close(got: Any, want: Any, path: str) -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict), path
        assert sorted(got) == sorted(want), f"{path}: keys {sorted(got)} != {sorted(want)}"
        for k in want:
            _close(got[k], want[k], f"{path}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list | tuple) and len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _close(g, w, f"{path}[{i}]")
    elif isinstance(want, float) and not isinstance(got, bool):
        assert isinstance(got, int | float), f"{path}: {got!r} is not a number"
        assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12), f"{path}: {got!r} != {want!r}"
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"


def _pinned() -> dict[str, Any]:
    return json.loads(PINNED.read_text())


def test_every_first_round_preset_is_pinned():
    assert sorted(_pinned()) == sorted(FIRST_ROUND)
    assert set(FIRST_ROUND) <= set(hw_models.list_presets())


@pytest.mark.parametrize("name", FIRST_ROUND)
def test_tree_and_derived_figures_unchanged(name):
    want = _pinned()[name]
    got = json.loads(json.dumps(snapshot(name)))
    _close(got["to_dict"], want["to_dict"], f"{name}.to_dict")
    _close(got["derived"], want["derived"], f"{name}.derived")


@pytest.mark.parametrize("name", FIRST_ROUND)
def test_analytical_figures_unchanged(name):
    want = _pinned()[name]["model"]
    got = json.loads(json.dumps(model_figures(hw_models.load(name))))
    _close(got, want, f"{name}.model")


if __name__ == "__main__":  # re-pin: see the module docstring
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
    PINNED.parent.mkdir(exist_ok=True)
    data = {n: snapshot(n) for n in FIRST_ROUND}
    PINNED.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {PINNED}")
