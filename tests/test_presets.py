import json

import pytest

from dnnjpeg.codec import QuantTables, encode, parse_header_bytes
from dnnjpeg.evaluate.spec import parse_codec
from dnnjpeg.presets import available_presets, load_preset, preset_info

from .codec.makers import noise_image


def test_presets_ship_tables_and_their_measured_curve():
    names = available_presets()
    assert names, "dnnjpeg ships at least one designed preset"
    for n in names:
        t = load_preset(n)
        assert isinstance(t, QuantTables) and not t.extended
        info = preset_info(n)
        assert info == json.loads(json.dumps(info, allow_nan=False))  # strict JSON: no NaN
        m = info["measured"]
        assert m["settings"]["split"] == "eval" and m["settings"]["n_images"] > 100
        assert len(m["preset"]) >= 5 and len(m["ladder"]) >= 5
        assert m["comparison"]["bd_rate_ci"][0] <= m["comparison"]["bd_rate"] <= m["comparison"]["bd_rate_ci"][1]
        data = encode(noise_image(32, 32), t, "4:2:0")
        assert parse_header_bytes(data).quant_tables() == t
        curve = parse_codec(f"preset:{n}@4:4:4")
        assert curve.points[0].subsampling == "4:4:4" and curve.name.startswith(f"preset:{n}")


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match="available"):
        load_preset("no-such-preset")


def test_preset_defaults_to_the_subsampling_it_was_designed_for():
    from dnnjpeg.evaluate.spec import parse_codec

    for n in available_presets():
        designed = preset_info(n)["design"]["subsampling"]
        assert all(p.subsampling == designed for p in parse_codec(f"preset:{n}", subsampling="4:2:2").points)
    assert "efficientnet-lite0-444" in available_presets()
    assert parse_codec("preset:efficientnet-lite0-444").points[0].subsampling == "4:4:4"


def test_sweep_preset_result_carries_its_choice_by_rate():
    from dnnjpeg.presets import preset_result, preset_summary

    r = preset_result("efficientnet-lite0-420-original-sweep")
    assert [c["kind"] for c in r["curves"]] == ["standard", "tables", "selected"]
    assert r["comparisons"][1]["test"].endswith("per-image by rate")
    s = preset_summary("efficientnet-lite0-420-original-sweep")
    # the per-image choice by rate was measured on the same eval images as the sweep itself
    assert s["by_rate_bd_rate"] == r["comparisons"][1]["bd_rate"] and r["comparisons"][1]["n_images"] == s["n_images"]
    assert preset_summary("efficientnet-lite0-420")["by_rate_bd_rate"] is None
