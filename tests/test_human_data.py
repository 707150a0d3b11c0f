"""Import of human responder data (models.human_data): the real Study 1 file, both layouts,
and every kind of bad row reported with its row number."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from scai.models.data import INTERACTION_COLUMNS, DataError, read_interactions, validate_frame
from scai.models.human_data import read_human_data, rejection_by_offer

STUDY1_FILE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "study1_ug.csv"

GENERIC_LINES = [
    "subject,trial,pot,offer,accepted,role",
    "a,1,100,50,1,x",
    "a,2,100,10,0,x",
    "b,1,10,3,1,y",
    "b,2,10,1,0,y",
]
STUDY1_LINES = [
    "sub,role,trial,unfairness,choice,choice_RT",
    "1,self,1,50,0,2.5",
    "1,self,2,90,1,3.0",
    "2,other,1,70,1,1.2",
    "2,other,2,55,0,4.4",
]


def write(tmp_path: Path, lines: list[str], name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def with_row(lines: list[str], row: int, text: str) -> list[str]:
    """``lines`` with data row ``row`` (1-based; the header is line 1) replaced by ``text``."""
    out = list(lines)
    out[row] = text
    return out


def problems_of(path: Path, **kwargs) -> list[tuple[int | None, str | None]]:
    with pytest.raises(DataError) as info:
        read_human_data(path, **kwargs)
    return [(p.row, p.column) for p in info.value.problems]


# --- the real data -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def study1():
    if not STUDY1_FILE.exists():
        pytest.skip(f"real ultimatum-game data not found at {STUDY1_FILE}")
    return read_human_data(STUDY1_FILE)


def test_real_file_imports_every_row(study1):
    assert study1.format == "study1"
    assert len(study1.table) == 7280
    assert study1.skipped == 0 and study1.problems == []
    assert Counter(study1.roles.values()) == {"self": 192, "other": 172}
    assert set(study1.table["sim"]) == {"self", "other"}
    assert set(study1.table["currency"]) == {"cents"}
    assert set(study1.table["pot"]) == {100}
    validate_frame(study1.table)


def test_real_table_has_read_interactions_dtypes(study1, tmp_path):
    path = tmp_path / "interactions.csv"
    study1.table.to_csv(path, index=False)
    reread = read_interactions(path)
    assert list(study1.table.columns) == list(INTERACTION_COLUMNS)
    assert study1.table.dtypes.to_dict() == reread.dtypes.to_dict()
    pd.testing.assert_frame_equal(study1.table, reread)


def test_real_self_rejection_rates_match_readme(study1):
    readme = [0.0, 3.1, 5.7, 12.5, 18.2, 26.8, 38.5, 45.6, 53.1, 66.9]  # offer 50 -> 5 cents
    rates = rejection_by_offer(study1.table, study1.roles)
    self_rates = rates[rates["role"] == "self"].sort_values("offer_share", ascending=False)
    assert self_rates["offer_share"].tolist() == pytest.approx([o / 100 for o in range(50, 0, -5)])
    assert self_rates["observed"].tolist() == pytest.approx([r / 100 for r in readme], abs=1e-3)
    assert (self_rates["n"] == 384).all()


# --- layouts -------------------------------------------------------------------------------


def test_auto_detects_generic_layout(tmp_path):
    result = read_human_data(write(tmp_path, GENERIC_LINES))
    assert result.format == "generic"
    assert result.roles == {"a": "x", "b": "y"}
    table = result.table
    assert list(table.columns) == list(INTERACTION_COLUMNS)
    assert table["sim"].tolist() == ["x", "x", "y", "y"]
    assert table["responder"].tolist() == ["a", "a", "b", "b"]
    assert table["round"].tolist() == [1, 2, 1, 2]
    assert table["pot"].tolist() == [100, 100, 10, 10]
    assert table["offer"].tolist() == [50, 10, 3, 1]
    assert table["accepted"].tolist() == [1, 0, 1, 0]
    assert set(table["epoch"]) == {1}
    assert set(table["currency"]) == {"cents"}
    assert set(table["proposer"]) == set(table["proposer_tone"]) == {""}
    validate_frame(table)


def test_a_decision_written_as_a_logical_word_is_read_as_its_digit(tmp_path):
    """R and Excel write a logical as TRUE/FALSE, pandas a bool as True/False: each reads as
    the 1/0 it means (a word that is none is still refused)."""
    words = iter(["TRUE", "False", " true", "FALSE"])
    lines = [GENERIC_LINES[0]] + [
        ",".join(c if i != 4 else next(words) for i, c in enumerate(line.split(",")))
        for line in GENERIC_LINES[1:]
    ]
    assert read_human_data(write(tmp_path, lines)).table.equals(
        read_human_data(write(tmp_path, GENERIC_LINES, "digits.csv")).table
    )
    with pytest.raises(DataError, match="or FALSE/TRUE"):
        read_human_data(write(tmp_path, with_row(lines, 1, lines[1].replace("TRUE", "yes"))))


def test_auto_detects_study1_layout(tmp_path):
    result = read_human_data(write(tmp_path, STUDY1_LINES))
    assert result.format == "study1"
    assert result.roles == {"1": "self", "2": "other"}
    table = result.table
    assert table["sim"].tolist() == ["self", "self", "other", "other"]
    assert table["offer"].tolist() == [50, 10, 30, 45]  # 100 - unfairness
    assert table["accepted"].tolist() == [1, 0, 0, 1]  # 1 - choice
    assert set(table["pot"]) == {100}
    validate_frame(table)


def test_generic_without_role_keeps_ids_and_reads_currency(tmp_path):
    lines = ["subject,trial,pot,offer,accepted,currency", "007,0,4,2,1,apples", "7,0,4,0,0,dollars"]
    result = read_human_data(write(tmp_path, lines), format="generic")
    assert result.roles == {"007": "0", "7": "0"}
    assert result.table["responder"].tolist() == ["007", "7"]
    assert result.table["sim"].tolist() == ["0", "0"]
    assert result.table["currency"].tolist() == ["apples", "dollars"]


def test_currency_argument_sets_the_default(tmp_path):
    result = read_human_data(write(tmp_path, GENERIC_LINES), currency="dollars")
    assert set(result.table["currency"]) == {"dollars"}
    with pytest.raises(ValueError, match="unknown currency"):
        read_human_data(write(tmp_path, GENERIC_LINES), currency="doubloons")


def test_header_matching_neither_layout_names_both(tmp_path):
    path = write(tmp_path, ["subject,trial,offer", "a,1,5"])
    with pytest.raises(DataError) as info:
        read_human_data(path)
    message = str(info.value)
    assert "subject,trial,pot,offer,accepted[,role,currency]" in message
    assert "sub,role,trial,unfairness,choice[,choice_RT]" in message
    assert "missing: pot, accepted" in message


def test_wrong_header_for_chosen_format_names_missing_columns(tmp_path):
    path = write(tmp_path, STUDY1_LINES)
    with pytest.raises(DataError) as info:
        read_human_data(path, format="generic")
    (problem,) = info.value.problems
    assert problem.row is None
    assert "missing column(s) subject, pot, offer, accepted" in problem.allowed
    assert "expected: subject,trial,pot,offer,accepted[,role,currency]" in problem.allowed


def test_unknown_format_and_missing_or_empty_file(tmp_path):
    with pytest.raises(ValueError, match="unknown format"):
        read_human_data(write(tmp_path, GENERIC_LINES), format="excel")
    with pytest.raises(DataError, match="does not exist"):
        read_human_data(tmp_path / "nowhere.csv")
    with pytest.raises(DataError, match="no rows"):
        read_human_data(write(tmp_path, STUDY1_LINES[:1]))


# --- bad rows: each kind reported with its row number ---------------------------------------


@pytest.mark.parametrize(
    ("lines", "bad_row", "column"),
    [
        pytest.param(GENERIC_LINES, "b,1,10,11,1,y", "offer", id="offer-above-pot"),
        pytest.param(GENERIC_LINES, "b,1,10,-1,1,y", "offer", id="negative-offer"),
        pytest.param(GENERIC_LINES, "b,1,0,0,1,y", "pot", id="pot-zero"),
        pytest.param(GENERIC_LINES, "b,1,-10,0,1,y", "pot", id="pot-negative"),
        pytest.param(GENERIC_LINES, "b,1,10.5,3,1,y", "pot", id="pot-fractional"),
        pytest.param(GENERIC_LINES, "b,1,10,3,2,y", "accepted", id="accepted-not-0-1"),
        pytest.param(STUDY1_LINES, "2,other,1,70,2,1.2", "choice", id="choice-not-0-1"),
        pytest.param(GENERIC_LINES, "b,1,10,three,1,y", "offer", id="non-numeric-generic"),
        pytest.param(STUDY1_LINES, "2,other,one,70,1,1.2", "trial", id="non-numeric-study1"),
        pytest.param(GENERIC_LINES, "b,1,10,3,,y", "accepted", id="missing-value-generic"),
        pytest.param(STUDY1_LINES, ",other,1,70,1,1.2", "sub", id="missing-value-study1"),
        pytest.param(STUDY1_LINES, "2,others,1,70,1,1.2", "role", id="unknown-role"),
        pytest.param(STUDY1_LINES, "2,other,1,101,1,1.2", "unfairness", id="unfairness-above"),
        pytest.param(STUDY1_LINES, "2,other,1,-5,1,1.2", "unfairness", id="unfairness-below"),
        pytest.param(STUDY1_LINES, "1,other,3,70,1,1.2", "role", id="second-role"),
        pytest.param(STUDY1_LINES, "1,self,1,70,1,1.2", "trial", id="repeated-trial"),
    ],
)
def test_bad_row_reported_with_row_number(tmp_path, lines, bad_row, column):
    path = write(tmp_path, with_row(lines, 3, bad_row))
    with pytest.raises(DataError) as info:
        read_human_data(path)
    assert [(p.row, p.column) for p in info.value.problems] == [(3, column)]
    assert "row 3" in str(info.value)


def test_a_second_role_names_the_row_that_gave_the_first_and_a_difference_in_case(tmp_path):
    """Row 1 of subject ``a`` labelled ``Self`` and its other rows ``self``: each of those was
    told "already has role 'Self'", naming neither the row that gave it nor that the labels
    differ only in case (a red-team find)."""
    lines = ["subject,trial,pot,offer,accepted,role", "a,1,100,50,1,Self", "a,2,100,10,0,self"]
    lines += ["a,3,100,10,0,other"]
    with pytest.raises(DataError) as info:
        read_human_data(write(tmp_path, lines))
    told = [p.allowed for p in info.value.problems]
    assert told == [
        "subject 'a' already has role 'Self' (row 1); the two differ only in case",
        "subject 'a' already has role 'Self' (row 1)",
    ], told


def test_rows_are_numbered_as_the_docstrings_say_after_blank_lines(tmp_path):
    """Both readers' docstrings said row ``r`` is line ``r + 1``: after blank lines (which are
    skipped) the bad value of line 6 was reported, rightly by the rule the readers follow, as
    row 2. The docstrings now say blank lines are not counted; the readers number rows alike."""
    from scai.models import data, human_data

    path = tmp_path / "blank.csv"
    path.write_text("subject,trial,pot,offer,accepted\np1,1,100,50,1\n\n\n\np1,2,100,10,x\n")
    assert problems_of(path) == [(2, "accepted")]
    header = ",".join(INTERACTION_COLUMNS)
    table = tmp_path / "table.csv"
    table.write_text(f"{header}\n0,1,1,a,b,dollars,10,5,1,,\n\n\n\n0,1,2,a,b,dollars,10,5,x,,\n")
    with pytest.raises(DataError) as info:
        read_interactions(table)
    assert [(p.row, p.column) for p in info.value.problems] == [(2, "accepted")]
    for module in (data, human_data):
        doc = " ".join(module.__doc__.split())
        assert "blank lines" in doc and "skipped and not counted" in doc, module.__name__
        assert "so row ``r`` is line ``r + 1``)" not in doc, module.__name__


def test_unknown_currency_in_column_is_reported(tmp_path):
    lines = ["subject,trial,pot,offer,accepted,currency", "a,1,4,2,1,cents", "a,2,4,2,1,gold"]
    assert problems_of(write(tmp_path, lines)) == [(2, "currency")]


def test_all_bad_rows_in_a_file_are_reported(tmp_path):
    lines = [
        "subject,trial,pot,offer,accepted,role",
        "a,1,100,50,1,x",
        "a,2,100,101,0,x",  # 2: offer above pot
        "b,1,zero,3,1,y",  # 3: non-numeric pot
        "b,2,10,1,,y",  # 4: missing accepted
        "c,1,10,1,1,y",
        "c,2,-3,-1,5,y",  # 6: pot, offer and accepted all bad
    ]
    assert problems_of(write(tmp_path, lines)) == [
        (2, "offer"),
        (3, "pot"),
        (4, "accepted"),
        (6, "pot"),
        (6, "offer"),
        (6, "accepted"),
    ]


def test_skip_invalid_keeps_good_rows_and_counts_skipped(tmp_path):
    lines = [
        *STUDY1_LINES,
        "3,self,1,95,1,2.0",
        "3,self,2,abc,1,2.0",  # 6: non-numeric unfairness
        "4,nobody,1,50,0,2.0",  # 7: unknown role
        "4,other,2,50,3,2.0",  # 8: choice not 0/1
    ]
    result = read_human_data(write(tmp_path, lines), skip_invalid=True)
    assert result.skipped == 3
    assert [(p.row, p.column) for p in result.problems] == [
        (6, "unfairness"),
        (7, "role"),
        (8, "choice"),
    ]
    assert len(result.table) == 5
    assert result.table["responder"].tolist() == ["1", "1", "2", "2", "3"]
    assert result.roles == {"1": "self", "2": "other", "3": "self"}
    validate_frame(result.table)


def test_skip_invalid_with_no_good_row_still_raises(tmp_path):
    path = write(tmp_path, ["sub,role,trial,unfairness,choice", "1,self,1,50,7"])
    with pytest.raises(DataError, match="no valid rows"):
        read_human_data(path, skip_invalid=True)


# --- rejection by offer --------------------------------------------------------------------


def test_rejection_by_offer_groups_by_role_and_share(tmp_path):
    lines = [
        "subject,trial,pot,offer,accepted,role",
        "a,1,10,5,1,x",
        "a,2,10,1,0,x",
        "b,1,100,50,0,x",
        "b,2,100,10,0,x",
        "c,1,4,2,1,w",
    ]
    result = read_human_data(write(tmp_path, lines))
    rates = rejection_by_offer(result.table, result.roles)
    assert list(rates.columns) == ["role", "offer_share", "n", "observed"]
    assert rates["role"].tolist() == ["w", "x", "x"]
    assert rates["offer_share"].tolist() == pytest.approx([0.5, 0.1, 0.5])
    assert rates["n"].tolist() == [1, 2, 2]
    assert rates["observed"].tolist() == pytest.approx([0.0, 1.0, 0.5])
    with pytest.raises(ValueError, match="no role"):
        rejection_by_offer(result.table, {"a": "x"})


def test_a_subject_id_with_a_control_character_is_refused(tmp_path):
    """As in an interaction table, an id holding a control character is refused at its row
    (it was kept, and a quoted line break made a subject 'a\\nb')."""
    lines = with_row(GENERIC_LINES, 2, '"a\x01",2,100,10,0,x')
    lines = with_row(lines, 3, '"b\nc",1,10,3,1,y')
    assert problems_of(write(tmp_path, lines)) == [(2, "subject"), (3, "subject")]


def test_a_misspelt_optional_column_is_named_not_dropped(tmp_path):
    """A generic file whose ``role`` column is spelt ``rol`` imported every subject with the
    default role, silently (the interaction-table reader already warned of such columns)."""
    from scai.models.errors import UnusedColumnsWarning

    lines = [GENERIC_LINES[0].replace("role", "rol"), *GENERIC_LINES[1:]]
    with pytest.warns(UnusedColumnsWarning, match=r"'rol' not read by scai.*role, currency"):
        result = read_human_data(write(tmp_path, lines))
    assert set(result.roles.values()) == {"0"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every column read: no warning
        read_human_data(write(tmp_path, GENERIC_LINES))


def test_a_high_k_subject_is_named_with_how_it_fits():
    """A subject with a high Pareto k was called 'atypical' even where it fitted better than
    the role's median (an extreme, always-accepting subject): the line says which."""
    import pandas as pd

    from scai.experiments.human_data.tables import explain_high_k

    table = pd.DataFrame(
        {
            "hypothesis": ["h"] * 3,
            "role": ["responder"] * 3,
            "subject": ["a", "b", "c"],
            "pareto_k": [0.8, 0.9, 0.1],
            "rejections": [0, 18, 5],
            "decisions": [20, 20, 20],
            "inverted_pairs": [0, 3, 1],
            "p_inattentive": [0.0, 0.4, 0.1],
            "mean_loglik": [-1.0, -9.0, -5.0],
        }
    )
    lines = explain_high_k(table, limit=0.7)
    assert len(lines) == 2 and "subject a" in lines[0] and "subject b" in lines[1]
    assert "fitted better than most" in lines[0] and "fitted worse than most" in lines[1]
    # at the role's median (two of three subjects there): as well as most, not better (a review)
    table.loc[2, "mean_loglik"] = -1.0
    assert "fitted as well as most" in explain_high_k(table, limit=0.7)[0]


def test_ids_typed_two_ways_and_roles_alike_but_for_case(tmp_path):
    """A red-team's finds: "Zoë" typed with one character and with a combining accent made two
    subjects, each with its trial 1 (an interaction table's ids are composed: the human data's
    were not); roles 'self' and 'Self' were two roles without a word; a header whose
    'subject' hid a zero-width space was "missing: subject" without showing what was read."""
    from scai.models.errors import TableWarning

    path = write(
        tmp_path,
        ["subject,trial,pot,offer,accepted", "Zo\u00eb,1,100,50,1", "Zoe\u0308,1,100,10,0"],
    )
    played = r"row 2, column 'trial'.*'Zoë' already played trial 1"
    with pytest.warns(TableWarning, match="composed form"), pytest.raises(DataError, match=played):
        read_human_data(path)
    lines = ["subject,trial,pot,offer,accepted,role", "a,1,10,5,1,self", "b,1,10,2,0,Self"]
    with pytest.warns(TableWarning, match=r"differ only in case .*'Self' and 'self'"):
        assert set(read_human_data(write(tmp_path, lines)).roles.values()) == {"self", "Self"}
    hidden = write(tmp_path, ["subject\u200b,trial,pot,offer,accepted", "a,1,100,50,1"])
    with pytest.raises(DataError, match=r"the header read: 'subject\\u200b', 'trial'"):
        read_human_data(hidden)


@pytest.mark.parametrize(
    "lines",
    [
        GENERIC_LINES,
        [line.rsplit(",", 1)[0] for line in GENERIC_LINES],  # no role
        [GENERIC_LINES[0] + ",currency"] + [f"{line},dollars" for line in GENERIC_LINES[1:]],
        [" , ".join(line.split(",")) for line in STUDY1_LINES],  # spaces around values
    ],
)
def test_a_clean_file_is_read_column_by_column_as_row_by_row(tmp_path, monkeypatch, lines):
    """A file with no problem is read column by column (``_read_clean``): the same table,
    roles and warnings as the row-by-row read that names problems."""
    from scai.models import human_data

    path = write(tmp_path, lines)
    raw = human_data._read_raw(path, "t").fillna("")
    layout = human_data._choose_layout(list(raw.columns), "auto", "t")
    assert human_data._read_clean(raw, layout, "cents") is not None  # the path taken
    fast = read_human_data(path)
    monkeypatch.setattr(human_data, "_read_clean", lambda *args: None)
    slow = read_human_data(path)
    pd.testing.assert_frame_equal(fast.table, slow.table)
    assert (fast.roles, fast.skipped, fast.problems) == (slow.roles, slow.skipped, slow.problems)


@pytest.mark.parametrize(
    ("row", "text"),
    [
        (2, "a,1,100,60,1,x"),  # trial 1 of a again
        (4, "b,2,10,1,0,x"),  # b's second role
        (3, "b,1,10,11,1,y"),  # an offer above its pot
        (3, "b,1,10," + "9" * 40 + ",1,y"),  # and beyond any whole number NumPy holds
        (1, "a,1,100,50,yes,x"),  # a cell its rule refuses
    ],
)
def test_a_file_with_a_problem_is_read_row_by_row(tmp_path, row, text):
    """``_read_clean`` declines every file with a problem, across cells and rows too, so that
    the row-by-row read names it."""
    from scai.models import human_data

    path = write(tmp_path, with_row(GENERIC_LINES, row, text))
    raw = human_data._read_raw(path, "t").fillna("")
    assert human_data._read_clean(raw, human_data.GENERIC, "cents") is None
    with pytest.raises(DataError, match=f"row {row}"):
        read_human_data(path)
