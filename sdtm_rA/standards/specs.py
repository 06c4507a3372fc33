"""Read access to the generated CDISC specs (SDTMIG, ADaMIG, Controlled Terminology).

Why: every part of the toolkit (mappers, derivations, validator, XPT/define writers) needs the
same answers -- "what is the label/type/order/core of DM.RFSTDTC?", "is 'female' a valid SEX
value, and what is its submission value?", "which LBTEST goes with LBTESTCD 'CRP'?".  They come
from one place: the fact-only CSVs in ``specs/`` that ``tools/build_specs.py`` generates from the
CDISC / NCI EVS exports.  This module finds those files (in a checkout or an installed package),
parses them once and caches the result, so a lookup is a dict access.

Objects returned by the ``load_*`` functions are cached and shared: treat them as read-only.
"""

from __future__ import annotations

import csv
import difflib
import functools
import importlib.resources
import json
import pathlib
import re
from dataclasses import dataclass, field, replace

__all__ = [
    "SpecsNotFoundError",
    "AmbiguousCodelistError",
    "specs_dir",
    "manifest",
    "VariableSpec",
    "DatasetSpec",
    "ImplementationGuide",
    "ModelVariable",
    "SdtmModel",
    "GENERAL_OBSERVATION_CLASSES",
    "load_sdtmig",
    "load_sdtm_model",
    "load_adamig",
    "Term",
    "Codelist",
    "ControlledTerminology",
    "ct_versions",
    "load_ct",
]

_CHECKOUT_SPECS = pathlib.Path(__file__).resolve().parents[2] / "specs"
_MANIFEST = "manifest.json"


class SpecsNotFoundError(FileNotFoundError):
    """The generated specs (or the requested version of a standard) are not available."""


class AmbiguousCodelistError(KeyError):
    """A codelist short name designates more than one codelist in a CT package.

    No CT package 2025-03-28 (SDTM, ADaM, Define-XML) has such a short name, but NCI EVS does not
    guarantee uniqueness, so a future package could; the C-code then remains unambiguous.
    """


# --------------------------------------------------------------------------- locating files


@functools.lru_cache(maxsize=None)
def specs_dir() -> pathlib.Path:
    """Directory holding the generated specs (the one with ``manifest.json``).

    Why two places: in a source checkout the specs live at the top level (``<repo>/specs``) where
    data managers look for them, while ``pip install`` ships the same directory inside the
    package as ``sdtm_rA._specs`` (see ``setup.cfg``).  The installed copy wins when it is
    importable and complete, so an installed toolkit never depends on the current directory.
    """
    try:
        resource = importlib.resources.files("sdtm_rA._specs").joinpath(_MANIFEST)
    except (ImportError, TypeError, ValueError):  # not installed as a package (plain checkout)
        resource = None
    # A regular or namespace package on disk yields a real path; a zipped install does not, and
    # the CSV readers below need real files.
    if isinstance(resource, pathlib.Path) and resource.is_file():
        return resource.parent
    if (_CHECKOUT_SPECS / _MANIFEST).is_file():
        return _CHECKOUT_SPECS
    raise SpecsNotFoundError(
        "CDISC specs not found: neither the installed package data 'sdtm_rA._specs' nor "
        f"{_CHECKOUT_SPECS} contains {_MANIFEST}. In a checkout, generate them with "
        "`python tools/build_specs.py`; otherwise reinstall sdtm_rA."
    )


@functools.lru_cache(maxsize=None)
def manifest() -> dict:
    """The parsed ``manifest.json``: versions of the standards and, per file, source and checksum."""
    return json.loads((specs_dir() / _MANIFEST).read_text(encoding="utf-8"))


def _read_csv(path: pathlib.Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _split(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split(";") if p.strip())


def _standard_dir(prefix: str, version: str, what: str) -> pathlib.Path:
    path = specs_dir() / f"{prefix}-{version}"
    if not path.is_dir():
        found = sorted(p.name.removeprefix(prefix + "-") for p in specs_dir().glob(prefix + "-*") if p.is_dir())
        raise SpecsNotFoundError(
            f"{what} v{version} is not in {specs_dir()}; available: {', '.join(found) or 'none'}"
        )
    return path


# --------------------------------------------------------------------------- implementation guides


@dataclass(frozen=True)
class VariableSpec:
    """One variable of an IG dataset / data structure, as published (facts only).

    ``core`` is 'Req', 'Exp' or 'Perm' in the SDTMIG; the ADaMIG uses 'Req', 'Cond' or 'Perm'.
    ``codelists`` holds CT C-codes (several for e.g. DS.DSDECOD).  ``role`` is the SDTM role
    ('Identifier', 'Topic', 'Timing', ...); ADaMIG variables have no role but a ``variable_set``.
    ``value_domain`` is the SDTMIG "described value domain" (e.g. 'ISO 8601 datetime or
    interval', 'MedDRA'); ``value_list`` the values the IG itself fixes (DOMAIN, ADaM Y/N flags).

    ``source`` is 'IG' for a variable of the IG's dataset table, 'model' for a variable the SDTM
    model allows in a general-observation-class domain although the IG table does not list it
    (see :meth:`DatasetSpec.model_variable`); IG variables have integer ``order`` values, model
    variables a fraction slotting them between two IG variables.
    """

    dataset: str
    name: str
    label: str
    type: str
    order: int | float
    core: str
    codelists: tuple[str, ...]
    role: str
    value_domain: str = ""
    value_list: tuple[str, ...] = ()
    variable_set: str = ""
    source: str = "IG"


# ADaMIG placeholders in variable names: xx/zz = two digits (01-99), y/w = one digit (1-9).
_PLACEHOLDER = re.compile(r"xx|zz|y|w")
_PLACEHOLDER_RE = {"xx": r"(\d\d)", "zz": r"(\d\d)", "y": r"([1-9])", "w": r"([1-9])"}


def _pattern(name: str) -> re.Pattern[str] | None:
    """Regex matching concrete names for a templated ADaMIG name like 'TRTxxP', else None."""
    if not _PLACEHOLDER.search(name):
        return None
    return re.compile(_PLACEHOLDER.sub(lambda m: _PLACEHOLDER_RE[m.group()], name) + r"\Z")


@dataclass
class DatasetSpec:
    """An IG dataset (SDTMIG) or data structure (ADaMIG) with its variables in IG order."""

    name: str
    label: str
    class_: str
    structure: str
    variables: list[VariableSpec]
    subclass: str = ""
    model: SdtmModel | None = field(default=None, repr=False, compare=False)
    _by_name: dict[str, VariableSpec] = field(init=False, repr=False, compare=False)
    _templates: list[tuple[re.Pattern[str], VariableSpec]] = field(init=False, repr=False, compare=False)
    _model_extra: dict[str, VariableSpec] | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.variables = sorted(self.variables, key=lambda v: v.order)
        self._by_name = {v.name: v for v in self.variables}
        self._templates = [(p, v) for v in self.variables if (p := _pattern(v.name))]

    @property
    def names(self) -> list[str]:
        """Variable names in IG order (the order datasets must be written in)."""
        return [v.name for v in self.variables]

    def variable(self, name: str) -> VariableSpec | None:
        """The spec of variable ``name`` (any case), or None if the IG does not define it.

        ADaMIG names with placeholders resolve too: ``variable('TRT01P')`` returns the 'TRTxxP'
        spec renamed to TRT01P, its label's placeholders filled ('Planned Treatment for Period
        01').  SDTMIG '--' prefixes are already expanded per domain in the IG, so need no help.
        """
        spec = self._by_name.get(name.strip()) or self._by_name.get(name.strip().upper())
        if spec is not None:
            return spec
        key = name.strip().upper()
        for pattern, spec in self._templates:
            m = pattern.match(key)
            if m:
                digits = iter(m.groups())
                placeholders = _PLACEHOLDER.findall(spec.name)
                fill = dict(zip(placeholders, digits))
                label = re.sub(r"\b(xx|zz|y|w)\b", lambda t: fill.get(t.group(), t.group()), spec.label)
                return replace(spec, name=key, label=label)
        return None

    def __contains__(self, name: str) -> bool:
        return self.variable(name) is not None

    # ----------------------------------------------------------------- SDTM model variables

    @property
    def domain_prefix(self) -> str:
        """The 2-letter prefix that replaces '--' in variable names: LB for LB, LBCH, FA for FACM."""
        return self.name[:2].upper()

    @property
    def is_general_observation(self) -> bool:
        """Whether the dataset belongs to a general observation class (Interventions, Events,
        Findings, Findings About), whose domains may use any variable the SDTM model gives the class."""
        return self.class_ in GENERAL_OBSERVATION_CLASSES

    def model_variable(self, name: str) -> VariableSpec | None:
        """The variable ``name`` may be in this dataset: the IG's, else one the SDTM model allows.

        Why: the SDTMIG table of a domain shows only the variables commonly used, but in a
        general-observation-class domain (Interventions, Events, Findings, Findings About) the
        SDTM model permits every identifier and timing variable of 'General Observations' and
        every variable of the domain's class (e.g. VISITNUM in EX, --DOSE in CM-like domains), with
        '--' replaced by the domain prefix.  Such a variable belongs in the parent dataset
        (Pinnacle 21 SD1076 only notes "model permissible variable added"); one in neither the IG
        nor the model belongs in SUPP--.

        The IG variable wins when there is one (same as :meth:`variable`).  Otherwise, for a
        general-observation-class dataset linked to its SDTM model (``load_sdtmig`` links SDTMIG
        v3.4 to SDTM v2.0), the model's variable is returned with the domain prefix in its name
        (the label is kept as the model gives it), core 'Perm', the model's type, role and value
        domain, no codelist (the model assigns none), ``source='model'`` and a fractional
        ``order`` placing it among the IG variables (see :meth:`model_variables`).  Variables
        the model's usage restrictions exclude here are not offered: 'Not in human clinical
        trials' (the SDTMIG is for human trials), 'XX domain only' elsewhere than XX, 'Not in XX
        domain' in XX, 'Not in Findings class domains' in Findings / Findings About
        (e.g. LBSTDTC, AEOCCUR, LBBEATNO are None).  None for anything else, for Special-Purpose
        (DM, SV ...), Trial Design and Relationship datasets, and for ADaMIG structures.
        """
        spec = self.variable(name)
        if spec is not None:
            return spec
        return self._model_extras().get(name.strip().upper())

    def model_variables(self) -> list[VariableSpec]:
        """The IG variables plus the model-permissible ones (:meth:`model_variable`), in SDTM order.

        Ordering rule for a model variable M: the SDTM order is identifiers, then topic and
        qualifiers, then timing; the model's own sequence for the class is 'General
        Observations' identifiers, the class's variables (for Findings About: Findings then
        Findings About), 'General Observations' timing variables, each in the model's Variable
        Order.  Among the IG variables of M's role group (identifiers / topic+qualifiers / timing)
        that are in that sequence, M goes right after the one nearest before M in the sequence;
        if none precedes M, right before the one nearest after M (i.e. after the IG variable
        just before that one); if the group has no IG variable in the sequence, after the last
        IG variable of an earlier group.  ``order`` = the IG order of the variable M follows +
        (M's 1-based position in the sequence) / 1000, so several model variables after the same
        IG variable keep the model's order and IG variables keep their integer orders.
        E.g. EX (IG timing variables TAETORD, EPOCH, EXSTDTC ...; model timing order VISITNUM,
        VISIT, VISITDY, TAETORD, EPOCH, --DTC, --STDTC ...): VISITNUM 25.06, VISIT 25.061,
        VISITDY 25.062 (after the last qualifier EXADJ 25, before TAETORD 26), EXDTC 27.069
        (after EPOCH, before EXSTDTC 28).  The IG's own order may differ from the model's (FA
        puts FAOBJ, a Findings About variable, after FATEST): the rule only looks at IG variables
        of M's group and takes the nearest by model position.
        """
        return sorted([*self.variables, *self._model_extras().values()], key=lambda v: v.order)

    def allowed_names(self) -> list[str]:
        """Names of :meth:`model_variables`: every variable the dataset itself may contain."""
        return [v.name for v in self.model_variables()]

    def _model_extras(self) -> dict[str, VariableSpec]:
        if self._model_extra is None:
            self._model_extra = self._compute_model_extras()
        return self._model_extra

    def _compute_model_extras(self) -> dict[str, VariableSpec]:
        if self.model is None or not self.is_general_observation:
            return {}
        prefix = self.domain_prefix
        seq = self.model.sequence(self.class_)
        names = [mv.name.replace("--", prefix) for mv, _ in seq]
        position = {n: i for i, n in enumerate(names)}
        denominator = 1000 if len(seq) < 999 else 10 ** len(str(len(seq) + 1))
        ig = self.variables  # sorted by order

        def group_of(v: VariableSpec) -> int:
            i = position.get(v.name)
            return seq[i][1] if i is not None else _role_group(v.role)

        in_seq = [v for v in ig if v.name in position]
        extras: dict[str, VariableSpec] = {}
        for i, ((mv, group), name) in enumerate(zip(seq, names)):
            if name in self._by_name or name in extras:
                continue
            if mv.allowed_in(prefix, self.class_) is not True:
                continue
            same = [v for v in in_seq if seq[position[v.name]][1] == group]
            before = [v for v in same if position[v.name] < i]
            after = [v for v in same if position[v.name] > i]
            if before:
                anchor = max(before, key=lambda v: position[v.name]).order
            elif after:
                successor = min(after, key=lambda v: position[v.name])
                earlier = [v.order for v in ig if v.order < successor.order]
                anchor = max(earlier, default=0)
            else:
                anchor = max((v.order for v in ig if group_of(v) < group), default=0)
            extras[name] = VariableSpec(
                dataset=self.name, name=name, label=mv.label, type=mv.type,
                order=anchor + (i + 1) / denominator, core="Perm", codelists=(), role=mv.role,
                value_domain=mv.value_domain, source="model",
            )
        return extras


class ImplementationGuide:
    """The datasets of one IG version (SDTMIG or ADaMIG), addressed by name."""

    def __init__(self, standard: str, version: str, datasets: dict[str, DatasetSpec],
                 model: SdtmModel | None = None) -> None:
        self.standard = standard
        self.version = version
        self._datasets = datasets
        self._supp: dict[str, DatasetSpec] = {}
        #: the SDTM model the IG implements (SDTMIG only; None when not generated)
        self.model = model

    def __repr__(self) -> str:
        return f"<ImplementationGuide {self.standard} v{self.version}: {len(self._datasets)} datasets>"

    @property
    def names(self) -> list[str]:
        """Names of the datasets (or ADaM data structures) the IG defines, sorted."""
        return sorted(self._datasets)

    def has(self, name: str) -> bool:
        """Whether :meth:`dataset` would succeed for ``name`` (SUPP-- names included)."""
        try:
            self.dataset(name)
        except KeyError:
            return False
        return True

    def dataset(self, name: str) -> DatasetSpec:
        """The spec of dataset ``name`` (case-insensitive); KeyError with suggestions if unknown.

        SDTMIG: ``SUPPxx`` (SUPPDM, SUPPAE, a custom SUPPXY, a split SUPPFAMH ...) returns the
        generic SUPPQUAL spec renamed, labelled e.g. 'Supplemental Qualifiers for DM'.
        ADaMIG: 'TTE' has no variables of its own in the IG (it is a BDS subclass), so it gets
        the BDS variables.
        """
        key = name.strip().upper()
        spec = self._datasets.get(key)
        if spec is not None:
            return spec
        supp = _supp_spec(self, key)
        if supp is not None:
            return supp
        close = difflib.get_close_matches(key, self._datasets, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"{self.standard} v{self.version} has no dataset {name!r}{hint}")

    def __contains__(self, name: str) -> bool:
        return self.has(name)


_SUPP = re.compile(r"SUPP([A-Z][A-Z0-9]{1,3})\Z")


def _supp_spec(ig: ImplementationGuide, key: str) -> DatasetSpec | None:
    """SUPPQUAL renamed for ``key`` (e.g. SUPPAE), built once per IG and name; None if n/a."""
    if key in ig._supp:
        return ig._supp[key]
    base = ig._datasets.get("SUPPQUAL")
    m = _SUPP.match(key)
    if base is None or m is None:
        return None
    domain = m.group(1)
    label = base.label.replace("[domain name]", domain)
    if label == base.label:  # template wording changed: still say which domain
        label = f"Supplemental Qualifiers for {domain}"
    spec = ig._supp[key] = DatasetSpec(
        name=key, label=label, class_=base.class_, structure=base.structure,
        variables=[replace(v, dataset=key) for v in base.variables], subclass=base.subclass,
    )
    return spec


# --------------------------------------------------------------------------- SDTM model

#: General observation classes -> the SDTM model classes whose variables a domain of it may use
#: (besides the 'General Observations' identifiers and timing variables).
GENERAL_OBSERVATION_CLASSES: dict[str, tuple[str, ...]] = {
    "Interventions": ("Interventions",),
    "Events": ("Events",),
    "Findings": ("Findings",),
    "Findings About": ("Findings", "Findings About"),
}
_GENERAL = "General Observations"


def _role_group(role: str) -> int:
    """SDTM variable order by role: identifiers (0), topic and qualifiers (1), timing (2)."""
    return 0 if role == "Identifier" else 2 if role == "Timing" else 1


_DOMAIN_CODE = re.compile(r"\b[A-Z]{2}\b")


def _usage_allows(restrictions: str, prefix: str, class_: str) -> bool | None:
    """Whether an SDTM model usage restriction lets domain ``prefix`` of ``class_`` use a variable.

    Understood clauses (';'-separated, case-insensitive): 'Not in human clinical trials' (False:
    the SDTMIG is for human trials), 'Not in nonclinical trials' (no limit here), 'Not in
    <Class> class domains', '<XX[, YY, and ZZ]> domain(s) only', 'Only in ... domains: XX, YY',
    'Not in <XX, YY ...> ...' (two-letter domain codes; 'Not in QS, FT, and clinical
    classifications use case of RS' thus also excludes RS, which lists RSEVAL/RSEVALID itself).
    None for a clause not understood, which callers treat as "not allowed".
    """
    for clause in restrictions.split(";"):
        text = " ".join(clause.split())
        low = text.lower()
        if not text or low == "not in nonclinical trials":
            continue
        if low == "not in human clinical trials":
            return False
        m = re.fullmatch(r"not in (.+?) class domains?", low)
        if m:
            cls = m.group(1)
            if class_.lower() == cls or class_.lower().startswith(cls + " "):
                return False
            continue
        m = (re.fullmatch(r"(.+?) domains? only", text, re.IGNORECASE)
             or re.fullmatch(r"only in .*?domains?: (.+)", text, re.IGNORECASE))
        if m:
            codes = _DOMAIN_CODE.findall(m.group(1))
            if not codes:
                return None
            if prefix not in codes:
                return False
            continue
        m = re.fullmatch(r"not in (.+)", text, re.IGNORECASE)
        if m:
            codes = _DOMAIN_CODE.findall(m.group(1))
            if not codes:
                return None
            if prefix in codes:
                return False
            continue
        return None
    return True


@dataclass(frozen=True)
class ModelVariable:
    """One variable of the SDTM model, as published: ``name`` keeps the '--' domain placeholder.

    ``dataset`` is empty for a class-level variable ('General Observations', 'Interventions' ...),
    else the dataset the model defines it for (DM, SV, TA, SUPPQUAL ...).  ``usage_restrictions``
    is the model's text ('EG Domain only', 'Not in human clinical trials' ...).
    """

    class_: str
    dataset: str
    order: int
    name: str
    label: str
    type: str
    role: str
    value_domain: str = ""
    usage_restrictions: str = ""

    def allowed_in(self, prefix: str, class_: str) -> bool | None:
        """Whether the usage restrictions let domain ``prefix`` (of SDTMIG class ``class_``) use it;
        None when a restriction is worded in a way not understood (see :func:`_usage_allows`)."""
        return _usage_allows(self.usage_restrictions, prefix, class_)


class SdtmModel:
    """One SDTM model version: its datasets and its class- and dataset-level variables."""

    def __init__(self, version: str, datasets: dict[str, tuple[str, str]],
                 variables: list[ModelVariable]) -> None:
        self.version = version
        self.datasets = datasets  # name -> (label, class)
        self._class: dict[str, list[ModelVariable]] = {}
        self._dataset: dict[str, list[ModelVariable]] = {}
        for v in sorted(variables, key=lambda v: v.order):
            if v.dataset:
                self._dataset.setdefault(v.dataset, []).append(v)
            else:
                self._class.setdefault(v.class_, []).append(v)
        self._sequences: dict[str, list[tuple[ModelVariable, int]]] = {}

    def __repr__(self) -> str:
        return f"<SdtmModel v{self.version}: {len(self._class)} classes, {len(self.datasets)} datasets>"

    @property
    def classes(self) -> list[str]:
        """Classes with class-level variables ('General Observations', 'Events', ...), sorted."""
        return sorted(self._class)

    def class_variables(self, class_: str) -> list[ModelVariable]:
        """Class-level variables of ``class_`` in model order ([] if none)."""
        return list(self._class.get(class_, []))

    def dataset_variables(self, name: str) -> list[ModelVariable]:
        """Variables the model defines for dataset ``name`` (DM, SV, TA ...) in model order."""
        return list(self._dataset.get(name.strip().upper(), []))

    def sequence(self, class_: str) -> list[tuple[ModelVariable, int]]:
        """The model variables a domain of general observation class ``class_`` may use, with their
        role group (0 identifiers, 1 topic/qualifiers, 2 timing), in SDTM order: 'General
        Observations' identifiers, the class's variables (Findings About: Findings, then Findings
        About), 'General Observations' timing; within each, the model's order.  [] for another class.
        """
        if class_ not in self._sequences:
            sources = GENERAL_OBSERVATION_CLASSES.get(class_)
            if sources is None:
                return []
            ranked = []
            for rank, cls in enumerate((_GENERAL, *sources)):
                for v in self._class.get(cls, []):
                    ranked.append((_role_group(v.role), rank, v.order, v))
            ranked.sort(key=lambda t: t[:3])
            seq, seen = [], set()
            for group, _, _, v in ranked:
                if v.name not in seen:  # first definition wins should a name recur
                    seen.add(v.name)
                    seq.append((v, group))
            self._sequences[class_] = seq
        return self._sequences[class_]


@functools.lru_cache(maxsize=None)
def load_sdtm_model(version: str = "2.0") -> SdtmModel:
    """SDTM model ``version`` from ``specs/sdtm-<version>/`` (parsed once, then cached)."""
    base = _standard_dir("sdtm", version, "SDTM model")
    datasets = {r["dataset"]: (r["label"], r["class"]) for r in _read_csv(base / "datasets.csv")}
    variables = [
        ModelVariable(class_=r["class"], dataset=r["dataset"], order=int(r["order"]), name=r["variable"],
                      label=r["label"], type=r["type"], role=r["role"], value_domain=r["value_domain"],
                      usage_restrictions=r["usage_restrictions"])
        for r in _read_csv(base / "variables.csv")
    ]
    return SdtmModel(version, datasets, variables)


def _paired_model(sdtmig_version: str) -> SdtmModel | None:
    """The SDTM model that the manifest pairs with SDTMIG ``sdtmig_version``, if generated."""
    pairing = manifest().get("sdtm_model") or {}
    if pairing.get("sdtmig") != sdtmig_version or not pairing.get("version"):
        return None
    try:
        return load_sdtm_model(pairing["version"])
    except SpecsNotFoundError:
        return None


@functools.lru_cache(maxsize=None)
def load_sdtmig(version: str = "3.4") -> ImplementationGuide:
    """SDTMIG ``version`` from ``specs/sdtmig-<version>/`` (parsed once, then cached).

    The SDTM model the IG implements (per ``manifest.json``: SDTMIG v3.4 -> SDTM v2.0) is linked
    to the IG (``ig.model``) and to each dataset, for :meth:`DatasetSpec.model_variable`.
    """
    base = _standard_dir("sdtmig", version, "SDTMIG")
    variables: dict[str, list[VariableSpec]] = {}
    for r in _read_csv(base / "variables.csv"):
        variables.setdefault(r["dataset"], []).append(VariableSpec(
            dataset=r["dataset"], name=r["variable"], label=r["label"], type=r["type"],
            order=int(r["order"]), core=r["core"], codelists=_split(r["codelists"]), role=r["role"],
            value_domain=r.get("value_domain", ""), value_list=_split(r.get("value_list", "")),
        ))
    model = _paired_model(version)
    datasets = {
        r["dataset"]: DatasetSpec(
            name=r["dataset"], label=r["label"], class_=r["class"], structure=r["structure"],
            variables=variables.get(r["dataset"], []), model=model,
        )
        for r in _read_csv(base / "datasets.csv")
    }
    return ImplementationGuide("SDTMIG", version, datasets, model)


@functools.lru_cache(maxsize=None)
def load_adamig(version: str = "1.3") -> ImplementationGuide:
    """ADaMIG ``version`` from ``specs/adamig-<version>/``: one DatasetSpec per data structure.

    ADaMIG v1.3 defines ADSL and BDS variables (TTE being a BDS subclass, ``dataset('TTE')``
    returns the BDS variables under the TTE name; ADaMIG 1.3 has no OCCDS).  Use
    ``dataset('ADSL').variable('TRT01P')`` for labels/types/order; templated names resolve.
    ``DatasetSpec.structure`` is empty for ADaM; ``class_`` and ``subclass`` carry the class.
    """
    base = _standard_dir("adamig", version, "ADaMIG")
    variables: dict[str, list[VariableSpec]] = {}
    for r in _read_csv(base / "variables.csv"):
        variables.setdefault(r["structure"], []).append(VariableSpec(
            dataset=r["structure"], name=r["variable"], label=r["label"], type=r["type"],
            order=int(r["order"]), core=r["core"], codelists=_split(r["codelists"]), role="",
            value_list=_split(r.get("value_list", "")), variable_set=r.get("variable_set", ""),
        ))
    structures = _read_csv(base / "datastructures.csv")
    datasets = {}
    for r in structures:
        own = variables.get(r["structure"])
        if not own and r["subclass"]:  # a subclass inherits its class's structure (TTE -> BDS)
            parent = next((s["structure"] for s in structures
                           if s["class"] == r["class"] and not s["subclass"]), None)
            own = [replace(v, dataset=r["structure"]) for v in variables.get(parent, [])]
        datasets[r["structure"]] = DatasetSpec(
            name=r["structure"], label=r["label"], class_=r["class"], structure="",
            variables=own or [], subclass=r["subclass"],
        )
    return ImplementationGuide("ADaMIG", version, datasets)


# --------------------------------------------------------------------------- controlled terminology


@dataclass(frozen=True)
class Term:
    """A CT term: its C-code, CDISC submission value and CDISC synonyms."""

    code: str
    value: str
    synonyms: tuple[str, ...] = ()


def _fold(text: str) -> str:
    return text.strip().casefold()


class Codelist:
    """One CT codelist: C-code, short name (e.g. 'SEX'), name (e.g. 'Sex'), extensibility, terms."""

    def __init__(self, code: str, short_name: str, name: str, extensible: bool, terms: list[Term]) -> None:
        self.code = code
        self.short_name = short_name
        self.name = name
        self.extensible = extensible
        self.terms = terms

    def __repr__(self) -> str:
        ext = "extensible" if self.extensible else "non-extensible"
        return f"<Codelist {self.code} {self.short_name} ({self.name}), {ext}, {len(self.terms)} terms>"

    def __len__(self) -> int:
        return len(self.terms)

    def __iter__(self):
        return iter(self.terms)

    @functools.cached_property
    def values(self) -> set[str]:
        """The submission values: what a conformant dataset may hold (beyond sponsor extensions)."""
        return {t.value for t in self.terms}

    @functools.cached_property
    def _by_value(self) -> dict[str, Term]:
        return {t.value: t for t in self.terms}

    @functools.cached_property
    def _by_code(self) -> dict[str, Term]:
        return {t.code: t for t in self.terms}

    @functools.cached_property
    def _folded(self) -> dict[str, str | None]:
        """casefolded value/synonym -> submission value, or None when two terms claim it."""
        index: dict[str, str | None] = {}
        for t in self.terms:
            for key in {_fold(t.value), *(_fold(s) for s in t.synonyms)}:
                if not key:
                    continue
                if key in index and index[key] != t.value:
                    index[key] = None
                else:
                    index[key] = t.value
        return index

    def lookup(self, raw: object) -> str | None:
        """Submission value for a raw collected value, or None when it cannot be decided.

        Why: raw data says 'female', 'Male ', 'UNK'; SDTM needs 'F', 'M', 'U'.  Order: the exact
        submission value; the whitespace-trimmed value; then a case-insensitive match on any
        term's submission value or CDISC synonym.  If that last step hits two different terms the
        answer is None rather than a guess (e.g. UNIT 'pa' is both 'Pa' (Pascal) and 'PA' (per
        year); LBTESTCD 'sap' is a synonym of both AMYLOIDP and SH2D1A).  Non-string input other
        than int (None, NaN, ...) gives None.
        """
        if isinstance(raw, bool) or not isinstance(raw, (str, int)):
            return None
        text = str(raw)
        for candidate in (text, text.strip()):
            if candidate in self._by_value:
                return candidate
        key = _fold(text)
        return self._folded.get(key) if key else None

    def term(self, value: str) -> Term | None:
        """The term whose submission value is exactly ``value``."""
        return self._by_value.get(value)

    def term_by_code(self, ccode: str) -> Term | None:
        """The term with C-code ``ccode`` in this codelist (a C-code may recur across codelists)."""
        return self._by_code.get(ccode.strip().upper())


class ControlledTerminology:
    """One CT package version (SDTM, ADaM or Define-XML), codelists addressed by C-code or short name."""

    def __init__(self, package: str, version: str, codelists: list[Codelist]) -> None:
        self.package = package
        self.version = version
        self._by_code = {c.code: c for c in codelists}
        self._by_short: dict[str, list[Codelist]] = {}
        for c in codelists:
            self._by_short.setdefault(c.short_name.upper(), []).append(c)

    def __repr__(self) -> str:
        return f"<ControlledTerminology {self.package} {self.version}: {len(self._by_code)} codelists>"

    def __len__(self) -> int:
        return len(self._by_code)

    def __iter__(self):
        return iter(self._by_code.values())

    def has(self, key: str) -> bool:
        """Whether ``key`` (C-code or short name) names exactly one codelist."""
        try:
            self.codelist(key)
        except KeyError:
            return False
        return True

    def __contains__(self, key: str) -> bool:
        return self.has(key)

    def codelist(self, key: str) -> Codelist:
        """The codelist with C-code ``key`` ('C66731') or short name ``key`` ('SEX'), any case.

        Short names were checked against the data: in the 2025-03-28 SDTM, ADaM and Define-XML
        packages every short name is unique (also case-insensitively) and none looks like a
        C-code, so either key is unambiguous.  Should a later package reuse a short name, the
        C-code still works and the short name raises :class:`AmbiguousCodelistError` (a KeyError)
        listing the candidates: there is no "retired" flag in the CT files to choose one safely.
        Unknown keys raise KeyError suggesting the closest short names.
        """
        k = key.strip().upper()
        found = self._by_code.get(k)
        if found is not None:
            return found
        candidates = self._by_short.get(k, [])
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            codes = ", ".join(f"{c.code} ({c.name})" for c in candidates)
            raise AmbiguousCodelistError(
                f"codelist short name {key!r} is ambiguous in {self.package} CT {self.version}: {codes}; "
                "use the C-code"
            )
        close = difflib.get_close_matches(k, self._by_short, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"no codelist {key!r} in {self.package} CT {self.version}{hint}")

    def paired_value(self, testcd_codelist_key: str, testcd_value: str, test_codelist_key: str) -> str | None:
        """The TEST name paired with a TESTCD value, e.g. LBTESTCD 'CRP' -> LBTEST 'C Reactive Protein'.

        Why: CDISC pairs --TESTCD/--TEST (and PARAMCD/PARAM-like) codelists through shared term
        C-codes, so --TEST can be derived from --TESTCD without a hand-kept table.
        ``testcd_value`` must be a submission value (normalise raw input with
        :meth:`Codelist.lookup` first).  None if the code or its counterpart does not exist.
        """
        term = self.codelist(testcd_codelist_key).term(testcd_value)
        if term is None:
            return None
        paired = self.codelist(test_codelist_key).term_by_code(term.code)
        return paired.value if paired is not None else None


_CT_FILE = re.compile(r"(?P<package>[a-z][a-z-]*?)-ct-(?P<version>\d{4}-\d{2}-\d{2})\.csv\Z")


def ct_versions(package: str = "sdtm") -> list[str]:
    """CT versions available for ``package`` ('sdtm', 'adam', 'define-xml'), oldest first."""
    ct = specs_dir() / "ct"
    if not ct.is_dir():
        return []
    return sorted(m["version"] for p in ct.iterdir()
                  if (m := _CT_FILE.match(p.name)) and m["package"] == package)


def load_ct(package: str = "sdtm", version: str | None = None) -> ControlledTerminology:
    """CT ``package`` ('sdtm', 'adam', 'define-xml') at ``version`` (YYYY-MM-DD; newest when None).

    The full SDTM CT (~1,150 codelists, ~44,000 terms) is read once with the csv module and
    cached (a fraction of a second); later calls return the same object.
    """
    versions = ct_versions(package)
    if version is None:
        if not versions:
            raise SpecsNotFoundError(f"no {package} CT in {specs_dir() / 'ct'}")
        version = versions[-1]
    elif version not in versions:
        raise SpecsNotFoundError(
            f"{package} CT {version} is not in {specs_dir() / 'ct'}; available: {', '.join(versions) or 'none'}"
        )
    return _load_ct(package, version)


@functools.lru_cache(maxsize=None)
def _load_ct(package: str, version: str) -> ControlledTerminology:
    path = specs_dir() / "ct" / f"{package}-ct-{version}.csv"
    codelists: dict[str, Codelist] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        i = {name: n for n, name in enumerate(header)}
        cc, cs, cn, ce = i["codelist_code"], i["codelist"], i["codelist_name"], i["extensible"]
        tc, tv, ts = i["code"], i["value"], i["synonyms"]
        for row in reader:
            cl = codelists.get(row[cc])
            if cl is None:
                cl = codelists[row[cc]] = Codelist(row[cc], row[cs], row[cn], row[ce] == "Y", [])
            if row[tc]:
                cl.terms.append(Term(row[tc], row[tv], _split(row[ts]) if row[ts] else ()))
    return ControlledTerminology(package, version, list(codelists.values()))
