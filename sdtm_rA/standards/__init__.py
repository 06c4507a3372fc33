"""The CDISC standards' metadata: SDTMIG, SDTM model, ADaMIG and CT, as generated under specs/."""
