"""From an interaction table to the tensors the model reads.

Each user's actions depend only on that user's own type (see :mod:`scai.models.policies`), so the
model is written over *users*: every interaction becomes one event for its responder (the
accept decision and the reply's tone) and, when the proposer is known, one event for its
proposer (the offer and the proposal's tone). Events are padded to ``[sims, users, rounds]``
arrays with masks; ``rounds`` here counts a user's own events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from scai.models.game import get_currency
from scai.models.language import TONES

#: The participant name the assistant plays under. It is not one of the users: its own offers
#: and decisions carry no evidence about the users' norms, so they are not scored (an offer it
#: makes is exogenous to the responding user, like an unknown proposer's).
ASSISTANT = "assistant"


def simulation_pots(
    sim: torch.Tensor, pot: torch.Tensor, S: int, P: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """For cells in simulations ``sim`` at pot indices ``pot`` (each ``[n_cells]``, of ``P``
    pots): ``[S, P_s]`` each simulation's pots in increasing order, its spare slots filled
    with the largest pot (``P - 1``), which one slot at least holds, and ``[n_cells]`` each
    cell's slot among its simulation's. Tables whose parameters differ by simulation need
    only these pots: many small groups play a few pots each of the many in the data (5 of 85
    in 50 groups of 4 users)."""
    pairs, slot_of_cell = torch.unique(sim * P + pot, return_inverse=True)  # sorted: sim, pot
    pair_sim, pair_pot = pairs // P, pairs % P
    per_sim = torch.bincount(pair_sim, minlength=S)
    first = torch.cumsum(per_sim, 0) - per_sim
    rank = torch.arange(len(pairs)) - first[pair_sim]
    width = int(per_sim.max()) if len(pairs) else 1
    # The largest pot in one slot at least (a spare slot, or a simulation that plays it; else
    # one more slot): the tables' offers then run to the data's largest pot, and each row is
    # the one the tables over all the data's pots hold, to the bit.
    if len(pairs) and not bool((per_sim < width).any() or (pair_pot == P - 1).any()):
        width += 1
    sim_pots = torch.full((S, width), P - 1, dtype=torch.long)
    sim_pots[pair_sim, rank] = pair_pot
    return sim_pots, rank[slot_of_cell]


def own_pot_values(pots: torch.Tensor, sim_pots: torch.Tensor) -> torch.Tensor | None:
    """``[S, 1, 1, P_s]``: the pots ``pots[sim_pots]`` of tables that differ by simulation,
    each simulation's own (:func:`simulation_pots`), where the simulations play fewer pots
    each than the data hold; ``None`` otherwise, and for one simulation (its tables span the
    data's pots already)."""
    if sim_pots.shape[0] < 2 or sim_pots.shape[-1] >= len(pots):
        return None
    return pots[sim_pots][:, None, None, :]


@dataclass
class GroupData:
    """Padded per-user event tensors for ``S`` simulations (groups) of up to ``U`` users.

    All ``[S, U, E]`` tensors share the event layout; ``offer`` is the offer of the event's
    game (chosen by the user on proposer events, seen by it on responder events).
    """

    sim_ids: list[str]
    user_ids: list[list[str]]
    currencies: tuple[str, ...]
    #: each currency's ``essential`` flag, read from the registry as the layout is made (a
    #: worker process that unpickles it needs no currency a session registered)
    essential_flags: tuple[bool, ...]
    pots: torch.Tensor  # [P] distinct pots, sorted
    user_mask: torch.Tensor  # [S, U] bool
    event_mask: torch.Tensor  # [S, U, E] bool
    is_proposer: torch.Tensor  # [S, U, E] bool
    is_responder: torch.Tensor  # [S, U, E] bool
    pot_index: torch.Tensor  # [S, U, E] long, into ``pots``
    currency_index: torch.Tensor  # [S, U, E] long, into ``currencies``
    offer: torch.Tensor  # [S, U, E] long
    accepted: torch.Tensor  # [S, U, E] float 0/1
    tone: torch.Tensor  # [S, U, E] long, into TONES (0 where unobserved)
    tone_mask: torch.Tensor  # [S, U, E] bool
    partner: torch.Tensor  # [S, U, E] long: on responder events the proposer's user index, or -1
    partner_event: torch.Tensor  # [S, U, E] long: the proposer's event index, or -1
    row: torch.Tensor  # [S, U, E] long: the table row of the event, -1 for padding

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.event_mask.shape)  # type: ignore[return-value]

    def users_subset(self, index: torch.Tensor) -> GroupData:
        """The same data restricted to users ``index`` (for minibatches; observed mode only)."""
        changes = {
            name: getattr(self, name)[:, index]
            for name, value in vars(self).items()
            if isinstance(value, torch.Tensor) and value.dim() >= 2
        }
        return replace(self, **changes)

    def sims_subset(self, index: torch.Tensor) -> GroupData:
        """The simulations (groups) ``index`` alone, in that order, with every pot kept
        (``index``: positions, or a boolean mask over the simulations)."""
        if index.dtype == torch.bool:
            index = torch.nonzero(index).squeeze(-1)
        changes = {
            name: value[index]
            for name, value in vars(self).items()
            if isinstance(value, torch.Tensor) and value.dim() >= 2
        }
        chosen = index.tolist()
        return replace(
            self,
            sim_ids=[self.sim_ids[s] for s in chosen],
            user_ids=[self.user_ids[s] for s in chosen],
            **changes,
        )

    def pot_slots(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Each simulation's own pots (:func:`simulation_pots` of the events): ``[S, P_s]``
        indices into ``pots``, and ``[S, U, E]`` each event's slot among its simulation's (0 on
        padding). Worked out once per data (the model asks at every SVI step: 0.3 s on 200,000
        events); a subset of the data works out its own."""
        if "_pot_slots" not in self.__dict__:
            self.__dict__["_pot_slots"] = self._own_pot_slots()
        return self.__dict__["_pot_slots"]

    def _own_pot_slots(self) -> tuple[torch.Tensor, torch.Tensor]:
        S = self.shape[0]
        sims = torch.arange(S)[:, None, None].expand_as(self.event_mask)[self.event_mask]
        sim_pots, slot = simulation_pots(sims, self.pot_index[self.event_mask], S, len(self.pots))
        slots = torch.zeros_like(self.pot_index)
        slots[self.event_mask] = slot
        return sim_pots, slots

    def played_currencies(self) -> torch.Tensor:
        """``[S, C]`` bool: whether simulation ``s`` has an event in currency ``c``."""
        S, C = self.shape[0], len(self.currencies)
        played = torch.zeros(S, C, dtype=torch.bool)
        sims = torch.arange(S)[:, None, None].expand_as(self.event_mask)[self.event_mask]
        played[sims, self.currency_index[self.event_mask]] = True
        return played

    def only_played_currencies(self) -> GroupData:
        """The same data with ``currencies`` cut to those some event is in (in their order; the
        first alone if none is) and ``currency_index`` renumbered (itself if every one is
        played)."""
        used = torch.nonzero(self.played_currencies().any(0)).squeeze(-1)
        if len(used) == 0:
            used = torch.zeros(1, dtype=torch.long)
        if len(used) == len(self.currencies):
            return self
        remap = torch.zeros(len(self.currencies), dtype=torch.long)
        remap[used] = torch.arange(len(used))
        return replace(
            self,
            currencies=tuple(self.currencies[c] for c in used.tolist()),
            essential_flags=tuple(self.essential_flags[c] for c in used.tolist()),
            currency_index=remap[self.currency_index],
        )

    def select_sim(self, s: int) -> GroupData:
        """Simulation ``s`` alone, its pots reduced to the ones it played (so that action
        tables over ``pots`` cover what it needs and no more)."""
        one = self.sims_subset(torch.tensor([s]))
        used = torch.unique(one.pot_index[one.event_mask])
        if len(used) == 0:
            used = torch.zeros(1, dtype=torch.long)
        remap = torch.zeros(len(self.pots), dtype=torch.long)
        remap[used] = torch.arange(len(used))
        return replace(one, pots=self.pots[used], pot_index=remap[one.pot_index])

    def tile(self, n: int) -> GroupData:
        """``n`` copies of every simulation along the ``sims`` dimension, copy-major (copy
        ``i`` of simulation ``s`` is ``i * S + s``): one group per posterior draw, to run the
        model forward on all of them at once."""
        changes = {
            name: value.repeat(n, *([1] * (value.dim() - 1)))
            for name, value in vars(self).items()
            if isinstance(value, torch.Tensor) and value.dim() >= 2
        }
        sim_ids = [f"{i}/{sim}" for i in range(n) for sim in self.sim_ids]
        return replace(self, sim_ids=sim_ids, user_ids=self.user_ids * n, **changes)

    def prefixes(self) -> GroupData:
        """Every prefix of every simulation as a group of its own: group ``(s, n)`` holds
        simulation ``s``'s events from its first ``n`` table rows (the rows its events come
        from, in table order), ``n = 1 .. N_s``, simulation-major; its id is ``"SIM#n"`` and
        its users are the simulation's. The tensors are those :meth:`from_table` builds from
        the stacked prefix tables (``row`` still indexes this data's table), without building
        them: each user's events are in row order, so a prefix keeps each user's first events
        and pads the rest."""
        S, U, E = self.shape
        rank = torch.full_like(self.row, -1)  # each event's row's position in its simulation
        lengths = []
        for s in range(S):
            rows, position = torch.unique(self.row[s][self.event_mask[s]], return_inverse=True)
            rank[s][self.event_mask[s]] = position
            lengths.append(len(rows))
        sims = torch.repeat_interleave(torch.arange(S), torch.tensor(lengths, dtype=torch.long))
        n = torch.cat([torch.arange(1, count + 1) for count in lengths])
        kept = self.event_mask[sims] & (rank[sims] < n[:, None, None])
        padding = {  # from_table's fill values
            "is_proposer": False,
            "tone_mask": False,
            "partner": -1,
            "partner_event": -1,
            "row": -1,
        }
        changes = {}
        for name, value in vars(self).items():
            if isinstance(value, torch.Tensor) and value.dim() == 3:
                fill = torch.tensor(padding.get(name, 0), dtype=value.dtype)
                changes[name] = torch.where(kept, value[sims], fill)
        changes["event_mask"] = kept
        changes["is_responder"] = kept & ~changes["is_proposer"]
        return replace(
            self,
            sim_ids=[
                f"{self.sim_ids[s]}#{k}" for s, k in zip(sims.tolist(), n.tolist(), strict=True)
            ],
            user_ids=[self.user_ids[s] for s in sims.tolist()],
            user_mask=self.user_mask[sims],
            **changes,
        )

    @property
    def essential(self) -> torch.Tensor:
        """``[C]`` 1.0 for essential-goods currencies."""
        return torch.tensor(
            [float(flag) for flag in self.essential_flags],
            dtype=torch.get_default_dtype(),
        )

    def tone_counts(self) -> torch.Tensor:
        """``[S, U, T]`` number of messages of each tone per user."""
        S, U, _ = self.shape
        counts = torch.zeros(S, U, len(TONES))
        observed = (self.tone_mask & self.event_mask).to(counts.dtype)
        counts.scatter_add_(-1, self.tone, observed)
        return counts

    @classmethod
    def from_table(
        cls,
        table: pd.DataFrame,
        users: dict[str, Sequence[str]] | None = None,
        currencies: Sequence[str] | None = None,
    ) -> GroupData:
        """Build the tensors from a validated, typed interaction table.

        ``users`` optionally lists each simulation's users (including ones that never played);
        ``currencies`` fixes the currency order (default: in order of appearance). Participants
        named :data:`ASSISTANT` are not users: their actions are not scored.
        """
        # Each column read once as a NumPy array, each text column factorised once (codes in
        # order of first appearance): pandas' per-call work, not the table's size, is most of
        # a layout's cost on the protocol's small tables (fifteen layouts a condition).
        players = _players(table, users)
        events = _events(players)
        currencies, currency_index = _currency_codes(table, currencies)
        pots = np.unique(table["pot"].to_numpy()).astype(np.int64)
        tensors = _event_tensors(table, events, currency_index, pots)
        S, U, _ = events.shape
        user_mask = np.zeros((S, U), dtype=bool)
        for s, ids in enumerate(players.user_ids):
            user_mask[s, : len(ids)] = True
        return cls(
            sim_ids=players.sim_ids,
            user_ids=players.user_ids,
            currencies=currencies,
            essential_flags=tuple(get_currency(c).essential for c in currencies),
            pots=torch.as_tensor(pots),
            user_mask=torch.as_tensor(user_mask),
            is_responder=tensors["event_mask"] & ~tensors["is_proposer"],
            **tensors,
        )


class _Players(NamedTuple):
    """The table's participants: each simulation's id and its users' ids, and for each row
    its simulation and its proposer's and responder's user index there (-1: no user)."""

    sim_ids: list[str]
    user_ids: list[list[str]]
    sim: np.ndarray  # [n] int64
    proposer: np.ndarray  # [n] int64
    responder: np.ndarray  # [n] int64


def _players(table: pd.DataFrame, users: dict[str, Sequence[str]] | None) -> _Players:
    """The simulations (the listed ones first, then in order of appearance) and their users
    (:func:`_user_order`). Participants are integer codes of their names (each name hashed
    once: a million users' games are millions of names); the assistant's own actions are not
    evidence, so it is no user, like an empty name."""
    sim_codes, sim_texts = _factorised(column_texts(table["sim"]))
    sim_ids = list(sim_texts)
    if users is not None:
        sim_ids = list(dict.fromkeys([*map(str, users), *sim_ids]))
    sim_position = {sim: i for i, sim in enumerate(sim_ids)}
    sim_code = np.array([sim_position[t] for t in sim_texts], dtype=np.int64)[sim_codes]
    known_sim, known_name = [], []
    if users is not None:
        for s, names in users.items():
            known_sim += [sim_position[str(s)]] * len(names)
            known_name += list(map(str, names))
    n, k = len(table), len(known_name)
    codes, names = pd.factorize(
        np.concatenate(
            [
                np.array(known_name, dtype=object),
                column_texts(table["proposer"]),
                column_texts(table["responder"]),
            ]
        )
    )
    names = np.asarray(names, dtype=object)
    known_code = np.where((names == "")[codes[:k]], -1, codes[:k])
    played = np.where(np.isin(names, ["", ASSISTANT])[codes], -1, codes)
    proposer, responder = played[k : k + n], played[k + n :]
    user_ids, user_index = _user_order(
        len(sim_ids),
        np.array(known_sim, dtype=np.int64),
        known_code,
        sim_code,
        proposer,
        responder,
        names,
    )

    def user_of(code: np.ndarray) -> np.ndarray:
        user = np.full(n, -1, dtype=np.int64)
        some = code >= 0
        user[some] = user_index(sim_code[some], code[some])
        return user

    return _Players(sim_ids, user_ids, sim_code, user_of(proposer), user_of(responder))


class _Events(NamedTuple):
    """Every event (a row's proposer's, then its responder's), sorted by simulation, user, row
    and role: its row, role (0 proposer, 1 responder), simulation, user and position among
    its user's events, and the ``[S, U, E]`` layout they fill."""

    row: np.ndarray
    role: np.ndarray
    sim: np.ndarray
    user: np.ndarray
    position: np.ndarray
    shape: tuple[int, int, int]

    @property
    def flat(self) -> np.ndarray:
        """Each event's position in the flattened ``[S, U, E]`` layout."""
        _, U, E = self.shape
        return (self.sim * U + self.user) * E + self.position


def _events(players: _Players) -> _Events:
    """The events of ``players``' rows, in the layout's order (:class:`_Events`)."""
    n = len(players.sim)
    rows = np.arange(n)
    has_proposer = players.proposer >= 0
    has_responder = players.responder >= 0
    row = np.concatenate([rows[has_proposer], rows[has_responder]])
    role = np.concatenate([np.zeros(has_proposer.sum(), int), np.ones(has_responder.sum(), int)])
    sim = players.sim[row]
    user = np.concatenate([players.proposer[has_proposer], players.responder[has_responder]])
    # Sort events by (sim, user, row, role): one integer key, unique per event.
    U = max(map(len, players.user_ids), default=0)
    order = np.argsort(((sim * (U + 1) + user) * max(n, 1) + row) * 2 + role)
    row, role, sim, user = row[order], role[order], sim[order], user[order]
    key = sim * (U + 1) + user
    starts = np.r_[0, np.flatnonzero(np.diff(key)) + 1]
    counts = np.diff(np.r_[starts, len(key)])
    position = np.arange(len(key)) - np.repeat(starts, counts)
    E = int(position.max()) + 1 if len(position) else 1
    return _Events(row, role, sim, user, position, (len(players.sim_ids), U, E))


def _currency_codes(
    table: pd.DataFrame, currencies: Sequence[str] | None
) -> tuple[tuple[str, ...], np.ndarray]:
    """The currencies (``currencies``, or the table's in order of appearance) and each row's
    index into them (-1 for a currency not among ``currencies``)."""
    codes, texts = _factorised(table["currency"].to_numpy(dtype=object))
    currencies = tuple(currencies) if currencies is not None else tuple(texts)
    if len(set(currencies)) != len(currencies):  # each currency must have one index
        raise ValueError(f"from_table: currencies {currencies} name a currency twice")
    position = {c: i for i, c in enumerate(currencies)}
    return currencies, np.array([position.get(c, -1) for c in texts], dtype=np.int64)[codes]


def _event_tensors(
    table: pd.DataFrame, events: _Events, currency_index: np.ndarray, pots: np.ndarray
) -> dict[str, torch.Tensor]:
    """The ``[S, U, E]`` tensors of :class:`GroupData` but ``is_responder``: each event's
    game, role and tone, and on a responder event its proposer's user and event; padding
    holds the fill values (:meth:`GroupData.prefixes` pads with the same)."""
    blanks = {
        "event_mask": (False, bool),
        "is_proposer": (False, bool),
        "pot_index": (0, np.int64),
        "currency_index": (0, np.int64),
        "offer": (0, np.int64),
        "accepted": (0.0, np.float64),
        "tone": (0, np.int64),
        "tone_mask": (False, bool),
        "partner": (-1, np.int64),
        "partner_event": (-1, np.int64),
        "row": (-1, np.int64),
    }
    # 1-D arrays: assignment at flat positions is cheaper than at [S, U, E] indices.
    out = {k: np.full(np.prod(events.shape), fill, dtype) for k, (fill, dtype) in blanks.items()}
    idx, row, proposes = events.flat, events.row, events.role == 0
    out["event_mask"][idx] = True
    out["is_proposer"][idx] = proposes
    out["row"][idx] = row
    out["pot_index"][idx] = np.searchsorted(pots, table["pot"].to_numpy()[row])
    out["currency_index"][idx] = currency_index[row]
    out["offer"][idx] = table["offer"].to_numpy()[row]
    out["accepted"][idx] = table["accepted"].to_numpy()[row]
    heard_p, tone_p = _tone_codes(table["proposer_tone"])
    heard_r, tone_r = _tone_codes(table["responder_tone"])
    out["tone_mask"][idx] = np.where(proposes, heard_p[row], heard_r[row])
    out["tone"][idx] = np.where(proposes, tone_p[row], tone_r[row])
    # Link each responder event to its proposer's event of the same row.
    prop_user, prop_pos = np.full(len(table), -1), np.full(len(table), -1)
    prop_user[row[proposes]] = events.user[proposes]
    prop_pos[row[proposes]] = events.position[proposes]
    linked = ~proposes & (prop_user[row] >= 0)
    out["partner"][idx[linked]] = prop_user[row[linked]]
    out["partner_event"][idx[linked]] = prop_pos[row[linked]]
    tensors = {k: torch.as_tensor(v.reshape(events.shape)) for k, v in out.items()}
    tensors["accepted"] = tensors["accepted"].to(torch.get_default_dtype())
    return tensors


def _tone_codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per row: whether a tone was heard (a non-empty text) and its index into ``TONES`` (0
    where none or unknown), each distinct text looked up once (in a dict: building a pandas
    Index of the tones per call cost more than the lookups, on the protocol's every epoch).
    A missing value (``None``, NaN: an empty cell of ``pd.read_csv``'s table, not validated)
    is no tone heard: factorised as -1 it indexed the last distinct tone, and as text it was
    the tone ``"None"`` or ``"nan"``, heard."""
    missing = column.isna().to_numpy()
    codes, texts = pd.factorize(column_texts(column))
    heard = np.array([*(text != "" for text in texts), False], dtype=bool)  # -1: missing
    index = np.array([*(_TONE_INDEX.get(text, 0) for text in texts), 0], dtype=np.intp)
    codes[missing] = -1
    return heard[codes], index[codes]


_TONE_INDEX = {tone: i for i, tone in enumerate(TONES)}


def column_texts(column: pd.Series) -> np.ndarray:
    """A column's values as ``astype(str)`` gives them, an object array, without that copy
    where the column has the dtype ``astype(str)`` gives already (a validated table's text
    columns; pandas' ``str`` dtype, looked up at each call: an option can change it)."""
    target = pd.api.types.pandas_dtype(str)
    if isinstance(target, pd.StringDtype) and column.dtype == target:  # (pandas 2: object)
        return column.to_numpy(dtype=object)
    return column.astype(str).to_numpy(dtype=object)


def _factorised(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The codes of ``values`` (an object array) and its distinct values in order of first
    appearance (``pd.unique``'s order; missing values, None, NaN or pd.NA, are one value, NaN:
    a validated table has none)."""
    codes, texts = pd.factorize(values, use_na_sentinel=False)
    return codes, np.asarray(texts, dtype=object)


def _user_order(n_sims, known_sim, known_code, sim_code, proposer, responder, names):
    """Each simulation's user ids (the listed users first, then proposers in row order, then
    responders in row order) and a vectorised ``(sim index, name code) -> user index``.
    ``*_code`` and ``proposer``/``responder`` are codes into ``names`` (-1: no user)."""
    sims = np.concatenate([known_sim, sim_code, sim_code]).astype(np.int64)
    code = np.concatenate([known_code, proposer, responder]).astype(np.int64)
    keep = code >= 0
    sims, code = sims[keep], code[keep]
    radix = len(names) + 1
    key = (sims * radix + code)[np.argsort(sims, kind="stable")]  # by sim, then appearance
    unique_key, first = np.unique(key, return_index=True)
    appearance = np.argsort(first, kind="stable")  # each sim's users in order of appearance
    in_order = unique_key[appearance]
    sim_of = in_order // radix
    starts = np.searchsorted(sim_of, np.arange(n_sims + 1))
    number = np.empty(len(unique_key), dtype=np.int64)
    number[appearance] = np.arange(len(in_order)) - starts[sim_of]
    listed = names[in_order % radix]
    user_ids = [listed[starts[s] : starts[s + 1]].tolist() for s in range(n_sims)]

    def user_index(sim: np.ndarray, name_code: np.ndarray) -> np.ndarray:
        return number[np.searchsorted(unique_key, sim.astype(np.int64) * radix + name_code)]

    return user_ids, user_index
