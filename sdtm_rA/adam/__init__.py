"""ADaM: analysis datasets from SDTM (issue 4, in progress: building blocks, no `derive` command yet).

dates.py: --DTC → analysis dates/datetimes with imputation and DTF/TMF flags (admiral semantics);
subject.py: ADSL derivations (merges, treatment dates, durations, age groups, rule flags);
occurrence.py: ADAE derivations (TRTEMFL, first-occurrence flags, durations);
bds.py: BDS derivations (ABLFL, BASE, CHG, PCHG, windows, ANRIND/BNRIND, shift, computed parameters);
ra_scores.py: rheumatoid-arthritis endpoints (SDAI, CDAI, DAS28, HAQ-DI, ACR, EULAR).
"""
