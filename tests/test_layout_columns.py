"""The layout reads a table's text columns as ``astype(str)`` does, whatever their dtype, and
finds repeated games as pandas' ``duplicated`` does; the fast validation of an in-memory table
names a bad cell as the row-by-row one does and keeps its table apart from the caller's."""

import numpy as np
import pandas as pd
import pytest

from scai.models.data import _distinct_keys, duplicate_games
from scai.models.layout import column_texts


@pytest.mark.parametrize(
    "column",
    [
        pd.Series(["a", "b", ""], dtype=str),
        pd.Series(["a", np.nan, "b"], dtype=str),
        pd.Series(["a", None, "b"], dtype=pd.StringDtype("python")),  # NA, not NaN
        pd.Series(["a", 3, None], dtype=object),
        pd.Series([1, 2, 3]),
        pd.Series(["x", "y", "x"], dtype="category"),
    ],
)
def test_column_texts_are_astype_str(column):
    expected = column.astype(str).to_numpy(dtype=object)
    got = column_texts(column)
    assert got.dtype == object
    assert [repr(v) for v in got] == [repr(v) for v in expected]


def _games(sims, epochs, rounds, offers):
    n = len(sims)
    return pd.DataFrame(
        {
            "sim": pd.Series(sims, dtype=str),
            "epoch": epochs,
            "round": rounds,
            "proposer": ["u0"] * n,
            "responder": ["u1"] * n,
            "currency": ["dollars"] * n,
            "pot": [10] * n,
            "offer": offers,
            "accepted": [1] * n,
            "proposer_tone": [""] * n,
            "responder_tone": [""] * n,
        }
    )


def test_distinct_keys_decide_only_when_no_game_repeats_its_key():
    distinct = _games(["0", "0", "1"], [1, 1, 1], [1, 2, 1], [3, 3, 3])
    assert _distinct_keys(distinct) and duplicate_games(distinct) == []
    # the same key, another offer: not a duplicate, found by the full comparison
    same_key = _games(["0", "0", "1"], [1, 1, 1], [1, 1, 1], [3, 4, 3])
    assert not _distinct_keys(same_key) and duplicate_games(same_key) == []
    repeated = _games(["0", "1", "0"], [1, 1, 1], [1, 1, 1], [3, 3, 3])
    assert not _distinct_keys(repeated) and duplicate_games(repeated) == [(3, 1)]
    # keys it cannot compare cheaply (rounds as text): left to the full comparison
    text_rounds = distinct.assign(round=distinct["round"].astype(str))
    assert not _distinct_keys(text_rounds) and duplicate_games(text_rounds) == []


def _valid_games():
    return _games(["0", "0", "1"], [1, 1, 1], [1, 2, 1], [3, 3, 3])


@pytest.mark.parametrize(
    "column, says",
    [("proposer", "bytes; decode them to text first"), ("proposer_text", "must be text")],
)
def test_an_unhashable_cell_is_named_not_a_crash(column, says):
    """The fast validation hashed every text cell: a bytearray (or a list) raised a bare
    TypeError where the row-by-row check names the cell."""
    from scai.models.data import validate_frame
    from scai.models.errors import DataError

    games = _valid_games()
    games[column] = pd.Series(["u0", "u0", "u0"], dtype=object)
    games.at[1, column] = bytearray(b"u9")
    with pytest.raises(DataError, match=says):
        validate_frame(games)


def test_the_validated_table_shares_no_memory_with_the_callers_frame():
    """pandas 3 selects columns without copying them: written through a column's array
    (which copy-on-write does not see), the caller's frame changed the validated table."""
    from scai.models.data import validate_frame

    games = _valid_games()
    table = validate_frame(games)
    games["offer"].array[0] = 9
    games["proposer"].array[0] = "zz"
    assert table["offer"].tolist() == [3, 3, 3] and table["proposer"].iloc[0] == "u0"


def test_a_layout_refuses_a_currency_named_twice():
    from scai.models.layout import GroupData

    with pytest.raises(ValueError, match="name a currency twice"):
        GroupData.from_table(_valid_games(), currencies=("dollars", "dollars"))
