"""One-page HTML reports: tables, inline PNG figures, escaping."""

import base64

import pandas as pd
import pytest

from ugvae_pipeline.html_report import last_epoch_table, params_table, render_report

PNG = b"\x89PNG\r\n\x1a\n" + b"rest"


def test_report_holds_tables_and_inline_figures():
    history = pd.DataFrame({"epoch": [1, 2], "train_loss": [3.0, 2.123456]})
    page = render_report(
        "Run <1>",
        {
            "Last epoch": last_epoch_table(history),
            "Parameters": params_table({"model": {"dim_beta": 6}}),
        },
        {"loss curves": PNG},
        intro="a & b",
    )
    assert page.startswith("<!DOCTYPE html>") and "<title>Run &lt;1&gt;</title>" in page
    assert "<p>a &amp; b</p>" in page
    assert (
        "<td>train_loss</td>" in page
        and "<td>2.123</td>" in page
        and "<td>model.dim_beta</td>" in page
    )
    assert f'src="data:image/png;base64,{base64.b64encode(PNG).decode()}"' in page
    assert "<figcaption>loss curves</figcaption>" in page


def test_report_refuses_non_png_and_empty_history():
    with pytest.raises(ValueError, match="figure 'x' is not PNG bytes"):
        render_report("t", {}, {"x": b"GIF89a"})
    with pytest.raises(ValueError, match="training history is empty"):
        last_epoch_table(pd.DataFrame({"epoch": []}))
