"""Hypotheses as data: presets, TOML round trips, the manner coupling and the tone emission."""

from __future__ import annotations

import pytest
import reference as ref
import torch

from scai.models.hypotheses import PRESETS, Hypothesis, HypothesisError, get_hypothesis
from scai.models.language import MANNERS
from scai.models.policies import PolicyType

CUSTOM = Hypothesis(
    name="custom",
    description="a spiteful type, a stereotype, latent rationality and currency pooling",
    policies=(
        PolicyType("selfish"),
        PolicyType("spiteful", w=-1.0, description="spite"),
        PolicyType("averse", w=0.1, alpha=0.9, beta=0.4),
    ),
    pi_concentration=(0.5, 1.0, 2.0),
    rationality=2.5,
    rationality_scale=0.3,
    stereotype={"spiteful": {"rude": 2.0, "neutral": 1.0}},
    stereotype_strength=0.4,
    tone_fidelity=0.7,
    shared_scale=0.5,
    currency_scale=0.1,
    essential_shift=-1.5,
)


def test_presets_are_valid_and_named_by_their_key():
    assert {"neutral", "stereotyped", "pooled", "essential_goods_shared"} <= set(PRESETS)
    for name, hyp in PRESETS.items():
        assert hyp.name == name
        assert hyp.description
        assert get_hypothesis(name) is hyp
        # every preset's proposals follow the original study's three norms
        assert set(hyp.norm_names) == {"selfish", "fair", "altruistic"}
    assert PRESETS["pooled"].has_currency_shift and not PRESETS["neutral"].has_currency_shift
    assert PRESETS["essential_goods_shared"].essential_shift > 0
    agents = PRESETS["real_agents"]
    assert agents.policy_names == ("selfish", "selfish_rejecting", "fair", "altruistic")
    assert agents.lapse_is_latent and agents.clones and not agents.coupling_is_latent
    assert PRESETS["real_agents_stereotyped"].coupling_is_latent


def test_unknown_preset_names_the_allowed_ones():
    with pytest.raises(HypothesisError, match="unknown hypothesis 'naive'; allowed: neutral"):
        get_hypothesis("naive")


@pytest.mark.parametrize("hyp", [*PRESETS.values(), CUSTOM], ids=[*PRESETS, "custom"])
def test_save_load_round_trip(tmp_path, hyp):
    path = tmp_path / f"{hyp.name}.toml"
    hyp.save(path)
    loaded = Hypothesis.load(path)
    assert loaded == hyp
    assert get_hypothesis(str(path)) == hyp
    # and it is plain TOML a user can edit: a second round trip gives the same text
    loaded.save(tmp_path / "again.toml")
    assert (tmp_path / "again.toml").read_text() == path.read_text()


def test_save_writes_atomically_and_names_a_folder_in_the_way(tmp_path, monkeypatch):
    """``Hypothesis.save`` wrote in place (an interrupted save left half a file) and, given a
    folder, raised Python's IsADirectoryError; now it writes a temporary file and renames it,
    and a folder or a link at the path is a RunError naming it."""
    from scai.models import writing
    from scai.models.errors import RunError

    hyp = PRESETS["stereotyped"]
    with pytest.raises(RunError, match=f"{tmp_path}: is a folder; give a file path"):
        hyp.save(tmp_path)
    path = tmp_path / "h.toml"
    path.write_text("# the user's file\n")
    real = writing.os.replace

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(writing.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        hyp.save(path)
    assert path.read_text() == "# the user's file\n"  # untouched, and no temporary file left
    assert [p.name for p in tmp_path.iterdir()] == ["h.toml"]
    monkeypatch.setattr(writing.os, "replace", real)
    hyp.save(path)
    assert Hypothesis.load(path) == hyp and [p.name for p in tmp_path.iterdir()] == ["h.toml"]


def test_minimal_toml_defines_a_new_policy(tmp_path):
    path = tmp_path / "spite.toml"
    path.write_text("[policies.selfish]\n\n[policies.spiteful]\nw = -1.0\n")
    hyp = Hypothesis.load(path)
    assert hyp.name == "spite"  # from the file name
    assert hyp.policy_names == ("selfish", "spiteful")
    assert hyp.policies[1].w == -1.0
    assert hyp.pi_concentration == (0.5, 0.5)  # one per policy
    assert hyp.rationality == Hypothesis().rationality


@pytest.mark.parametrize("hyp", [*PRESETS.values(), CUSTOM], ids=[*PRESETS, "custom"])
def test_coupling_and_emission_rows_are_distributions(hyp):
    rho, emission = hyp.coupling(), hyp.emission()
    assert rho.shape == (len(hyp.policies), len(MANNERS))
    assert emission.shape == (len(MANNERS), len(MANNERS))
    for table in (rho, emission):
        assert (table >= 0).all()
        assert torch.allclose(table.sum(-1), torch.ones(table.shape[0]), atol=1e-6)
    # against the formulas written out by hand
    for k, p in enumerate(hyp.policies):
        want = ref.coupling_row(hyp.stereotype.get(p.name), hyp.stereotype_strength)
        assert rho[k].tolist() == pytest.approx(want, abs=1e-6)
    for i, m in enumerate(MANNERS):
        for j, t in enumerate(MANNERS):
            want = ref.emission(m, t, hyp.tone_fidelity)
            assert emission[i, j].item() == pytest.approx(want, abs=1e-6)


def test_stereotype_strength_zero_gives_uniform_rows():
    hyp = PRESETS["stereotyped"].with_(stereotype_strength=0.0)
    rho = hyp.coupling()
    assert torch.allclose(rho, torch.full((3, len(MANNERS)), 1 / len(MANNERS)))
    # and at full strength the stereotype rows themselves
    full = PRESETS["stereotyped"].with_(stereotype_strength=1.0).coupling()
    assert full[0, MANNERS.index("rude")].item() == pytest.approx(1.0)
    assert full[2, MANNERS.index("sycophantic")].item() == pytest.approx(0.5)
    assert full[2, MANNERS.index("polite")].item() == pytest.approx(0.5)


def test_stereotype_weights_are_relative_at_any_scale():
    """A row's weights are normalised before float32 rounding: weights of 1e-300 (in range,
    but 0 in float32) are a row like weights of 1, not 0 / 0 (NaN rows that broke every fit
    with a raw torch error)."""
    base = PRESETS["stereotyped"]
    rows = {p: {m: w * 1e-300 for m, w in row.items()} for p, row in base.stereotype.items()}
    tiny = base.with_(stereotype=rows)
    assert torch.equal(tiny.coupling(), base.coupling())
    assert torch.equal(tiny.coupling(torch.tensor([0.3])), base.coupling(torch.tensor([0.3])))


def test_the_agents_stereotype_says_nothing_of_neutral_or_polite():
    """``real_agents_stereotyped``: at any strength every policy is equally likely to speak
    neutrally, and equally likely to speak politely (a manner no agent of the original study
    used, which the shipped tone reader never saw: a row favouring it would let every reported
    tone count as that policy's, the read-versus-configured gap of the original logs)."""
    hyp = PRESETS["real_agents_stereotyped"]
    for s in (0.3, 0.8, 1.0):
        rho = hyp.coupling(torch.tensor(s, dtype=torch.float64))
        for manner in ("neutral", "polite"):
            column = rho[:, MANNERS.index(manner)]
            assert torch.allclose(column, column[0].expand_as(column)), (manner, s, column)
        assert torch.allclose(rho.sum(-1), torch.ones(len(hyp.policies), dtype=torch.float64))
    fair = hyp.policy_names.index("fair")
    rude, syco = MANNERS.index("rude"), MANNERS.index("sycophantic")
    assert (
        hyp.coupling(torch.tensor(1.0))[fair, rude] == hyp.coupling(torch.tensor(1.0))[fair, syco]
    )


def test_invalid_settings_name_the_key():
    with pytest.raises(HypothesisError, match="pi_concentration: needs one value per policy"):
        Hypothesis(pi_concentration=(1.0, 1.0))
    with pytest.raises(HypothesisError, match="tone_fidelity"):
        Hypothesis(tone_fidelity=0.0)
    with pytest.raises(HypothesisError, match="rationality_scale"):
        Hypothesis(rationality_scale=-1.0)
    with pytest.raises(HypothesisError, match="names must be unique"):
        Hypothesis(policies=(PolicyType("a"), PolicyType("a")), pi_concentration=(1.0, 1.0))
    with pytest.raises(HypothesisError, match="unknown policy 'greedy'; allowed: selfish"):
        Hypothesis().policy_index("greedy")


@pytest.mark.parametrize("key", ["rationality_scale", "shared_scale", "currency_scale"])
def test_a_prior_scale_is_zero_or_resolvable(key):
    """A positive prior scale below MIN_SCALE squares to 0 in float32: 1e-30 crashed the exact
    engine (Cholesky), SVI and the simulator (a Normal of scale 0) and left MCMC at a step
    size of 1e-72, with a wrong posterior; it is refused, naming the key and what is allowed."""
    from scai.models.hypotheses import MIN_SCALE

    for tiny in (1e-300, 1e-30, MIN_SCALE / 2, -1.0):
        with pytest.raises(HypothesisError, match=rf"{key}: must be 0 \(fixed\) or a number"):
            Hypothesis().with_(**{key: tiny})
    for fine in (0.0, MIN_SCALE, 0.5):
        assert getattr(Hypothesis().with_(**{key: fine}), key) == fine


@pytest.mark.parametrize("key", ["shared_scale", "currency_scale", "essential_shift"])
def test_a_currency_key_of_a_file_is_named_by_its_table(tmp_path, key):
    """A bad value under a file's ``[currency]`` table is named ``currency.KEY``, as the
    stereotype's are ``stereotype.TYPE.MANNER`` (it was named by the constructor's argument
    alone, ``shared_scale``: a review)."""
    path = tmp_path / "h.toml"
    path.write_text(f"[currency]\n{key} = 1e9\n")
    with pytest.raises(HypothesisError, match=rf"h.toml: currency\.{key}: must be"):
        Hypothesis.load(path)


def test_two_types_that_act_alike_are_warned_of():
    """Two types with the same parameters in both roles cannot be told apart by any data (a
    red-team pass found a file with two, whose posterior split 0.5 / 0.5 in silence); a role
    variant (another responder) is a different type."""
    import warnings

    from scai.models.errors import HypothesisWarning
    from scai.models.policies import PolicyType

    alike = (PolicyType("fair", w=0.5), PolicyType("fair2", w=0.5))
    with pytest.warns(HypothesisWarning, match="'fair' and 'fair2' have the same parameters") as w:
        Hypothesis(policies=alike, pi_concentration=(0.5, 0.5))
        PRESETS["neutral"].with_(policies=alike, pi_concentration=0.5)
    # each points at the user's line, not at the dataclass's __init__ or ``replace``
    assert [r.filename for r in w] == [__file__, __file__]
    with warnings.catch_warnings():
        warnings.simplefilter("error", HypothesisWarning)
        Hypothesis(
            policies=(
                PolicyType("selfish", w=0.0),
                PolicyType("selfish_rejecting", w=0.0, responder=(0.0, 1.0, 0.0), norm="selfish"),
            ),
            pi_concentration=(0.5, 0.5),
        )
        for preset in PRESETS.values():
            preset.with_(rationality=2.0)


def test_types_alike_but_for_their_stereotype_are_not_warned_of():
    """Manners tell two such types apart once a stereotype ties them to manners (a review)."""
    import warnings

    from scai.models.errors import HypothesisWarning
    from scai.models.policies import PolicyType

    types = (PolicyType("fair_polite", w=0.5), PolicyType("fair_rude", w=0.5))
    stereotype = {"fair_polite": {"polite": 1.0}, "fair_rude": {"rude": 1.0}}
    with warnings.catch_warnings():
        warnings.simplefilter("error", HypothesisWarning)
        Hypothesis(
            policies=types,
            pi_concentration=(0.5, 0.5),
            stereotype=stereotype,
            stereotype_strength=0.8,
        )
    with pytest.warns(HypothesisWarning, match="'fair_polite' and 'fair_rude'"):
        Hypothesis(policies=types, pi_concentration=(0.5, 0.5), stereotype=stereotype)


def test_a_hypothesis_owns_its_stereotype_table():
    """``with_`` handed on the preset's own table (the module's): changing a row of a copy
    changed the preset for everyone after (a review); and a preset's own rows could be edited
    in place past every check (a NaN weight was fitted without a word: a red-team): the table
    and its rows are read-only, and a hypothesis pickles and copies with them."""
    import copy as copying
    import pickle

    preset = PRESETS["stereotyped"]
    copy = preset.with_(name="mine")
    assert copy.stereotype == preset.stereotype and copy.stereotype is not preset.stereotype
    row = next(iter(copy.stereotype))
    before = dict(preset.stereotype[row])
    for table in (copy.stereotype, preset.stereotype):
        with pytest.raises(TypeError, match="stereotype table is read-only"):
            table[row]["rude"] = float("nan")
        with pytest.raises(TypeError, match="read-only"):
            table["bogus"] = {"rude": 1.0}
        with pytest.raises(TypeError, match="read-only"):
            table[row].update(rude=1.0)
    assert preset.stereotype[row] == before
    assert Hypothesis(stereotype=preset.stereotype).stereotype is not preset.stereotype
    for again in (pickle.loads(pickle.dumps(preset)), copying.deepcopy(preset)):
        assert again == preset and again.stereotype[row] == before
    assert preset.with_(stereotype={row: {"rude": 2.0}}).stereotype[row] == {"rude": 2.0}


@pytest.mark.parametrize("other", ["\uff53elfish", "Selfish", "SELFISH"])
def test_policy_names_that_look_alike_are_refused(other):
    """A ``[policies."ｓelfish"]`` table (a full-width s) beside ``selfish`` was a second type
    whose name no figure tells apart (a red-team find); names differing in case alike."""
    selfish = PRESETS["neutral"].policies[0]
    assert selfish.name == "selfish"
    twin = PolicyType(other, w=1.0)
    with pytest.raises(HypothesisError, match=rf"'selfish' and '{other}' look alike"):
        Hypothesis(policies=(selfish, twin), pi_concentration=(1.0, 1.0))
    apart = (selfish, PolicyType("selfish2", w=1.0))
    assert len(Hypothesis(policies=apart, pi_concentration=(1.0, 1.0)).policies) == 2


@pytest.mark.parametrize(
    ("name", "twin"),
    [("fair", "f\u0430ir"), ("copy", "\u0441\u043e\u0440\u0443"), ("tao", "\u03c4\u03b1\u03bf")],
)
def test_policy_names_that_look_alike_across_alphabets_are_refused(name, twin):
    """``fair`` beside ``fаir`` (a Cyrillic а) were two types whose columns in every table read
    "fair" (a review), as ``copy`` beside an all-Cyrillic ``сору``: refused, naming both. A name
    with Greek or Cyrillic letters is a name (``α_fair``, ``справедливый``) where no other looks
    like it. A decomposed name (``fa\u0308ir``) is refused saying why (its message showed
    "fäir", a name that looks valid)."""
    first = PolicyType(name, w=0.0)
    with pytest.raises(HypothesisError, match=rf"{name!r} and {twin!r} look alike"):
        Hypothesis(policies=(first, PolicyType(twin, w=1.0)), pi_concentration=(1.0, 1.0))
    apart = (first, PolicyType("\u03b1_fair", w=1.0), PolicyType("справедливый", w=2.0))
    assert len(Hypothesis(policies=apart, pi_concentration=(1.0,) * 3).policies) == 3
    with pytest.raises(HypothesisError, match=r"combining marks: write it composed"):
        PolicyType("fa\u0308ir", w=1.0)
    assert PolicyType("f\u00e4ir", w=1.0).name == "fäir"


def test_with_an_unknown_setting_lists_the_settings():
    """``with_(foo=1)`` raised dataclasses' TypeError, which named no allowed setting."""
    with pytest.raises(HypothesisError, match=r"unknown setting\(s\) 'foo'; allowed: .*lapse"):
        PRESETS["neutral"].with_(foo=1, lapse=0.1)
    assert PRESETS["neutral"].with_(lapse=0.1).lapse == 0.1


def test_a_files_stereotype_setting_that_changes_nothing_is_warned_of(tmp_path):
    """A ``[stereotype]`` table without a strength (0 by default) or a prior, and a
    ``stereotype_prior`` without a table, fitted as ``neutral`` without a word; each is a
    HypothesisWarning naming the file. A file that sets the strength is quiet, and so is the
    table's file where a condition (a sweep's axis) sets the strength it is used with."""
    import warnings

    from scai.experiments.conditions import Condition, assistant_hypothesis
    from scai.models.errors import HypothesisWarning
    from scai.models.hypotheses import get_hypothesis

    cases = {
        "table.toml": ('name = "t"\n[stereotype.selfish]\nrude = 1.0\n', "stereotype_strength"),
        "prior.toml": ('name = "p"\nstereotype_prior = [8.0, 2.0]\n', r"no \[stereotype\] table"),
        # a fixed strength of no table: accepted without a word (a red-team)
        "strength.toml": ('name = "f"\nstereotype_strength = 0.8\n', r"0.8 changes nothing"),
        # the prior overrides the strength: it is the setting to name
        "both.toml": (
            'name = "b"\nstereotype_strength = 0.8\nstereotype_prior = [8.0, 2.0]\n',
            r"stereotype_prior learns",
        ),
        # with a table too: the strength was dropped without a word (a review's find)
        "both_and_table.toml": (
            'name = "bt"\nstereotype_strength = 0.3\nstereotype_prior = [8.0, 2.0]\n'
            "[stereotype.selfish]\nrude = 1.0\n",
            r"stereotype_strength = 0.3 is not used: stereotype_prior learns the strength",
        ),
    }
    for name, (text, words) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.warns(HypothesisWarning, match=words) as caught:
            get_hypothesis(tmp_path / name)
        assert str(tmp_path / name) in str(caught[0].message)
    set_strength = 'name = "s"\nstereotype_strength = 0.8\n[stereotype.selfish]\nrude = 1.0\n'
    (tmp_path / "set.toml").write_text(set_strength)
    with warnings.catch_warnings():
        warnings.simplefilter("error", HypothesisWarning)
        get_hypothesis(tmp_path / "set.toml")
        table = str(tmp_path / "table.toml")
        cell = Condition("c", "altruistic", hypothesis=table, stereotype_strength=0.8)
        assert assistant_hypothesis(cell).stereotype_strength == 0.8
    with pytest.warns(HypothesisWarning, match="stereotype_strength"):
        assistant_hypothesis(Condition("c", "altruistic", hypothesis=table))


def test_a_fixed_strength_beside_its_prior_is_named_and_presets_have_none():
    """A strength beside ``stereotype_prior`` is not used (the prior learns it): the
    constructor says so, as it does of a fixed lapse beside its prior; no preset sets one, so
    a saved preset loads without a word, and a self-named norm is refused (it was accepted,
    circular)."""
    import warnings

    from scai.models.errors import HypothesisError, StereotypeStrengthWarning
    from scai.models.policies import PolicyType

    table = {"selfish": {"rude": 1.0}}
    with pytest.warns(StereotypeStrengthWarning, match="stereotype_strength = 0.4 is not used"):
        Hypothesis(stereotype=table, stereotype_strength=0.4, stereotype_prior=(8.0, 2.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", StereotypeStrengthWarning)
        for preset in PRESETS.values():
            Hypothesis.from_dict(preset.to_dict())
        PRESETS["real_agents_stereotyped"].with_(lapse_prior=(1.0, 20.0))
    with pytest.raises(HypothesisError, match=r"policies.own.norm: 'own' is the type itself"):
        PRESETS["neutral"].with_(policies=(PolicyType("selfish"), PolicyType("own", norm="own")))


def test_with_a_stereotype_setting_that_changes_nothing_is_warned_of_as_a_files():
    """``with_(stereotype_prior=...)`` on a hypothesis without a ``[stereotype]`` table was
    silent where the same setting in a file is a HypothesisWarning; so were a strength of no
    table and a table of no strength. Settings that do something, or that the call does not
    give, are quiet."""
    import warnings

    from scai.models.errors import HypothesisWarning

    neutral, stereotyped = PRESETS["neutral"], PRESETS["stereotyped"]
    table = {"selfish": {"rude": 1.0}}
    for base, changes, words in (
        (neutral, {"stereotype_prior": (8.0, 2.0)}, r"with_: stereotype_prior learns"),
        (neutral, {"stereotype_strength": 0.8}, r"stereotype_strength = 0.8 changes nothing"),
        (neutral, {"stereotype": table}, r"with_: the \[stereotype\] table changes nothing"),
        (stereotyped, {"stereotype": {}}, r"stereotype_strength = 0.8 changes nothing"),
        # a review's two more: the table at strength 0 (a prior of None is no prior), and a
        # strength the prior overrides (the sweep refuses it; with_ said nothing)
        (neutral, {"stereotype": table, "stereotype_prior": None}, r"table changes nothing"),
        (
            PRESETS["real_agents_stereotyped"],
            {"stereotype_strength": 0.2},
            r"stereotype_strength = 0.2 is not used: stereotype_prior learns the strength",
        ),
    ):
        with pytest.warns(HypothesisWarning, match=words):
            base.with_(**changes)
    with warnings.catch_warnings():
        warnings.simplefilter("error", HypothesisWarning)
        stereotyped.with_(stereotype_strength=0.3)
        stereotyped.with_(stereotype=table)  # its strength mixes the new table in
        neutral.with_(stereotype=table, stereotype_strength=0.5)
        neutral.with_(stereotype_prior=None, rationality=2.0)


def test_a_fixed_lapse_beside_its_prior_is_named(tmp_path):
    """A file's ``lapse`` beside ``lapse_prior`` was dropped in silence: the prior learns the
    lapse. It is a HypothesisWarning naming the file and the value; a prior alone, or beside
    the default lapse of 0, is quiet, and so is every preset saved and loaded again."""
    import warnings

    from scai.models.errors import HypothesisWarning
    from scai.models.hypotheses import get_hypothesis

    text = 'name = "l"\nlapse = 0.05\nlapse_prior = [1.0, 30.0]\n'
    (tmp_path / "lapse.toml").write_text(text)
    with pytest.warns(HypothesisWarning, match="lapse = 0.05 is not used") as caught:
        hypothesis = get_hypothesis(tmp_path / "lapse.toml")
    assert str(tmp_path / "lapse.toml") in str(caught[0].message)
    assert hypothesis.lapse_prior == (1.0, 30.0)  # (what the fit learns)
    quiet = {
        "prior.toml": 'name = "p"\nlapse_prior = [1.0, 30.0]\n',
        "zero.toml": 'name = "z"\nlapse = 0.0\nlapse_prior = [1.0, 30.0]\n',
    }
    for name, text in quiet.items():
        (tmp_path / name).write_text(text)
    for name, preset in PRESETS.items():
        preset.save(tmp_path / f"{name}.toml")
        quiet[f"{name}.toml"] = ""
    for name in quiet:
        with warnings.catch_warnings():
            warnings.simplefilter("error", HypothesisWarning)
            get_hypothesis(tmp_path / name)
    # In Python too (it was a file's warning alone): the constructor and with_, pointed at
    # the caller's line; the prior alone, or with_(lapse=0.0) beside it, is quiet.
    learned = Hypothesis(lapse_prior=(1.0, 30.0))
    with pytest.warns(HypothesisWarning, match="lapse = 0.1 is not used") as caught:
        learned.with_(lapse=0.1)
    assert caught[0].filename == __file__
    with pytest.warns(HypothesisWarning, match="lapse = 0.05 is not used"):
        both = Hypothesis(lapse=0.05, lapse_prior=(1.0, 30.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", HypothesisWarning)
        assert learned.with_(lapse=0.0).lapse_prior == (1.0, 30.0)
        assert learned.with_(lapse=0.1, lapse_prior=None).lapse == 0.1
        # warned of where it was made: a copy changing something else says it again no more
        # (scai's own with_(reader_confusion=...) on a read file repeated it without the file)
        assert both.with_(rationality=3.0).lapse == 0.05
    with pytest.warns(HypothesisWarning, match="lapse = 0.05 is not used"):
        both.with_(lapse_prior=(2.0, 30.0))


def test_with_fewer_policies_keeps_one_concentration_for_all_or_asks_for_it():
    """Dropping a type from a preset blamed ``pi_concentration``, a setting the user had not
    touched (a review): one value for every policy is kept for the new ones; values that
    differ by policy are asked for, by name."""
    from scai.models.errors import HypothesisError

    neutral = PRESETS["neutral"]
    two = neutral.with_(policies=neutral.policies[:2])
    assert two.pi_concentration == (neutral.pi_concentration[0],) * 2
    uneven = neutral.with_(pi_concentration=(1.0, 2.0, 3.0))
    with pytest.raises(HypothesisError, match="give pi_concentration for the new policies too"):
        uneven.with_(policies=neutral.policies[:2])


def test_a_hypothesis_that_is_neither_a_name_nor_a_file_is_named_by_its_type():
    from scai.models.errors import HypothesisError
    from scai.models.hypotheses import get_hypothesis

    with pytest.raises(HypothesisError, match="got int 3; give a Hypothesis, a preset's name"):
        get_hypothesis(3)


def test_any_path_like_names_a_file_and_a_python_c_user_is_pointed_at(tmp_path):
    """A review: the type check refused path objects other than ``Path`` (``PurePosixPath``,
    pytest's ``tmpdir``), and the identical-types warning, passing over every ``"<string>"``
    frame, pointed a ``python -c`` user at scai's own line."""
    import pathlib
    import subprocess
    import sys

    from scai.models.hypotheses import get_hypothesis

    PRESETS["pooled"].save(tmp_path / "h.toml")
    assert get_hypothesis(pathlib.PurePosixPath(tmp_path / "h.toml")) == PRESETS["pooled"]
    code = (
        "from scai.models.hypotheses import Hypothesis\n"
        "from scai.models.policies import PolicyType\n"
        "alike = (PolicyType('fair', w=0.5), PolicyType('fair2', w=0.5))\n"
        "Hypothesis(policies=alike, pi_concentration=(0.5, 0.5))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "<string>:4: HypothesisWarning" in done.stderr, done.stderr


def test_policy_names_that_would_overwrite_the_type_tables_ids_are_refused():
    """A policy named ``sim`` or ``user`` overwrote those id columns of
    ``Posterior.policy_table()`` with its probabilities, silently; ``PolicyType(5)`` was an
    AttributeError; a list of policies or concentrations made a hypothesis unequal to the same
    one with tuples (a review of the Python API)."""
    from scai.models.policies import PolicyType

    base = PRESETS["neutral"]
    for name in ("sim", "user"):
        with pytest.raises(HypothesisError, match=f"'{name}' is the name of an id column"):
            base.with_(policies=(PolicyType(name), *base.policies[1:]))
    with pytest.raises(HypothesisError, match="policy name must be a non-empty identifier"):
        PolicyType(5)
    listed = base.with_(policies=list(base.policies), pi_concentration=list(base.pi_concentration))
    assert listed == base and isinstance(listed.policies, tuple)


def test_a_files_types_that_act_alike_are_warned_of_with_the_files_name(tmp_path):
    """The warning of two types that act alike named no file (``policies: 'fair' and 'fair2'
    ...``), where a file's every other problem names it: a command reading several files left
    the user to guess which. It names the file now, and still points at the caller's line."""
    from scai.models.errors import HypothesisWarning

    path = tmp_path / "two.toml"
    path.write_text("pi_concentration = 0.5\n[policies.fair]\nw = 0.5\n[policies.fair2]\nw = 0.5\n")
    with pytest.warns(HypothesisWarning) as told:
        Hypothesis.load(path)
    (record,) = [r for r in told if issubclass(r.category, HypothesisWarning)]
    assert str(record.message).startswith(f"{path}: policies: 'fair' and 'fair2' have the same")
    assert record.filename == __file__


def test_a_file_of_one_policy_type_is_told(tmp_path):
    """A file with only ``[policies.spiteful]`` (the README: "a new type is one TOML table")
    replaced the default three types without a word: a one-type hypothesis, whose pi is 1,
    fitted and reported pi[spiteful] = 1.000 (a review, extending scai). It is told; a file
    that lists the types it keeps beside the new one is not."""
    import warnings

    from scai.models.errors import HypothesisWarning

    path = tmp_path / "spite.toml"
    path.write_text("[policies.spiteful]\nw = -1.0\n")
    with pytest.warns(HypothesisWarning, match=r"one type, 'spiteful'.*replaces the default"):
        hyp = Hypothesis.load(path)
    assert hyp.policy_names == ("spiteful",)
    path.write_text("[policies.selfish]\n[policies.spiteful]\nw = -1.0\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", HypothesisWarning)
        assert Hypothesis.load(path).policy_names == ("selfish", "spiteful")


def test_a_one_type_hypothesis_saved_is_loaded_without_a_word(tmp_path):
    """A one-type hypothesis is a model of its own (everyone selfish, to compare evidence
    with): saved by :meth:`Hypothesis.save`, whose file lists ``pi_concentration`` one number
    per type, it was told on loading as if its author had meant to add a type; a file that
    counts its one type so is not told."""
    import warnings

    from scai.models.errors import HypothesisWarning

    one = Hypothesis(name="all_selfish", policies=(PolicyType("selfish"),), pi_concentration=1.0)
    one.save(tmp_path / "one.toml")
    (tmp_path / "counted.toml").write_text(
        "pi_concentration = [1.0]\n[policies.spiteful]\nw = -1.0\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", HypothesisWarning)
        assert Hypothesis.load(tmp_path / "one.toml") == one
        assert Hypothesis.load(tmp_path / "counted.toml").policy_names == ("spiteful",)


def test_a_name_taken_from_the_file_name_is_refused_saying_so(tmp_path):
    """A file without ``name`` is named by its stem; a stem that is no name (``a..b.toml``) was
    refused as "name: 'a..b' is not allowed", a key the file does not have (a review). The
    error now says the name came from the file name and how to set one."""
    path = tmp_path / "a..b.toml"
    path.write_text("pi_concentration = 0.5\n")
    with pytest.raises(HypothesisError, match="sets no 'name', so its name is the file's") as err:
        Hypothesis.load(path)
    assert "'a..b' is not allowed" in str(err.value) and 'name = "' in str(err.value)
    path.write_text('name = "fine"\npi_concentration = 0.5\n')
    assert Hypothesis.load(path).name == "fine"
    (tmp_path / "plain.toml").write_text("pi_concentration = 0.5\n")
    assert Hypothesis.load(tmp_path / "plain.toml").name == "plain"


def test_an_inequity_aversion_name_follows_the_one_rule_for_names(tmp_path):
    """The responder model's spec never checked its name, which the human-data experiment
    makes part of a file name (``posterior_<name>.nc``): ``name = "a/b"`` was accepted, while
    a file named ``a..b.toml`` was refused (a review). Both families, and names from either
    source, follow :func:`check_name`."""
    from scai.models.hypothesis_files import load_hypothesis_file
    from scai.models.responders.specs import InequitySpec

    for bad in ("a/b", "a..b", " padded"):
        with pytest.raises(HypothesisError, match="names become file names"):
            InequitySpec(name=bad)
        path = tmp_path / "named.toml"
        path.write_text(f'model = "inequity_aversion"\nname = "{bad}"\n')
        with pytest.raises(HypothesisError, match="names become file names"):
            load_hypothesis_file(path)
    assert InequitySpec(name="human_inequity_v2").name == "human_inequity_v2"


def test_hypotheses_are_hashable_and_equal_ones_hash_alike(tmp_path):
    """A frozen hypothesis could not key a dict or join a set (``unhashable type:
    'ReadOnlyDict'``, its stereotype table): results by hypothesis needed their names. Its
    read-only table hashes now, and a hypothesis read back from its file hashes as it did."""
    hashes = {name: hash(preset) for name, preset in PRESETS.items()}
    assert len(set(hashes.values())) == len(PRESETS)  # (distinct presets: distinct hashes here)
    for name, preset in PRESETS.items():
        preset.save(tmp_path / f"{name}.toml")
        again = Hypothesis.load(tmp_path / f"{name}.toml")
        assert again == preset and hash(again) == hash(preset), name
    assert {PRESETS["stereotyped"]: 1}[Hypothesis.load(tmp_path / "stereotyped.toml")] == 1


@pytest.mark.parametrize(
    "kwargs, said",
    [
        ({"alpha": -5.0}, "alpha must be >= 0 (an aversion to inequity), got -5.0"),
        ({"beta": -0.5}, "beta must be >= 0 (an aversion to inequity), got -0.5"),
        (
            {"responder": (0.5, 1.0, -2.0)},
            "the responder's beta must be >= 0 (an aversion to inequity), got -2.0",
        ),
    ],
    ids=["alpha", "beta", "responder"],
)
def test_a_negative_aversion_names_its_field_and_value(kwargs, said):
    """``alpha = -5`` said "alpha and beta must be >= 0", neither which nor the value given (a
    review): the message names the field and the value."""
    with pytest.raises(HypothesisError) as err:
        PolicyType("averse", **kwargs)
    assert str(err.value) == f"policy 'averse': {said}"
