"""Online updating: the posterior after epoch ``e`` plus the interactions of epoch ``e + 1``
gives the posterior after ``e + 1``. The assistant runs this every epoch.

* exact: action log-likelihoods add across epochs, so only the new interactions are scored
  and the grid posterior is recomputed (:func:`update_exact`);
* svi: the guide is warm-started from the previous fit (from a copy: the previous posterior is
  left as it was, so the same update gives the same result again). A posterior loaded from a
  file keeps no guide: its update starts as a new fit does, and can differ from the update of
  the posterior in memory by the optimiser's convergence;
* mcmc: refit on all data (NUTS has no cheap warm start worth its bookkeeping here).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pandas as pd
import torch

from scai.inference.errors import EngineError, no_table
from scai.inference.exact import fit_exact, fixed_action_loglik
from scai.inference.fit import (
    check_draws_memory,
    check_options,
    check_reported_tones,
    draw_dependent_user_types,
    lay_out,
    prepare,
)
from scai.inference.posterior import Posterior
from scai.inference.svi import fit_svi
from scai.models.data import (
    GAME_COLUMNS,
    duplicate_games,
    read_interactions,
    tones_heard,
    validate_frame,
)
from scai.models.errors import (
    DataError,
    DuplicateGamesWarning,
    Problem,
    TableWarning,
    check_flag,
    check_path,
    outside_scai,
)
from scai.models.layout import GroupData


def update(
    previous: Posterior,
    new_interactions: pd.DataFrame | str | Path,
    *,
    strict: bool = False,
    max_memory: int | None = None,
    **options,
) -> Posterior:
    """Condition ``previous`` on ``new_interactions`` (a table or a CSV path) as well (same
    hypothesis and engine). The new table is checked on its own first, so that a problem is
    reported at its row in that table; then the two together (``previous.table`` is a
    DataFrame its holder can edit). ``strict`` and ``max_memory`` as
    :func:`~scai.inference.fit.fit`'s; ``options`` go to the engine, over the previous fit's
    own settings, and are checked as ``fit`` checks them (an :class:`EngineError` naming a
    bad one)."""
    return _update(previous, new_interactions, strict, max_memory, options, as_fitted=False)


def update_as_fitted(previous: Posterior, new_interactions: pd.DataFrame) -> Posterior:
    """:func:`update` for a caller that holds ``previous`` as its fit left it (the protocol's
    epochs, whose tables no one else sees): ``previous.table``'s rows are not validated again
    where ``new_interactions`` has its columns and dtypes (they grow with the epochs)."""
    return _update(previous, new_interactions, False, None, {}, as_fitted=True)


def _update(
    previous: Posterior, new_interactions, strict: bool, max_memory, options, as_fitted: bool
) -> Posterior:
    if not isinstance(previous, Posterior):
        raise EngineError(
            f"update: previous must be a Posterior (fit's result, or Posterior.load(path)), "
            f"got {type(previous).__name__} {previous!r:.60}"
        )
    if previous.table is None:
        raise no_table("update")
    if "warm_start" in options:  # an update starts from ``previous`` itself
        raise EngineError(
            "update: warm_start is not an option here; the update starts from previous"
        )
    # (min_steps and max_steps together with the previous fit's, which the update keeps)
    _, options = check_options(
        previous.engine, options, kept=previous.settings, omit=("warm_start",)
    )
    check_flag("strict", strict, EngineError)
    if isinstance(new_interactions, str | bytes | os.PathLike):  # (a header alone: no games)
        check_path(new_interactions, "new_interactions", EngineError)  # (empty: not a folder)
        new = read_interactions(new_interactions, strict=strict, allow_empty=True)
    elif isinstance(new_interactions, pd.DataFrame):  # (an epoch may have no games)
        new = new_interactions
        if len(new_interactions) or len(new_interactions.columns):  # (its header is checked)
            new = validate_frame(
                new_interactions, source="new_interactions", strict=strict, allow_empty=True
            )
    else:
        problem = f"expected a DataFrame or a CSV path, got {type(new_interactions).__name__}"
        raise DataError("new_interactions", [Problem(None, None, None, problem, whole="argument")])
    if len(new):  # the hypothesis's own rule on tones too, at the new table's rows
        check_reported_tones(new, previous.hypothesis, "new_interactions")
        _warn_of_unread_text(new, previous.hypothesis)
        _warn_of_tones_unheard_before(previous.table, new, previous.hypothesis)
    combined = pd.concat([previous.table, new], ignore_index=True)
    _check_repeats_of_previous(combined, len(previous.table), strict)
    if as_fitted and new.dtypes.equals(previous.table.dtypes):
        # Two valid tables of the same columns: their rows together are valid, but for games
        # repeated across them, told above; so previous's rows are not validated again.
        table = combined  # (concat's own arrays, even with no new rows: tested)
        hyp, data = previous.hypothesis, lay_out(table, "interactions", max_memory)
    else:  # validated together: rows a holder may have edited, or a text column in one only
        with warnings.catch_warnings():  # identical games: told above, at each table's rows
            warnings.simplefilter("ignore", DuplicateGamesWarning)
            table, data, hyp = prepare(combined, previous.hypothesis, max_memory=max_memory)
    # the draws the update makes must fit in memory, as fit's (with the previous settings)
    check_draws_memory(
        previous.engine,
        {**previous.settings, **options},
        data.shape[0],
        len(table),
        max_memory,
        user_types=draw_dependent_user_types(data, hyp),
    )
    if previous.engine == "exact":
        if options.get("max_simplex_points") is not None:  # as fit says it, at the caller's line
            from scai.inference.grids.simplex import check_lattice

            check_lattice(hyp, options["max_simplex_points"])
        return update_exact(previous, table, data, **options)
    if previous.engine == "svi":
        settings = {**previous.settings, **options}
        if settings.get("correction") is None and "proposal_draws" not in options:
            settings["proposal_draws"] = None  # the previous correction's, not this fit's
        return fit_svi(data, hyp, table=table, seed=previous.seed, warm_start=previous, **settings)
    from scai.inference.mcmc import fit_mcmc

    # how the chains ran is chosen afresh (the machine may differ)
    settings = {k: v for k, v in previous.settings.items() if k != "parallel"}
    return fit_mcmc(data, hyp, table=table, seed=previous.seed, **{**settings, **options})


def _check_repeats_of_previous(combined: pd.DataFrame, before: int, strict: bool) -> None:
    """New rows (those after the first ``before`` of ``combined``) that are games of the
    previous posterior's table, equal in every column but perhaps the tones (an epoch given
    twice, its tones read anew or emptied): a :class:`DuplicateGamesWarning` naming them at
    the new table's rows, or under ``strict`` a :class:`DataError`."""
    again = [
        (row - before, first)
        for row, first in duplicate_games(combined, GAME_COLUMNS)
        if row > before >= first
    ]
    if not again:
        return
    shown = ", ".join(f"row {row} = previous's row {first}" for row, first in again[:5])
    why = (
        f"{len(again)} game(s) of previous's table again, equal in every column but perhaps "
        f"the tones ({shown}{' ...' if len(again) > 5 else ''}): an epoch given twice? Each "
        "would count twice"
    )
    if strict:
        raise DataError("new_interactions", [Problem(None, None, None, why)])
    warnings.warn(f"new_interactions: {why}", DuplicateGamesWarning, stacklevel=outside_scai())


def _warn_of_unread_text(new: pd.DataFrame, hypothesis) -> None:
    """A :class:`~scai.models.errors.TableWarning` where ``previous`` heard tones read by a
    reader (its hypothesis carries the reader's confusion) and new rows hold text with no
    tone: those messages are fitted as unheard (an update of a ``--tones read`` fit heard 8
    tones where a refit heard 16)."""
    if hypothesis.reader_confusion is None:
        return
    unread = 0
    for text, tone in (("proposer_text", "proposer_tone"), ("responder_text", "responder_tone")):
        if text in new.columns and tone in new.columns:
            written = new[text].fillna("").astype(str).str.strip() != ""
            unread += int((written & (new[tone].fillna("").astype(str) == "")).sum())
    if unread:
        warnings.warn(
            f"new_interactions: {unread} message(s) with text and no tone, where previous heard "
            "tones read by a tone reader: they are fitted as unheard; read them first "
            "(scai.models.tone_reader.read_tones(new_interactions, reader))",
            TableWarning,
            stacklevel=outside_scai(),
        )


def _warn_of_tones_unheard_before(before: pd.DataFrame, new: pd.DataFrame, hypothesis) -> None:
    """A :class:`~scai.models.errors.TableWarning` where ``previous``'s table holds no tone,
    new rows hold some and the hypothesis ties manners to types (else tones change no
    posterior): ``previous`` was fitted without tones (``scai fit --tones none`` empties them,
    and its file cannot say so) or its users said none, and the update scores the new ones, so
    the posterior hears tones in some epochs and not in others."""
    if not hypothesis.ties_manners_to_types:
        return
    if len(before) and not tones_heard(before) and (count := tones_heard(new)):
        warnings.warn(
            f"new_interactions: {count} tone(s) where previous's table has none (fitted with "
            "--tones none, or its users said none): the update scores them; to fit the new "
            "games without tones as well, empty them first "
            "(new_interactions.assign(proposer_tone='', responder_tone=''))",
            TableWarning,
            stacklevel=outside_scai(),
        )


def update_exact(previous: Posterior, table, data: GroupData, **options) -> Posterior:
    """The posterior given ``previous``'s data plus new interactions: ``table`` and ``data``
    hold all of them. With no latent scalar, action log-likelihoods add across epochs, so only
    the new interactions are scored; otherwise the grid adapts to the data and is rebuilt.
    ``options`` (:func:`~scai.inference.exact.fit_exact`'s) replace the previous settings."""
    hyp = previous.hypothesis
    settings = {k: v for k, v in previous.settings.items() if k in EXACT_SETTINGS}
    settings.update(options)
    state = previous.engine_state or {}
    if "action_loglik" not in state or tuple(data.currencies) != tuple(previous.data.currencies):
        return fit_exact(data, hyp, table=table, seed=previous.seed, **settings)
    new_rows = table.iloc[len(previous.table) :]
    parts = [(previous.data, state["action_loglik"])]
    if len(new_rows):  # (no new interactions: nothing to score, the same posterior)
        new_data = GroupData.from_table(new_rows, currencies=data.currencies)
        parts.append((new_data, fixed_action_loglik(new_data, hyp)))
    total = torch.zeros(1, *data.shape[:2], len(hyp.policies), dtype=torch.float64)
    for part_data, part in parts:
        s_idx, u_idx = _positions(part_data, data)
        total[:, s_idx, u_idx] += part[:, *torch.nonzero(part_data.user_mask, as_tuple=True)]
    return fit_exact(data, hyp, table=table, seed=previous.seed, action_loglik=total, **settings)


EXACT_SETTINGS = ("num_draws", "grid_points", "zoom_points", "max_simplex_points")


def _positions(part: GroupData, whole: GroupData) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each real user of ``part`` sits in ``whole`` (by simulation and user id)."""
    sim_of = {s: i for i, s in enumerate(whole.sim_ids)}
    user_of = [{u: j for j, u in enumerate(ids)} for ids in whole.user_ids]
    s_idx, u_idx = [], []
    for s, sim in enumerate(part.sim_ids):
        for user in part.user_ids[s]:
            s_idx.append(sim_of[sim])
            u_idx.append(user_of[sim_of[sim]][user])
    return torch.tensor(s_idx, dtype=torch.long), torch.tensor(u_idx, dtype=torch.long)
