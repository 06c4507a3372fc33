"""sdtm_rA: raw clinical-trial records to CDISC SDTM and ADaM, with validation and XPT v5 output."""

__version__ = "0.1.0"
