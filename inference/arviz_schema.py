"""One converter for every fit: :class:`InferenceParts` -> ``arviz.InferenceData``.

Every model family (the social-contract model's :class:`~scai.inference.posterior.Posterior`,
the human-data responder fits) describes its fit as :class:`InferenceParts`, one field per
ArviZ group, and :func:`build_inference_data` makes the file. The schema (ArviZ's, with one
extra group):

* ``posterior``: the continuous sites, dims ``(chain, draw, ...)`` named from the plates;
* ``sample_stats``: per-draw statistics (``lp`` always, MCMC's on its unconstrained scale;
  NUTS's ``diverging``, ``step_size``, ``tree_depth``, ``n_steps``, ``energy``,
  ``acceptance_rate``);
* ``log_likelihood``: one variable per observed variable scored, ``(chain, draw, user)``: each
  unit's log-likelihood with its discrete latents summed out;
* ``posterior_predictive``: replicates over the *same* draws as ``log_likelihood``, and the
  same observation dims as ``observed_data``, so ``az.loo``, ``az.loo_pit``, ``az.plot_ppc``
  and ``az.compare`` all work;
* ``observed_data``: the observations only; ``constant_data``: the covariates and labels
  (simulation, round, who played whom, pot, currency, text);
* ``user_posterior``: each user's posterior over its discrete latents (the same group name for
  every model family; human subjects are users too);
* attributes on every group: provenance (scai version, command line, time, seed, engine,
  what the draws are, a SHA-256 of the input data, package versions) and ``settings`` /
  ``diagnostics`` as JSON.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from scai.inference.errors import EngineError
from scai.models.writing import write_atomic

SCHEMA_VERSION = "2"
#: The attributes that say how a posterior was fitted (by what command, when, with which
#: versions): a loaded posterior saved again keeps them, and adds ``resaved`` and
#: ``resaved_command`` (when and by what command the copy was written).
FIT_PROVENANCE = ("scai_version", "command", "created", "torch_version", "pyro_version")
PROVENANCE_KEYS = (
    "scai_schema",
    "scai_version",
    "command",
    "created",
    "seed",
    "engine",
    "draws",
    "data_sha256",
    "settings",
    "diagnostics",
)


class PosteriorFileError(EngineError):
    """A posterior file that is not one scai wrote (missing groups or attributes, bad JSON,
    unreadable): the message names the file and what is wrong."""


@dataclass
class InferenceParts:
    """What a fit puts in its ArviZ file: one dict of arrays per group (module docstring),
    their ``dims`` and ``coords``, extra groups as xarray Datasets, and attributes."""

    posterior: dict[str, np.ndarray]
    log_likelihood: dict[str, np.ndarray]
    posterior_predictive: dict[str, np.ndarray]
    observed_data: dict[str, np.ndarray]
    constant_data: dict[str, np.ndarray]
    sample_stats: dict[str, np.ndarray]
    dims: dict[str, list[str]]
    coords: dict[str, Any]
    attrs: dict[str, str]
    extra_groups: dict[str, Any] = field(default_factory=dict)
    prior: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Group:
    """An extra group (beside ArviZ's) as plain arrays: ``variables[name] = (dims, values)``
    and ``coords[dim]``, the labels of its dims (others are not its). :func:`build_inference_data`
    makes it an xarray Dataset; :func:`write_netcdf` writes it as it is."""

    variables: dict[str, tuple[tuple[str, ...], np.ndarray]]
    coords: dict[str, Any]

    def to_dataset(self):
        import xarray as xr

        used = {dim for dims, _ in self.variables.values() for dim in dims}
        return xr.Dataset(
            {name: (dims, values) for name, (dims, values) in self.variables.items()},
            coords={dim: labels for dim, labels in self.coords.items() if dim in used},
        )


def to_json(value: Any) -> str:
    """Strict JSON (``json.loads`` reads it back): NumPy scalars and arrays as numbers and
    lists, non-finite floats as ``null``, other objects as their string."""

    def clean(x):
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [clean(v) for v in x]
        if isinstance(x, np.ndarray):
            return clean(x.tolist())
        if isinstance(x, np.generic):
            return clean(x.item())
        if isinstance(x, float):
            return x if math.isfinite(x) else None
        if x is None or isinstance(x, bool | int | str):
            return x
        return str(x)

    return json.dumps(clean(value), allow_nan=False, sort_keys=True)


def provenance(
    *,
    seed: int,
    engine: str,
    draws: str,
    data_sha256: str,
    settings: dict,
    diagnostics: dict,
) -> dict[str, str]:
    """The attributes every scai file carries (all strings; JSON where structured)."""
    import pyro
    import torch

    from scai import __version__

    return {
        "scai_schema": SCHEMA_VERSION,
        "scai_version": __version__,
        "command": to_json(sys.argv),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": str(seed),
        "engine": engine,
        "draws": draws,
        "data_sha256": data_sha256,
        "settings": to_json(settings),
        "diagnostics": to_json(diagnostics),
        "torch_version": str(torch.__version__),
        "pyro_version": str(pyro.__version__),
        "arviz_version": _arviz_version(),
    }


def _arviz_version() -> str:
    """ArviZ's version, from its installed metadata: importing ArviZ (~2.5 s of CPU) only to
    name the version of the files it reads would cost every process that writes one."""
    from importlib.metadata import version

    return version("arviz")


def build_inference_data(parts: InferenceParts):
    """The ``InferenceData`` of :class:`InferenceParts`, checked against the schema."""
    import arviz as az

    _check(parts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = az.from_dict(
            posterior=parts.posterior,
            sample_stats=parts.sample_stats or None,
            log_likelihood=parts.log_likelihood,
            posterior_predictive=parts.posterior_predictive,
            prior=parts.prior or None,
            observed_data=parts.observed_data,
            constant_data=parts.constant_data or None,
            coords=parts.coords,
            dims=parts.dims,
        )
        if parts.extra_groups:
            idata.add_groups(
                {
                    name: group.to_dataset() if isinstance(group, Group) else group
                    for name, group in parts.extra_groups.items()
                }
            )
    for group in idata.groups():
        getattr(idata, group).attrs.update(parts.attrs)
    return idata


def _check(parts: InferenceParts) -> None:
    """The schema's promises: every predictive and log-likelihood variable has the posterior's
    ``(chain, draw)`` and an observed variable of the same name and observation shape."""
    chain_draw = next(iter(parts.posterior.values())).shape[:2]
    for group in (parts.log_likelihood, parts.posterior_predictive):
        for name, value in group.items():
            if value.shape[:2] != chain_draw:
                raise ValueError(f"{name}: sample shape {value.shape[:2]}, posterior {chain_draw}")
            if name not in parts.observed_data:
                raise ValueError(f"{name}: no observed variable of that name")
            if value.shape[2:] != np.shape(parts.observed_data[name]):
                raise ValueError(f"{name}: observation shape differs from observed_data's")
    missing = [k for k in PROVENANCE_KEYS if k not in parts.attrs]
    if missing:
        raise ValueError(f"provenance attributes missing: {missing}")


def save_netcdf(idata, path) -> None:
    """Write an InferenceData to NetCDF (h5netcdf) atomically."""

    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata.to_netcdf(tmp, engine="h5netcdf")

    write_atomic(path, write)


#: ArviZ's groups in the order it writes them (``InferenceData``'s), and those with draws.
ARVIZ_GROUPS = (
    "posterior",
    "posterior_predictive",
    "log_likelihood",
    "sample_stats",
    "prior",
    "observed_data",
    "constant_data",
)
SAMPLED_GROUPS = frozenset(ARVIZ_GROUPS[:5])


def write_netcdf(parts: InferenceParts, path) -> None:
    """Write :class:`InferenceParts` to NetCDF atomically: the file that
    ``save_netcdf(build_inference_data(parts), path)`` writes (the same groups, variables,
    dims, coordinates, dtypes, encodings and attributes: ArviZ and xarray read back the same
    data), written through h5netcdf alone. Building the ArviZ object and writing it group by
    group through xarray costs importing both (~4 s of CPU in every process that saves) and
    their encoding machinery per variable; the file needs neither. Extra groups must be
    :class:`Group`\\ s.

    ArviZ's rules, followed here: a sampled group's variables have dims ``(chain, draw, ...)``,
    any dim not named is ``NAME_dim_I``, and a dim without labels is labelled ``0..n-1`` (an
    extra group's dims must all have labels: xarray would write one without); each
    ArviZ group's attributes are ``created_at`` and ``arviz_version`` then ``parts.attrs``
    (an extra group's only ``parts.attrs``). xarray's encodings: booleans as int8 marked
    ``dtype: bool``, floats filled with NaN, text as variable-length UTF-8, and (ArviZ's
    ``compress``) every number and boolean variable gzip-compressed."""
    _check(parts)
    created = {"created_at": datetime.now(UTC).isoformat(), "arviz_version": _arviz_version()}
    groups: dict[str, tuple[dict, dict, dict]] = {}  # name -> (variables, coords, attributes)
    for name in ARVIZ_GROUPS:
        values = getattr(parts, name)
        if values:
            groups[name] = (
                _with_dims(values, parts.dims, name in SAMPLED_GROUPS),
                parts.coords,
                {**created, **parts.attrs},
            )
    for name, group in parts.extra_groups.items():
        if not isinstance(group, Group):
            raise TypeError(f"extra group {name!r}: write_netcdf takes a Group")
        unlabelled = {d for dims, _ in group.variables.values() for d in dims} - set(group.coords)
        if unlabelled:  # xarray would write such a dim without labels, not as 0..n-1
            raise ValueError(f"extra group {name!r}: no labels for {sorted(unlabelled)}")
        groups[name] = (group.variables, group.coords, dict(parts.attrs))

    def write(tmp: str) -> None:
        import h5netcdf

        # Built in memory, then written as bytes: HDF5 writing a file onto a full disk fails
        # on every flush and crashed the process (a segmentation fault in h5py, the temporary
        # file left behind); Python's write raises one OSError, and write_atomic cleans up.
        buffer = io.BytesIO()
        with h5netcdf.File(buffer, "w") as handle:
            for name, (variables, coords, attrs) in groups.items():
                _write_group(handle.create_group(name), variables, coords, attrs)
        with open(tmp, "wb") as file:
            file.write(buffer.getbuffer())

    write_atomic(path, write)


def _with_dims(
    values: dict[str, np.ndarray], dims: dict[str, list[str]], sampled: bool
) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """``{name: (dims, values)}`` by ArviZ's naming (:func:`write_netcdf`)."""
    out = {}
    for name, value in values.items():
        value = np.asarray(value)
        lead = ["chain", "draw"] if sampled else []
        named = list(dims.get(name, []))
        rest = value.ndim - len(lead)
        named += [f"{name}_dim_{i}" for i in range(len(named), rest)]
        out[name] = (tuple(lead + named), value)
    return out


def _write_group(group, variables: dict, coords: dict, attrs: dict) -> None:
    """One group, as xarray's h5netcdf backend writes a Dataset: attributes, dimensions, then
    each variable after the coordinates of its dims not yet written."""
    group.attrs.update(attrs)
    sizes: dict[str, int] = {}
    for dims, value in variables.values():
        for dim, size in zip(dims, value.shape, strict=True):
            sizes.setdefault(dim, size)
    for dim, size in sizes.items():
        group.dimensions[dim] = size
    written: set[str] = set()
    for name, (dims, value) in variables.items():
        for dim in dims:
            if dim not in written:
                labels = coords[dim] if dim in coords else np.arange(sizes[dim])
                _write_variable(group, dim, (dim,), np.asarray(labels), fill=False)
                written.add(dim)
        _write_variable(group, name, dims, value, fill=True)


def _write_variable(group, name: str, dims: tuple[str, ...], value: np.ndarray, fill: bool):
    """One variable with xarray's encoding (:func:`write_netcdf`); ``fill``: a float data
    variable's NaN fill value (a dimension's labels have none)."""
    import h5py

    attrs = {}
    options: dict[str, Any] = {}
    if value.dtype.kind in "UO":
        value = value.astype(object)
        dtype = h5py.string_dtype()
    else:
        if value.dtype.kind == "b":
            value, attrs["dtype"] = value.astype(np.int8), "bool"
        dtype = value.dtype
        options["compression"] = "gzip"
        if fill and dtype.kind == "f":
            options["fillvalue"] = dtype.type(np.nan)
    variable = group.create_variable(name, dimensions=dims, dtype=dtype, **options)
    variable.attrs.update(attrs)
    variable[...] = value


def read_netcdf(path, required_groups: tuple[str, ...]):
    """Read a file scai wrote, checking its groups and provenance; anything else is a
    :class:`PosteriorFileError` naming the file. The file is inspected with h5py first
    (:func:`check_self_contained`): one that would make loading read another file is refused
    before ArviZ opens it."""
    import arviz as az

    check_self_contained(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = az.from_netcdf(path, engine="h5netcdf")
    except (OSError, ValueError, KeyError) as err:
        raise PosteriorFileError(f"{path}: not a readable posterior file ({err})") from None
    missing = [g for g in required_groups if g not in idata.groups()]
    if missing:
        raise PosteriorFileError(
            f"{path}: missing group(s) {', '.join(missing)}; a scai file has "
            f"{', '.join(required_groups)}"
        )
    problem = provenance_problem(idata.posterior.attrs)
    if problem is not None:
        raise PosteriorFileError(f"{path}: {problem}")
    return idata


def provenance_problem(attrs) -> str | None:
    """What is wrong with a file's provenance attributes (one line), or None: every one of
    :data:`PROVENANCE_KEYS` present, ``scai_schema`` this code's :data:`SCHEMA_VERSION` (a newer
    one is refused, not guessed at: its groups may mean other things), ``settings`` and
    ``diagnostics`` JSON."""
    absent = [k for k in PROVENANCE_KEYS if k not in attrs]
    if absent:
        return f"missing attribute(s) {', '.join(absent)}; not a scai {SCHEMA_VERSION} file"
    schema = str(attrs["scai_schema"])
    if schema != SCHEMA_VERSION:
        return _schema_problem(schema)
    for key in ("settings", "diagnostics"):
        try:
            json.loads(attrs[key])
        except (TypeError, ValueError):
            return f"attribute {key!r} is not JSON"
    return None


def _schema_problem(schema: str) -> str:
    """Why a file of schema ``schema`` (not :data:`SCHEMA_VERSION`) is not read."""
    from scai import __version__

    known = f"this scai ({__version__}) reads schema {SCHEMA_VERSION}"
    if not schema.isdigit():
        return f"attribute scai_schema {schema!r} is not a schema version; {known}"
    if int(schema) > int(SCHEMA_VERSION):
        return f"scai_schema {schema!r}: the file is from a newer scai; {known}: upgrade scai"
    return f"scai_schema {schema!r}: the file is from an older scai; {known} only: fit again"


#: HDF5 attributes of a NetCDF variable that carry no decoding (dimension bookkeeping); a
#: variable with any other attribute is read by xarray (:func:`read_plain_groups`).
_NETCDF_BOOKKEEPING = frozenset(
    {"_Netcdf4Coordinates", "_Netcdf4Dimid", "DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME"}
)


@dataclass
class PlainGroups:
    """Some groups of a posterior file, as NumPy: ``groups[group][variable]`` (the data
    variables, in the file's order, without the coordinates) and the posterior group's
    attributes."""

    groups: dict[str, dict[str, np.ndarray]]
    attrs: dict[str, Any]
    #: ``labels[group][dim]``: the coordinate of each asked-for dim the group has, as text
    labels: dict[str, dict[str, list[str]]] = field(default_factory=dict)


def read_plain_groups(
    path,
    groups: tuple[str, ...],
    required_groups: tuple[str, ...] = (),
    labelled: tuple[str, ...] = (),
) -> PlainGroups | None:
    """Read ``groups`` of a file scai wrote straight from HDF5 (h5py): the values xarray would
    decode, without importing ArviZ and xarray (~2 s) or reading the other groups (the
    posterior predictive is most of a file). Only for a file whose variables need no decoding
    but xarray's simplest (numbers as stored, a float's fill value NaN, text as UTF-8 strings,
    booleans as int8 marked ``dtype: bool``) and whose provenance
    attributes are all there (``settings`` and ``diagnostics`` JSON), with ``required_groups``
    too: for anything else (another writer's encodings, a missing group or attribute, a file
    that is not HDF5) it returns None, and the caller reads the file with :func:`read_netcdf`,
    which decodes it or names the problem. The file is checked as :func:`read_netcdf` checks
    it (:func:`check_self_contained`). The coordinates of the dims in ``labelled`` are read
    as text (``labels``)."""
    import h5py

    check_self_contained(path)
    try:
        handle = h5py.File(path, "r")
    except OSError:
        return None
    with handle:
        wanted = ("posterior", *groups, *required_groups)
        if not all(isinstance(handle.get(g), h5py.Group) for g in wanted):
            return None
        attrs = {k: _attr(v) for k, v in handle["posterior"].attrs.items()}
        if provenance_problem(attrs) is not None:
            return None  # read_netcdf names it
        read: dict[str, dict[str, np.ndarray]] = {}
        labels: dict[str, dict[str, list[str]]] = {}
        for group in groups:
            read[group], labels[group] = {}, {}
            for name, obj in handle[group].items():
                if not isinstance(obj, h5py.Dataset):
                    return None
                if obj.attrs.get("CLASS") == b"DIMENSION_SCALE":  # a coordinate (or a
                    if name in labelled and not _attr(obj.attrs.get("NAME", "")).startswith(
                        "This is a netCDF dimension but not a netCDF variable"
                    ):  # (a dimension without one, h5netcdf's words)
                        values = _plain_values(obj)
                        if values is None:
                            return None
                        labels[group][name] = [str(v) for v in values.tolist()]
                    continue
                values = _plain_values(obj)
                if values is None:
                    return None
                read[group][name] = values
            coordinates = {
                c
                for v in handle[group].values()
                for c in _attr(v.attrs.get("coordinates", "")).split()
            }
            for name in coordinates:  # non-index coordinates are not data variables
                read[group].pop(name, None)
    return PlainGroups(read, attrs, labels)


def _attr(value):
    return value.decode() if isinstance(value, bytes) else value


def _plain_values(dataset) -> np.ndarray | None:
    """A variable's values as xarray would decode them, or None if it needs decoding."""
    import h5py

    extra = set(dataset.attrs) - _NETCDF_BOOKKEEPING
    kind = dataset.dtype.kind
    if extra - {"_FillValue", "coordinates", "dtype"}:
        return None
    if "dtype" in extra:  # xarray stores booleans as int8 marked dtype "bool" (NUTS's diverging)
        if _attr(dataset.attrs["dtype"]) != "bool" or kind != "i" or "_FillValue" in extra:
            return None
        return np.asarray(dataset[()]).astype(bool)
    if "_FillValue" in extra:  # decoded as NaN: the same only for a float filled with NaN
        fill = np.asarray(dataset.attrs["_FillValue"])
        if kind != "f" or fill.size != 1 or not np.isnan(fill).all():
            return None
    if kind == "O":
        info = h5py.check_string_dtype(dataset.dtype)
        if info is None or info.encoding != "utf-8":
            return None
        return np.asarray(dataset.asstr()[()], dtype=object).astype(str)  # as ArviZ gives
    if kind not in "iuf":
        return None
    return np.asarray(dataset[()])


def check_self_contained(path) -> None:
    """A :class:`PosteriorFileError` naming ``path`` unless it is an HDF5 file whose data all
    live in it. HDF5 lets a file borrow data from elsewhere, and reading such a file reads those
    other files into the loaded table: an *external link* (a name that opens an object in
    another file), a dataset with *external storage* (its bytes kept in other raw files, any
    local file) or a *virtual dataset* (mapped from datasets in other files). scai writes none
    of them, so a file with any is refused, naming the first few. Only the file's structure is
    read here (every object reached through hard links, each once: a cycle of links ends)."""
    import h5py

    if os.path.isdir(path):  # (HDF5's own message: two lines of its internals)
        raise PosteriorFileError(f"{path}: is a folder, not a posterior file")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise PosteriorFileError(f"{path}: not a readable posterior file ({err})") from None
    with handle:
        groups = [handle]
        found: list[str] = []

        def visit(name: str, obj) -> None:
            if isinstance(obj, h5py.Group):
                groups.append(obj)
            elif isinstance(obj, h5py.Dataset):
                if obj.is_virtual:
                    found.append(f"/{name} is a virtual dataset (data mapped from other files)")
                if obj.external:
                    files = ", ".join(sorted({os.fsdecode(f[0]) for f in obj.external}))
                    found.append(f"/{name} has external storage (its data in {files})")

        handle.visititems(visit)  # objects reached through hard links, each once
        for group in groups:
            for name in group:
                link = group.get(name, getlink=True)
                if isinstance(link, h5py.ExternalLink):
                    where = f"{group.name.rstrip('/')}/{name}"
                    found.append(f"{where} is an external link (to {link.filename}:{link.path})")
    if found:
        shown = "; ".join(found[:3]) + (f"; and {len(found) - 3} more" if len(found) > 3 else "")
        raise PosteriorFileError(
            f"{path}: refused: the file reads data from other files ({shown}); scai's posterior "
            "files keep all their data in themselves"
        )
