"""Mapping validation and (de)serialisation."""

from __future__ import annotations

import dataclasses

import pytest
from builders import copy, gemm, lm, mapping, single_level_arch, spatial_arch

from mappers.mapping import (
    MappingError,
    dump_mappings,
    load_mapping,
    load_mappings,
    mapping_from_dict,
    mapping_to_dict,
    padded_points,
    validate,
)


def _good(e=None):
    e = e or gemm(8, 8, 8)
    m = mapping(
        e,
        lm("DRAM", {"m": 2, "n": 2}, order="mnk"),
        lm("GlobalBuffer", {}, {"m": 4, "n": 4}, axes={"m": "y", "n": "x"}),
        lm("PE_RF", {"k": 8}, keep=("C",)),
    )
    return e, m


def test_valid_mapping_passes():
    e, m = _good()
    validate(m, e, spatial_arch())


def test_factors_not_covering_rank_name_rank_and_numbers():
    e, m = _good()
    bad = dataclasses.replace(
        m, levels=(m.levels[0], m.levels[1], lm("PE_RF", {"k": 4}, keep=("C",)))
    )
    with pytest.raises(MappingError, match=r"rank k \(PE_RF:4 = 4\) do not cover its size 8"):
        validate(bad, e, spatial_arch())


def test_padding_is_allowed_and_counted():
    e = gemm(6, 8, 8)
    m = mapping(
        e,
        lm("DRAM", {"m": 2, "n": 2}),
        lm("GlobalBuffer", {}, {"m": 4, "n": 4}),
        lm("PE_RF", {"k": 8}, keep=("C",)),
    )
    validate(m, e, spatial_arch())
    assert padded_points(e, m) == 8 * 8 * 8
    assert e.iteration_points == 6 * 8 * 8


def test_spatial_factor_exceeding_fanout():
    e = gemm(8, 8, 8)
    m = mapping(
        e,
        lm("DRAM", {"m": 1, "n": 1}),
        lm("GlobalBuffer", {}, {"m": 8, "n": 4}),
        lm("PE_RF", {"k": 8}, keep=("C",)),
    )
    with pytest.raises(
        MappingError, match=r"GlobalBuffer \(m=8 x n=4 = 32\) exceed its fan-out of 16"
    ):
        validate(m, e, spatial_arch())


def test_spatial_axis_overflow():
    e = gemm(8, 8, 8)
    m = mapping(
        e,
        lm("DRAM", {"m": 1, "n": 4}),
        lm("GlobalBuffer", {}, {"m": 8, "n": 2}, axes={"m": "y", "n": "x"}),
        lm("PE_RF", {"k": 8}, keep=("C",)),
    )
    with pytest.raises(
        MappingError, match=r"axis y at level GlobalBuffer \(m: 8\) exceed its fan-out_y of 4"
    ):
        validate(m, e, spatial_arch())


def test_capacity_counts_double_buffering():
    # RF tile: C 1 element (2 B) + A k=8 (16 B) + B k=8 (16 B) = 34 B, x2 = 68 B
    e = gemm(4, 4, 8)
    m = mapping(
        e,
        lm("DRAM"),
        lm("GlobalBuffer", {}, {"m": 4, "n": 4}),
        lm("PE_RF", {"k": 8}),
    )
    with pytest.raises(MappingError, match=r"PE_RF .*need 68 B but it has 64 B"):
        validate(m, e, spatial_arch(rf_bytes=64))
    validate(m, e, spatial_arch(rf_bytes=68))
    arch = spatial_arch(rf_bytes=40)
    single = dataclasses.replace(
        arch,
        levels=(
            *arch.levels[:2],
            dataclasses.replace(arch.levels[2], double_buffered=False),
        ),
    )
    validate(m, e, single)  # 34 B fits 40 B without double buffering
    with pytest.raises(MappingError, match="double buffered"):
        validate(m, e, arch)


def test_unknown_level_rank_unit_tensor():
    e, m = _good()
    arch = spatial_arch()
    bad_level = dataclasses.replace(m, levels=(m.levels[0], lm("L2"), m.levels[2]))
    with pytest.raises(MappingError, match="unknown level 'L2'"):
        validate(bad_level, e, arch)
    bad_rank = dataclasses.replace(m, levels=(lm("DRAM", {"m": 2, "n": 2, "z": 3}), *m.levels[1:]))
    with pytest.raises(MappingError, match="unknown rank 'z'.*DRAM"):
        validate(bad_rank, e, arch)
    with pytest.raises(MappingError, match="unknown compute unit 'tpu'"):
        validate(dataclasses.replace(m, unit="tpu"), e, arch)
    bad_keep = dataclasses.replace(m, levels=(*m.levels[:2], lm("PE_RF", {"k": 8}, keep=("Z",))))
    with pytest.raises(MappingError, match="unknown tensor 'Z'"):
        validate(bad_keep, e, arch)
    with pytest.raises(MappingError, match="outermost level DRAM must keep every tensor"):
        validate(
            dataclasses.replace(
                m, levels=(lm("DRAM", {"m": 2, "n": 2}, keep=("A",)), *m.levels[1:])
            ),
            e,
            arch,
        )


def test_level_that_cannot_hold_a_role():
    e, m = _good()
    arch = spatial_arch()
    rf = dataclasses.replace(arch.levels[2], holds=("weight",))
    arch2 = dataclasses.replace(arch, levels=(*arch.levels[:2], rf))
    with pytest.raises(MappingError, match="PE_RF cannot hold tensor C"):
        validate(m, e, arch2)


def test_total_spatial_bounded_by_unit_pes():
    e = gemm(64, 64, 1)
    arch = single_level_arch(pes=16)
    m = mapping(e, lm("DRAM", {"m": 4, "n": 64}, {"m": 16}))
    validate(m, e, arch)
    m2 = mapping(e, lm("DRAM", {"m": 2, "n": 64}, {"m": 32}))
    with pytest.raises(MappingError, match="exceed its fan-out of 16"):
        validate(m2, e, arch)


def test_dict_roundtrip():
    e, m = _good()
    d = mapping_to_dict(m)
    back = mapping_from_dict(d)
    assert mapping_to_dict(back) == d
    validate(back, e, spatial_arch())
    assert back.factor("k") == 8 and back.levels[2].keep == ("C",)


def test_yaml_roundtrip(tmp_path):
    e, m = _good()
    e2 = copy(16)
    m2 = mapping(e2, lm("DRAM", {"m": 4}), lm("GlobalBuffer", {"m": 4}), lm("PE_RF"))
    f = tmp_path / "maps.yaml"
    f.write_text(dump_mappings([m, m2]))
    got = load_mappings(f)
    assert set(got) == {"C", "B"}
    assert mapping_to_dict(got["C"]) == mapping_to_dict(m)
    assert mapping_to_dict(got["B"]) == mapping_to_dict(m2)
    one = tmp_path / "one.yaml"
    one.write_text(dump_mappings([m]))
    assert mapping_to_dict(load_mapping(one)) == mapping_to_dict(m)


def test_yaml_errors_name_file_and_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(
        "einsum: C\n"
        "levels:\n"
        "  - level: DRAM\n"
        "    temporal: {m: 2, n: 2}\n"
        "  - level: GlobalBuffer\n"
        "    temporal: {m: -1}\n"
    )
    with pytest.raises(MappingError) as exc:
        load_mappings(f)
    assert str(exc.value).startswith(f"{f}:6")
    assert "factor of rank m is -1" in str(exc.value)
    f.write_text("einsum: C\nlevels:\n  - level: DRAM\n    tempral: {m: 2}\n")
    with pytest.raises(MappingError, match=r"bad.yaml:4: unknown key 'tempral'"):
        load_mappings(f)
    f.write_text("einsum: C\nlevels: [\n")
    with pytest.raises(MappingError, match=r"bad.yaml:\d+:\d+: invalid YAML"):
        load_mappings(f)
    with pytest.raises(MappingError, match="cannot read mapping file"):
        load_mappings(tmp_path / "missing.yaml")


def test_numpy_integer_factors_are_accepted():
    import numpy as np

    e = gemm(8, 8, 8)
    m = mapping(e, lm("DRAM", {"m": np.int64(1), "n": 8, "k": 8}, {"m": np.int64(8)}))
    validate(m, e, single_level_arch(pes=8))
    with pytest.raises(MappingError, match="factor of rank n at level DRAM is 2.5"):
        validate(
            mapping(e, lm("DRAM", {"m": 1, "n": 2.5, "k": 8}, {"m": 8})), e, single_level_arch(8)
        )


def test_levels_below_the_feeding_level_carry_nothing():
    from builders import unit

    base = spatial_arch()
    vec = unit("vector_1d", "array1d", pes=8, fed_by="GlobalBuffer")
    arch = dataclasses.replace(base, compute=(*base.compute, vec))
    e = gemm(8, 8, 8)
    m = mapping(
        e,
        lm("DRAM", {"m": 8, "n": 8}),
        lm("GlobalBuffer", {}, {}),
        lm("PE_RF", {"k": 8}),
        unit_name="vector_1d",
    )
    with pytest.raises(
        MappingError, match="PE_RF is below GlobalBuffer, which feeds unit vector_1d"
    ):
        validate(m, e, arch)
    ok = mapping(
        e,
        lm("DRAM", {"m": 8, "k": 8}),
        lm("GlobalBuffer", {}, {"n": 8}),
        lm("PE_RF"),
        unit_name="vector_1d",
    )
    validate(ok, e, arch)  # 8 lanes at the buffer (its own fan-out is the 2D array's)
    too_wide = mapping(
        e,
        lm("DRAM", {"k": 8}),
        lm("GlobalBuffer", {}, {"n": 8, "m": 2}),
        lm("PE_RF"),
        unit_name="vector_1d",
    )
    with pytest.raises(MappingError, match="exceed its fan-out of 8"):
        validate(too_wide, e, arch)
