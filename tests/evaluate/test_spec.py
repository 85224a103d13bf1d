import pytest

from dnnjpeg.codec import QuantTables
from dnnjpeg.conventions import LADDER_QUALITIES
from dnnjpeg.evaluate.spec import parse_codec


def test_parse_standard_and_tables(tmp_path):
    c = parse_codec("standard")
    assert [p.quality for p in c.points] == list(LADDER_QUALITIES) and c.points[0].subsampling == "4:2:0"
    c = parse_codec("standard:50,10@4:4:4")
    assert [p.quality for p in c.points] == [10, 50] and c.name == "standard 4:4:4"
    assert c.points[1].tables == QuantTables.standard(50)
    t = QuantTables.standard(30)
    t.save(tmp_path / "mine.json")
    c = parse_codec(f"tables:{tmp_path / 'mine.json'}", "4:2:2", scales=[2, 0.5])
    assert [p.scale for p in c.points] == [0.5, 2] and c.points[1].tables == t.scaled(2) and c.name == "mine 4:2:2"


@pytest.mark.parametrize("bad", ["standard:0", "standard:x", "tables:", "bogus:1", "standard@4:1:1"])
def test_parse_errors(bad):
    with pytest.raises(ValueError):
        parse_codec(bad)


def test_table_set_curve_keeps_tables_unscaled_with_tags():
    from dnnjpeg.codec import QuantTables
    from dnnjpeg.evaluate.spec import CodecCurve

    ts = [QuantTables.standard(q) for q in (20, 60, 90)]
    c = CodecCurve.from_table_set(ts, ["λ=0.1", "λ=0.01", "λ=0.001"], "4:4:4", name="grad")
    assert c.name == "grad 4:4:4" and c.kind == "tables"
    assert [p.tables for p in c.points] == ts and [p.label for p in c.points] == ["λ=0.1", "λ=0.01", "λ=0.001"]
    assert all(p.scale is None and p.subsampling == "4:4:4" for p in c.points)
    assert CodecCurve.from_table_set(ts).points[2].label == "#2"


def test_designed_tables_measured_elsewhere_are_noted(tmp_path):
    import json

    from dnnjpeg.codec import QuantTables
    from dnnjpeg.evaluate import transfer_notes
    from dnnjpeg.presets import available_presets, preset_info

    name = available_presets()[0]
    d = preset_info(name)["design"]
    curve = parse_codec(f"preset:{name}")
    assert curve.designed_for == (d["model"], d["at"])
    assert transfer_notes([curve], d["model"], d["at"]) == []
    other_at = "original" if d["at"] == "input" else "input"
    notes = transfer_notes([curve], "some-other-net", other_at)
    assert len(notes) == 2 and f"designed for JPEG at {d['at']}" in notes[0] and "transfer" in notes[1]
    f = tmp_path / "t.json"
    doc = QuantTables.standard(50).to_dict()
    doc["design"] = {"model": "m", "at": "original"}
    f.write_text(json.dumps(doc))
    assert parse_codec(f"tables:{f}").designed_for == ("m", "original")
    assert parse_codec("standard").designed_for is None
    plain = tmp_path / "plain.json"
    QuantTables.standard(50).save(plain)
    assert transfer_notes([parse_codec(f"tables:{plain}")], "m", "input") == []
