"""ADaM: analysis datasets from SDTM (issue 4, in progress).

dates.py: --DTC → analysis dates/datetimes with imputation and DTF/TMF flags (admiral semantics);
ra_scores.py: rheumatoid-arthritis endpoints (SDAI, CDAI, DAS28, HAQ-DI, ACR, EULAR).
"""
