"""One-page, self-contained HTML reports: tables of numbers and PNG figures embedded as base64.

Knows nothing of Kedro or MLflow: the pipelines hand it tables and figure bytes and save the
returned string through the catalog.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping

import pandas as pd

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: .9rem; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
figure { display: inline-block; margin: 0 1rem 1rem 0; vertical-align: top; }
figure img { max-width: 34rem; border: 1px solid #ddd; }
figcaption { font-size: .85rem; color: #555; }
"""


def last_epoch_table(history: pd.DataFrame) -> pd.DataFrame:
    """The last row of a training history as a two-column table ``metric | value``."""
    if history.empty:
        raise ValueError("the training history is empty: no epoch to report")
    last = history.iloc[-1]
    return pd.DataFrame({"metric": last.index, "value": last.to_numpy()})


def params_table(groups: Mapping[str, Mapping]) -> pd.DataFrame:
    """Parameter groups ``{"model": {...}, "train": {...}}`` flattened to ``name | value`` rows."""
    rows = []

    def walk(prefix: str, value) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                walk(f"{prefix}.{key}", inner)
        else:
            rows.append({"parameter": prefix, "value": str(value)})

    for name, values in groups.items():
        walk(name, values)
    return pd.DataFrame(rows, columns=["parameter", "value"])


def render_report(
    title: str,
    tables: Mapping[str, pd.DataFrame],
    figures: Mapping[str, bytes],
    intro: str = "",
) -> str:
    """An HTML page: ``title``, each table under its heading, then each PNG figure inline.

    Args:
        title: the page title and heading.
        tables: heading → table, in order; floats are shown with 4 significant digits.
        figures: caption → PNG bytes, in order, embedded as ``data:image/png;base64``.
        intro: a sentence under the title (escaped).
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if intro:
        parts.append(f"<p>{html.escape(intro)}</p>")
    for heading, table in tables.items():
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.append(
            table.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0, escape=True)
        )
    if figures:
        parts.append("<h2>Figures</h2>")
    for caption, png in figures.items():
        if not png.startswith(b"\x89PNG"):
            raise ValueError(f"figure {caption!r} is not PNG bytes")
        data = base64.b64encode(png).decode("ascii")
        parts.append(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
