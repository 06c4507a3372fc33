"""A small, independent reader of SAS XPORT (XPT) version 5 files, for tests.

Written from the published record layout (SAS technical note TS-140, "The record layout of a
SAS version 5 or 6 data set in SAS transport (XPORT) format"), not from pyreadstat/readstat,
so that it can referee what ``sdtm_rA.io.xpt.write_xpt`` produces.  It deliberately does not
import pyreadstat, pandas or the ``xport`` package.

File layout (every header record is 80 bytes, ASCII):

1. ``HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!000000000000000000000000000000  ``
2. first real header: ``SAS     SAS     SASLIB  <ver:8><os:8><blanks:24><created:16>``
3. second real header: ``<modified:16>`` + 64 blanks
4. ``HEADER RECORD*******MEMBER  HEADER RECORD!!!!!!!000000000000000001600000000140  ``
   (the last 4 digits before the two blanks give the NAMESTR record size, 140; 136 on VAX/VMS)
5. ``HEADER RECORD*******DSCRPTR HEADER RECORD!!!!!!!000000000000000000000000000000  ``
6. member header data: ``SAS     <dsname:8>SASDATA <ver:8><os:8><blanks:24><created:16>``
7. second member header data: ``<modified:16><blanks:16><dslabel:40><dstype:8>``
8. ``HEADER RECORD*******NAMESTR HEADER RECORD!!!!!!!000000<nvars:4>00000000000000000000  ``
9. nvars NAMESTR records of 140 bytes, concatenated, blank... padded to a multiple of 80
10. ``HEADER RECORD*******OBS     HEADER RECORD!!!!!!!000000000000000000000000000000  ``
11. observations, each the concatenation of the variables at their ``npos``; the whole
    section padded with blanks to a multiple of 80.  Numbers are IBM 370 (hexadecimal)
    floating point, big-endian; character values are padded with blanks.

NAMESTR (big-endian): short ntype (1 = numeric, 2 = char), short nhfun, short nlng,
short nvar0, char8 nname, char40 nlabel, char8 nform, short nfl, short nfd, short nfj,
char2 nfill, char8 niform, short nifl, short nifd, long npos, char52 rest.

A missing numeric is stored as one byte ``.`` (or ``A``-``Z``, ``_`` for special missing
values) followed by seven zero bytes.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from fractions import Fraction

RECORD = 80
LIBRARY_HEADER = b"HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!000000000000000000000000000000  "
LIBV8_PREFIX = b"HEADER RECORD*******LIBV8   HEADER RECORD!!!!!!!"
MEMBER_PREFIX = b"HEADER RECORD*******MEMBER  HEADER RECORD!!!!!!!"
DSCRPTR_PREFIX = b"HEADER RECORD*******DSCRPTR HEADER RECORD!!!!!!!"
NAMESTR_PREFIX = b"HEADER RECORD*******NAMESTR HEADER RECORD!!!!!!!"
OBS_PREFIX = b"HEADER RECORD*******OBS     HEADER RECORD!!!!!!!"
DATETIME_RE = re.compile(r"^\d\d[A-Z]{3}\d\d:\d\d:\d\d:\d\d$")
MISSING_CODES = set(b"._ABCDEFGHIJKLMNOPQRSTUVWXYZ")


class XptFormatError(ValueError):
    pass


@dataclass
class Variable:
    name: str
    label: str
    type: str  # 'Num' or 'Char'
    length: int
    position: int
    number: int  # nvar0
    format: str = ""
    informat: str = ""


@dataclass
class Dataset:
    name: str
    label: str
    dstype: str
    created: str  # ddMMMyy:hh:mm:ss from the member header
    modified: str
    library_created: str  # from the library header
    library_modified: str
    sas_version: str
    os_name: str
    variables: list[Variable] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    header_bytes: int = 0  # bytes before the first observation
    observation_bytes: bytes = b""


def ibm_to_float(b: bytes) -> float | None:
    """IBM 370 double (1 sign bit, 7-bit base-16 exponent biased by 64, 56-bit fraction) ->
    Python float; ``None`` for a missing value.  Shorter numerics (length 2..7) are the leading
    bytes of the 8-byte value."""
    if len(b) < 2 or len(b) > 8:
        raise XptFormatError(f"numeric length {len(b)} outside 2..8")
    b = b + bytes(8 - len(b))
    if b[0] in MISSING_CODES and not any(b[1:]):
        return None
    sign = -1 if b[0] & 0x80 else 1
    exponent = (b[0] & 0x7F) - 64
    fraction = int.from_bytes(b[1:], "big")  # value = fraction / 2**56 * 16**exponent
    if fraction == 0:
        return 0.0
    # exact rational, then one correctly rounded conversion to IEEE 754 double
    value = Fraction(fraction, 1 << 56) * (Fraction(16) ** exponent)
    return sign * float(value)


def float_to_ibm(x: float) -> bytes:
    """IEEE double -> 8-byte IBM 370 double (exact for doubles in range); used by the tests
    to check expected encodings.  Raises OverflowError outside the IBM range."""
    if x != x:
        return b"." + bytes(7)
    if x == 0:
        return bytes(8)
    sign = 0x80 if x < 0 else 0
    f = Fraction(abs(x))
    exponent = 0
    while f >= 1:
        f /= 16
        exponent += 1
    while f < Fraction(1, 16):
        f *= 16
        exponent -= 1
    fraction = f * (1 << 56)
    if fraction.denominator != 1:
        raise OverflowError(f"{x!r} is not exactly representable as an IBM double")
    if not -64 <= exponent <= 63:
        raise OverflowError(f"{x!r} outside the IBM double range")
    return bytes([sign | (exponent + 64)]) + int(fraction).to_bytes(7, "big")


def _text(b: bytes) -> str:
    return b.decode("ascii").rstrip(" ")


def _records(data: bytes, start: int, count: int = 1) -> bytes:
    end = start + RECORD * count
    if end > len(data):
        raise XptFormatError(f"file ends inside the header at byte {len(data)}")
    return data[start:end]


def parse_header_datetime(s: str) -> str:
    if not DATETIME_RE.match(s):
        raise XptFormatError(f"bad header datetime {s!r}")
    return s


def read(path) -> Dataset:
    """Read the first (normally the only) member of an XPT v5 file."""
    with open(path, "rb") as fh:
        data = fh.read()
    return parse(data)


def parse(data: bytes) -> Dataset:
    if len(data) % RECORD:
        raise XptFormatError(f"file size {len(data)} is not a multiple of 80")
    if data.startswith(LIBV8_PREFIX):
        raise XptFormatError("this is an XPT version 8 file (LIBV8 header), not version 5")
    if _records(data, 0) != LIBRARY_HEADER:
        raise XptFormatError(f"not an XPT v5 library header: {data[:80]!r}")
    real1 = _records(data, 80)
    real2 = _records(data, 160)
    if real1[:24] != b"SAS     SAS     SASLIB  ":
        raise XptFormatError(f"bad first real header {real1!r}")
    sas_version = _text(real1[24:32])
    os_name = _text(real1[32:40])
    library_created = parse_header_datetime(real1[64:80].decode("ascii"))
    library_modified = parse_header_datetime(real2[0:16].decode("ascii"))
    if real2[16:] != b" " * 64:
        raise XptFormatError("second real header not blank after the datetime")

    member = _records(data, 240)
    if not member.startswith(MEMBER_PREFIX):
        raise XptFormatError(f"expected MEMBER header, got {member!r}")
    namestr_size = int(member[74:78])
    if namestr_size not in (136, 140):
        raise XptFormatError(f"NAMESTR size {namestr_size}")
    if not _records(data, 320).startswith(DSCRPTR_PREFIX):
        raise XptFormatError("expected DSCRPTR header")
    mh1 = _records(data, 400)
    mh2 = _records(data, 480)
    if mh1[:8] != b"SAS     " or mh1[16:24] != b"SASDATA ":
        raise XptFormatError(f"bad member header {mh1!r}")
    ds = Dataset(
        name=_text(mh1[8:16]),
        label=_text(mh2[32:72]),
        dstype=_text(mh2[72:80]),
        created=parse_header_datetime(mh1[64:80].decode("ascii")),
        modified=parse_header_datetime(mh2[0:16].decode("ascii")),
        library_created=library_created,
        library_modified=library_modified,
        sas_version=sas_version,
        os_name=os_name,
    )
    namestr_header = _records(data, 560)
    if not namestr_header.startswith(NAMESTR_PREFIX):
        raise XptFormatError("expected NAMESTR header")
    nvars = int(namestr_header[54:58])
    pos = 640
    block = nvars * namestr_size
    padded = -(-block // RECORD) * RECORD
    if pos + padded > len(data):
        raise XptFormatError("file ends inside the NAMESTR records")
    for i in range(nvars):
        rec = data[pos + i * namestr_size: pos + (i + 1) * namestr_size]
        ntype, _nhfun, nlng, nvar0 = struct.unpack(">hhhh", rec[0:8])
        nname = _text(rec[8:16])
        nlabel = _text(rec[16:56])
        nform = _text(rec[56:64])
        niform = _text(rec[72:80])
        (npos,) = struct.unpack(">i", rec[84:88])
        if ntype not in (1, 2):
            raise XptFormatError(f"variable {nname}: ntype {ntype}")
        ds.variables.append(Variable(nname, nlabel, "Num" if ntype == 1 else "Char",
                                     nlng, npos, nvar0, nform, niform))
    namestr_pad = data[pos + block: pos + padded]
    if namestr_pad.strip(b" ") and namestr_pad.strip(b"\x00"):
        # padding after the NAMESTR records should be blanks (some writers use NULs)
        raise XptFormatError("NAMESTR padding is neither blanks nor NULs")
    pos += padded
    if not _records(data, pos).startswith(OBS_PREFIX):
        raise XptFormatError(f"expected OBS header at byte {pos}")
    pos += RECORD
    ds.header_bytes = pos
    # a second member would start with another MEMBER header on an 80-byte boundary
    end = len(data)
    scan = pos
    while scan < len(data):
        if data[scan:scan + len(MEMBER_PREFIX)] == MEMBER_PREFIX:
            end = scan
            break
        scan += RECORD
    obs = data[pos:end]
    ds.observation_bytes = obs
    rowlen = sum(v.length for v in ds.variables)
    if rowlen == 0:
        return ds
    for v in ds.variables:
        if v.position < 0 or v.position + v.length > rowlen:
            raise XptFormatError(f"variable {v.name}: position {v.position} length {v.length}")
    nrows = len(obs) // rowlen
    # The observation section is padded with blanks to a multiple of 80 bytes, so trailing
    # "rows" made only of blanks may be padding.  The padding is shorter than 80 bytes: keep
    # every row that starts before len(obs) - 79, drop all-blank rows after that.
    blank_row = b" " * rowlen
    while (nrows > 0 and obs[(nrows - 1) * rowlen: nrows * rowlen] == blank_row
           and len(obs) - (nrows - 1) * rowlen < RECORD):
        nrows -= 1
    tail = obs[nrows * rowlen:]
    if tail.strip(b" "):
        raise XptFormatError(f"observation padding is not blank: {tail!r}")
    for r in range(nrows):
        raw = obs[r * rowlen:(r + 1) * rowlen]
        row = {}
        for v in ds.variables:
            cell = raw[v.position:v.position + v.length]
            if v.type == "Num":
                row[v.name] = ibm_to_float(cell)
            else:
                row[v.name] = cell.decode("utf-8").rstrip(" ")
        ds.rows.append(row)
    return ds
