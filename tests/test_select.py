"""Per-image choice of tables by the network (dnnjpeg.select, evaluate --select, compress --choose network)."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from dnnjpeg.choosers import NetworkChoice, RateChoice
from dnnjpeg.cli import app
from dnnjpeg.codec import QuantTables, decode, decode_file, encode, parse_header
from dnnjpeg.compress import compress_tree, output_path
from dnnjpeg.conventions import KIB_BITS
from dnnjpeg.data import discover
from dnnjpeg.evaluate import CodecCurve, evaluate, with_selection
from dnnjpeg.evaluate.selection import climb, climb_choice
from dnnjpeg.evaluate.trial import _load_rgb, outcome
from dnnjpeg.families import TableFamily
from dnnjpeg.select import choose, select_encode, selected_curve

from .evaluate.tiny import tiny_model, write_images
from .test_compress import _snapshot, _tree

LADDER = (10, 30, 60, 90)


def test_choose_by_hand():
    bits = np.array([[8192, 8192, 4096], [16384, 16384, 8192], [32768, 32768, 16384]])  # 1, 2, 4 KiB (and halves)
    kl = np.array([[0.30, 0.05, 0.0], [0.10, 0.04, 0.0], [0.00, 0.035, 0.0]])
    # λ = 0.1 nats/KiB: image 0 costs 0.40 / 0.30 / 0.40 → member 1; image 1: 0.15 / 0.24 / 0.435 → 0;
    # image 2: KL 0 everywhere → the smallest file, member 0
    assert choose(bits, kl, 0.1).tolist() == [1, 0, 0]
    # λ = 0: least KL, ties to the smaller file
    assert choose(bits, kl, 0.0).tolist() == [2, 2, 0]
    assert choose(bits, kl, 1e6).tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="λ"):
        choose(bits, kl, -1)
    with pytest.raises(ValueError, match="must both be"):
        choose(bits, kl[:2], 0.1)


def test_choice_beats_every_member_at_its_lambda_and_rate_falls_with_lambda():
    rng = np.random.default_rng(0)
    k, n = 6, 300
    bits = np.sort(rng.integers(2_000, 200_000, (k, n)), axis=0)[::-1]  # member 0 the finest
    kl = np.sort(rng.gamma(0.5, 0.05, (k, n)), axis=0)
    correct = rng.random((k, n)) > 0.3
    lams = np.geomspace(1e-4, 10, 12)
    kept, b, c, kk, ch = selected_curve(bits, correct, kl, lams)
    assert len(kept) == len(b) <= len(lams) and len(set(map(tuple, ch))) == len(ch)
    for lam, bi, ki, chi in zip(kept, b, kk, ch):
        cost = ki.sum() + lam * bi.sum() / KIB_BITS
        # the Lagrangian of the per-image choice is at most that of any single table for all images
        assert all(cost <= kl[m].sum() + lam * bits[m].sum() / KIB_BITS + 1e-9 for m in range(k))
        cols = np.arange(n)
        assert np.array_equal(bi, bits[chi, cols]) and np.array_equal(ki, kl[chi, cols])
    assert np.all(np.diff(b.sum(1)) <= 0) and np.all(np.diff(kk.mean(1)) >= -1e-12)
    # another model's KL chooses: the records are still those of the measured model
    other = kl[::-1].copy()
    _, b2, _, k2, ch2 = selected_curve(bits, correct, kl, [0.0], selector_kl=other)
    assert np.array_equal(ch2[0], choose(bits, other, 0.0)) and np.array_equal(k2[0], kl[ch2[0], np.arange(n)])


def test_climb_walks_to_the_cheapest_member_measuring_few():
    bits = np.array([40_000, 5_000, 20_000, 10_000, 80_000, 160_000])  # sizes out of order: 1 3 2 0 4 5
    kl = np.array([0.02, 0.50, 0.05, 0.20, 0.01, 0.005])
    asked = []

    def kl_of(ks):
        assert not set(ks) & set(asked)  # a member is measured once
        asked.extend(ks)
        return kl[ks]

    for lam in (0.0, 0.001, 0.01, 0.1, 10.0):
        asked.clear()
        k, measured = climb(bits, kl_of, lam, start=2)
        assert k == choose(bits[:, None], kl[:, None], lam)[0] and measured == asked
    asked.clear()
    assert climb(bits, kl_of, 0.01, start=2, reach=1) == (0, [2, 3, 0, 4])  # 3 then one step: 4 of 6 measured
    asked.clear()
    assert climb(bits, kl_of, 0.01, start=2) == (0, [2, 3, 0, 1, 4, 5])  # reach 2: 5, then the one beyond
    # a cost with two valleys: looking one member each way the search stops in the one it started in;
    # looking two each way it sees past the wall to the cheaper valley
    bumpy = np.array([0.0, 0.5, 0.2, 0.9, 0.0, 0.0])
    k, _ = climb(bits, lambda ks: bumpy[ks], 0.0, start=1, reach=1)
    assert k == 1 and choose(bits[:, None], bumpy[:, None], 0.0)[0] == 0
    assert climb(bits, lambda ks: bumpy[ks], 0.0, start=1)[0] == 0
    with pytest.raises(ValueError, match="reach"):
        climb(bits, kl_of, 0.01, start=2, reach=0)
    # on records: the same choice as choose() when every image's cost is unimodal along its sizes
    rng = np.random.default_rng(1)
    b = np.sort(rng.integers(2_000, 200_000, (8, 200)), axis=0)
    kl_convex = rng.uniform(50, 2000, 200) / b  # KL falling as the file grows: a convex cost along the sizes
    for lam in (0.001, 0.05, 1.0):
        ch, count = climb_choice(b, kl_convex, lam, np.full(200, 4))
        assert np.array_equal(ch, choose(b, kl_convex, lam)) and count.max() <= 8 and count.min() >= 3


def test_select_encode_climb_measures_fewer_members_for_the_same_choice(imagenet_dir):
    from dnnjpeg.data import discover as _discover

    fam = [QuantTables.standard(q) for q in (5, 10, 20, 35, 50, 70, 85, 95)]
    model = tiny_model()
    agree, nan = 0, 0
    for r in _discover(imagenet_dir).records[:6]:
        rgb = _load_rgb(str(r.path))
        for lam in (0.0005, 0.005, 0.05):
            full = select_encode(rgb, fam, model, lam)
            c = select_encode(rgb, fam, model, lam, search="climb")
            cost = full.kl + lam * full.bits / KIB_BITS
            assert np.isfinite(c.kl[c.index]) and np.allclose(c.kl[np.isfinite(c.kl)], full.kl[np.isfinite(c.kl)],
                                                              atol=1e-5)  # fmt: skip
            assert c.data == encode(rgb, fam[c.index]) and np.array_equal(c.bits, full.bits)
            agree += cost[c.index] <= cost.min() + 1e-5
            nan += int(np.isnan(c.kl).sum())
    assert agree >= 16 and nan > 0  # (of 18) nearly always the same choice, with members left unmeasured
    kappa = np.geomspace(0.5, 0.001, len(fam))
    c = select_encode(rgb, fam, model, 0.005, kappa=kappa, search="climb", start="rate")
    by_rate = select_encode(rgb, fam, None, 0.005, kappa=kappa)
    assert np.isfinite(c.kl[by_rate.index]) and not np.allclose(c.kl[np.isfinite(c.kl)], kappa[np.isfinite(c.kl)])
    with pytest.raises(ValueError, match="needs kappa"):
        select_encode(rgb, fam, model, 0.1, search="climb", start="rate")
    with pytest.raises(ValueError, match="search"):
        select_encode(rgb, fam, model, 0.1, search="some")


def _family():
    return [QuantTables.standard(q) for q in LADDER]


def test_select_encode_matches_an_independent_search(imagenet_dir):
    model = tiny_model()
    rgb = _load_rgb(str(sorted(imagenet_dir.glob("*.JPEG"))[3]))
    fam = _family()
    pre = model.preprocess
    datas = [encode(rgb, t, "4:2:0") for t in fam]
    lp = model.logits(np.stack([pre.geometry(rgb)] + [pre.geometry(decode(d)) for d in datas]))
    _, kl = outcome(np.repeat(lp[:1], len(fam), 0), lp[1:])
    bits = np.array([8 * len(d) for d in datas])
    for lam in (0.0, 1e-3, 0.05, 1e6):
        s = select_encode(rgb, fam, model, lam)
        want = int(np.argmin(kl + lam * bits / KIB_BITS))
        assert s.index == want and s.data == datas[want]
        np.testing.assert_allclose(s.kl, kl, atol=1e-6)


def test_evaluate_select_agrees_with_the_encoder(tmp_path):
    write_images(tmp_path / "d", 10, size=(70, 52))
    ds = discover(tmp_path / "d")
    model = tiny_model()
    lams = [0.005, 0.05, 1e9]  # (at λ = 0 the choice hangs on KL differences of 1e-8: float noise)
    res = evaluate(ds, model, [CodecCurve.standard(LADDER)], at="original", n_boot=20, select=lams, progress=False)
    fam_curve, sel = res["curves"][0], res["curves"][1]
    assert sel["name"] == "standard 4:2:0 per-image" and sel["kind"] == "selected"
    fam_bits = np.array([p["per_image"]["bits"] for p in fam_curve["points"]])
    for p in sel["points"]:
        ch = np.array(p["per_image"]["choice"])
        assert p["per_image"]["bits"] == fam_bits[ch, np.arange(len(ch))].tolist()
        assert sum(p["members"]) == len(ch)
        for i, path in enumerate(res["pristine"]["per_image"]["path"]):
            assert select_encode(_load_rgb(path), _family(), model, p["lam"]).index == ch[i]
    # the largest λ takes every image's smallest file
    assert sel["points"][-1]["per_image"]["bits"] == fam_bits.min(0).tolist()
    assert any(k["test"] == sel["name"] for k in res["comparisons"])
    # a saved result gives the same curve without images or model
    again = with_selection({**res, "curves": res["curves"][:1]}, lambdas=lams)
    assert again["curves"][1]["points"] == sel["points"]
    twice = with_selection(res, lambdas=lams)  # computed again: replaced, not duplicated
    assert [c["name"] for c in twice["curves"]] == [c["name"] for c in res["curves"]]
    json.dumps(again.to_dict())


def test_choice_among_several_curves_chooses_subsampling_too(tmp_path):
    write_images(tmp_path / "d", 10, size=(70, 52))
    res = evaluate(
        discover(tmp_path / "d"),
        tiny_model(),
        [CodecCurve.standard(LADDER, "4:2:0"), CodecCurve.standard(LADDER, "4:4:4")],
        at="original",
        n_boot=0,
        select=[0.001, 0.01, 0.1],
        progress=False,
    )
    names = [c["name"] for c in res["curves"]]
    assert names == [
        "standard 4:2:0",
        "standard 4:4:4",
        "standard 4:2:0 per-image",
        "standard 4:4:4 per-image",
        "all settings per-image",
    ]
    both = res["curves"][-1]
    assert len(both["family_labels"]) == 8 and both["points"][0]["subsampling"] is None
    recs = [p["per_image"] for c in res["curves"][:2] for p in c["points"]]
    bits, kl = np.array([q["bits"] for q in recs]), np.array([q["kl"] for q in recs])
    cols = np.arange(bits.shape[1])
    for p in both["points"]:
        ch = np.array(p["per_image"]["choice"])
        assert p["per_image"]["bits"] == bits[ch, cols].tolist()
        cost = (kl[ch, cols] + p["lam"] * bits[ch, cols] / KIB_BITS).sum()
        for c in res["curves"][2:4]:  # more members can only lower the Lagrangian
            q = next((q for q in c["points"] if q["lam"] == p["lam"]), None)
            if q is not None:
                assert (
                    cost
                    <= (np.array(q["per_image"]["kl"]) + p["lam"] * np.array(q["per_image"]["bits"]) / KIB_BITS).sum()
                    + 1e-6
                )
    again = with_selection({**res, "curves": res["curves"][:2]}, lambdas=[0.001, 0.01, 0.1], union=True)
    assert again["curves"][-1]["name"] == "standard 4:2:0 + standard 4:4:4 per-image"
    assert again["curves"][-1]["points"] == both["points"]


def test_with_selection_transfer_and_errors(tmp_path):
    write_images(tmp_path / "d", 8)
    ds = discover(tmp_path / "d")
    res = evaluate(ds, tiny_model(), [CodecCurve.standard(LADDER)], at="input", n_boot=0, progress=False)
    other = json.loads(json.dumps(res.to_dict()))
    for c in other["curves"]:  # a selector whose network is untouched by the coarsest tables only
        for k, p in enumerate(c["points"]):
            p["per_image"]["kl"] = [float(k > 0)] * len(p["per_image"]["kl"])
    t = with_selection(res, lambdas=[0.0], selector={**other, "settings": {**other["settings"], "model": "other"}})
    new = t["curves"][-1]
    assert new["name"].endswith("by other") and new["selector"] == "other"
    assert all(c == 0 for c in new["points"][0]["per_image"]["choice"])
    # by rate alone: every image pays the member's mean KL measured elsewhere
    kap = [0.5, 0.1, 0.02, 0.001]
    rt = with_selection(res, lambdas=[0.01, 1.0], kappa={"standard 4:2:0": kap})
    by_rate = rt["curves"][-1]
    assert by_rate["name"] == "standard 4:2:0 per-image by rate"
    bits = np.array([p["per_image"]["bits"] for p in res["curves"][0]["points"]])
    for p in by_rate["points"]:
        want = choose(bits, np.repeat(np.array(kap)[:, None], bits.shape[1], 1), p["lam"])
        assert p["per_image"]["choice"] == want.tolist()
    with pytest.raises(ValueError, match="needs 4 values"):
        with_selection(res, kappa={"standard 4:2:0": kap[:3]})
    bad = json.loads(json.dumps(other))
    bad["pristine"]["per_image"]["path"] = bad["pristine"]["per_image"]["path"][::-1]
    with pytest.raises(ValueError, match="other images"):
        with_selection(res, selector=bad)
    with pytest.raises(ValueError, match="not among"):
        with_selection(res, curves=["nope"])


def test_compress_select_writes_chosen_tables_and_leaves_src_alone(tmp_path):
    src = _tree(tmp_path / "src")
    before = _snapshot(src)
    fam = _family()
    model = tiny_model()
    rep = compress_tree(src, tmp_path / "dst", NetworkChoice(TableFamily.from_table_set(fam), 1e9, model=model))
    assert _snapshot(src) == before
    assert rep.written == 12 and len(rep.failures) == 1 and "broken.jpg" in rep.failures[0][0]
    assert sum(rep.members.values()) == 12
    # λ → ∞: every image takes its smallest file, byte for byte what the coarsest tables give
    coarse = compress_tree(src, tmp_path / "q10", QuantTables.standard(10), workers=1)
    assert coarse.written == 12
    for p in sorted(_outputs(tmp_path / "dst")):
        q = tmp_path / "q10" / p.relative_to(tmp_path / "dst")
        assert p.read_bytes() == q.read_bytes()
    # λ = 0: every output holds one of the family's tables and has the least KL of them
    rep0 = compress_tree(src, tmp_path / "dst0", NetworkChoice(TableFamily.from_table_set(fam), 0.0, model=model))
    pre = model.preprocess
    chosen_not_coarsest = 0
    sources = {output_path(src, tmp_path / "dst0", f): f for f in src.rglob("*.*") if f.name != "broken.jpg"}
    assert sorted(sources) == sorted(_outputs(tmp_path / "dst0"))
    for p, f in sources.items():
        h = parse_header(p)
        rgb = _load_rgb(str(f))
        gray = h.is_grayscale
        pix = rgb[..., 0] if gray else rgb
        kls = []
        for t in fam:
            lp = model.logits(np.stack([pre.geometry(rgb), pre.geometry(decode(encode(pix, t)))]))
            kls.append(outcome(lp[:1], lp[1:])[1][0])
        lp = model.logits(np.stack([pre.geometry(rgb), pre.geometry(decode_file(p))]))
        assert outcome(lp[:1], lp[1:])[1][0] <= min(kls) + 1e-6
        if not gray:
            assert h.quant_tables() in fam
            chosen_not_coarsest += h.quant_tables() != fam[0]
    assert rep0.written == 12 and chosen_not_coarsest > 0
    # resume keeps the valid outputs; nothing is overwritten without being asked
    again = compress_tree(
        src, tmp_path / "dst0", NetworkChoice(TableFamily.from_table_set(fam), 0.0, model=model), resume=True
    )
    assert again.skipped == 12 and again.written == 0
    with pytest.raises(ValueError, match="needs a model"):
        NetworkChoice(TableFamily.from_table_set(fam), 0.1)
    with pytest.raises(ValueError, match="non-empty family"):
        NetworkChoice(TableFamily.from_table_set([]), 0.1, model=model)


def test_cli_compress_select_errors(tmp_path):
    src = _tree(tmp_path / "src", n=2)
    r = CliRunner().invoke(app, ["compress", str(src), str(tmp_path / "d1"), "--choose", "network", "--tables",
                                 str(src / "x.json")])  # fmt: skip
    assert r.exit_code == 2 and "--tables is the one table of --choose fixed" in r.output
    r = CliRunner().invoke(app, ["compress", str(src), str(tmp_path / "d2")])
    assert r.exit_code == 2 and "--choose fixed needs --tables" in r.output
    r = CliRunner().invoke(app, ["compress", str(src), str(tmp_path / "d3"), "--choose", "guess"])
    assert r.exit_code == 2 and "--choose 'guess': one of fixed, rate, qnet, network, climb, tablenet" in r.output


def test_compress_by_rate_alone_matches_the_rule_and_cli(tmp_path):
    from dnnjpeg.compress import _pixels
    from dnnjpeg.evaluate import write_outputs
    from dnnjpeg.families import TableFamily

    # the members' mean KL comes from an evaluation of the same family on other images
    write_images(tmp_path / "design", 6)
    res = evaluate(discover(tmp_path / "design"), tiny_model(), [CodecCurve.standard(LADDER)], n_boot=0, progress=False)
    write_outputs(res, tmp_path / "ev")
    fam = _family()
    ev = json.loads((tmp_path / "ev" / "results.json").read_text())
    kap = np.array(TableFamily.from_table_set(fam).kappa_from_evaluation(ev).kappa)
    assert kap.tolist() == [p["kl"] for p in res["curves"][0]["points"]]
    with pytest.raises(ValueError, match="no curve with these 3 tables"):
        TableFamily.from_table_set(fam[:3]).kappa_from_evaluation(res, "ev")
    src = _tree(tmp_path / "src")
    lam = 0.5 * float(np.median(-np.diff(kap)))  # a λ where the choice depends on each file's sizes
    rep = compress_tree(src, tmp_path / "dst", RateChoice(TableFamily.from_table_set(fam).with_kappa(kap), lam))
    assert rep.written == 12 and len(rep.failures) == 1
    for f in src.rglob("*.*"):
        if f.name == "broken.jpg":
            continue
        datas = [encode(_pixels(str(f)), t) for t in fam]
        k = choose(np.array([[8 * len(d)] for d in datas]), kap[:, None], lam)[0]
        assert output_path(src, tmp_path / "dst", f).read_bytes() == datas[k]
    r = CliRunner().invoke(
        app,
        [
            "compress",
            str(src),
            str(tmp_path / "d3"),
            "--family",
            "standard:" + ",".join(map(str, LADDER)),
            "--choose",
            f"rate:{tmp_path / 'ev'}",
            "--lam",
            str(lam),
        ],
    )
    assert r.exit_code == 1 and "12 written" in r.output  # 1: the broken file
    outs = sorted(_outputs(tmp_path / "dst"))
    assert len(outs) == 12 and all(
        (tmp_path / "d3" / p.relative_to(tmp_path / "dst")).read_bytes() == p.read_bytes() for p in outs
    )
    r = CliRunner().invoke(
        app,
        [
            "compress",
            str(src),
            str(tmp_path / "d4"),
            "--family",
            "standard:10,50",
            "--choose",
            f"rate:{tmp_path / 'ev'}",
        ],
    )
    assert r.exit_code == 2 and "no curve with these 2 tables" in r.output


def test_cli_compress_by_rate_with_two_families(tmp_path):
    from dnnjpeg.compress import _pixels
    from dnnjpeg.evaluate import write_outputs

    write_images(tmp_path / "design", 6)
    curves = [CodecCurve.standard(LADDER, "4:2:0"), CodecCurve.standard(LADDER, "4:4:4")]
    res = evaluate(discover(tmp_path / "design"), tiny_model(), curves, n_boot=0, progress=False)
    write_outputs(res, tmp_path / "ev")
    kap = np.array([p["kl"] for c in res["curves"] for p in c["points"]])
    write_images(tmp_path / "src", 5, size=(90, 64), seed=3)
    lam = float(np.median(kap))
    q = "standard:" + ",".join(map(str, LADDER))
    r = CliRunner().invoke(
        app,
        [
            "compress",
            str(tmp_path / "src"),
            str(tmp_path / "out"),
            "--family",
            q,
            "--family",
            q + "@4:4:4",
            "--choose",
            f"rate:{tmp_path / 'ev' / 'results.json'}",
            "--lam",
            str(lam),
        ],
    )
    assert r.exit_code == 0, r.output
    members = [(t, s) for s in ("4:2:0", "4:4:4") for t in _family()]
    for f in sorted((tmp_path / "src").glob("*.png")):
        datas = [encode(_pixels(str(f)), t, s) for t, s in members]
        k = choose(np.array([[8 * len(d)] for d in datas]), kap[:, None], lam)[0]
        out = tmp_path / "out" / (f.stem + ".jpg")
        assert out.read_bytes() == datas[k]
        h = parse_header(out)
        assert (h.quant_tables(), h.subsampling) == (members[k][0], members[k][1])


def test_shipped_sweep_preset_compresses_by_rate_without_a_network(tmp_path):
    from dnnjpeg.compress import _pixels
    from dnnjpeg.evaluate import parse_codec
    from dnnjpeg.families import parse_family
    from dnnjpeg.presets import preset_info

    name = "efficientnet-lite0-420-original-sweep"
    kap = np.array(parse_family(f"preset:{name}").kappa)
    info = preset_info(name)
    assert kap is not None and len(kap) == len(info["design"]["sweep"]) >= 2
    assert np.all(np.diff(kap) < 0)  # coarse → fine: the network's mean KL falls as the tables refine
    assert (
        info["design"]["kappa_from"]["split"] == "design" and info["measured"]["by_rate"]["comparison"]["bd_rate"] < 0
    )
    curve = parse_codec(f"preset:{name}")
    fam = [(p.tables, p.subsampling) for p in curve.points]
    src = _tree(tmp_path / "src", n=4)
    lam = 0.002
    r = CliRunner().invoke(
        app,
        [
            "compress",
            str(src),
            str(tmp_path / "out"),
            "--family",
            f"preset:{name}",
            "--choose",
            "rate",
            "--lam",
            str(lam),
        ],
    )
    assert r.exit_code == 1 and "4 written" in r.output  # the broken file fails, the rest go on
    for f in sorted(src.rglob("*.*")):
        if f.name == "broken.jpg":
            continue
        datas = [encode(_pixels(str(f)), t, s) for t, s in fam]
        k = choose(np.array([[8 * len(d)] for d in datas]), kap[:, None], lam)[0]
        assert output_path(src, tmp_path / "out", f).read_bytes() == datas[k]
    r = CliRunner().invoke(
        app, ["compress", str(src), str(tmp_path / "o2"), "--family", "standard", "--choose", "rate"]
    )
    assert r.exit_code == 2 and "records no mean KL" in r.output


def test_lambda_for_bpp_is_the_smallest_lambda_that_fits():
    from dnnjpeg.select import lambda_for_bpp

    rng = np.random.default_rng(1)
    k, n = 5, 200
    bits = np.sort(rng.integers(1_000, 100_000, (k, n)), axis=0)[::-1]
    kl = np.sort(rng.gamma(0.5, 0.05, (k, n)), axis=0)
    pix = rng.integers(10_000, 200_000, n)
    cols = np.arange(n)
    rate = lambda lam: bits[choose(bits, kl, lam), cols].sum() / pix.sum()  # noqa: E731
    for target in np.quantile([rate(x) for x in np.geomspace(1e-6, 1e3, 40)], [0.2, 0.5, 0.8]):
        lam = lambda_for_bpp(bits, kl, pix, target)
        assert rate(lam) <= target < rate(lam * (1 - 1e-9))
    assert lambda_for_bpp(bits, kl, pix, 1e9) == 1e-9  # everything fits: the finest choice
    assert lambda_for_bpp(bits, kl, pix, 1e-9) == 1e4  # nothing fits: the coarsest


def test_the_climbs_lambda_for_a_budget_reuses_what_was_measured():
    from dnnjpeg.evaluate.selection import cached_climb, climb_lambda

    rng = np.random.default_rng(3)
    k, n = 8, 120
    bits = np.sort(rng.integers(2_000, 200_000, (k, n)), axis=0)
    kl = rng.uniform(50, 2000, n) / bits  # convex along the sizes: the climb finds choose()'s member
    pix = rng.integers(10_000, 100_000, n)
    full = [dict(enumerate(kl[:, i])) for i in range(n)]
    cols = np.arange(n)
    target = float(bits[choose(bits, kl, 0.01), cols].sum() / pix.sum())
    lam, members, complete = climb_lambda(list(bits.T), full, pix, target)
    assert complete.all() and np.array_equal(members, climb_choice(bits, kl, lam, np.full(n, k // 2))[0])
    rate = lambda lam: bits[climb_choice(bits, kl, lam, np.full(n, k // 2))[0], cols].sum() / pix.sum()  # noqa: E731
    assert rate(lam) <= target < rate(lam * (1 - 1e-6))  # the smallest λ that fits, as lambda_for_bpp
    # only the members the climb at λ measured: the same λ and choice, every climb complete
    start = k // 2
    part = []
    for i in range(n):
        _, asked = climb(bits[:, i], lambda ks, i=i: kl[ks, i], lam, start)
        part.append({m: kl[m, i] for m in asked})
    lam2, members2, complete2 = climb_lambda(list(bits.T), part, pix, target)
    assert complete2.all() and lam2 == pytest.approx(lam, rel=1e-6) and np.array_equal(members2, members)
    # a climb that walks past what was measured says so, and takes its best measured member
    only = {start: kl[start, 0], start - 1: kl[start - 1, 0], start + 1: kl[start + 1, 0]}
    far = 1e3  # so large a price that the climb walks to the smallest file
    assert cached_climb(bits[:, 0], only, far, start) == (start - 1, False)
    assert cached_climb(bits[:, 0], full[0], far, start) == (0, True)


def test_compress_to_a_target_size(tmp_path):
    from dnnjpeg.compress import _pixels

    src = tmp_path / "src"
    write_images(src, 8, size=(90, 64), seed=5)
    fam = _family()
    kap = np.array([0.5, 0.1, 0.02, 0.001])
    sizes = np.array([[8 * len(encode(_pixels(str(f)), t)) for f in sorted(src.glob("*.png"))] for t in fam])
    pix = 8 * 90 * 64
    target = 0.5 * (sizes[0].sum() + sizes[-1].sum()) / pix  # between the coarsest and the finest
    fk = TableFamily.from_table_set(fam).with_kappa(kap)
    rep = compress_tree(src, tmp_path / "out", RateChoice(fk, target_bpp=target), workers=1)
    outs = sorted((tmp_path / "out").glob("*.jpg"))
    got = 8 * sum(p.stat().st_size for p in outs) / pix
    assert rep.written == 8 and got == pytest.approx(rep.bpp) and got <= 1.01 * target
    ch = choose(sizes, np.repeat(kap[:, None], 8, 1), rep.lam)
    assert [p.read_bytes() for p in outs] == [
        encode(_pixels(str(f)), fam[k]) for f, k in zip(sorted(src.glob("*.png")), ch)
    ]
    with pytest.raises(ValueError, match="> 0"):
        RateChoice(fk, target_bpp=0)


def _outputs(root):
    """Files compress wrote under ``root``, less its settings record."""
    from dnnjpeg.compress import SETTINGS_FILE

    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != SETTINGS_FILE)


def test_compress_with_a_climbing_network_choice_records_it(tmp_path):
    src = _tree(tmp_path / "src", n=4)
    fam = TableFamily.from_table_set([QuantTables.standard(q) for q in (5, 10, 20, 35, 50, 70, 85, 95)])
    ch = NetworkChoice(fam, 0.005, model=tiny_model(), search="climb")
    assert "local search" in ch.describe() and ch.settings()["search"] == "climb"
    assert "search" not in NetworkChoice(fam, 0.005, model=tiny_model()).settings()  # older runs still resume
    rep = compress_tree(src, tmp_path / "dst", ch)
    assert rep.written == 4
    for p in _outputs(tmp_path / "dst"):
        h = parse_header(p)
        assert h.is_grayscale or h.quant_tables() in fam.members
    settings = json.loads((tmp_path / "dst" / ".dnnjpeg-compress.json").read_text())
    assert settings["settings"]["chooser"]["search"] == "climb"
    with pytest.raises(ValueError, match="all or climb"):
        NetworkChoice(fam, 0.1, model=tiny_model(), search="half")


def test_the_per_image_choice_composes_with_sdq_members(tmp_path):
    """select_encode over SDQ members: each member encodes itself; gradient weights are computed once
    per image from the choosing network and give exactly the member's own file."""
    from dnnjpeg.families import parse_family
    from dnnjpeg.sdq.weights import gradient_weights

    model = tiny_model()
    rgb = np.asarray(__import__("PIL.Image").Image.open(write_images(tmp_path, 1, size=(48, 40))[0]).convert("RGB"))
    for kind in ("mse", "gradient"):
        fam = parse_family(f"sdq:{kind}:0.05:standard:30,60,90")
        sel = select_encode(rgb, fam.points, model, 0.0, fam.subsamplings)
        w = gradient_weights(rgb, model) if kind == "gradient" else None
        datas = [p.encode(rgb, weights=w) for p in fam.points]
        assert sel.data == datas[sel.index] and sel.bits.tolist() == [8 * len(d) for d in datas]
        plain = [encode(rgb, t, "4:2:0", True) for t in fam.members]
        assert sum(sel.bits) < 8 * sum(map(len, plain))
    with pytest.raises(ValueError, match="needs the network"):
        select_encode(rgb, fam.points, None, 0.0, fam.subsamplings, kappa=np.zeros(3))
