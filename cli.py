#!/usr/bin/env python3
"""Run sdtm-ra from a checkout without installing: `python cli.py convert --out out/`."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sdtm_rA.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
