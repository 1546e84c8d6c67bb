"""Whole transformer layers on a GPU: the issue-16 configurations, predicted and measured.

The layers are those of ``experiments/measure_gpu_layers.py`` (PyTorch eager,
bf16): ``x -> norm -> QKV GEMM [T, 3h] -> SDPA (flash; causal for the
decoders) -> output GEMM [T, h] -> + x -> norm -> FFN -> + x`` with a GELU
(up, gelu, down) or SwiGLU (gate|up, silu(g) u, down) FFN, no rotary
embedding, dropout or bias. Decode rows run one new token per sequence
against a KV cache of ``seq`` keys; the cache append is not timed.

:func:`predict` lowers each layer with the ``library`` plan (``sim.gpu``),
so a row's ``pred_ms`` is the CUDA-event median the measurement reports and
``pred_energy_mj`` the NVML energy per call of a back-to-back loop. The
``fused`` and ``ilp`` columns are the framework-fused plan and the cascade
ILP's plan (prefill layers in the 1-pass attention form, where the ILP can
find FlashAttention). :func:`measured` reads whatever layer measurements
the project holds (``experiments/data/<hw>_layers/layers.csv``).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workloads.errors import EinsimError

DATA = Path(__file__).resolve().parent / "data"

#: model name in the CSVs -> (models.yaml key, workload parameters of the layer)
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "bert_large": ("bert-large", {"causal": "0"}),
    "llama7b": ("llama-7b", {}),
    "gpt3": ("gpt3-175b", {}),
}

#: (model, mode, batch, seq): the configurations of issue 16 (seq is the prompt
#: length of a prefill or the KV-cache length of a decode step)
CONFIGS: tuple[tuple[str, str, int, int], ...] = (
    ("bert_large", "prefill", 8, 512),
    ("bert_large", "prefill", 32, 512),
    ("bert_large", "prefill", 1, 4096),
    ("llama7b", "prefill", 1, 2048),
    ("llama7b", "prefill", 4, 4096),
    ("llama7b", "prefill", 1, 16384),
    ("llama7b", "decode", 1, 2048),
    ("llama7b", "decode", 16, 2048),
    ("llama7b", "decode", 64, 4096),
    ("gpt3", "prefill", 1, 2048),
    ("gpt3", "decode", 8, 2048),
)

PRED_COLUMNS = ("model", "mode", "batch", "seq", "pred_ms", "pred_energy_mj")


class LayerDataError(EinsimError):
    """A layer measurement file that cannot be read."""


def layer_cascade(model: str, mode: str, batch: int, seq: int, attention: str = "3pass"):
    """The measured layer as a cascade (pre-norm, no rotary embedding)."""
    from workloads import library

    if model not in MODELS:
        raise EinsimError(f"unknown layer model {model!r}; expected one of {', '.join(MODELS)}")
    key, extra = MODELS[model]
    common = {"model": key, "batch": batch, "norm_position": "pre", "rope": "0", **extra}
    if mode == "prefill":
        block = 64 if seq % 64 == 0 else seq
        return library.build("decoder-layer", seq=seq, attention=attention, block=block, **common)
    if mode == "decode":
        return library.build("decode-step", kv_len=seq, new_tokens=1, **common)
    raise EinsimError(f"unknown mode {mode!r}; expected prefill or decode")


@dataclass(frozen=True)
class Prediction:
    model: str
    mode: str
    batch: int
    seq: int
    pred_ms: float
    pred_energy_mj: float
    fused_ms: float
    ilp_ms: float
    host_ms: float
    gpu_ms: float
    kernels: int

    @property
    def ilp_speedup(self) -> float:
        return self.pred_ms / self.ilp_ms if self.ilp_ms > 0 else float("nan")


def evaluate(cascade: Any, arch: Any, **options: Any) -> Any:
    """A GPU plan's metrics through the front door (``sim.evaluate``, model
    ``gpu``): what ``einsim eval --gpu-plan`` prints for the same layer."""
    import sim

    return sim.evaluate(cascade, arch, **options).metrics


def predict(
    hw: str,
    configs: tuple[tuple[str, str, int, int], ...] = CONFIGS,
    *,
    ilp: bool = True,
    progress: Callable[[int], Any] | None = None,
) -> list[Prediction]:
    """The library plan's time and energy of every configuration on ``hw``."""
    import hw_models

    arch = hw_models.load(hw)
    out = []
    for model, mode, batch, seq in configs:
        c = layer_cascade(model, mode, batch, seq)
        lib = evaluate(c, arch, plan="library", include_append=False)
        fused = evaluate(c, arch, plan="fused", include_append=False)
        ilp_ms = float("nan")
        if ilp:
            ci = (
                layer_cascade(model, mode, batch, seq, attention="1pass")
                if mode == "prefill"
                else c
            )
            ilp_ms = evaluate(ci, arch, plan="ilp", include_append=False).latency_s * 1e3
        out.append(
            Prediction(
                model, mode, batch, seq,
                pred_ms=lib.latency_s * 1e3,
                pred_energy_mj=lib.energy_pj * 1e-9,
                fused_ms=fused.latency_s * 1e3,
                ilp_ms=ilp_ms,
                host_ms=lib.notes["host_s"] * 1e3,
                gpu_ms=lib.notes["gpu_busy_s"] * 1e3,
                kernels=lib.notes["n_kernels"],
            )
        )  # fmt: skip
        if progress is not None:
            progress(1)
    return out


def measured(hw: str, data_dir: Path = DATA) -> dict[tuple[str, str, int, int], dict[str, float]]:
    """Layer measurements of ``hw`` held by the project (empty when there are none)."""
    path = data_dir / f"{hw}_layers" / "layers.csv"
    if not path.exists():
        return {}
    out: dict[tuple[str, str, int, int], dict[str, float]] = {}
    with path.open(newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh), start=2):
            try:
                key = (row["model"], row["mode"], int(row["batch"]), int(row["seq"]))
                vals = {"median_ms": float(row["median_ms"])}
                if row.get("energy_mj"):
                    vals["energy_mj"] = float(row["energy_mj"])
            except (KeyError, ValueError) as exc:
                raise LayerDataError(
                    f"{path}:{i}: expected model, mode, batch, seq, median_ms[, energy_mj] "
                    f"({type(exc).__name__}: {exc})"
                ) from None
            out[key] = vals
    return out


def write_predictions(preds: list[Prediction], out_dir: Path) -> Path:
    """``out_dir/layers_pred.csv`` with :data:`PRED_COLUMNS` (and a detail CSV beside it)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "layers_pred.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(PRED_COLUMNS)
        for p in preds:
            w.writerow(
                [p.model, p.mode, p.batch, p.seq, f"{p.pred_ms:.6g}", f"{p.pred_energy_mj:.6g}"]
            )
    with (out_dir / "layers_detail.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [*PRED_COLUMNS, "fused_ms", "ilp_ms", "ilp_speedup", "host_ms", "gpu_ms", "kernels"]
        )
        for p in preds:
            w.writerow(
                [p.model, p.mode, p.batch, p.seq, f"{p.pred_ms:.6g}", f"{p.pred_energy_mj:.6g}",
                 f"{p.fused_ms:.6g}", f"{p.ilp_ms:.6g}", f"{p.ilp_speedup:.4g}",
                 f"{p.host_ms:.6g}", f"{p.gpu_ms:.6g}", p.kernels]
            )  # fmt: skip
    return path


def table(preds: list[Prediction], meas: dict[tuple[str, str, int, int], dict[str, float]]) -> str:
    """The comparison table (and MAPEs when measurements exist)."""
    head = (
        f"{'model':10s} {'mode':7s} {'batch':>5s} {'seq':>6s} {'pred ms':>9s} {'meas ms':>9s} "
        f"{'err':>7s} {'pred mJ':>9s} {'meas mJ':>9s} {'err':>7s} {'fused':>8s} {'ilp':>8s} "
        f"{'ilp x':>6s} {'host ms':>8s}"
    )
    lines = [head]
    t_err, e_err = [], []
    for p in preds:
        m = meas.get((p.model, p.mode, p.batch, p.seq), {})
        mt, me = m.get("median_ms"), m.get("energy_mj")
        et = 100 * (p.pred_ms - mt) / mt if mt else None
        ee = 100 * (p.pred_energy_mj - me) / me if me else None
        if et is not None:
            t_err.append(abs(et))
        if ee is not None:
            e_err.append(abs(ee))
        lines.append(
            f"{p.model:10s} {p.mode:7s} {p.batch:5d} {p.seq:6d} {p.pred_ms:9.3f} "
            f"{_f(mt, 9, 3)} {_f(et, 6, 1, '%')} {p.pred_energy_mj:9.1f} {_f(me, 9, 1)} "
            f"{_f(ee, 6, 1, '%')} {p.fused_ms:8.3f} {p.ilp_ms:8.3f} {p.ilp_speedup:6.2f} "
            f"{p.host_ms:8.3f}"
        )
    if t_err:
        lines.append(
            f"time MAPE {sum(t_err) / len(t_err):.1f}% (worst {max(t_err):.1f}%) over {len(t_err)} layers"
        )
    if e_err:
        lines.append(f"energy MAPE {sum(e_err) / len(e_err):.1f}% over {len(e_err)} layers")
    if not t_err:
        lines.append("no layer measurements for this card in experiments/data/ (predictions only)")
    return "\n".join(lines)


def _f(v: float | None, w: int, d: int, suffix: str = "") -> str:
    if v is None:
        return " " * (w - 1 + len(suffix)) + "-"
    return f"{v:{w}.{d}f}{suffix}"


# ------------------------------------------------------- FlashAttention IO

#: (head dim, key block) of the FlashAttention check: FlashAttention-2's forward
#: key blocks (kBlockN 128 for d = 64, 64 for d = 128)
FLASH_HEADS: tuple[tuple[int, int], ...] = ((64, 128), (128, 64))
FLASH_TOKENS: tuple[int, ...] = (1024, 4096, 16384, 65536)


def flash_io_bytes(b: int, h: int, n: int, d: int, br: int, bc: int, causal: bool) -> float:
    """FlashAttention's HBM accesses (Dao et al. 2022, Algorithm 1, Theorem 2): Q read
    and O written once, K and V once per query block of ``br`` rows (causal: the key
    blocks of ``bc`` keys up to each query block's last row), bf16."""
    q_blocks = math.ceil(n / br)
    if causal:
        keys = sum(min(n, math.ceil(min(n, (i + 1) * br) / bc) * bc) for i in range(q_blocks))
    else:
        keys = q_blocks * n
    return b * h * (2 * n * d * 2 + 2 * keys * d * 2)


def flash_io(hw: str = "h100", b: int = 1, h: int = 32) -> list[dict[str, Any]]:
    """The ILP plan on FuseMax's 1-pass attention against FlashAttention's IO count."""
    import hw_models
    from workloads import library

    arch = hw_models.load(hw)
    rows = []
    for causal in (0, 1):
        for d, bc in FLASH_HEADS:
            for n in FLASH_TOKENS:
                c = library.build(
                    "attention-1pass", B=b, H=h, E=d, F=d, M=n, P=n, M0=bc, causal=causal
                )
                m = evaluate(c, arch, plan="ilp")
                k = m.notes["kernels"]
                br = k[0]["row"].get("tiles", {}).get("p", 0) if len(k) == 1 else 0
                closed = flash_io_bytes(b, h, n, d, 128, bc, bool(causal))
                rows.append(
                    {
                        "causal": causal,
                        "head_dim": d,
                        "tokens": n,
                        "kernels": len(k),
                        "query_block": br,
                        "ilp_global_bytes": m.traffic_bytes["L2"]["all"],
                        "flash_io_bytes": closed,
                        "ilp_hbm_bytes": sum(m.traffic_bytes["HBM"].values()),
                        "ilp_ms": m.latency_s * 1e3,
                        "library_ms": m.notes["ilp"]["library_s"] * 1e3,
                    }
                )
    return rows


def flash_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"{'causal':>6s} {'d':>4s} {'tokens':>6s} {'Br':>4s} {'ILP L2->SM GB':>14s} "
        f"{'FA IO GB':>10s} {'err':>7s} {'ILP HBM GB':>11s} {'ILP ms':>9s} {'SDPA ms':>9s}"
    ]
    for r in rows:
        err = 100 * (r["ilp_global_bytes"] - r["flash_io_bytes"]) / r["flash_io_bytes"]
        lines.append(
            f"{r['causal']:6d} {r['head_dim']:4d} {r['tokens']:6d} {r['query_block']:4d} "
            f"{r['ilp_global_bytes'] / 1e9:14.3f} {r['flash_io_bytes'] / 1e9:10.3f} {err:6.2f}% "
            f"{r['ilp_hbm_bytes'] / 1e9:11.3f} {r['ilp_ms']:9.3f} {r['library_ms']:9.3f}"
        )
    return "\n".join(lines)


def write_flash(rows: list[dict[str, Any]], out_dir: Path) -> Path:
    path = out_dir / "flash_io.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path
