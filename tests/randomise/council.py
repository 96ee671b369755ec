"""A 16-LA, 4-region trial's clusters file, written the way a council analyst writes one.

``clean_csv()`` is the tidy file; the helpers make the spellings that broke
``randomise`` (issue 15): numbers with thousands separators, stray text, region
names in three spellings, a missing row.  Row ``k`` of the data (1-based, header
not counted) is LA ``k``.
"""

from __future__ import annotations

from pathlib import Path

REGIONS = ("London", "Midlands", "North", "South")
IMD = (
    31.4,
    27.9,
    35.2,
    22.6,
    24.1,
    29.8,
    19.5,
    33.7,
    16.2,
    21.3,
    18.8,
    26.4,
    28.0,
    23.5,
    30.1,
    17.9,
)
CASELOAD = (1412, 288, 530, 1356, 356, 470, 198, 505, 240, 1310, 265, 390, 612, 2045, 344, 1189)


def rows() -> list[dict[str, str]]:
    """One dict per LA (text cells, as read from a CSV), LA01..LA16."""
    order = ("North", "Midlands", "South", "London")
    return [
        {
            "la_id": f"LA{k + 1:02d}",
            "la_name": f"Council {k + 1}",
            "region": order[k // 4],
            "imd_score": f"{IMD[k]}",
            "caseload": f"{CASELOAD[k]}",
        }
        for k in range(16)
    ]


def to_csv(table: list[dict[str, str]]) -> str:
    """CSV text, quoting cells with a comma as a spreadsheet does."""
    cols = list(table[0])

    def cell(v: str) -> str:
        return f'"{v}"' if "," in v else v

    return "\n".join([",".join(cols)] + [",".join(cell(r[c]) for c in cols) for r in table]) + "\n"


def clean_csv() -> str:
    return to_csv(rows())


def write(tmp: Path, name: str, table: list[dict[str, str]]) -> Path:
    p = tmp / name
    p.write_text(to_csv(table), encoding="utf-8")
    return p


def with_separators() -> list[dict[str, str]]:
    """``1,412`` (row 1), ``1 356`` (row 4), ``1,310`` (row 10), ``2,045`` (row 14), ``1 189`` (row 16)."""
    t = rows()
    for k, text in ((0, "1,412"), (3, "1 356"), (9, "1,310"), (13, "2,045"), (15, "1\u2009189")):
        t[k]["caseload"] = text
    return t


def with_cell(row: int, column: str, text: str, base: list[dict[str, str]] | None = None):
    """The table with data row ``row`` (1-based) of ``column`` set to ``text``."""
    t = [dict(r) for r in (base if base is not None else rows())]
    t[row - 1][column] = text
    return t


def with_region_spellings() -> list[dict[str, str]]:
    """North written ``North`` (row 1), ``north`` (row 2), ``NORTH `` (row 3), ``North`` (row 4)."""
    t = rows()
    t[1]["region"] = "north"
    t[2]["region"] = "NORTH "
    return t


PROTOCOL_COVARIATES = """
[[data.covariates]]
name = "region"
level = "la"
type = "categorical"
levels = ["London", "Midlands", "North", "South"]

[[data.covariates]]
name = "imd_score"
level = "la"
type = "continuous"

[[data.covariates]]
name = "caseload"
level = "la"
type = "count"
"""
