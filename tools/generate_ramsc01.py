#!/usr/bin/env python3
"""Generate the SYNTHETIC raw EDC export of the bundled example study RAMSC01.

RAMSC01 is modelled on a phase I trial (Jamshidi et al., Regen Med 2024; IRCT20080728001031N29):
six patients with refractory rheumatoid arthritis, three IV infusions of allogeneic bone-marrow
clonal mesenchymal stromal cells (1 x 10^6 cells/kg) one month apart, 24 weeks of follow-up,
staggered (sentinel) enrolment. Every value below is invented; only the paper-level summary
(ACR20 in 4 at Week 16, SDAI/CDAI reduction in 3, pain VAS improved in 3 with 2 sustained,
IL-10 up and TNF-alpha/IL-17A down in the same 5, anti-CCP/RF not following the clinical course)
is reproduced. See /work/shared/domain/ra-reference.md sections 0, 1, 3 and 5.

The export is deliberately messy (BOM, Latin-1, semicolons and decimal commas, code twin columns,
a two-line header, an Excel workbook with a notes sheet, a wide form, unit and case variants,
partial dates, censored values, a duplicate row ...). Every planted feature is listed in the
README.md written next to the data.

Before anything is written the generator parses the bytes it is about to write, computes TJC28,
SJC28, HAQ-DI, SDAI, CDAI and ACR20 with its own small implementation of the published formulas
(CRP unit traps included) and asserts the paper summary, so the data cannot drift.

Deterministic: no clock, no unseeded randomness; re-running gives byte-identical files.

Usage:  python tools/generate_ramsc01.py [--out DIR]     (default: sdtm_rA/bundled/ramsc01/raw)
"""
from __future__ import annotations

import argparse
import csv
import io
import random
import re
import sys
import zipfile
from datetime import date, timedelta
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "sdtm_rA" / "bundled" / "ramsc01" / "raw"

STUDYID = "RAMSC01"
EXPORT_DATE = "30-JUN-2022"          # the (fixed) date the EDC export claims to have been run
EXPORT_ZIP_TIME = (2022, 6, 30, 0, 0, 0)
EXPORT_ISO = "2022-06-30T00:00:00Z"
NEWLINE = "\r\n"                      # every CSV is written with CRLF line ends (Windows EDC export)

MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]

# ---------------------------------------------------------------------------------------------
# 1. Schedule (reference section 3)
# ---------------------------------------------------------------------------------------------
#          key    raw VISIT label    VISITNUM  planned study day (VISITDY)
VISITS = [("SCR", "SCREENING",       "1",      -14),
          ("D1",  "DAY 1",           "2",      1),
          ("W1",  "WEEK 1",          "3",      8),
          ("W4",  "WEEK 4",          "4",      29),
          ("W8",  "WEEK 8",          "5",      57),
          ("W12", "WEEK 12",         "6",      85),
          ("W16", "WEEK 16",         "7",      113),
          ("W24", "WEEK 24",         "8",      169),
          ("U1",  "UNSCHEDULED 1",   "7.1",    None)]
VLABEL = {k: lab for k, lab, _, _ in VISITS}
VNUM = {k: n for k, _, n, _ in VISITS}
VPLAN = {k: d for k, _, _, d in VISITS}
VORDER = [k for k, _, _, _ in VISITS]
EFF = ("D1", "W4", "W8", "W12", "W16", "W24")       # efficacy visits (baseline = D1, pre-infusion)
INFUSION_VISITS = ("D1", "W4", "W8")

# ---------------------------------------------------------------------------------------------
# 2. Subjects (dm.csv / ic.csv). Day 1 = first infusion. Staggered enrolment: 001 -> +3 months ->
#    002 -> +2 months -> 003 -> +1 month -> 004, 005, 006.
# ---------------------------------------------------------------------------------------------
#  SUBJID SITE  Day 1 (1st infusion)  wt kg  BRTHDAT         AGE   AGEU     SEX       ETHNIC                     RACE       consent day  ICF version
SUBJECTS = [
    ("001", "101", date(2021, 4, 12), 64, "14-FEB-1975", "46", "Years", "Female", "Not reported",           "White",   -19, "1.0"),
    ("002", "101", date(2021, 7, 12), 71, "UN-JUN-1968", "53", "Years", "F",      "NOT HISPANIC OR LATINO", "Persian", -14, "2.0"),
    ("003", "102", date(2021, 9, 13), 77, "22-NOV-1979", "41", "Years", "female", "not reported",           "white",   -22, "2.0"),
    ("004", "102", date(2021, 10, 13), 58, "UN-UNK-1980", "41", "Years", "Male",   "Not Hispanic or Latino", "Iranian", -16, "2.0"),
    ("005", "101", date(2021, 10, 20), 62, "05-MAR-1987", "",   "",      "Female", "NOT REPORTED",           "Persian", -22, "2.0"),
    ("006", "102", date(2021, 10, 27), 69, "09-AUG-1990", "31", "Years", "F",      "not hispanic or latino", "White",   -12, "2.0"),
]
SUBJ = {s[0]: dict(zip(("subjid", "siteid", "day1", "weight", "brthdat", "age", "ageu", "sex",
                        "ethnic", "race", "consent_day", "icfver"), s)) for s in SUBJECTS}
SUBJIDS = [s[0] for s in SUBJECTS]
COUNTRY = "IRN"

# Actual study day of each attended visit (SVSTDAT = Day 1 + day - 1; negative days count back from Day 1).
#              SCR  D1 W1  W4  W8  W12  W16  W24   U1
VISIT_DAYS = {
    "001": dict(SCR=-16, D1=1, W1=8, W4=29, W8=57, W12=86, W16=113, W24=170),
    "002": dict(SCR=-13, D1=1, W1=8, W4=30, W8=57, W12=85, W16=114, W24=169),
    "003": dict(SCR=-20, D1=1, W1=9, W4=29, W8=66, W12=85, W16=113, W24=168),   # W8 postponed 9 days (URTI)
    "004": dict(SCR=-14, D1=1, W1=8, W4=29, W8=58, W12=84, W16=113, W24=171),
    "005": dict(SCR=-18, D1=1, W1=8, W4=28, W8=57, W12=85, W16=121, W24=169, U1=150),  # W16 out of window
    "006": dict(SCR=-11, D1=1, W1=8, W4=29, W8=57, W12=86, W16=112, W24=169),
}

# ---------------------------------------------------------------------------------------------
# 3. Efficacy inputs per subject and visit.
# ---------------------------------------------------------------------------------------------
# 28-joint counts written joint by joint to mk_joints.csv (SCR, D1, W4, W8, W12, W16, W24)
MK_VISITS = ("SCR",) + EFF
TJC = {"001": (15, 14, 11, 9, 7, 6, 5),
       "002": (11, 10, 10, 9, 9, 8, 6),        # W16: 10 -> 8 = exactly 20 % (inclusive boundary)
       "003": (8, 7, 7, 6, 5, 5, 4),
       "004": (12, 12, 10, 8, 7, 7, 5),        # W12: right knee NE (not counted)
       "005": (10, 11, 10, 9, 10, 12, 11),
       "006": (10, 10, 9, 9, 9, 9, 10)}
SJC = {"001": (9, 9, 7, 5, 4, 3, 3),
       "002": (8, 8, 8, 7, 6, 6, 4),
       "003": (5, 5, 5, 4, 4, 3, 3),
       "004": (8, 8, 7, 6, 5, 5, 4),
       "005": (7, 7, 6, 6, 7, 8, 7),
       "006": (6, 6, 6, 5, 5, 5, 6)}
MK_NE = {("004", "W12"): [("Knee", "Right")]}   # joint not evaluable: TENDER = SWOLLEN = "NE"

# Global assessments of disease activity, 0-100 mm (ga.csv, wide)   D1  W4  W8 W12 W16 W24
PTGA = {"001": (72, 55, 45, 38, 35, 30),
        "002": (65, 62, 55, 50, 48, 40),
        "003": (48, 47, 44, 41, 38, 40),
        "004": (70, 58, 50, 45, 42, 38),
        "005": (68, 62, 60, 64, 70, 66),
        "006": (60, 56, 55, 54, 52, 56)}
PHGA = {"001": (68, 52, 40, 32, 30, 25),
        "002": (60, 58, 50, 45, 45, 35),
        "003": (42, 40, 37, 35, 32, 30),
        "004": (65, 55, 48, 42, 40, 33),
        "005": (62, 58, 55, 60, 66, 60),
        "006": (55, 52, 50, 50, 48, 50)}

# Pain VAS (HAQ0146), mm; None = not collected (page missing)       D1  W4  W8   W12 W16 W24
PAIN = {"001": (75, 52, 45, 40, 38, 35),
        "002": (68, 64, 55, 50, 47, 45),
        "003": (52, 50, 45, 44, 42, 40),        # W8 written as 4.5 cm
        "004": (78, 55, 50, 48, 45, 44),
        "005": (70, 64, None, 66, 72, 68),      # W8 second HAQ page missing
        "006": (60, 58, None, 56, 55, 55)}      # W8 whole HAQ not done
PAIN_IN_CM = {("003", "W8")}

# HAQ-DI category scores (highest item score) before the aid/help adjustment, in the order
# Dressing, Arising, Eating, Walking, Hygiene, Reach, Grip, Activities; "-" = category absent,
# None = whole questionnaire NOT DONE.                  D1          W4          W8          W12         W16         W24
HAQ_CAT = {"001": ("22221222", "21211221", "11211111", "11111111", "11101110", "11101110"),
           "002": ("21222122", "21222122", "21212112", "2112-111", "11112111", "11111111"),
           "003": ("11211211", "11211211", "11111211", "11111111", "11101111", "11101111"),
           "004": ("22222222", "22122221", "12122121", "11111111", "11111211", "11111111"),
           "005": ("22212222", "22212222", "2221----", "22222222", "22222222", "22212222"),
           "006": ("12111211", "12111211", None,       "12111211", "12111211", "12111111")}
# Aids/devices and help-from-another-person boxes ticked ("Checked"); unticked boxes are not exported.
HAQ_AIDS = {("001", "D1"): ["HAQ0136"], ("001", "W4"): ["HAQ0136"], ("001", "W8"): ["HAQ0136"],   # jar opener
            ("002", "D1"): ["HAQ0134"], ("002", "W4"): ["HAQ0134"],                                # raised toilet seat
            ("004", "D1"): ["HAQ0110"], ("004", "W4"): ["HAQ0110"], ("004", "W8"): ["HAQ0110"],
            ("004", "W12"): ["HAQ0110"],                                                           # cane
            ("005", "D1"): ["HAQ0115", "HAQ0117", "HAQ0119"], ("005", "W4"): ["HAQ0115"],
            ("005", "W8"): ["HAQ0115"], ("005", "W12"): ["HAQ0115", "HAQ0119"],
            ("005", "W16"): ["HAQ0115", "HAQ0119"], ("005", "W24"): ["HAQ0115", "HAQ0119"]}
HAQ_OTHER_AID_SPEC = {("005", "D1"): ("HAQ0118", "Velcro shoe fasteners")}
HAQ_NOT_DONE = {("006", "W8"): "Questionnaire page missing from the patient booklet"}

# Labs. CRP in the site lab's own unit: site 101 mg/L, site 102 mg/dL. Values as the lab prints
# them (a "." decimal point here; site 102 writes a decimal comma).
#             SCR     D1     W4     W8     W12    W16    W24     U1
CRP = {"001": ("21.5", "18.4", "12.6", "9.1", "7.3", "6.2", "5.1"),
       "002": ("9.8",  "11.2", "12.0", "10.4", "8.9", "8.1", "9.0"),   # W24: mg/L read as mg/dL flips SDAI
       "003": ("1.1",  "0.9",  "0.8",  "0.9",  "0.7",  "0.6",  "<0.5"),
       "004": ("2.6",  "2.4",  "1.8",  "1.5",  "1.2",  "1.1",  "0.9"),
       "005": ("13.9", "15.3", "13.2", "12.1", "16.4", "22.0", "19.2", "30.5"),
       "006": ("0.9",  "0.8",  "0.7",  "0.7",  "0.8",  "0.8",  "0.8")}
ESR = {"001": ("46", "42", "35", "30", "26", "24", "22"),
       "002": ("33", "35", "36", "31", "29", "27", "25"),
       "003": ("32", "30", "28", "29", "25", "22", "18"),
       "004": ("50", "48", "40", "36", "33", "31", "28"),
       "005": ("38", "40", "37", "35", "41", "52", "47", "58"),
       "006": ("27", "28", "26", "26", "27", "27", "28")}
APR_VISITS = ("SCR",) + EFF + ("U1",)
#            SCR    D1     W12    W24
RF = {"001": ("82", "85", "92", "110"),         # rises in a responder
      "002": ("44", "45", "40", "38"),
      "003": ("118", "120", "150", "165"),      # rises in a responder
      "004": ("29", "30", "28", "32"),
      "005": ("62", "60", "55", "51"),          # falls in the flaring non-responder
      "006": ("16", "18", "12", "10")}
CCP = {"001": ("488", ">500", ">500", "472"),
       "002": ("205", "210", "240", "262"),      # rises in a responder
       "003": ("80", "85", "118", "140"),        # rises in a responder
       "004": ("330", "320", "301", "284"),
       "005": ("155", "150", "131", "122"),      # falls in the flaring non-responder
       "006": ("40", "45", "41", "38")}
SERO_VISITS = ("SCR", "D1", "W12", "W24")
#               D1     W12    W24   (pg/mL)
IL10 = {"001": ("4.8", "7.9", "9.6"), "002": ("5.5", "6.1", "8.2"), "003": ("3.9", "5.2", "6.0"),
        "004": ("6.2", "8.8", "10.4"), "005": ("5.1", "4.6", "3.8"), "006": ("4.4", "5.9", "6.7")}
TNF = {"001": ("38.5", "27.1", "21.4"), "002": ("29.8", "25.0", "22.6"), "003": ("33.2", "28.4", "24.9"),
       "004": ("41.0", "30.2", "26.5"), "005": ("27.4", "31.8", "36.2"), "006": ("24.6", "20.9", "18.3")}
IL17A = {"001": ("22.4", "16.8", "12.9"), "002": ("18.7", None, "13.5"), "003": ("25.1", "19.6", "17.2"),
         "004": ("30.3", "22.7", "18.0"), "005": ("16.2", "19.9", "24.4"), "006": ("20.5", "17.1", "15.8")}
#               D1     W12    W24   (% of CD4+ T cells)
TREG = {"001": ("3.1", "4.6", "5.2"), "002": ("3.8", "4.1", "4.9"), "003": ("2.9", "3.6", "4.0"),
        "004": ("3.4", "4.8", "5.5"), "005": ("4.0", "3.5", "3.2"), "006": ("3.2", "3.9", "4.3")}
TH17 = {"001": ("2.4", "1.7", "1.3"), "002": ("1.9", "1.6", "1.4"), "003": ("2.7", "2.2", "1.9"),
        "004": ("2.9", "2.0", "1.6"), "005": ("1.8", "2.3", "2.6"), "006": ("2.1", "1.8", "1.6")}
IMMUNO_VISITS = ("D1", "W12", "W24")

# Sample collection time (pre-infusion on infusion days); the unscheduled sample has no time.
LAB_TIME = {"001": "08:30", "002": "08:15", "003": "08:45", "004": "08:20", "005": "08:40", "006": "08:10"}
LAB_DATE_SHIFT = {("002", "W12"): 2}             # all W12 samples of 101-002 drawn 2 days after the visit

# ---------------------------------------------------------------------------------------------
# 4. What the data must reproduce (asserted before writing)
# ---------------------------------------------------------------------------------------------
EXPECT = {
    "acr20_w16": {"001", "002", "003", "004"},          # paper: ACR20 in 4 at week 16
    "sdai_cdai_fall_w24": {"001", "002", "004"},        # paper: SDAI and CDAI reduction in 3
    "vas_improved_w24": {"001", "002", "004"},          # paper: VAS improved in 3 ...
    "vas_sustained": {"001", "004"},                    # ... 2 with sustained relief
    "cytokine_responders": {"001", "002", "003", "004", "006"},  # IL-10 up, TNF-a and IL-17A down
}

# ---------------------------------------------------------------------------------------------
# 5. Exposure (ex.csv)
# ---------------------------------------------------------------------------------------------
EXTRT = "BM-cMSC"
#   (subject, infusion): (EXSTTIM, EXENTIM, EXLAT)
EX_TIMES = {("001", 1): ("10:05", "10:40", "Left"), ("001", 2): ("10:00", "10:35", "Left"),
            ("001", 3): ("10:10", "10:45", "Right"),
            ("002", 1): ("10:15", "10:50", "Right"), ("002", 2): ("10:00", "", "Left"),
            ("002", 3): ("10:05", "10:40", "Left"),
            ("003", 1): ("10:20", "10:55", "Left"), ("003", 2): ("0945", "10:20", "Left"),
            ("003", 3): ("10:00", "10:35", "Right"),
            ("004", 1): ("10:00", "10:35", "Left"), ("004", 2): ("10:10", "10:45", "Left"),
            ("004", 3): ("10:05", "10:40", "Left"),
            ("005", 1): ("10:30", "11:05", "Right"), ("005", 2): ("10:00", "10:35", "Left"),
            ("005", 3): ("10:15", "10:50", "Left"),
            ("006", 1): ("10:05", "10:55", "Right"), ("006", 2): ("10:00", "10:35", "Right"),
            ("006", 3): ("10:10", "10:45", "Left")}
EX_DOSU = {"101": "x10^6 cells/kg", "102": "10^6/kg"}
EX_ADJ = {("003", 3): "Infusion postponed 9 days (URTI)",
          ("006", 1): "Infusion paused 10 min (chills), restarted at half rate and completed"}
EX_TOTAL_OVERRIDE = {("004", 3): "5.8E7 cells"}
EX_VAMT_OVERRIDE = {("005", 3): ("100 ml", "")}

# ---------------------------------------------------------------------------------------------
# 6. Adverse events (ae.csv). Dates: study day (int) or a raw partial-date string.
# ---------------------------------------------------------------------------------------------
MEDDRA = {  # LLT name, LLT code, PT name, PT code, HLT, HLT code, HLGT, HLGT code, SOC, SOC code
    "fever": ("Fever", "", "Pyrexia", "10037660", "Febrile disorders", "", "Body temperature conditions", "",
              "General disorders and administration site conditions", "10018065"),
    "headache": ("Headache", "10019211", "Headache", "10019211", "Headaches NEC", "", "Headaches", "",
                 "Nervous system disorders", "10029205"),
    "isr": ("Infusion site reaction", "", "Infusion site reaction", "", "Infusion site reactions", "",
            "Administration site reactions", "",
            "General disorders and administration site conditions", "10018065"),
    "cold": ("Common cold", "", "Nasopharyngitis", "10028810", "Upper respiratory tract infections", "",
             "Infections - pathogen unspecified", "", "Infections and infestations", "10021881"),
    "insomnia": ("Insomnia", "10022437", "Insomnia", "10022437",
                 "Disturbances in initiating and maintaining sleep", "", "Sleep disorders and disturbances", "",
                 "Psychiatric disorders", "10037175"),
    "ra": ("Rheumatoid arthritis", "10039073", "Rheumatoid arthritis", "10039073", "Rheumatoid arthropathies", "",
           "Joint disorders", "", "Musculoskeletal and connective tissue disorders", "10028395"),
    "chills": ("Chills", "10008531", "Chills", "10008531", "Feelings and sensations NEC", "",
               "General system disorders NEC", "",
               "General disorders and administration site conditions", "10018065"),
}
AESEV_CODE = {"mild": "1", "moderate": "2", "severe": "3"}
AESER_CODE = {"y": "1", "yes": "1", "n": "0", "no": "0"}
AEREL_CODE = {"Related": "1", "Probably": "2", "Possibly": "3", "Unlikely": "4", "Not related": "5"}
AEACN_CODE = {"Dose not changed": "1", "Drug interrupted": "2", "Drug withdrawn": "3", "Not applicable": "9"}
AEOUT_CODE = {"Recovered": "1", "Recovering": "2", "Not recovered": "3", "Fatal": "5"}
#  #  subj   AESPID AETERM (verbatim)                             start   time     end    ongo SEV         GR   SER   REL            ACN                 OUT              MedDRA
AES = [
    (1, "001", "1", "Fever 38.2 \u00b0C evening of infusion",      1,      "20:30", 2,     "N", "Mild",     "1", "N",  "Probably",    "Dose not changed", "Recovered",     "fever"),
    (2, "001", "2", "headache",                                    29,     "14:00", 29,    "N", "mild",     "1", "No", "Possibly",    "Dose not changed", "Recovered",     "headache"),
    (3, "002", "1", "pain & redness at IV site (R antecubital)",   1,      "11:30", 3,     "N", "MILD",     "1", "N",  "Related",     "Dose not changed", "Recovered",     "isr"),
    (4, "003", "1", "common cold",                                 52,     "",      63,    "N", "moderate", "2", "N",  "Unlikely",    "Drug interrupted", "Recovered",     "cold"),
    (5, "004", "1", "insomnia",                                    "UN-OCT-2021", "", "UN-NOV-2021", "N", "Mild", "1", "N", "Unlikely", "Dose not changed", "Recovered", "insomnia"),
    (6, "005", "1", "Headache after infusion",                     28,     "15:00", 28,    "N", "mild",     "1", "No", "Possibly",    "Dose not changed", "Recovered",     "headache"),
    (7, "005", "2", "RA flare - worsening knee & wrist pain",      "UN-JAN-2022", "", "", "Y", "Moderate", "2", "N", "Not related", "Not applicable",  "Not recovered", "ra"),
    (8, "006", "1", "chills/shivering during infusion",            1,      "10:20", 1,     "N", "MILD",     "1", "N",  "Related",     "Drug interrupted", "Recovered",     "chills"),
    (9, "006", "2", "fever 38.0 C",                                1,      "19:45", 2,     "N", "Mild",     "1", "N",  "Probably",    "Dose not changed", "Recovered",     "fever"),
]

# ---------------------------------------------------------------------------------------------
# 7. Column lists (one CRF form per file)
# ---------------------------------------------------------------------------------------------
DM_COLS = ["STUDYID", "SITEID", "SUBJID", "BRTHDAT", "AGE", "AGEU", "SEX", "ETHNIC", "RACE", "COUNTRY",
           "WEIGHT_SCR_KG", "DTHDAT"]
IC_COLS = ["STUDYID", "SITEID", "SUBJID", "ICDAT", "ICFVER"]
MH_COLS = ["STUDYID", "SITEID", "SUBJID", "MHSPID", "MHCAT", "MHTERM", "MHSTDAT", "MHONGO"]

# Medical history (screening): the RA diagnosis date (for disease duration) and other conditions.
# Refractory RA: 5-13 years since diagnosis; two dates partial as sites write them.
MH = {
    "001": [("PRIMARY DIAGNOSIS", "Rheumatoid arthritis", "10-MAR-2012", "Y"),
            ("GENERAL MEDICAL HISTORY", "Iron deficiency anaemia", "UN-UNK-2018", "N")],
    "002": [("PRIMARY DIAGNOSIS", "Rheumatoid arthritis", "UN-SEP-2008", "Y"),
            ("GENERAL MEDICAL HISTORY", "Hypertension", "14-JAN-2015", "Y")],
    "003": [("PRIMARY DIAGNOSIS", "Rheumatoid arthritis", "22-JAN-2015", "Y")],
    "004": [("PRIMARY DIAGNOSIS", "Rheumatoid arthritis", "UN-UNK-2010", "Y"),
            ("GENERAL MEDICAL HISTORY", "Hypothyroidism", "05-MAY-2017", "Y")],
    "005": [("PRIMARY DIAGNOSIS", "Rheumatoid arthritis", "03-NOV-2016", "Y")],
    "006": [("PRIMARY DIAGNOSIS", "Rheumatoid arthritis", "18-JUN-2013", "Y")],
}
SV_COLS = ["STUDYID", "SITEID", "SUBJID", "VISITNUM", "VISIT", "VISITDY", "ACTUAL_STUDY_DAY", "SVSTDAT"]
EX_COLS = ["STUDYID", "SITEID", "SUBJID", "VISIT", "EXREFID_LABEL", "EXTRT", "EXSTDAT", "EXSTTIM", "EXENDAT",
           "EXENTIM", "EXDOSE", "EXDOSU", "TOTAL_CELLS_X10E6", "EXDOSFRM", "EXROUTE", "EXLOC", "EXLAT", "EXVAMT",
           "EXVAMTU", "EXADJ", "EXLOT"]
AE_COLS = ["STUDYID", "SITEID", "SUBJID", "AEYN", "AESPID", "AETERM", "AESTDAT", "AESTTIM", "AEENDAT", "AEONGO",
           "AESEV", "AESEV - Code", "AETOXGR", "AESER", "AESER - Code", "AEREL", "AEREL - Code",
           "AEACN", "AEACN - Code", "AEOUT", "AEOUT - Code",
           "AELLT", "AELLTCD", "AEDECOD", "AEPTCD", "AEHLT", "AEHLTCD", "AEHLGT", "AEHLGTCD",
           "AEBODSYS", "AEBDSYCD", "AESOC", "AESOCCD"]
LB_COLS = ["STUDYID", "SITEID", "SUBJID", "VISIT", "LBDAT", "LBTIM", "LBCAT", "LBNAM", "LBSPEC", "LBTEST",
           "LBORRES", "LBORRESU", "LBORNRLO", "LBORNRHI", "LBSTAT", "LBREASND"]
QS_COLS = ["STUDYID", "SITEID", "SUBJID", "VISIT", "QSDAT", "QSCAT", "ITEMCODE", "QSTEST", "QSORRES", "QSORRESU",
           "QSSTAT", "QSREASND"]
GA_COLS = ["STUDYID", "SITEID", "SUBJID", "VISIT", "GADAT", "PTGA_MM", "PHGA_MM"]
MK_COLS = ["STUDYID", "SITEID", "SUBJID", "VISIT", "MKDAT", "JOINT", "SIDE", "TENDER", "SWOLLEN"]
MK_LABELS = ["Study Identifier", "Site Identifier", "Subject Identifier", "Visit Name", "Date of Assessment",
             "Joint", "Side", "Tender?", "Swollen?"]

# Lab test catalogue: key -> LBCAT, LBSPEC, (test name, unit, low, high) at site 101 and at site 102
LAB_TESTS = {
    "CRP":   ("CHEMISTRY", "SERUM", ("CRP", "mg/L", "0", "5"), ("C-reactive protein (CRP)", "mg/dL", "0", "0.5")),
    "ESR":   ("HEMATOLOGY", "WHOLE BLOOD", ("ESR", "mm/h", "0", "20"), ("ESR", "mm/hr", "0", "20")),
    "RF":    ("SEROLOGY", "SERUM", ("RF", "IU/mL", "0", "14"), ("RF", "IU/mL", "0", "14")),
    "CCP":   ("SEROLOGY", "SERUM", ("Anti-CCP", "U/mL", "0", "17"), ("Anti-CCP", "U/mL", "0", "17")),
    "IL10":  ("CYTOKINES", "SERUM", ("IL-10", "pg/mL", "", ""), ("IL-10", "pg/mL", "", "")),
    "IL17A": ("CYTOKINES", "SERUM", ("IL-17A", "pg/mL", "", ""), ("IL-17A", "pg/mL", "", "")),
    "TNF":   ("CYTOKINES", "SERUM", ("TNF-alpha", "pg/mL", "", ""), ("TNF-\u03b1", "pg/mL", "", "")),
    "TREG":  ("FLOW CYTOMETRY", "WHOLE BLOOD", ("Treg (CD4+CD25+FOXP3+) % of CD4+", "%", "", ""),
              ("Treg (CD4+CD25+FOXP3+) % of CD4+", "%", "", "")),
    "TH17":  ("FLOW CYTOMETRY", "WHOLE BLOOD", ("Th17 (CD4+IL-17A+) % of CD4+", "%", "", ""),
              ("Th17 (CD4+IL-17A+) % of CD4+", "%", "", "")),
}
LAB_NAME = {"101": "Shariati Hospital Laboratory", "102": "Imam Khomeini Hospital Laboratory"}
RESEARCH_LAB = "Royan Institute Immunology Laboratory"     # cytokines and flow cytometry
LAB_ND = {("002", "W12", "IL17A"): "Sample hemolyzed"}
LAB_DUPLICATE = {("001", "W4", "CRP")}

# HAQ-DI with pain VAS (HAQ01 codes), CRF wording
HAQ_CATEGORIES = [  # name, items, aid/help boxes that raise the category to 2
    ("Dressing & grooming", ["HAQ0101", "HAQ0102"], ["HAQ0114", "HAQ0119"]),
    ("Arising", ["HAQ0103", "HAQ0104"], ["HAQ0116", "HAQ0120"]),
    ("Eating", ["HAQ0105", "HAQ0106", "HAQ0107"], ["HAQ0115", "HAQ0121"]),
    ("Walking", ["HAQ0108", "HAQ0109"], ["HAQ0110", "HAQ0111", "HAQ0112", "HAQ0113", "HAQ0122"]),
    ("Hygiene", ["HAQ0123", "HAQ0124", "HAQ0125"], ["HAQ0134", "HAQ0135", "HAQ0137", "HAQ0139", "HAQ0142"]),
    ("Reach", ["HAQ0126", "HAQ0127"], ["HAQ0138", "HAQ0143"]),
    ("Grip", ["HAQ0128", "HAQ0129", "HAQ0130"], ["HAQ0136", "HAQ0144"]),
    ("Activities", ["HAQ0131", "HAQ0132", "HAQ0133"], ["HAQ0145"]),
]
HAQ_TEXT = {
    "HAQ0101": "Are you able to dress yourself, including tying shoelaces and doing buttons?",
    "HAQ0102": "Are you able to shampoo your hair?",
    "HAQ0103": "Are you able to stand up from a straight chair?",
    "HAQ0104": "Are you able to get in and out of bed?",
    "HAQ0105": "Are you able to cut your meat?",
    "HAQ0106": "Are you able to lift a full cup or glass to your mouth?",
    "HAQ0107": "Are you able to open a new milk carton?",
    "HAQ0108": "Are you able to walk outdoors on flat ground?",
    "HAQ0109": "Are you able to climb up five steps?",
    "HAQ0110": "Aids or devices you usually use: Cane",
    "HAQ0111": "Aids or devices you usually use: Walker",
    "HAQ0112": "Aids or devices you usually use: Crutches",
    "HAQ0113": "Aids or devices you usually use: Wheelchair",
    "HAQ0114": "Aids or devices you usually use: Devices used for dressing (button hook, zipper pull, long-handled shoe horn, etc.)",
    "HAQ0115": "Aids or devices you usually use: Built up or special utensils",
    "HAQ0116": "Aids or devices you usually use: Special or built up chair",
    "HAQ0117": "Aids or devices you usually use: Other (dressing, arising, eating, walking)",
    "HAQ0118": "Other aid or device (dressing, arising, eating, walking), specify",
    "HAQ0119": "Help from another person: Dressing and grooming",
    "HAQ0120": "Help from another person: Arising",
    "HAQ0121": "Help from another person: Eating",
    "HAQ0122": "Help from another person: Walking",
    "HAQ0123": "Are you able to wash and dry your body?",
    "HAQ0124": "Are you able to take a tub bath?",
    "HAQ0125": "Are you able to get on and off the toilet?",
    "HAQ0126": "Are you able to reach and get down a 5-pound object (such as a bag of sugar) from just above your head?",
    "HAQ0127": "Are you able to bend down to pick up clothing from the floor?",
    "HAQ0128": "Are you able to open car doors?",
    "HAQ0129": "Are you able to open jars which have been previously opened?",
    "HAQ0130": "Are you able to turn faucets on and off?",
    "HAQ0131": "Are you able to run errands and shop?",
    "HAQ0132": "Are you able to get in and out of a car?",
    "HAQ0133": "Are you able to do chores such as vacuuming or yardwork?",
    "HAQ0134": "Aids or devices you usually use: Raised toilet seat",
    "HAQ0135": "Aids or devices you usually use: Bathtub seat",
    "HAQ0136": "Aids or devices you usually use: Jar opener (for jars previously opened)",
    "HAQ0137": "Aids or devices you usually use: Bathtub bar",
    "HAQ0138": "Aids or devices you usually use: Long-handled appliances for reach",
    "HAQ0139": "Aids or devices you usually use: Long-handled appliances in bathroom",
    "HAQ0140": "Aids or devices you usually use: Other (hygiene, reach, gripping, errands and chores)",
    "HAQ0141": "Other aid or device (hygiene, reach, gripping, errands and chores), specify",
    "HAQ0142": "Help from another person: Hygiene",
    "HAQ0143": "Help from another person: Reach",
    "HAQ0144": "Help from another person: Gripping and opening things",
    "HAQ0145": "Help from another person: Errands and chores",
    "HAQ0146": "How much pain have you had because of your illness in the past week? (0 = no pain, 100 = severe pain)",
}
HAQ_RESPONSES = ["Without ANY difficulty", "With SOME difficulty", "With MUCH difficulty", "UNABLE to do"]
HAQ_QSCAT = "HAQ-DI with pain VAS"
HAQ_ALL_TEXT = "HAQ-DI questionnaire (all items)"
QS_NOTES = [
    "RAMSC01 - HAQ-DI with pain VAS - EDC export",
    "Synthetic data for the sdtm_rA example study; generated by tools/generate_ramsc01.py.",
    f"Export date: {EXPORT_DATE}",
    "The data are on sheet 'HAQ': one row per answered item (long form).",
    "Difficulty items: Without ANY difficulty / With SOME difficulty / With MUCH difficulty / UNABLE to do.",
    "Aid/device and help boxes: only ticked boxes are exported (value 'Checked').",
    "HAQ0146 pain VAS: 0-100 mm line; QSORRESU gives the unit the site wrote.",
    "This sheet is documentation only; do not load it.",
]

# 28 joints in CRF order
JOINTS = ["Shoulder", "Elbow", "Wrist", "MCP 1", "MCP 2", "MCP 3", "MCP 4", "MCP 5",
          "PIP 1", "PIP 2", "PIP 3", "PIP 4", "PIP 5", "Knee"]
SIDES = ["Right", "Left"]
SEED = 20210412


# =============================================================================================
# Helpers
# =============================================================================================
def fmt_date(d: date) -> str:
    return f"{d.day:02d}-{MONTHS[d.month - 1]}-{d.year}"


def study_date(subjid: str, day: int) -> date:
    d1 = SUBJ[subjid]["day1"]
    return d1 + timedelta(days=day - 1 if day > 0 else day)


def visit_date(subjid: str, vkey: str) -> date:
    return study_date(subjid, VISIT_DAYS[subjid][vkey])


def ident(subjid: str) -> dict:
    return {"STUDYID": STUDYID, "SITEID": SUBJ[subjid]["siteid"], "SUBJID": subjid}


def joint_priority(subjid: str) -> list:
    """Per-subject order in which joints become tender/swollen (deterministic, seeded)."""
    hands = [(j, s) for j in ["Wrist", "MCP 2", "MCP 3", "PIP 2", "PIP 3", "MCP 1", "MCP 4", "PIP 4"]
             for s in SIDES]
    rest = [(j, s) for j in ["Knee", "Elbow", "Shoulder", "MCP 5", "PIP 1", "PIP 5"] for s in SIDES]
    rng = random.Random(SEED + int(subjid))
    rng.shuffle(hands)
    rng.shuffle(rest)
    return hands + rest


def csv_bytes(header, rows, *, delimiter=",", encoding="utf-8", bom=False, label_row=None) -> bytes:
    buf = io.StringIO(newline="")
    w = csv.writer(buf, delimiter=delimiter, lineterminator=NEWLINE, quoting=csv.QUOTE_MINIMAL)
    if label_row:
        w.writerow(label_row)
    w.writerow(header)
    for r in rows:
        extra = set(r) - set(header)
        assert not extra, f"row has columns outside the header: {extra}"
        w.writerow(["" if r.get(h) is None else r.get(h) for h in header])
    return (("\ufeff" if bom else "") + buf.getvalue()).encode(encoding)


def xlsx_bytes(header, rows, notes) -> bytes:
    from openpyxl import Workbook
    wb = Workbook()
    ws = wb.active
    ws.title = "HAQ"
    ws.append(header)
    for r in rows:
        ws.append([r.get(h) if r.get(h) != "" else None for h in header])
    ws.freeze_panes = "A2"
    notes_ws = wb.create_sheet("Notes")
    for line in notes:
        notes_ws.append([line])
    wb.properties.creator = "RAMSC01 EDC export"
    wb.properties.lastModifiedBy = "RAMSC01 EDC export"
    raw = io.BytesIO()
    wb.save(raw)
    # openpyxl stamps the current time into docProps/core.xml and the zip entries: normalise both.
    src = zipfile.ZipFile(io.BytesIO(raw.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                for tag in (b"dcterms:created", b"dcterms:modified"):
                    data = re.sub(rb"(<" + tag + rb"[^>]*>)[^<]*(</" + tag + rb">)",
                                  rb"\g<1>" + EXPORT_ISO.encode() + rb"\g<2>", data)
            zi = zipfile.ZipInfo(info.filename, date_time=EXPORT_ZIP_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            z.writestr(zi, data)
    return out.getvalue()


# =============================================================================================
# Builders: one list of row dicts per file
# =============================================================================================
def build_dm():
    rows = []
    for s in SUBJIDS:
        x = SUBJ[s]
        rows.append({**ident(s), "BRTHDAT": x["brthdat"], "AGE": x["age"], "AGEU": x["ageu"], "SEX": x["sex"],
                     "ETHNIC": x["ethnic"], "RACE": x["race"], "COUNTRY": COUNTRY,
                     "WEIGHT_SCR_KG": str(x["weight"]), "DTHDAT": ""})
    return rows


def build_ic():
    return [{**ident(s), "ICDAT": fmt_date(study_date(s, SUBJ[s]["consent_day"])), "ICFVER": SUBJ[s]["icfver"]}
            for s in SUBJIDS]


def build_mh():
    return [{**ident(s), "MHSPID": str(i + 1), "MHCAT": cat, "MHTERM": term, "MHSTDAT": start, "MHONGO": ongo}
            for s in SUBJIDS for i, (cat, term, start, ongo) in enumerate(MH[s])]


def build_sv():
    rows = []
    for s in SUBJIDS:
        for v in VORDER:
            if v not in VISIT_DAYS[s]:
                continue
            rows.append({**ident(s), "VISITNUM": VNUM[v], "VISIT": VLABEL[v],
                         "VISITDY": "" if VPLAN[v] is None else str(VPLAN[v]),
                         "ACTUAL_STUDY_DAY": str(VISIT_DAYS[s][v]), "SVSTDAT": fmt_date(visit_date(s, v))})
    return rows


def build_ex():
    rows = []
    for s in SUBJIDS:
        site = SUBJ[s]["siteid"]
        for n, v in enumerate(INFUSION_VISITS, start=1):
            d = visit_date(s, v)
            st, en, lat = EX_TIMES[(s, n)]
            vamt, vamtu = EX_VAMT_OVERRIDE.get((s, n), ("100", "mL"))
            rows.append({**ident(s), "VISIT": VLABEL[v], "EXREFID_LABEL": f"INFUSION {n}", "EXTRT": EXTRT,
                         "EXSTDAT": fmt_date(d), "EXSTTIM": st, "EXENDAT": fmt_date(d), "EXENTIM": en,
                         "EXDOSE": "1", "EXDOSU": EX_DOSU[site],
                         "TOTAL_CELLS_X10E6": EX_TOTAL_OVERRIDE.get((s, n), str(SUBJ[s]["weight"])),
                         "EXDOSFRM": "INJECTION, SUSPENSION", "EXROUTE": "Intravenous",
                         "EXLOC": "Antecubital fossa", "EXLAT": lat, "EXVAMT": vamt, "EXVAMTU": vamtu,
                         "EXADJ": EX_ADJ.get((s, n), ""), "EXLOT": f"BMC-{d:%y%m}-{int(s):02d}{n}"})
    return rows


def _ae_date(s, value):
    return value if isinstance(value, str) else fmt_date(study_date(s, value))


def build_ae():
    rows = []
    for (_, s, spid, term, st, tim, en, ongo, sev, gr, ser, rel, acn, out, code) in AES:
        m = MEDDRA[code]
        rows.append({**ident(s), "AEYN": "Y", "AESPID": spid, "AETERM": term,
                     "AESTDAT": _ae_date(s, st), "AESTTIM": tim, "AEENDAT": _ae_date(s, en), "AEONGO": ongo,
                     "AESEV": sev, "AESEV - Code": AESEV_CODE[sev.lower()], "AETOXGR": gr,
                     "AESER": ser, "AESER - Code": AESER_CODE[ser.lower()],
                     "AEREL": rel, "AEREL - Code": AEREL_CODE[rel],
                     "AEACN": acn, "AEACN - Code": AEACN_CODE[acn],
                     "AEOUT": out, "AEOUT - Code": AEOUT_CODE[out],
                     "AELLT": m[0], "AELLTCD": m[1], "AEDECOD": m[2], "AEPTCD": m[3], "AEHLT": m[4],
                     "AEHLTCD": m[5], "AEHLGT": m[6], "AEHLGTCD": m[7], "AEBODSYS": m[8], "AEBDSYCD": m[9],
                     "AESOC": m[8], "AESOCCD": m[9]})
    return rows


def _lab_series(key, s):
    if key in ("CRP", "ESR"):
        return dict(zip(APR_VISITS, (CRP if key == "CRP" else ESR)[s]))
    if key in ("RF", "CCP"):
        return dict(zip(SERO_VISITS, (RF if key == "RF" else CCP)[s]))
    table = {"IL10": IL10, "IL17A": IL17A, "TNF": TNF, "TREG": TREG, "TH17": TH17}[key]
    return dict(zip(IMMUNO_VISITS, table[s]))


def build_lb(site):
    rows = []
    for s in SUBJIDS:
        if SUBJ[s]["siteid"] != site:
            continue
        for v in VORDER:
            if v not in VISIT_DAYS[s]:
                continue
            ldate = fmt_date(study_date(s, VISIT_DAYS[s][v] + LAB_DATE_SHIFT.get((s, v), 0)))
            for key, (cat, spec, t101, t102) in LAB_TESTS.items():
                series = _lab_series(key, s)
                if v not in series:
                    continue
                name, unit, lo, hi = t101 if site == "101" else t102
                value = series[v]
                nd = LAB_ND.get((s, v, key))
                assert (value is None) == (nd is not None), (s, v, key)
                if site == "102":      # this lab writes decimal commas
                    value, lo, hi = (None if x is None else x.replace(".", ",") for x in (value, lo, hi))
                row = {**ident(s), "VISIT": VLABEL[v], "LBDAT": ldate, "LBTIM": "" if v == "U1" else LAB_TIME[s],
                       "LBCAT": cat, "LBNAM": RESEARCH_LAB if cat in ("CYTOKINES", "FLOW CYTOMETRY") else LAB_NAME[site],
                       "LBSPEC": spec, "LBTEST": name, "LBORRES": value or "", "LBORRESU": unit,
                       "LBORNRLO": lo, "LBORNRHI": hi,
                       "LBSTAT": "NOT DONE" if nd else "", "LBREASND": nd or ""}
                rows.append(row)
                if (s, v, key) in LAB_DUPLICATE:
                    rows.append(dict(row))
    return rows


def haq_item_scores(subjid, vkey, cats):
    """Item scores from category scores: the first item of a category carries the category score,
    the others the same or one less (deterministic pattern)."""
    scores = {}
    vi = EFF.index(vkey)
    for (name, items, _), c in zip(HAQ_CATEGORIES, cats):
        if c == "-":
            continue
        c = int(c)
        for j, item in enumerate(items):
            scores[item] = c if j == 0 else max(0, c - ((int(subjid) + vi + j) % 2))
    return scores


def build_qs():
    rows = []
    for s in SUBJIDS:
        for i, v in enumerate(EFF):
            base = {**ident(s), "VISIT": VLABEL[v], "QSDAT": fmt_date(visit_date(s, v)), "QSCAT": HAQ_QSCAT}
            cats = HAQ_CAT[s][i]
            if cats is None:
                rows.append({**base, "ITEMCODE": "HAQALL", "QSTEST": HAQ_ALL_TEXT, "QSORRES": "",
                             "QSORRESU": "", "QSSTAT": "NOT DONE", "QSREASND": HAQ_NOT_DONE[(s, v)]})
                continue
            values = {item: HAQ_RESPONSES[sc] for item, sc in haq_item_scores(s, v, cats).items()}
            for aid in HAQ_AIDS.get((s, v), []):
                values[aid] = "Checked"
            if (s, v) in HAQ_OTHER_AID_SPEC:
                code, text = HAQ_OTHER_AID_SPEC[(s, v)]
                values[code] = text
            units = {}
            if PAIN[s][i] is not None:
                if (s, v) in PAIN_IN_CM:
                    values["HAQ0146"], units["HAQ0146"] = PAIN[s][i] / 10, "cm"
                else:
                    values["HAQ0146"], units["HAQ0146"] = PAIN[s][i], "mm"
            for item in sorted(values):
                rows.append({**base, "ITEMCODE": item, "QSTEST": HAQ_TEXT[item], "QSORRES": values[item],
                             "QSORRESU": units.get(item, ""), "QSSTAT": "", "QSREASND": ""})
    return rows


def build_ga():
    rows = []
    for s in SUBJIDS:
        for i, v in enumerate(EFF):
            rows.append({**ident(s), "VISIT": VLABEL[v], "GADAT": visit_date(s, v).strftime("%d/%m/%Y"),
                         "PTGA_MM": str(PTGA[s][i]), "PHGA_MM": str(PHGA[s][i])})
    return rows


def build_mk():
    rows = []
    for s in SUBJIDS:
        prio = joint_priority(s)
        for i, v in enumerate(MK_VISITS):
            ne = set(MK_NE.get((s, v), []))
            usable = [j for j in prio if j not in ne]
            tender = set(usable[:TJC[s][i]])
            swollen = set(usable[1:SJC[s][i] + 1])
            for joint in JOINTS:
                for side in SIDES:
                    js = (joint, side)
                    t = "NE" if js in ne else ("Y" if js in tender else "N")
                    w = "NE" if js in ne else ("Y" if js in swollen else "N")
                    rows.append({**ident(s), "VISIT": VLABEL[v], "MKDAT": fmt_date(visit_date(s, v)),
                                 "JOINT": joint, "SIDE": side, "TENDER": t, "SWOLLEN": w})
    return rows


def build_files() -> dict:
    return {
        "dm.csv": csv_bytes(DM_COLS, build_dm(), bom=True),
        "ic.csv": csv_bytes(IC_COLS, build_ic()),
        "mh.csv": csv_bytes(MH_COLS, build_mh()),
        "sv.csv": csv_bytes(SV_COLS, build_sv()),
        "ex.csv": csv_bytes(EX_COLS, build_ex()),
        "ae.csv": csv_bytes(AE_COLS, build_ae(), encoding="latin-1"),
        "lb_101.csv": csv_bytes(LB_COLS, build_lb("101")),
        "lb_102.csv": csv_bytes(LB_COLS, build_lb("102"), delimiter=";"),
        "qs_haq.xlsx": xlsx_bytes(QS_COLS, build_qs(), QS_NOTES),
        "ga.csv": csv_bytes(GA_COLS, build_ga()),
        "mk_joints.csv": csv_bytes(MK_COLS, build_mk(), label_row=MK_LABELS),
    }


# =============================================================================================
# Verification: re-read the bytes about to be written and recompute the paper summary
# =============================================================================================
def read_csv(data: bytes, *, encoding="utf-8", delimiter=",", skip_lines=0):
    text = data.decode(encoding)
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split(NEWLINE)[skip_lines:]
    return list(csv.DictReader(io.StringIO(NEWLINE.join(lines), newline=""), delimiter=delimiter))


def read_haq(data: bytes):
    from openpyxl import load_workbook
    wb = load_workbook(io.BytesIO(data), read_only=True)
    assert wb.sheetnames == ["HAQ", "Notes"], wb.sheetnames
    it = wb["HAQ"].iter_rows(values_only=True)
    header = list(next(it))
    return [dict(zip(header, r)) for r in it]


def num(text: str) -> Fraction:
    return Fraction(text.strip().replace(",", "."))


def category(value: Fraction, cuts) -> int:
    """0 remission, 1 low, 2 moderate, 3 high; cuts = upper bounds (inclusive) of the first three."""
    for i, c in enumerate(cuts):
        if value <= c:
            return i
    return len(cuts)


SDAI_CUTS = (Fraction("3.3"), Fraction(11), Fraction(26))
CDAI_CUTS = (Fraction("2.8"), Fraction(10), Fraction(22))
CAT_NAMES = ["REMISSION", "LOW", "MODERATE", "HIGH"]


def improved(base, post, pct=Fraction(20)) -> bool:
    """ACR component improvement, inclusive, exact arithmetic; baseline 0 cannot improve."""
    if base is None or post is None or base == 0:
        return False
    return (base - post) * 100 >= pct * base


def acr_response(b: dict, p: dict, pct=Fraction(20)):
    if any(x.get(k) is None for x in (b, p) for k in ("TJC", "SJC")):
        return None
    if not (improved(b["TJC"], p["TJC"], pct) and improved(b["SJC"], p["SJC"], pct)):
        return False
    core = ("PAIN", "PTGA", "PHGA", "HAQDI", "CRP")
    avail = [k for k in core if b.get(k) is not None and p.get(k) is not None]
    if len(avail) < 3:
        return None
    return sum(improved(b[k], p[k], pct) for k in avail) >= 3


def haq_di(items: dict):
    """Aids-adjusted HAQ-DI; None when fewer than 6 categories are answered."""
    scores = []
    for _, cat_items, adjusters in HAQ_CATEGORIES:
        answered = [HAQ_RESPONSES.index(items[i]) for i in cat_items if items.get(i) in HAQ_RESPONSES]
        if not answered:
            continue
        sc = max(answered)
        if any(items.get(a) == "Checked" for a in adjusters):
            sc = max(sc, 2)
        scores.append(sc)
    if len(scores) < 6:
        return None
    return Fraction(sum(scores), len(scores))


def verify(files: dict) -> dict:
    label_to_key = {lab: k for k, lab, _, _ in VISITS}
    # --- dm / ic / sv / ex / ae -------------------------------------------------------------
    assert files["dm.csv"].startswith(b"\xef\xbb\xbf")
    dm = read_csv(files["dm.csv"])
    assert [r["SUBJID"] for r in dm] == SUBJIDS and all(r["DTHDAT"] == "" for r in dm), "nobody dies"
    ic = {r["SUBJID"]: r for r in read_csv(files["ic.csv"])}
    ex = read_csv(files["ex.csv"])
    first_dose = {}
    for r in ex:
        if r["EXREFID_LABEL"] == "INFUSION 1":
            first_dose[r["SUBJID"]] = r["EXSTDAT"]
    assert first_dose["001"].endswith("-APR-2021")
    assert first_dose["004"].endswith("-OCT-2021"), "insomnia UN-OCT-2021 is in 004's first-infusion month"
    # age of 101-005 at consent (AGE left blank) must be 34
    b, c = date(1987, 3, 5), study_date("005", SUBJ["005"]["consent_day"])
    assert c.year - b.year - ((c.month, c.day) < (b.month, b.day)) == 34
    assert fmt_date(c) == ic["005"]["ICDAT"]
    for s in SUBJIDS:   # consent before screening, screening in -28..-1
        assert SUBJ[s]["consent_day"] <= VISIT_DAYS[s]["SCR"] and -28 <= VISIT_DAYS[s]["SCR"] <= -1
    # staggered enrolment
    d1 = {s: SUBJ[s]["day1"] for s in SUBJIDS}
    months = lambda a, b: (b.year - a.year) * 12 + b.month - a.month  # noqa: E731
    assert months(d1["001"], d1["002"]) == 3 and months(d1["002"], d1["003"]) == 2
    assert months(d1["003"], d1["004"]) == 1 and d1["004"] <= d1["005"] <= d1["006"]
    ae = read_csv(files["ae.csv"], encoding="latin-1")
    assert all(r["AESER"] in ("N", "No") for r in ae), "no SAE"
    assert any(r["AESTDAT"] == "UN-JAN-2022" and r["SUBJID"] == "005" for r in ae)
    assert date(2022, 1, 1) > d1["005"]

    # --- efficacy inputs, parsed back from the bytes ---------------------------------------
    data = {s: {v: {} for v in VORDER} for s in SUBJIDS}
    # joints (skip the label line)
    mk = read_csv(files["mk_joints.csv"], skip_lines=1)
    for r in mk:
        d = data[r["SUBJID"]][label_to_key[r["VISIT"]]]
        d["TJC"] = d.get("TJC", 0) + (r["TENDER"] == "Y")
        d["SJC"] = d.get("SJC", 0) + (r["SWOLLEN"] == "Y")
    # globals (wide)
    for r in read_csv(files["ga.csv"]):
        d = data[r["SUBJID"]][label_to_key[r["VISIT"]]]
        d["PTGA"], d["PHGA"] = num(r["PTGA_MM"]), num(r["PHGA_MM"])
    # labs: de-duplicate exact duplicate rows, CRP in mg/dL, "<x" -> x/2 (LLOQ/2)
    censored = {}
    for fname, delim in (("lb_101.csv", ","), ("lb_102.csv", ";")):
        seen = set()
        for r in read_csv(files[fname], delimiter=delim):
            key = tuple(r.values())
            if key in seen:
                continue
            seen.add(key)
            test = r["LBTEST"]
            code = {"CRP": "CRP", "C-reactive protein (CRP)": "CRP", "ESR": "ESR", "RF": "RF", "Anti-CCP": "CCP",
                    "IL-10": "IL10", "IL-17A": "IL17A", "TNF-alpha": "TNF", "TNF-\u03b1": "TNF"}.get(test)
            if code is None or r["LBSTAT"] == "NOT DONE":
                continue
            d = data[r["SUBJID"]][label_to_key[r["VISIT"]]]
            assert code not in d, ("duplicate result", r)
            raw = r["LBORRES"].strip()
            cmp = raw[0] if raw[0] in "<>" else ""
            val = num(raw.lstrip("<>"))
            if code == "CRP":
                unit = r["LBORRESU"]
                d["CRP_AS_WRITTEN"] = val / 2 if cmp == "<" else val     # the unit trap, for the check below
                val = val / 10 if unit == "mg/L" else val
                assert unit in ("mg/L", "mg/dL")
            if cmp:
                censored[(r["SUBJID"], label_to_key[r["VISIT"]], code)] = (cmp, val)
                val = val / 2 if cmp == "<" else val
            d[code] = val
    # HAQ: group items, pain in mm
    items = {}
    for r in read_haq(files["qs_haq.xlsx"]):
        k = (r["SUBJID"], label_to_key[r["VISIT"]])
        items.setdefault(k, {})
        if r["ITEMCODE"] == "HAQ0146":
            v = Fraction(str(r["QSORRES"]))
            items[k]["PAIN"] = v * 10 if r["QSORRESU"] == "cm" else v
        else:
            items[k][r["ITEMCODE"]] = r["QSORRES"]
    for (s, v), it in items.items():
        data[s][v]["PAIN"] = it.get("PAIN")
        data[s][v]["HAQDI"] = None if "HAQALL" in it else haq_di(it)

    def sdai(d, crp=None):
        return d["TJC"] + d["SJC"] + d["PTGA"] / 10 + d["PHGA"] / 10 + (d["CRP"] if crp is None else crp)

    def cdai(d):
        return d["TJC"] + d["SJC"] + d["PTGA"] / 10 + d["PHGA"] / 10

    # --- the paper summary -------------------------------------------------------------------
    summary = {}
    for s in SUBJIDS:
        D = data[s]
        base = D["D1"]
        row = {"base": base, "w16": D["W16"], "w24": D["W24"]}
        row["acr20_w16"] = acr_response(base, D["W16"])
        row["acr50_w16"] = acr_response(base, D["W16"], Fraction(50))
        row["sdai"] = (sdai(base), sdai(D["W24"]))
        row["cdai"] = (cdai(base), cdai(D["W24"]))
        sc = (category(row["sdai"][0], SDAI_CUTS), category(row["sdai"][1], SDAI_CUTS))
        cc = (category(row["cdai"][0], CDAI_CUTS), category(row["cdai"][1], CDAI_CUTS))
        row["sdai_cat"], row["cdai_cat"] = sc, cc
        # censored CRP must not decide the category: check with 0 and with the LLOQ too
        for (cs, cv, ccode), (cmp, lloq) in censored.items():
            if cs == s and cv == "W24" and ccode == "CRP":
                for alt in (Fraction(0), lloq):
                    assert category(sdai(D["W24"], alt), SDAI_CUTS) == sc[1], "censored CRP decides SDAI"
        row["sdai_fall"], row["cdai_fall"] = sc[1] < sc[0], cc[1] < cc[0]
        pains = [D[v].get("PAIN") for v in EFF]
        row["pain"] = pains
        drop = lambda p: p is not None and pains[0] - p >= 20  # noqa: E731
        row["vas_improved"] = drop(pains[-1])
        row["vas_sustained"] = all(drop(p) for p in pains[1:])
        row["haqdi"] = [D[v].get("HAQDI") for v in EFF]
        for code in ("IL10", "TNF", "IL17A", "RF", "CCP"):
            row[code] = (D["D1"].get(code), D["W24"].get(code))
        summary[s] = row

    def who(pred):
        return {s for s, r in summary.items() if pred(r)}

    got = {
        "acr20_w16": who(lambda r: r["acr20_w16"]),
        "sdai_cdai_fall_w24": who(lambda r: r["sdai_fall"] and r["cdai_fall"]),
        "vas_improved_w24": who(lambda r: r["vas_improved"]),
        "vas_sustained": who(lambda r: r["vas_sustained"]),
        "cytokine_responders": who(lambda r: r["IL10"][1] > r["IL10"][0] and r["TNF"][1] < r["TNF"][0]
                                   and r["IL17A"][1] < r["IL17A"][0]),
    }
    assert got == EXPECT, f"paper summary drifted: {got} != {EXPECT}"
    assert len(got["acr20_w16"]) == 4 and len(got["sdai_cdai_fall_w24"]) == 3
    assert who(lambda r: r["sdai_fall"]) == who(lambda r: r["cdai_fall"]) == got["sdai_cdai_fall_w24"]
    assert len(got["vas_improved_w24"]) == 3 and len(got["vas_sustained"]) == 2
    assert got["vas_sustained"] <= got["vas_improved_w24"]
    il10_up = who(lambda r: r["IL10"][1] > r["IL10"][0])
    assert il10_up == got["cytokine_responders"] and len(il10_up) == 5
    assert who(lambda r: r["TNF"][1] < r["TNF"][0]) == il10_up == who(lambda r: r["IL17A"][1] < r["IL17A"][0])
    # anti-CCP / RF do not follow the clinical course: rises in responders, falls in a non-responder
    rises = who(lambda r: r["CCP"][1] > r["CCP"][0] or r["RF"][1] > r["RF"][0])
    assert rises & got["acr20_w16"], "no serology rise in a responder"
    assert who(lambda r: r["CCP"][1] < r["CCP"][0] and r["RF"][1] < r["RF"][0]) - got["acr20_w16"]
    # planted HAQ cases
    assert summary["002"]["haqdi"][EFF.index("W12")] == Fraction(9, 7)
    assert summary["005"]["haqdi"][EFF.index("W8")] is None and summary["006"]["haqdi"][EFF.index("W8")] is None
    # the 20 % TJC boundary of 002 at W16 is exact and decides the response
    b2, p2 = summary["002"]["base"], summary["002"]["w16"]
    assert (b2["TJC"] - p2["TJC"]) * 5 == b2["TJC"]
    assert acr_response(b2, p2, Fraction(20)) and not acr_response(b2, p2, Fraction(20) + Fraction(1, 10**9))
    # the CRP unit trap bites: adding site 101's mg/L number to SDAI loses a responder
    wrong = {s for s in SUBJIDS
             if category(sdai(data[s]["W24"], data[s]["W24"]["CRP_AS_WRITTEN"]), SDAI_CUTS)
             < category(sdai(data[s]["D1"], data[s]["D1"]["CRP_AS_WRITTEN"]), SDAI_CUTS)}
    assert wrong != got["sdai_cdai_fall_w24"], "the mg/L vs mg/dL trap no longer changes the SDAI result"
    # aids that change a category score (README promises these)
    for s, v in (("001", "W8"), ("004", "W12")):
        it = items[(s, v)]
        no_aids = {k: x for k, x in it.items() if x != "Checked"}
        assert haq_di(it) > haq_di(no_aids), (s, v)
    # the pain VAS written in cm converts to 45 mm
    assert summary["003"]["pain"][EFF.index("W8")] == 45
    summary["__wrong_unit_falls__"] = wrong
    return summary


# =============================================================================================
# README
# =============================================================================================
def fnum(x, nd=2):
    return "—" if x is None else f"{float(x):.{nd}f}"


def build_readme(summary: dict) -> bytes:
    L = []
    a = L.append
    a("# RAMSC01 — synthetic raw EDC export")
    a("")
    a("**Generated file — do not edit by hand.** Everything in this folder (including this README) is written by")
    a("`tools/generate_ramsc01.py`; `tests/test_generator.py` fails if a committed file differs from a fresh run.")
    a("Change the tables at the top of the generator and re-run `python tools/generate_ramsc01.py`.")
    a("")
    a("All data are invented. The study is modelled on a phase I trial (Jamshidi et al., Regen Med 2024;")
    a("IRCT20080728001031N29): six patients with refractory RA, three IV infusions of allogeneic bone-marrow clonal")
    a("MSCs (1 × 10^6 cells/kg) one month apart (Day 1, Week 4, Week 8), 24 weeks of follow-up, staggered enrolment.")
    a("Sites 101 and 102; subjects (SITEID-SUBJID) " + ", ".join(f"{SUBJ[s]['siteid']}-{s}" for s in SUBJIDS)
      + "; USUBJID is not in the raw data.")
    a("")
    a("## Files")
    a("")
    a("All CSV files: CRLF line ends, `\"`-quoting only where needed (e.g. `\"INJECTION, SUSPENSION\"`). Every file has")
    a("STUDYID, SITEID, SUBJID (SUBJID is a 3-digit text like `001`; keep it as text). Dates are `dd-MMM-yyyy`")
    a("with an upper-case English month (`12-APR-2021`) except `ga.csv` GADAT (`dd/mm/yyyy`). Times are `HH:MM`")
    a("except one `HHMM`.")
    a("")
    a("| File | CRF form | Encoding / separator | Shape | Columns |")
    a("|---|---|---|---|---|")
    shapes = [
        ("dm.csv", "Demography", "UTF-8 **with BOM**, `,`", "1 row / subject (6)", DM_COLS),
        ("ic.csv", "Informed consent", "UTF-8, `,`", "1 row / subject (6)", IC_COLS),
        ("mh.csv", "Medical history", "UTF-8, `,`", f"1 row / condition ({sum(map(len, MH.values()))})", MH_COLS),
        ("sv.csv", "Visit dates", "UTF-8, `,`", "1 row / attended visit (49, incl. 1 unscheduled)", SV_COLS),
        ("ex.csv", "Cell infusion", "UTF-8, `,`", "1 row / infusion (18)", EX_COLS),
        ("ae.csv", "Adverse events", "**Latin-1** (cp1252-compatible), `,`", f"1 row / AE ({len(AES)})", AE_COLS),
        ("lb_101.csv", "Site 101 lab (incl. research-lab cytokines/flow)", "UTF-8, `,`, decimal point",
         "1 row / test / sample (long)", LB_COLS),
        ("lb_102.csv", "Site 102 lab (incl. research-lab cytokines/flow)", "UTF-8, **`;`**, **decimal comma**",
         "1 row / test / sample (long)", LB_COLS),
        ("qs_haq.xlsx", "HAQ-DI with pain VAS", "Excel workbook, sheets `HAQ` (data) and `Notes` (ignore)",
         "1 row / answered item (long)", QS_COLS),
        ("ga.csv", "Patient & physician global assessment", "UTF-8, `,`",
         "**wide**: 1 row / visit, 1 column / test (36)", GA_COLS),
        ("mk_joints.csv", "28-joint count", "UTF-8, `,`; **line 1 = item labels, line 2 = column names**",
         "1 row / joint / visit (28 × 7 visits × 6 = 1176)", MK_COLS),
    ]
    for f, form, enc, shape, cols in shapes:
        a(f"| `{f}` | {form} | {enc} | {shape} | " + ", ".join(f"`{c}`" for c in cols) + " |")
    a("")
    a("Visit labels (`VISIT`): " + ", ".join(f"`{VLABEL[k]}`" for k in VORDER)
      + ". sv.csv carries VISITNUM 1–8 and `7.1` for `UNSCHEDULED 1` (VISITDY blank).")
    a("")
    a("Column notes:")
    a("- dm.csv has no consent date: RFICDTC comes from `ic.csv` ICDAT joined on SUBJID. `ICFVER` (sponsor field) is")
    a("  the version of the consent form signed. `DTHDAT` is blank for everybody (nobody died). `WEIGHT_SCR_KG` = screening")
    a("  weight used for the dose; `COUNTRY` = `IRN` for all.")
    a("- mh.csv: `MHCAT` `PRIMARY DIAGNOSIS` (the RA diagnosis date, for disease duration in ADSL) or `GENERAL")
    a("  MEDICAL HISTORY`; `MHSTDAT` may be partial (`UN-SEP-2008`, `UN-UNK-2010`); `MHONGO` Y/N.")
    a("- ex.csv: `EXREFID_LABEL` = `INFUSION 1..3`; `TOTAL_CELLS_X10E6` = cells infused in 10^6 (= screening weight × 1);")
    a("  `EXLOC` `Antecubital fossa`, `EXLAT` `Right`/`Left`; `EXVAMT`/`EXVAMTU` `100`/`mL`; `EXLOT` product lot.")
    a("- ae.csv: `AEYN` is `Y` on every row (every subject had an AE). `AESPID` numbers the AEs within a subject.")
    a("  The MedDRA columns were filled by the site coder; codes are given only where certain, else blank.")
    a("  `AEBODSYS`/`AEBDSYCD` = primary SOC = `AESOC`/`AESOCCD`.")
    a("- lb: `LBCAT` CHEMISTRY (CRP), HEMATOLOGY (ESR), SEROLOGY (RF, anti-CCP), CYTOKINES, FLOW CYTOMETRY;")
    a("  `LBSPEC` `SERUM` or `WHOLE BLOOD` (ESR, flow cytometry); `LBNAM` is the site lab, or")
    a(f"  `{RESEARCH_LAB}` for cytokines and flow cytometry. CRP/ESR: screening, every efficacy visit and the")
    a("  unscheduled visit; RF/anti-CCP: screening, Day 1, Week 12, Week 24; IL-10/IL-17A/TNF-α and Treg %/Th17 %:")
    a("  Day 1, Week 12, Week 24. All infusion-day samples are pre-infusion (LBTIM before EXSTTIM).")
    a("- qs_haq.xlsx: every cell is text except `QSORRES` of HAQ0146 (pain VAS), which is a number. `QSCAT` =")
    a(f"  `{HAQ_QSCAT}`. Difficulty items (HAQ0101–0109, 0123–0133) hold the CRF text")
    a("  (" + " / ".join(f"`{t}`" for t in HAQ_RESPONSES) + " = 0/1/2/3); aid/help items hold `Checked` and are")
    a("  present **only when ticked** (absence = not ticked); HAQ0118/HAQ0141 hold the free-text \"specify\".")
    a("  QSTEST is the CRF wording. Empty cells are truly empty (None), not empty strings.")
    a("- ga.csv: `PTGA_MM` = patient global assessment of disease activity, `PHGA_MM` = physician global assessment")
    a("  of disease activity, both 0–100 mm VAS (0 = best); the engine transposes the two columns into records.")
    a("- mk_joints.csv: `JOINT` in " + ", ".join(f"`{j}`" for j in JOINTS) + " (PIP 1 = thumb IP);")
    a("  `SIDE` `Right`/`Left`; `TENDER`/`SWOLLEN` `Y`/`N`/`NE` (not evaluable). Screening and every efficacy visit;")
    a("  none at the unscheduled visit (which has only CRP and ESR).")
    a("")
    a("## Planted messy features")
    a("")
    a("Numbers in the first column follow the catalogue of `ra-reference.md` §5.3 where one exists.")
    a("Rows are 1-based data rows (the header is not counted; mk_joints.csv has two header lines).")
    a("")
    a("| # | File | Subject | Visit | Column(s) | Raw value | Expected handling |")
    a("|---|---|---|---|---|---|---|")
    P = PLANTED_FEATURES(summary)
    for row in P:
        a("| " + " | ".join(row) + " |")
    a("")
    a("## Paper summary reproduced (asserted by the generator before it writes)")
    a("")
    a("Definitions used: baseline = Day 1 (pre-infusion). TJC28/SJC28 = count of `Y` in mk_joints.csv (`NE` excluded,")
    a("no pro-rating). SDAI = TJC28 + SJC28 + PtGA/10 + PhGA/10 + CRP (**mg/dL**: site 101 mg/L ÷ 10);")
    a("CDAI = same without CRP. HAQ-DI: highest item per category, aid/help raises 0/1 to 2, sum ÷ categories")
    a("answered, missing if < 6 categories. Pain = HAQ0146 in mm (cm × 10). ACR20 at Week 16 (Felson 1995): ≥ 20 %")
    a("improvement, inclusive, exact arithmetic, in TJC28 and SJC28 and in ≥ 3 of pain, PtGA, PhGA, HAQ-DI, CRP.")
    a("SDAI/CDAI reduction = activity category (SDAI 3.3/11/26, CDAI 2.8/10/22) lower at Week 24 than at baseline.")
    a("Pain improved = Week 24 ≥ 20 mm below baseline; sustained = ≥ 20 mm below at every visit Week 4–Week 24.")
    a("Cytokine response = Week 24 vs Day 1. `<0.5` mg/dL CRP is taken as LLOQ/2 = 0.25 mg/dL (the category is the")
    a("same with 0 or 0.5).")
    a("")
    a("| Paper statement | Reproduced | Subjects |")
    a("|---|---|---|")
    acr = sorted(s for s in SUBJIDS if summary[s]["acr20_w16"])
    fall = sorted(s for s in SUBJIDS if summary[s]["sdai_fall"] and summary[s]["cdai_fall"])
    vas = sorted(s for s in SUBJIDS if summary[s]["vas_improved"])
    sus = sorted(s for s in SUBJIDS if summary[s]["vas_sustained"])
    cyt = sorted(EXPECT["cytokine_responders"])
    a(f"| ACR20 in 4 at week 16 | {len(acr)} of 6 | {', '.join(acr)} |")
    a(f"| SDAI and CDAI indicated disease-activity reduction in 3 | {len(fall)} (both indices, same subjects) "
      f"| {', '.join(fall)} |")
    a(f"| VAS improved in 3, 2 with sustained relief | {len(vas)} improved, {len(sus)} sustained "
      f"| improved {', '.join(vas)}; sustained {', '.join(sus)} |")
    a(f"| IL-10 up in 5, TNF-α and IL-17 down in the same | {len(cyt)} | {', '.join(cyt)} (005: IL-10 down, "
      "TNF-α and IL-17A up) |")
    up = lambda k: ", ".join(s for s in SUBJIDS if summary[s][k][1] > summary[s][k][0])  # noqa: E731
    down2 = ", ".join(s for s in SUBJIDS if all(summary[s][k][1] < summary[s][k][0] for k in ("RF", "CCP")))
    a("| anti-CCP / RF variable, some increases not matching clinical outcome | rises in ACR20 responders, "
      f"falls in non-responders | RF up: {up('RF')}; anti-CCP up: {up('CCP')}; both down: {down2} "
      "(ACR20 responders: " + ", ".join(acr) + ") |")
    a("| No SAEs, no deaths | AESER all N/No, DTHDAT blank | all |")
    a("")
    wrong = ", ".join(sorted(summary["__wrong_unit_falls__"]))
    lost = ", ".join(sorted(EXPECT["sdai_cdai_fall_w24"] - summary["__wrong_unit_falls__"]))
    a("Unit trap that bites: adding site 101's CRP in mg/L to SDAI as if it were mg/dL changes the Week 24 SDAI")
    a(f"category of {lost}, so the SDAI reduction would be seen only in {wrong}.")
    a("")
    a("Per subject (baseline → Week 16 → Week 24; CRP in mg/dL; HAQ-DI aids-adjusted):")
    a("")
    a("| Subject | TJC28 | SJC28 | PtGA mm | PhGA mm | Pain mm | HAQ-DI | CRP mg/dL | ACR20 W16 | ACR50 W16 "
      "| SDAI (cat) D1 → W24 | CDAI (cat) D1 → W24 | Pain by visit D1,W4,W8,W12,W16,W24 |")
    a("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for s in SUBJIDS:
        r = summary[s]
        b, p, q = r["base"], r["w16"], r["w24"]

        def tri(k, nd=0):
            return " → ".join(fnum(x.get(k), nd) for x in (b, p, q))
        yn = lambda x: "Y" if x else "N"  # noqa: E731
        pains = ", ".join("—" if x is None else str(int(x)) for x in r["pain"])
        a(f"| {SUBJ[s]['siteid']}-{s} | {tri('TJC')} | {tri('SJC')} | {tri('PTGA')} | {tri('PHGA')} "
          f"| {tri('PAIN')} | {tri('HAQDI', 3)} | {tri('CRP', 2)} | {yn(r['acr20_w16'])} | {yn(r['acr50_w16'])} "
          f"| {fnum(r['sdai'][0])} ({CAT_NAMES[r['sdai_cat'][0]]}) → {fnum(r['sdai'][1])} "
          f"({CAT_NAMES[r['sdai_cat'][1]]}) | {fnum(r['cdai'][0], 1)} ({CAT_NAMES[r['cdai_cat'][0]]}) → "
          f"{fnum(r['cdai'][1], 1)} ({CAT_NAMES[r['cdai_cat'][1]]}) | {pains} |")
    a("")
    a("Serology and cytokines (Day 1 → Week 24):")
    a("")
    a("| Subject | IL-10 pg/mL | TNF-α pg/mL | IL-17A pg/mL | RF IU/mL | anti-CCP U/mL |")
    a("|---|---|---|---|---|---|")
    for s in SUBJIDS:
        r = summary[s]
        raw = lambda t, i=0, j=-1: f"{t[s][i]} → {t[s][j]}"  # noqa: E731
        a(f"| {SUBJ[s]['siteid']}-{s} | {raw(IL10)} | {raw(TNF)} | {raw(IL17A)} | {raw(RF, 1)} | {raw(CCP, 1)} |")
    a("")
    a("Other HAQ-DI values a test can rely on: 101-002 Week 12 = 9/7 = 1.286 (hygiene absent); 101-001 Week 8 and")
    a("102-004 Week 12 are raised by an aid (jar opener, cane); 101-005 Week 8 and 102-006 Week 8 are missing.")
    a("")
    return ("\n".join(L)).encode("utf-8")


def PLANTED_FEATURES(summary):  # noqa: N802 - a table, kept near the README code
    d = lambda s, v: fmt_date(visit_date(s, v))  # noqa: E731
    ae_row = {a[0]: i + 1 for i, a in enumerate(AES)}
    rows = [
        ("—", "dm.csv", "all", "—", "file", "starts with the UTF-8 BOM `EF BB BF`", "read with `utf-8-sig`"),
        ("1", "dm.csv", "101-002", "—", "BRTHDAT", "`UN-JUN-1968`", "BRTHDTC `1968-06`"),
        ("2", "dm.csv", "102-004", "—", "BRTHDAT", "`UN-UNK-1980`", "BRTHDTC `1980`"),
        ("3", "dm.csv", "101-005", "—", "AGE, AGEU", "blank, blank (BRTHDAT `05-MAR-1987`, ICDAT "
         f"`{fmt_date(study_date('005', SUBJ['005']['consent_day']))}`)", "AGE 34 from BRTHDTC and RFICDTC, AGEU YEARS"),
        ("—", "dm.csv", "all others", "—", "AGEU", "`Years`", "YEARS"),
        ("4", "dm.csv", "all", "—", "SEX", "`Female` (001, 005), `F` (002, 006), `female` (003), `Male` (004)", "F / M"),
        ("5", "dm.csv", "all", "—", "RACE", "`White` (001, 006), `Persian` (002, 005), `white` (003), `Iranian` (004)",
         "sponsor table → WHITE; verbatim to SUPPDM"),
        ("6", "dm.csv", "all", "—", "ETHNIC", "`Not reported` (001), `NOT HISPANIC OR LATINO` (002), `not reported` (003), "
         "`Not Hispanic or Latino` (004), `NOT REPORTED` (005), `not hispanic or latino` (006)",
         "NOT REPORTED / NOT HISPANIC OR LATINO"),
        ("—", "ic.csv", "all", "SCREENING", "ICDAT", "consent date lives only here", "DM.RFICDTC via a join on SUBJID"),
        ("7", "ex.csv", "102-003", "WEEK 4 (INFUSION 2)", "EXSTTIM", "`0945`", "T09:45"),
        ("8", "ex.csv", "101-002", "WEEK 4 (INFUSION 2)", "EXENTIM", "blank", "EXENDTC date only"),
        ("9", "ex.csv", "site 101 / site 102", "all", "EXDOSU", "`x10^6 cells/kg` (101) / `10^6/kg` (102)",
         "one unit `10^6/kg` (sponsor-extended UNIT)"),
        ("10", "ex.csv", "102-004", "WEEK 8 (INFUSION 3)", "TOTAL_CELLS_X10E6", "`5.8E7 cells` (other rows plain, e.g. `58`)",
         "parse → 58 (×10^6)"),
        ("11", "ex.csv", "101-005", "WEEK 8 (INFUSION 3)", "EXVAMT / EXVAMTU", "`100 ml` / blank", "100 / mL"),
        ("12", "ex.csv", "102-003", "WEEK 8 (INFUSION 3)", "EXSTDAT, EXADJ",
         f"`{d('003', 'W8')}` = Day 66; `{EX_ADJ[('003', 3)]}`",
         "VISIT stays WEEK 8 (out of ±3 window); linked to AE row 4 (common cold)"),
        ("13", "ex.csv", "102-006", "DAY 1 (INFUSION 1)", "EXADJ, EXSTTIM–EXENTIM",
         f"`{EX_ADJ[('006', 1)]}`; 10:05–10:55", "EXADJ kept; AE row 8 AEACN DRUG INTERRUPTED"),
        ("14", "ex.csv", "all", "all", "EXROUTE / EXDOSFRM / EXLOC / EXLAT",
         "`Intravenous` / `INJECTION, SUSPENSION` (quoted) / `Antecubital fossa` / `Right`,`Left`",
         "INTRAVENOUS / INJECTION, SUSPENSION / ANTECUBITAL FOSSA / RIGHT, LEFT"),
        ("—", "ae.csv", "all", "—", "file", "Latin-1 bytes (`°` = `0xB0`): not valid UTF-8", "read with `latin-1`"),
        ("—", "ae.csv", "all", "—", "`AESEV - Code` … `AEOUT - Code`",
         "code twin beside each decoded column: AESEV 1 Mild/2 Moderate; AESER 0 = N/No; AEREL 1 Related, 2 Probably, "
         "3 Possibly, 4 Unlikely, 5 Not related; AEACN 1 Dose not changed, 2 Drug interrupted, 9 Not applicable; "
         "AEOUT 1 Recovered, 3 Not recovered", "use the decoded column (or the code), never both"),
        ("15", "ae.csv", "101-001", f"row {ae_row[1]}", "AETERM", "`Fever 38.2 °C evening of infusion` (non-ASCII `°`)",
         "verbatim kept; AEDECOD Pyrexia from the coding columns"),
        ("15", "ae.csv", "several", "rows 3, 4, 7, 8, 9", "AETERM",
         "`pain & redness at IV site (R antecubital)`, `common cold`, `RA flare - worsening knee & wrist pain`, "
         "`chills/shivering during infusion`, `fever 38.0 C`", "verbatim kept"),
        ("16", "ae.csv", "all", "—", "AESEV", "`Mild` (rows 1, 5, 9), `mild` (2, 6), `MILD` (3, 8), `moderate` (4), "
         "`Moderate` (7)", "MILD / MODERATE"),
        ("17", "ae.csv", "101-001, 101-005", "rows 2, 6", "AESER", "`No` (all other rows `N`)", "N"),
        ("18", "ae.csv", "all", "—", "AEREL", "`Related`, `Probably`, `Possibly`, `Unlikely`, `Not related`",
         "sponsor table (e.g. first three → RELATED)"),
        ("19", "ae.csv", "all", "—", "AEACN", "`Dose not changed`, `Drug interrupted` (rows 4, 8), `Not applicable` (row 7)",
         "DOSE NOT CHANGED / DRUG INTERRUPTED / NOT APPLICABLE"),
        ("20", "ae.csv", "all", "—", "AEOUT", "`Recovered`, `Not recovered` (row 7)",
         "RECOVERED/RESOLVED / NOT RECOVERED/NOT RESOLVED"),
        ("21", "ae.csv", "102-004", "row 5 (insomnia)", "AESTDAT / AEENDAT", "`UN-OCT-2021` / `UN-NOV-2021` "
         f"(first infusion {d('004', 'D1')})", "AESTDTC 2021-10, AEENDTC 2021-11, --DY null"),
        ("22", "ae.csv", "101-005", "row 7 (RA flare)", "AESTDAT / AEENDAT / AEONGO",
         "`UN-JAN-2022` / blank / `Y`", "AESTDTC 2022-01; AEENRTPT ONGOING"),
        ("23", "ae.csv", "all", "—", "AETOXGR", "`1` / `2` (CTCAE v4)", "as collected"),
        ("—", "ae.csv", "all", "—", "AELLTCD, AEPTCD, AEHLTCD, AEHLGTCD",
         "blank where the code was not certain (all HLT/HLGT codes; LLT Fever, Infusion site reaction, Common cold; "
         "PT Infusion site reaction)", "carry codes when present; blank otherwise"),
        ("24", "lb_101 / lb_102", "all", "all", "LBORRESU (CRP)", "`mg/L` (101) / `mg/dL` (102)", "LBSTRESU mg/L; mg/dL × 10"),
        ("25", "lb_101 / lb_102", "all", "all", "LBTEST (CRP)", "`CRP` / `C-reactive protein (CRP)`", "LBTESTCD CRP"),
        ("25b", "lb_101 / lb_102", "all", "D1, W12, W24", "LBTEST (TNF)", "`TNF-alpha` / `TNF-α` (UTF-8)", "LBTESTCD TNF"),
        ("26", "lb_102.csv", "102-003", "WEEK 24", "LBORRES (CRP)", "`<0,5` mg/dL (decimal comma)",
         "LBSTRESC `<5` (mg/L), LBSTRESN null"),
        ("27", "lb_101.csv", "101-001", "DAY 1 and WEEK 12", "LBORRES (Anti-CCP)", "`>500` U/mL",
         "LBSTRESC `>500`, LBSTRESN null"),
        ("28", "lb_101 / lb_102", "all", "all", "LBORRESU (ESR)", "`mm/h` (101) / `mm/hr` (102)", "mm/h"),
        ("29", "lb_101.csv", "101-001", "WEEK 4", "whole row (CRP)", f"exact duplicate row (`{CRP['001'][2]}` mg/L, "
         f"{d('001', 'W4')})", "de-duplicate and report"),
        ("29b", "lb_101 / lb_102", "all", "all", "LBSPEC", "`WHOLE BLOOD` (ESR, Treg, Th17), `SERUM` (others)",
         "BLOOD / SERUM"),
        ("30", "lb_101.csv", "101-002", "WEEK 12", "LBORRES / LBSTAT / LBREASND (IL-17A)",
         "blank / `NOT DONE` / `Sample hemolyzed`", "as given"),
        ("31", "lb_101.csv", "101-002", "WEEK 12", "LBDAT (all tests)",
         f"`{fmt_date(study_date('002', VISIT_DAYS['002']['W12'] + 2))}` = visit date {d('002', 'W12')} + 2 days",
         "LBDTC from LBDAT; VISIT from the form"),
        ("32", "lb_101 / lb_102", "all", "D1, W12, W24", "LBORRESU (cytokines)", "`pg/mL`", "ng/L (same number)"),
        ("33", "lb_101.csv", "101-005", "UNSCHEDULED 1", "VISIT / LBTIM (CRP, ESR)",
         f"`UNSCHEDULED 1` on {d('005', 'U1')} (Day 150) / blank; CRP {CRP['005'][7]} mg/L, ESR {ESR['005'][7]}",
         "VISITNUM 7.1; not the Week 24 record (closest to target)"),
        ("—", "lb_102.csv", "all", "all", "LBORRES, LBORNRLO, LBORNRHI", "decimal comma (`0,9`, `0,5`), `;` separator",
         "read with `sep=';'`, `decimal=','`"),
        ("—", "lb_101 / lb_102", "all", "all", "LBORNRLO / LBORNRHI", "CRP 0–5 mg/L / 0–0,5 mg/dL, ESR 0–20, "
         "RF 0–14 IU/mL, anti-CCP 0–17 U/mL; blank for cytokines and flow", "as collected"),
        ("34", "qs_haq.xlsx", "all", "all", "QSORRES", "`Without ANY difficulty` … `UNABLE to do`", "QSSTRESN 0–3"),
        ("35", "qs_haq.xlsx", "001, 002, 004, 005", "various", "QSORRES (aid/help items)",
         "`Checked` (only ticked boxes exported); 101-005 DAY 1 HAQ0117 `Checked` + HAQ0118 `Velcro shoe fasteners`",
         "QSORRES CHECKED; absence = not ticked"),
        ("36", "qs_haq.xlsx", "102-003", "WEEK 8", "QSORRES / QSORRESU (HAQ0146)", "`4.5` / `cm`", "45 mm"),
        ("37", "qs_haq.xlsx", "102-006", "WEEK 8", "ITEMCODE / QSSTAT / QSREASND",
         f"`HAQALL` / `NOT DONE` / `{HAQ_NOT_DONE[('006', 'W8')]}` (the only row of that visit)",
         "QSTESTCD QSALL, QSSTAT NOT DONE; HAQ-DI missing"),
        ("38", "qs_haq.xlsx", "101-005", "WEEK 8", "ITEMCODE", "only HAQ0101–HAQ0109 and HAQ0115 (no hygiene/reach/grip/"
         "activities, no HAQ0146)", "HAQ-DI not computable (4 < 6 categories); pain missing"),
        ("39", "qs_haq.xlsx", "101-002", "WEEK 12", "ITEMCODE", "HAQ0123–HAQ0125 absent", "HAQ-DI = 9/7 = 1.286"),
        ("—", "qs_haq.xlsx", "—", "—", "sheets", "`HAQ` (data), `Notes` (free text, ignore)", "read sheet `HAQ` only"),
        ("—", "ga.csv", "all", "all", "GADAT", "`dd/mm/yyyy` (e.g. `12/04/2021`)", "different date format from the other files"),
        ("—", "ga.csv", "all", "all", "PTGA_MM, PHGA_MM", "wide: two tests in columns", "transpose to 2 records / visit"),
        ("—", "mk_joints.csv", "—", "—", "lines 1–2", "line 1 = labels (`Study Identifier`, `Subject Identifier`, …), "
         "line 2 = column names", "skip line 1 (`skiprows=1`)"),
        ("40", "mk_joints.csv", "102-004", "WEEK 12", "TENDER / SWOLLEN (Knee, Right)", "`NE` / `NE`",
         "MKSTAT NOT DONE, MKREASND JOINT NOT EVALUABLE"),
        ("41", "sv.csv (and all forms)", "101-005", "WEEK 16", "SVSTDAT / ACTUAL_STUDY_DAY",
         f"`{d('005', 'W16')}` / `121` (window 113 ± 7 violated)", "VISIT unchanged; ADaM window 99–140 keeps it"),
        ("—", "sv.csv (and all forms)", "102-003", "WEEK 8", "SVSTDAT / ACTUAL_STUDY_DAY",
         f"`{d('003', 'W8')}` / `66`", "postponed infusion visit"),
        ("—", "all CSV", "—", "—", "line ends", "CRLF", "—"),
        ("—", "lb_102.csv", "102-*", "D1, W12, W24", "LBTEST", "`TNF-α` needs UTF-8 (the file has no BOM)", "—"),
    ]
    rows.append(("ACR", "mk / ga / qs / lb_101", "101-002", "WEEK 16", "TJC28", "10 → 8 = exactly 20 % improvement",
                 "inclusive threshold (≥ 20 %): ACR20 = Y; a strict `>` gives N"))
    return rows


# =============================================================================================
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    args = ap.parse_args(argv)
    files = build_files()
    summary = verify(files)
    files["README.md"] = build_readme(summary)
    files[".gitattributes"] = b"# generated files: keep bytes exactly as written (BOM, Latin-1, CRLF)\n* -text\n"
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (args.out / name).write_bytes(data)
    print(f"wrote {len(files)} files to {args.out}")
    return 0


GENERATED_FILES = ("dm.csv", "ic.csv", "mh.csv", "sv.csv", "ex.csv", "ae.csv", "lb_101.csv", "lb_102.csv", "qs_haq.xlsx",
                   "ga.csv", "mk_joints.csv", "README.md", ".gitattributes")

if __name__ == "__main__":
    sys.exit(main())
