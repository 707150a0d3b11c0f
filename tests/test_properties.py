"""Property-based tests (the Hypothesis library) of what scai reads: interaction tables and
hypothesis TOML files.

* A valid table survives ``write_csv_atomic`` and ``read_interactions`` unchanged, and the
  memory estimate's layout shape is the one ``GroupData.from_table`` builds.
* Any one corrupted cell of a valid table gives a :class:`DataError` naming its row, or a
  table that is still valid; never another exception.
* Any TOML document, and any bytes, give a :class:`HypothesisError` or a valid hypothesis
  whose numbers lie within the stated bounds; never another exception.
"""

from __future__ import annotations

import csv
import math
import string
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomli_w
from fixed_examples import SETTINGS
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from scai.models.cell_text import parse_whole
from scai.models.data import INTERACTION_COLUMNS, MAX_INDEX, read_interactions, validate_frame
from scai.models.errors import DataError, HypothesisError
from scai.models.game import CURRENCIES, MAX_POT
from scai.models.hypotheses import BOUNDS, PRESETS, Hypothesis
from scai.models.language import TONES
from scai.models.layout import GroupData
from scai.models.table_memory import layout_shape
from scai.models.writing import write_csv_atomic

INT_COLUMNS = ("epoch", "round", "pot", "offer", "accepted")

ids = st.text(alphabet=string.ascii_letters + string.digits + "_-.", min_size=1, max_size=5)


@st.composite
def rows(draw) -> tuple:
    proposer = draw(st.one_of(st.just(""), ids))
    responder = draw(ids.filter(lambda r: r != proposer))
    pot = draw(st.integers(1, MAX_POT))
    return (
        draw(ids),
        draw(st.integers(0, MAX_INDEX)),
        draw(st.integers(0, MAX_INDEX)),
        proposer,
        responder,
        draw(st.sampled_from(list(CURRENCIES))),
        pot,
        draw(st.integers(0, pot)),
        draw(st.integers(0, 1)),
        "" if proposer == "" else draw(st.sampled_from(("", *TONES))),  # no speaker, no tone
        draw(st.sampled_from(("", *TONES))),
    )


tables = st.lists(rows(), min_size=1, max_size=10, unique=True).map(
    lambda records: pd.DataFrame.from_records(records, columns=list(INTERACTION_COLUMNS))
)


@settings(max_examples=60, **SETTINGS)
@given(table=tables)
def test_valid_tables_round_trip(tmp_path, table):
    path = tmp_path / "t.csv"
    write_csv_atomic(table, path)
    read = read_interactions(path)
    expected = table.astype({c: np.int64 for c in INT_COLUMNS})
    pd.testing.assert_frame_equal(read, expected)
    pd.testing.assert_frame_equal(validate_frame(table), expected)
    assert layout_shape(read) == GroupData.from_table(read).shape


JUNK = st.one_of(
    st.sampled_from(
        [
            "5_3",
            "1e300",
            "99999999999999999999",
            "-1",
            "inf",
            "-inf",
            "nan",
            "1.5",
            "\u0665",
            "0x10",
            "1e3",
            "+7",
            "-0",
            "0.0",
            "1e-300",
            "1e999999999",
            "",
            " ",
            "TRUE",
            "assistant",
            "apples",
            "rude",
            "a\rb",
            "tab\there",
            "nul\x00",
        ]
    ),
    st.integers(-(10**25), 10**25).map(str),
    st.floats().map(repr),
    st.text(max_size=12),
)


@settings(max_examples=120, **SETTINGS)
@given(table=tables, data=st.data())
def test_a_corrupted_cell_is_a_data_error_naming_its_row(tmp_path, table, data):
    row = data.draw(st.integers(0, len(table) - 1), label="row")
    column = data.draw(st.sampled_from(list(INTERACTION_COLUMNS)), label="column")
    bad = data.draw(JUNK, label="value")
    corrupted = table.astype(object)
    corrupted.loc[row, column] = bad
    path = tmp_path / "t.csv"
    # every cell quoted: a bare carriage return would otherwise end the row (the csv module
    # quotes only the line terminator "\n"); valid tables never hold one
    corrupted.to_csv(path, index=False, quoting=csv.QUOTE_ALL, lineterminator="\n")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a corruption may duplicate another row
            read = read_interactions(path)
    except DataError as err:
        if any(p.row is None for p in err.problems):  # unreadable as CSV (e.g. a NUL byte)
            assert "cannot read as CSV" in str(err) or "header" in str(err), err
            return
        assert {p.row for p in err.problems} == {row + 1}, err
        assert f"row {row + 1}" in str(err)
        return
    # still valid: the cell holds a value its column allows
    value = read.loc[row, column]
    if column in INT_COLUMNS:
        assert value == parse_whole(bad)
    elif column == "currency":
        assert value in CURRENCIES
    elif column.endswith("_tone"):
        assert value in ("", *TONES)
    else:
        assert isinstance(value, str) and (value != "" or column == "proposer")


# -- hypothesis files -------------------------------------------------------------------------

scalars = st.one_of(
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
KEYS = [
    "name",
    "description",
    "rationality",
    "rationality_scale",
    "pi_concentration",
    "stereotype_strength",
    "tone_fidelity",
    "policies",
    "stereotype",
    "currency",
]
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=10))
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**400), 10**400),
    st.sampled_from([0, 1e-3, 1e-6, 1e3, 100.0, 1.0, 0.999999, 1e308, -1.0]),
)


policy_tables = st.fixed_dictionaries({}, optional={k: numbers for k in ("w", "alpha", "beta")})
CURRENCY_KEYS = ["shared_scale", "currency_scale", "essential_shift", "pooling"]


@st.composite
def near_valid(draw) -> dict:
    """A preset's document with some values replaced, keys added or policies redefined."""
    doc = draw(st.sampled_from(list(PRESETS.values()))).to_dict()
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from([*KEYS, "policy", "currency key", "new key"]))
        if key == "policy":
            names = draw(st.lists(ids, min_size=1, max_size=14, unique=True))
            doc["policies"] = {n: draw(policy_tables) for n in names}
            doc["pi_concentration"] = draw(st.one_of(numbers, st.lists(numbers, max_size=14)))
            doc["stereotype"] = {}
        elif key == "currency key":
            if not isinstance(doc.get("currency"), dict):
                doc["currency"] = {}
            doc["currency"][draw(st.sampled_from(CURRENCY_KEYS))] = draw(numbers)
        elif key == "new key":
            doc[draw(st.text(max_size=10))] = draw(values)
        else:
            doc[key] = draw(st.one_of(numbers, values))
    return doc


def load_or_error(path: Path) -> None:
    """Load ``path``: a HypothesisError, or a valid hypothesis within the bounds."""
    try:
        hypothesis = Hypothesis.load(path)
    except HypothesisError as err:
        assert str(path) in str(err) or "name" in str(err)
        return
    for key in ("rationality", "rationality_scale", "tone_fidelity", "stereotype_strength"):
        low, high = BOUNDS[key]
        assert low <= getattr(hypothesis, key) <= high
    for policy in hypothesis.policies:
        assert all(math.isfinite(getattr(policy, k)) for k in ("w", "alpha", "beta"))
    saved = path.with_name("saved.toml")
    hypothesis.save(saved)
    assert Hypothesis.load(saved) == hypothesis


@settings(max_examples=150, **SETTINGS)
@given(doc=st.one_of(st.dictionaries(keys, values, max_size=6), near_valid()))
def test_any_toml_document_is_a_hypothesis_or_a_hypothesis_error(tmp_path, doc):
    try:
        text = tomli_w.dumps(doc)
    except (TypeError, ValueError):
        assume(False)  # not representable in TOML
    path = tmp_path / "h.toml"
    path.write_text(text)
    load_or_error(path)


@settings(max_examples=60, **SETTINGS)
@given(raw=st.binary(max_size=60))
def test_any_bytes_are_a_hypothesis_or_a_hypothesis_error(tmp_path, raw):
    path = tmp_path / "h.toml"
    path.write_bytes(raw)
    load_or_error(path)


@pytest.mark.parametrize("name", ["../x", "a/b", "a\\b", "", "x" * 101, "tab\there", ".."])
def test_unsafe_names_are_refused(name):
    with pytest.raises(HypothesisError, match="name"):
        Hypothesis(name=name)


TYPED_JUNK = {
    "int": st.one_of(
        st.integers(-3, MAX_POT + 3), st.sampled_from([MAX_INDEX, MAX_INDEX + 1, -(2**63)])
    ),
    "text": st.one_of(
        st.sampled_from(
            ["", "u1", "apples", "rubles", "rude", "shouty", "a\rb", "x\x85", "\u2028"]
        ),
        st.text(max_size=4),
    ),
}


@settings(max_examples=150, **SETTINGS)
@given(table=tables, data=st.data())
def test_typed_tables_take_the_column_check_with_the_same_outcome(table, data):
    """An in-memory table already typed (as the protocol and the simulator make them) is
    checked column by column; the outcome equals the row-by-row check's: the same typed table
    when that accepts it, and when that finds a problem, no table (the row-by-row check then
    names it)."""
    from scai.models.data import _typed_if_valid, _typed_row_by_row

    typed = table.astype({c: np.int64 for c in INT_COLUMNS})
    row = data.draw(st.integers(0, len(typed) - 1), label="row")
    column = data.draw(st.sampled_from(list(INTERACTION_COLUMNS)), label="column")
    value = data.draw(TYPED_JUNK["int" if column in INT_COLUMNS else "text"], label="value")
    if data.draw(st.booleans(), label="corrupt"):
        typed.loc[row, column] = value
    fast = _typed_if_valid(typed)
    try:
        slow = _typed_row_by_row(typed, "t")
    except DataError:
        assert fast is None
    else:
        assert fast is not None
        pd.testing.assert_frame_equal(fast, slow)


def test_a_simulated_table_takes_the_column_check():
    from scai.models.data import _typed_if_valid
    from scai.models.simulate import simulate

    table = simulate(Hypothesis(), policy="fair", users=4, rounds=4, epochs=2, sims=3, seed=1)
    assert _typed_if_valid(table.interactions) is not None


#: One cell of a valid row, each breaking one rule of a row (``_row_problems``): each cell's
#: own (a value required, an id's characters, a whole number, each column's range, the
#: currencies, the tones, the assistant's spelling) and those across cells (an offer above
#: the pot, a responder who is the proposer, a proposer's tone with no proposer).
BROKEN_CELLS = [
    ("sim", ""),
    ("sim", "s\u200b"),
    ("responder", ""),
    ("responder", "u\tv"),
    ("currency", ""),
    ("currency", "rubles"),
    ("epoch", "1.5"),
    ("epoch", "-1"),
    ("round", str(MAX_INDEX + 1)),
    ("pot", "0"),
    ("pot", str(MAX_POT + 1)),
    ("offer", "-1"),
    ("offer", str(MAX_POT + 1)),
    ("offer", "99"),  # above the row's pot of 10
    ("accepted", "2"),
    ("accepted", ""),
    ("proposer_tone", "shouty"),
    ("responder_tone", "shouty"),
    ("proposer", "Assistant"),
    ("responder", " assistant"),
    ("responder", "u1"),  # the proposer
    ("proposer", ""),  # whose tone is given
]


@pytest.mark.parametrize(("column", "value"), BROKEN_CELLS)
def test_the_screened_check_finds_each_rule_broken(column, value):
    """Each rule a row can break is found by :func:`check_interactions`, which checks rule by
    rule only the rows its column-wise screen marks: its problems are the row-by-row check's."""
    from scai.models.data import CURRENCIES, _row_problems, check_interactions

    raw = pd.DataFrame(
        [["1", "1", str(r), "u1", "u2", "apples", "10", "0", "1", TONES[0], ""] for r in (1, 2, 3)],
        columns=list(INTERACTION_COLUMNS),
    )
    raw.loc[1, column] = value
    row = _row_problems(2, dict(raw.iloc[1]), tuple(CURRENCIES), tuple(TONES))
    assert row, "the cell breaks a rule"
    assert check_interactions(raw) == row


@settings(max_examples=200, **SETTINGS)
@given(table=tables, data=st.data())
def test_the_screened_check_lists_what_the_row_by_row_check_does(table, data):
    """:func:`check_interactions` checks rule by rule only the rows that a check of each
    column's distinct values and of the rules across cells marks: its problems are those of
    every row checked rule by rule, in the same order, for tables with a few cells replaced by
    junk or by another cell's value (an offer above another row's pot, a responder who is the
    proposer)."""
    from scai.models.data import CURRENCIES, _row_problems, _unwritable_text, check_interactions

    raw = table.astype(str)
    for _ in range(data.draw(st.integers(1, 4), label="cells")):
        row = data.draw(st.integers(0, len(raw) - 1), label="row")
        column = data.draw(st.sampled_from(list(INTERACTION_COLUMNS)), label="column")
        other = data.draw(st.sampled_from(raw.to_numpy().ravel().tolist()), label="other")
        value = data.draw(st.one_of(JUNK, st.just(other)), label="value")
        column, value = data.draw(st.sampled_from([(column, value), *BROKEN_CELLS]), label="cell")
        raw.loc[row, column] = value
    every_row = [
        problem
        for i, rec in enumerate(raw.itertuples(index=False), start=1)
        for problem in _row_problems(i, rec._asdict(), tuple(CURRENCIES), tuple(TONES))
    ]
    assert check_interactions(raw) == every_row + _unwritable_text(raw)


COLUMNS_OF_A_DTYPE = st.one_of(
    st.lists(st.integers(-(2**63), 2**63 - 1)).map(lambda v: pd.Series(v, dtype=np.int64)),
    st.lists(st.integers(0, 2**64 - 1)).map(lambda v: pd.Series(v, dtype=np.uint64)),
    st.lists(st.floats(width=64)).map(lambda v: pd.Series(v, dtype=np.float64)),
    st.lists(st.floats(width=32)).map(lambda v: pd.Series(v, dtype=np.float32)),
    st.lists(st.booleans()).map(lambda v: pd.Series(v, dtype=bool)),
    st.lists(st.one_of(st.none(), st.text(max_size=4))).map(lambda v: pd.Series(v, dtype="string")),
    st.lists(st.one_of(st.none(), st.text(max_size=4))).map(lambda v: pd.Series(v, dtype=str)),
    st.lists(st.one_of(st.none(), st.integers(-3, 3), st.floats(), st.booleans())).map(
        lambda v: pd.Series(v, dtype=object)  # 1, 1.0 and True: one key, three texts
    ),
)


@settings(max_examples=300, **SETTINGS)
@given(column=COLUMNS_OF_A_DTYPE, labels=st.booleans())
def test_a_column_as_text_is_each_cell_as_text(column, labels):
    """An in-memory column turned into a CSV's text converts each distinct value once where
    its dtype allows: the same texts as each cell converted alone, missing cells empty."""
    from scai.models.cell_text import as_text, column_as_text

    if labels:  # a DataFrame's own index is kept
        column.index = pd.RangeIndex(len(column)) * 3 + 7
    pd.testing.assert_series_equal(column_as_text(column), column.map(as_text).astype(str))
