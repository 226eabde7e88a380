"""Damage real CSV files carry, applied to clean files for the fuzzers (test_reader.py on the
reading layer alone, test_pollution.py through the real staging)."""

from __future__ import annotations

import csv
import io
import random

from hypothesis import strategies as st

from logroll.stage.dialect import Limits

# small limits so that every limit and chunk boundary is met by small files
SMALL = Limits(
    max_line_bytes=4096, max_quoted_bytes=600, max_quoted_lines=8, excerpt_bytes=200, chunk_bytes=512
)

VALUE = st.text(alphabet=st.sampled_from(list('ab xyz019.-é"\n,;\t')), max_size=8)
CLEAN_VALUE = st.text(alphabet=st.sampled_from(list("ab xyz019.-é")), min_size=1, max_size=8)

DAMAGES = [
    "trailing_delim",
    "drop_delim",
    "extra_field",
    "stray_quote",
    "opening_quote",
    "crlf_all",
    "cr_some",
    "crlf_some",
    "preamble",
    "preamble_undeclared",
    "trailing_delim_all",
    "header_dup",
    "no_header",
    "second_table",
    "blank_lines",
    "huge_line",
    "nul",
    "invalid_utf8",
    "truncate",
    "whitespace_line",
    "bom_middle",
    "header_quote",
    "long_quoted",
    "quote_after_close",
]


def clean_csv(header: list[str], rows: list[list[str]]) -> tuple[bytes, list[tuple[int, int]]]:
    """The clean file and, per record, (first physical line, number of lines)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    spans = []
    line = 2
    for r in rows:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(r)
        s = buf.getvalue()
        n = s.count("\n")
        spans.append((line, n))
        line += n
        out.write(s)
    return out.getvalue().encode(), spans


@st.composite
def polluted(draw):
    ncols = draw(st.integers(1, 6))
    header = [f"h{i}" for i in range(ncols)]
    rows = draw(st.lists(st.lists(VALUE, min_size=ncols, max_size=ncols), max_size=25))
    rows = [r for r in rows if not (ncols == 1 and r[0] == "")]  # csv writes "" for it; fine either way
    data, spans = clean_csv(header, rows)
    damages = draw(st.lists(st.sampled_from(DAMAGES), max_size=3))
    seed = draw(st.integers(0, 2**32 - 1))
    return header, rows, data, spans, damages, seed


# A stray quote that pairs with a later quote turns the lines between into one quoted value: no
# reader can tell that from a real multi-line value. The limits bound how far that reaches.
QUOTE_REACH = SMALL.max_quoted_lines + 2


def apply(data: bytes, spans, damages, seed, ncols):
    """Damage the clean file: (bytes, skip_rows, allowance, header_damaged, strict_rows).
    The file is handled as a list of records (each a list of physical lines); insertions happen at
    record boundaries. allowance: how many accepted rows may differ from the clean rows (damage
    that keeps the structure); strict_rows False when the damage changes what the rows are."""
    rnd = random.Random(seed)
    lines = data.split(b"\n")[:-1]  # clean file: LF only, quoted newlines inside records
    recs = [[lines[0]]] + [lines[s - 1 : s - 1 + n] for s, n in spans]  # header + data records
    kinds = ["header"] + ["data"] * len(spans)
    skip = 0
    allowance = 0
    header_damaged = False
    strict = True
    tail_ops = []
    ending = {}

    def single_data():
        return [i for i, r in enumerate(recs) if kinds[i] == "data" and len(r) == 1]

    def insert(rec, kind, lo=1):
        i = rnd.randrange(min(lo, len(recs)), len(recs) + 1)
        recs.insert(i, rec)
        kinds.insert(i, kind)

    for dmg in damages:
        cand = single_data()
        if (
            dmg
            in (
                "trailing_delim",
                "drop_delim",
                "extra_field",
                "stray_quote",
                "opening_quote",
                "nul",
                "invalid_utf8",
                "quote_after_close",
            )
            and cand
        ):
            i = rnd.choice(cand)
            ln = recs[i][0]
            kinds[i] = "damaged"
            if dmg == "trailing_delim":
                ln = ln + b","
            elif dmg == "drop_delim" and b"," in ln and b'"' not in ln:
                k = rnd.choice([k for k, c in enumerate(ln) if c == 44])
                ln = ln[:k] + ln[k + 1 :]
            elif dmg == "extra_field":
                ln = ln + b",x"
            elif dmg == "stray_quote":
                k = rnd.randrange(len(ln) + 1)
                ln = ln[:k] + b'"' + ln[k:]
                allowance += QUOTE_REACH
            elif dmg == "opening_quote":
                k = rnd.choice([0] + [k + 1 for k, c in enumerate(ln) if c == 44])
                ln = ln[:k] + b'"' + ln[k:]
                allowance += QUOTE_REACH
            elif dmg == "quote_after_close":
                ln = b'"q"x' + (b"," + ln.split(b",", 1)[-1] if ncols > 1 else b"")
            elif dmg in ("nul", "invalid_utf8"):
                k = rnd.randrange(len(ln) + 1)
                ln = ln[:k] + (b"\x00" if dmg == "nul" else b"\xff") + ln[k:]
                if b'"' in ln:  # a byte before a quote makes it a literal: the quoting shifts
                    allowance += QUOTE_REACH
            recs[i] = [ln]
        elif dmg == "whitespace_line":
            insert([b"   "], "junk")
            allowance += 1  # a 1-column file: "   " is a value
        elif dmg == "crlf_all":
            ending = {"all": b"\r\n"}
        elif dmg in ("cr_some", "crlf_some"):
            for _ in range(3):
                ending[rnd.randrange(200)] = b"\r" if dmg == "cr_some" else b"\r\n"
            if dmg == "cr_some":
                allowance += 3  # a CR before an empty line inside a quoted value makes one CRLF of two breaks
        elif dmg == "preamble":
            n = rnd.randint(1, 3)
            for ln in reversed([b"exported by tool, v1", b'"odd', b"x"][:n]):
                recs.insert(0, [ln])
                kinds.insert(0, "preamble")
            skip += n
        elif dmg == "preamble_undeclared":
            recs[:0] = [[b"report"], [b"a,b,c"]]
            kinds[:0] = ["junk", "junk"]
            strict = False
        elif dmg == "trailing_delim_all":
            recs = [r[:-1] + [r[-1] + b","] for r in recs]
            strict = False
        elif dmg == "header_dup" and "header" in kinds:
            h = kinds.index("header")
            recs.insert(h + 1, list(recs[h]))
            kinds.insert(h + 1, "junk")
            allowance += 1
        elif dmg == "no_header" and "header" in kinds:
            h = kinds.index("header")
            del recs[h], kinds[h]
            strict = False
        elif dmg == "second_table":
            tail_ops.append(b"x,y\n1,2\n3,4\n")
            allowance += 3
        elif dmg == "blank_lines":
            for _ in range(2):
                insert([b""], "blank")
            allowance += 2  # a 1-column file: blank lines are empty values
        elif dmg == "huge_line":
            insert([b"9," + b"z" * 5000], "junk")
        elif dmg == "long_quoted":
            insert([b'1,"w'] + [b"w"] * 20 + [b'w"' + b",1" * (ncols - 2)], "junk")
            allowance += (
                22  # runaway: its opening line goes, the lines after it are read (values in a 1-column file)
            )
        elif dmg == "bom_middle":
            tail_ops.append(b"\xef\xbb\xbf" + b",".join(b"h%d" % i for i in range(ncols)) + b"\n")
            allowance += 1
        elif dmg == "header_quote" and "header" in kinds:
            h = kinds.index("header")
            recs[h] = recs[h][:-1] + [recs[h][-1] + b',"hx']
            header_damaged = True
            strict = False
        elif dmg == "truncate":
            tail_ops.append("truncate")
    out = bytearray()
    i = 0
    for r in recs:
        for ln in r:
            out += ln + ending.get(i, ending.get("all", b"\n"))
            i += 1
    for op in tail_ops:
        if op == "truncate":
            if out:
                out = out[: rnd.randrange(len(out))]
            allowance += QUOTE_REACH  # cut inside a quoted value: its opening line goes, the rest is read
        else:
            out += op
    return bytes(out), skip, allowance, header_damaged, strict
