"""hls4ml-style FPGA backend: layers, resources, latency and power.

Public API:

* :func:`evaluate` (``sim/fpga/evaluate.py``): ``evaluate(cascade, arch,
  **opts) -> Metrics`` for FPGA-family architectures;
* :func:`estimate_network` / :class:`NetworkEstimate` (``network.py``): a
  list of :class:`Layer` with an :class:`HLSConfig`;
* :func:`dense_chain`, :func:`layers_from_cascade` (``layers.py``);
* reuse-factor rules (``reuse.py``), per-layer model (``layer_model.py``),
  coefficients (``coefficients.py``), power (``power.py``), calibration on
  synthesis results (``calibration.py``).

See docs/fpga.md.
"""

from sim.fpga.config import HLSConfig, config_from_arch
from sim.fpga.evaluate import evaluate
from sim.fpga.layers import Layer, dense_chain, layers_from_cascade
from sim.fpga.network import NetworkEstimate, estimate_network

__all__ = [
    "HLSConfig",
    "Layer",
    "NetworkEstimate",
    "config_from_arch",
    "dense_chain",
    "estimate_network",
    "evaluate",
    "layers_from_cascade",
]
