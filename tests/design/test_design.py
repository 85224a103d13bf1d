import numpy as np
import pytest

from dnnjpeg.codec import QuantTables, encode, read_coefficients, to_zigzag
from dnnjpeg.data import discover
from dnnjpeg.design import DesignProblem, design, designers, pareto_front
from dnnjpeg.design.deepn import DeepNParams, deepn_steps, deepn_tables
from dnnjpeg.design.sampling import bounds_near_rate, sorted_random_tables
from dnnjpeg.design.stats import blocks_dct, dct_statistics, rgb_to_ycbcr

from ..evaluate.tiny import tiny_model, write_images


def test_deepn_mapping_hand_computed():
    sigma = np.array([0, 10, 20, 30, 60, 70, 100])
    # a - k1 s | b - k2 s | c - k3 s, floored at qmin = 5
    expect = [255, 255 - 97.5, 255 - 195, 80 - 30, 80 - 60, 240 - 210, 5]
    assert np.allclose(deepn_steps(sigma), expect)
    p = DeepNParams(qmin=40)
    assert deepn_steps(np.array([100.0]), p)[0] == 40


def test_dct_matches_real_encoder_and_stats():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    ones = QuantTables(np.ones((8, 8), int), np.ones((8, 8), int))
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "a.jpg"
        p.write_bytes(encode(img, ones, "4:4:4", optimize=False))
        coef = read_coefficients(p).blocks[0].reshape(-1, 8, 8)
    ours = blocks_dct(rgb_to_ycbcr(img)[..., 0])
    assert np.abs(coef - np.rint(ours)).max() <= 2  # libjpeg's integer DCT and color rounding
    flat = np.full((32, 32, 3), 77, np.uint8)
    st = dct_statistics([flat, flat], "4:2:0")
    assert np.allclose(st.luma_std, 0) and st.n_blocks == (32, 16)
    assert deepn_tables(st) == QuantTables(np.full((8, 8), 255), np.full((8, 8), 255))


def test_sorted_random_tables_are_sorted_along_zigzag():
    rng = np.random.default_rng(1)
    for _ in range(20):
        t = sorted_random_tables(rng)
        for tab in (t.luma, t.chroma):
            zz = to_zigzag(tab)  # values in zigzag order
            assert np.all(np.diff(zz.astype(int)) >= 0) and zz.min() >= 1 and zz.max() <= 255


@pytest.fixture(scope="module")
def problem_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("designdata")
    write_images(d, 24, size=(40, 40), seed=7)
    return discover(d)


def _problem(ds, **kw):
    return DesignProblem(ds, tiny_model(), budget=kw.pop("budget", 8), trial_images=6, seed=kw.pop("seed", 3), **kw)


# Small settings for methods whose defaults take long; every registered method is tested.
TINY = {
    "deepn": {"fit": True},
    "gradient": {"lambdas": (0.05, 0.01), "epochs": 1.0, "batch_size": 4},
    "fisher": {"targets": (0.5, 1.5, 3.0), "rd_images": 4},
}


@pytest.mark.parametrize("method", list(designers()))
def test_every_designer_valid_and_repeatable(problem_data, method):
    opts = TINY.get(method, {})
    r1 = design(method, _problem(problem_data), **opts)
    r2 = design(method, _problem(problem_data), **opts)
    assert isinstance(r1.tables, QuantTables) and not r1.tables.extended
    assert r1.tables.luma.min() >= 1 and r1.tables.chroma.max() <= 255
    assert r1.tables == r2.tables
    # every table tried is in the history; repeats are served from the cache, not re-measured
    assert r1.info["trials_used"] <= len(r1.history) <= 8 and r1.info["trial_images"] == 6
    front = r1.pareto
    assert all(
        a.measurement.bpp <= b.measurement.bpp and a.measurement.kl > b.measurement.kl for a, b in zip(front, front[1:])
    )
    if method != "deepn":
        assert max(h["gain"] for h in r1.history) == pytest.approx(r1.info["best_gain"])


def test_gradient_smooth_basis_gives_smooth_valid_tables(problem_data):
    r = design("gradient", _problem(problem_data), lambdas=(0.05,), epochs=1.0, batch_size=4, basis="smooth")
    assert r.info["basis"] == "smooth" and 1 <= r.tables.luma.min() and r.tables.chroma.max() <= 255
    # log steps minus log Annex K lie in the span of the 6 basis surfaces (up to integer rounding)
    from dnnjpeg.codec import ANNEX_K_LUMA
    from dnnjpeg.design.gradient import _smooth_basis

    q = r.tables.luma.reshape(64).astype(float)
    d = np.log(q / ANNEX_K_LUMA.reshape(64))
    phi = _smooth_basis().T
    inside = (q > 1) & (q < 255)
    coef, *_ = np.linalg.lstsq(phi[inside], d[inside], rcond=None)
    resid = phi[inside] @ coef - d[inside]
    assert np.sqrt(np.mean(resid**2)) < 0.1, resid
    with pytest.raises(ValueError, match="basis"):
        design("gradient", _problem(problem_data), lambdas=(0.05,), epochs=0.1, basis="nope")


def test_fisher_designs_at_original_too(problem_data):
    r = design("fisher", _problem(problem_data, at="original"), targets=(0.5, 1.5), rd_images=4)
    assert r.info["at"] == "original" and len(r.family) == 2
    assert all(h["bpp"] > 0 for h in r.history)  # each table measured on stored images at original size
    with pytest.raises(ValueError, match="at must be"):
        design("fisher", _problem(problem_data, at="nowhere"), targets=(0.5,), rd_images=4)


def test_fisher_keeps_the_gamma_whose_sweep_gains_most_on_the_design_split(problem_data):
    r = design("fisher", _problem(problem_data, budget=12), targets=(0.5, 1.5, 3.0), rd_images=4, gamma=(0.5, 1.0, 2.0))
    gains = {float(k): v for k, v in r.info["gamma_gains"].items()}
    assert set(gains) == {0.5, 1.0, 2.0} and r.info["gamma"] == max(gains, key=gains.get)
    chosen = [h for h in r.history if h["gamma"] == r.info["gamma"]]
    assert len(r.history) == 9 and len(r.family) == 3
    assert [t.to_dict() for t in r.family.members] == [h["tables"] for h in chosen]
    assert [p["tables"] for p in r.to_dict()["design"]["sweep"]] == [h["tables"] for h in chosen]
    assert r.tables.to_dict() == max(chosen, key=lambda h: h["gain"])["tables"]  # best of the kept γ, not of all
    with pytest.raises(ValueError, match="gamma"):
        design("fisher", _problem(problem_data), targets=(0.5,), rd_images=4, gamma=(0.0, 1.0))


def test_fisher_refine_reshapes_the_model_table_by_measurement(problem_data):
    from dnnjpeg.design.fisher import REFINE_SCALES
    from dnnjpeg.design.search import parametric_tables

    r = design("fisher", _problem(problem_data, budget=20), targets=(0.5, 1.5, 3.0), rd_images=4, refine=3)
    fisher_pts = [h for h in r.history if h["phase"] == "fisher"]
    refine_pts = [h for h in r.history if h["phase"] == "refine"]
    assert len(fisher_pts) == 3 and len(refine_pts) == 3 * len(REFINE_SCALES)
    best = max(fisher_pts, key=lambda h: h["gain"])
    # the first shape is the model's own best table, unmodified
    assert refine_pts[1]["tables"] == best["tables"] and all(v == 0 for v in refine_pts[0]["params"].values())
    assert r.info["refine_shape_gain"] >= r.info["unrefined_shape_gain"]
    base = QuantTables.from_dict(best["tables"])
    assert r.tables == parametric_tables(**r.info["refine_params"], base=base)
    assert len(r.family) == 3  # the sweep stays the model's


def test_deepn_without_fit_needs_no_trials(problem_data):
    r = design("deepn", _problem(problem_data))
    assert r.info["trials_used"] == 0 and len(r.info["sigma_luma"]) == 8


def test_design_never_sees_eval_images(problem_data):
    from dnnjpeg.design.objective import TableEvaluator

    with pytest.raises(ValueError, match="design split"):
        TableEvaluator(problem_data.subset("all"), tiny_model())
    ev = TableEvaluator(problem_data.subset("design"), tiny_model(), trial_images=5)
    assert all(
        p.split("/")[-1] in {r.path.name for r in problem_data.subset("design").records} for p in ev.pristine.paths
    )


def test_bayes_resumes_from_storage(problem_data, tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    calls = []

    def killer(i, n, g):
        calls.append(i)
        if i == 7:
            raise KeyboardInterrupt

    p = _problem(problem_data, budget=12, storage=url)
    p.progress = killer
    with pytest.raises(KeyboardInterrupt):
        design("bayes", p)
    import optuna

    st = optuna.load_study(study_name=[s.study_name for s in optuna.get_all_study_summaries(url)][0], storage=url)
    done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in st.trials)
    assert done >= 1
    r = design("bayes", _problem(problem_data, budget=12, storage=url))
    assert r.info["resumed_trials"] == done
    st = optuna.load_study(study_name=r.info["study"], storage=url)
    complete = sum(t.state == optuna.trial.TrialState.COMPLETE for t in st.trials)
    assert complete == 12 - 4  # budget minus the warm-up of the first run
    assert r.info["bounds"]["lo"] == st.user_attrs["lo"]


def test_pareto_front_and_bounds():
    from dnnjpeg.design import Candidate
    from dnnjpeg.design.result import Measurement

    t = [QuantTables.standard(q) for q in (20, 40, 60, 80)]
    cands = [
        Candidate(t[0], Measurement(0.5, 70, 0.4, 1), 0),
        Candidate(t[1], Measurement(0.7, 75, 0.2, 1), 0),
        Candidate(t[2], Measurement(0.9, 74, 0.3, 1), 0),
        Candidate(t[3], Measurement(1.2, 80, 0.1, 1), 0),
    ]
    assert [c.tables for c in pareto_front(cands)] == [t[0], t[1], t[3]]
    lo, hi = bounds_near_rate(cands, 0.7, k=2)
    stack = np.stack([t[0].as_array(), t[1].as_array()]).reshape(2, 128)
    assert np.all(lo <= stack.min(0)) and np.all(hi >= stack.max(0)) and np.all(lo >= 1) and np.all(hi <= 255)


def test_bandit_does_not_reward_repeats(problem_data):
    r = design("bandit", _problem(problem_data, budget=14), arms=("nelder-mead", "pso"), epsilon=0.0)
    rounds = [h for h in r.history if h.get("phase") == "bandit"]
    repeats = [h for h in rounds if h["repeat"]]
    # Nelder-Mead's first moves round to an integer table it already proposed; once a repeat
    # earns nothing the bandit turns to PSO instead of paying the stuck arm again and again
    assert len([h for h in repeats if h["arm"] == "nelder-mead"]) <= 2
    assert r.info["arm_pulls"]["pso"] >= len(rounds) - 3


def test_parametric_profile():
    from dnnjpeg.codec import ANNEX_K_CHROMA, ANNEX_K_LUMA
    from dnnjpeg.design.search import parametric_tables

    assert parametric_tables(0, 0, 0, 0) == QuantTables(ANNEX_K_LUMA, ANNEX_K_CHROMA)
    t = parametric_tables(1.0, 0, np.log(2), 0)
    assert t.luma[0, 0] == 16 and t.luma[7, 7] == 255  # DC untouched; 99·e = 269 clamps to 255
    assert t.luma[0, 7] == round(61 * np.exp(0.5))  # r = 7/14 = 0.5
    assert np.all(t.chroma == np.clip(np.rint(ANNEX_K_CHROMA * 2), 1, 255))


def test_an_option_a_method_does_not_have_is_named(problem_data):
    with pytest.raises(ValueError, match="fisher has no option lambdas; its options: targets, gamma"):
        design("fisher", _problem(problem_data), lambdas=(0.1,))
    for name, d in designers().items():  # every option says what it does
        assert d.summary and all(f.metadata.get("help") for f in __import__("dataclasses").fields(d.options)), name
