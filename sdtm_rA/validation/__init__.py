"""Conformance validation of SDTM (and later ADaM) datasets: `sdtm-ra validate FOLDER`.

data.py reads a folder of datasets; model.py defines rules and findings; rules_*.py hold the rules,
each a small named function registered with its severity and CORE / Pinnacle 21 cross-references;
engine.py runs them; report.py writes JSON, CSV, XLSX and HTML reports.
"""
from .engine import validate_folder, ValidationResult  # noqa: F401
