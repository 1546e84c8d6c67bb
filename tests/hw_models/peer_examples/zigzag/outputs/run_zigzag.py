"""Run ZigZag 3.9.1 on one conv layer; print its chosen mapping and per-memory accesses/energies.

Not part of einsim (needs ``pip install zigzag-dse==3.9.1 six``); it made
the JSON files beside it. Usage: see ``../../README.md``.
"""

import json
import sys
from pathlib import Path

from zigzag.mapping.data_movement import DataDirection
from zigzag.mapping.temporal_mapping import TemporalMappingType
from zigzag.parser.workload_factory import LayerNodeFactory
from zigzag.stages.evaluation.cost_model_evaluation import CostModelStage
from zigzag.stages.main import MainStage
from zigzag.stages.mapping.spatial_mapping_generation import SpatialMappingGeneratorStage
from zigzag.stages.mapping.temporal_mapping_generator_stage import TemporalMappingGeneratorStage
from zigzag.stages.parser.accelerator_parser import AcceleratorParserStage
from zigzag.stages.results.reduce_stages import MinimalEnergyStage

HERE = Path(__file__).resolve().parent

hw, K, C, OY, OX, FY, FX, d1, d2 = sys.argv[1], *map(int, sys.argv[2:8]), sys.argv[8], sys.argv[9]
LAYER = {
    "id": 0,
    "name": "conv",
    "operator_type": "Conv",
    "equation": "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]",
    "dimension_relations": ["ix=1*ox+1*fx", "iy=1*oy+1*fy"],
    "loop_dims": ["B", "K", "C", "OY", "OX", "FY", "FX"],
    "loop_sizes": [1, K, C, OY, OX, FY, FX],
    "operand_precision": {"I": 8, "W": 8, "O": 16, "O_final": 8},
    "operand_source": {"I": 0},
}


def sm(s):
    d, n = s.split(",")
    return [f"{d}, {n}"]


MAPPING = [
    {
        "name": "default",
        "spatial_mapping": {"D1": sm(d1), "D2": sm(d2)},
        "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"},
    }
]
layer = LayerNodeFactory(LAYER, MAPPING).create()
acc = AcceleratorParserStage.parse_accelerator(f"{HERE.parent}/{hw}.yaml")
stages = [
    MinimalEnergyStage,
    SpatialMappingGeneratorStage,
    MinimalEnergyStage,
    TemporalMappingGeneratorStage,
]
(cme, _), *_ = MainStage(
    [*stages, CostModelStage],
    layer=layer,
    accelerator=acc,
    loma_lpf_limit=6,
    loma_show_progress_bar=False,
    temporal_mapping_type=TemporalMappingType(sys.argv[10] if len(sys.argv) > 10 else "even"),
).run()
out = {"hw": hw, "layer": LAYER, "mapping_in": MAPPING}


def plain(x):
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, (int, float)):
        return x
    return str(x)


out["spatial_mapping"] = plain(cme.spatial_mapping.mapping_dict_origin)
out["spatial_mapping_user"] = str(cme.layer.spatial_mapping)
tm = cme.temporal_mapping.mapping_dic_stationary
out["temporal_mapping"] = plain(tm)
mh = acc.memory_hierarchy
out["memories"] = {}
for op, lst in cme.memory_word_access.items():
    mem_op = cme.memory_operand_links.layer_to_mem_op(op)
    lvls = mh.get_memory_levels(mem_op=mem_op)
    out["memories"][str(op)] = [
        {
            "memory": ml.name,
            **{d.name: float(a.get(d)) for d in DataDirection},
            "energy_pj": float(cme.mem_energy_breakdown[op][i]),
        }
        for i, (a, ml) in enumerate(zip(lst, lvls, strict=True))
    ]
out["mac_energy_pj"] = float(cme.mac_energy)
out["mem_energy_pj"] = float(cme.mem_energy)
out["energy_total_pj"] = float(cme.energy_total)
out["latency_total2"] = float(cme.latency_total2)
out["ideal_cycle"] = float(cme.ideal_cycle)
print(json.dumps(out, indent=1))
