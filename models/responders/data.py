"""Responder data as tensors: each subject's decisions, counted per cell.

A *cell* is a distinct ``(pot, offer)``. Subject ``s`` has one role ``r(s)`` and
``n_trials[s, c]`` decisions in cell ``c``, of which ``n_reject[s, c]`` rejections: the
sufficient statistics of the marginal models (:mod:`scai.models.responders.states`). The
explicit Pyro models (:mod:`scai.models.responders.pyro_models`) read the decisions
themselves, padded to ``[S, T]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import torch

DTYPE = torch.float64
#: Study 1's roles, in display order, and what they mean.
ROLE_NAMES = {"self": "responder", "other": "third-party punisher"}


@dataclass
class ResponderData:
    """Decisions of ``S`` subjects, each with one role, as tensors.

    A *cell* is a distinct ``(pot, offer)``; ``n_reject[s, c]`` and ``n_trials[s, c]`` count
    subject ``s``'s rejections and decisions in cell ``c`` (the sufficient statistics of the
    marginal models). The explicit models read the decisions themselves, padded to
    ``[S, T]``: ``cell``, ``rejected`` and ``mask`` (``T``: most decisions of a subject).
    """

    subjects: tuple[str, ...]
    roles: tuple[str, ...]
    role_index: torch.Tensor  # [S] long
    pots: torch.Tensor  # [C]
    offers: torch.Tensor  # [C]
    n_reject: torch.Tensor  # [S, C]
    n_trials: torch.Tensor  # [S, C]
    cell: torch.Tensor  # [S, T] long
    rejected: torch.Tensor  # [S, T]
    mask: torch.Tensor  # [S, T] bool

    @classmethod
    def from_table(cls, table: pd.DataFrame, roles: dict[str, str] | None = None) -> ResponderData:
        """From an interaction table of responder decisions (``responder``, ``pot``, ``offer``,
        ``accepted``; the role of a subject is ``roles[subject]``, else its row's ``sim``)."""
        if len(table) == 0:
            raise ValueError("no decisions to model")
        subject = table["responder"].astype(str).to_numpy()
        role_of = dict(roles) if roles is not None else {}
        for s, sim in zip(subject, table["sim"].astype(str), strict=True):
            role_of.setdefault(s, sim)
        seen = list(dict.fromkeys(role_of[s] for s in subject))
        order = [r for r in ROLE_NAMES if r in seen] + [r for r in seen if r not in ROLE_NAMES]
        first = list(dict.fromkeys(subject))
        subjects = sorted(first, key=lambda s: order.index(role_of[s]))  # stable within a role
        s_index = {s: i for i, s in enumerate(subjects)}
        cells = sorted(set(zip(table["pot"].astype(int), table["offer"].astype(int), strict=True)))
        c_index = {c: i for i, c in enumerate(cells)}
        srow = np.array([s_index[s] for s in subject])
        crow = np.array(
            [c_index[c] for c in zip(table["pot"].astype(int), table["offer"], strict=True)]
        )
        rej = 1.0 - table["accepted"].to_numpy(dtype=float)
        S, C = len(subjects), len(cells)
        n_reject = np.zeros((S, C))
        n_trials = np.zeros((S, C))
        np.add.at(n_reject, (srow, crow), rej)
        np.add.at(n_trials, (srow, crow), 1.0)
        per_subject = np.bincount(srow, minlength=S)
        T = int(per_subject.max())
        slot = np.zeros(len(srow), dtype=int)
        counter = np.zeros(S, dtype=int)
        for i, s in enumerate(srow):
            slot[i] = counter[s]
            counter[s] += 1
        cell = np.zeros((S, T), dtype=np.int64)
        rejected = np.zeros((S, T))
        mask = np.zeros((S, T), dtype=bool)
        cell[srow, slot] = crow
        rejected[srow, slot] = rej
        mask[srow, slot] = True
        return cls(
            subjects=tuple(subjects),
            roles=tuple(order),
            role_index=torch.tensor([order.index(role_of[s]) for s in subjects]),
            pots=torch.tensor([c[0] for c in cells], dtype=DTYPE),
            offers=torch.tensor([c[1] for c in cells], dtype=DTYPE),
            n_reject=torch.as_tensor(n_reject, dtype=DTYPE),
            n_trials=torch.as_tensor(n_trials, dtype=DTYPE),
            cell=torch.as_tensor(cell),
            rejected=torch.as_tensor(rejected, dtype=DTYPE),
            mask=torch.as_tensor(mask),
        )

    @property
    def n_subjects(self) -> int:
        return len(self.subjects)

    @property
    def n_roles(self) -> int:
        return len(self.roles)

    @property
    def shares(self) -> torch.Tensor:
        """Offer share ``o / N`` of each cell."""
        return self.offers / self.pots

    @cached_property
    def role_slices(self) -> list[tuple[int, int]]:
        """``(start, stop)`` of each role's subjects (subjects are sorted by role)."""
        counts = torch.bincount(self.role_index, minlength=self.n_roles).tolist()
        ends = np.cumsum(counts).tolist()
        return [(e - c, e) for c, e in zip(counts, ends, strict=True)]

    @cached_property
    def compressed(self) -> tuple[ResponderData, torch.Tensor, torch.Tensor]:
        """Subjects with identical roles and counts share a likelihood: ``(patterns, weight,
        inverse)``, where ``patterns`` holds each distinct ``(role, n_reject, n_trials)`` once
        (as a "subject"), ``weight[p]`` counts the subjects with pattern ``p`` and
        ``inverse[s]`` is subject ``s``'s pattern. Study 1: 364 subjects, 96 patterns."""
        key = torch.cat([self.role_index[:, None].to(DTYPE), self.n_reject, self.n_trials], 1)
        unique, inverse, weight = torch.unique(
            key, dim=0, return_inverse=True, return_counts=True
        )  # sorted lexicographically: by role first, as role_slices needs
        P = unique.shape[0]
        C = self.n_reject.shape[1]
        patterns = ResponderData(
            subjects=tuple(f"pattern{p}" for p in range(P)),
            roles=self.roles,
            role_index=unique[:, 0].long(),
            pots=self.pots,
            offers=self.offers,
            n_reject=unique[:, 1 : 1 + C],
            n_trials=unique[:, 1 + C :],
            cell=torch.zeros((P, 0), dtype=torch.long),
            rejected=torch.zeros((P, 0), dtype=DTYPE),
            mask=torch.zeros((P, 0), dtype=torch.bool),
        )
        return patterns, weight.to(DTYPE), inverse

    def subject_roles(self) -> list[str]:
        return [self.roles[i] for i in self.role_index.tolist()]
