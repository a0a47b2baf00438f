"""The result plots: geometry from turing.plots, drawn by a template that escapes every text."""

from django.template.loader import render_to_string

from turing import plots


def test_a_rater_name_is_escaped_in_the_plot():
    summary = type("S", (), {"roc": [(0.0, 0.0), (0.5, 0.8), (1.0, 1.0)], "auc": None})()
    plot = plots.roc_plot({"<script>alert(1)</script>": summary})
    svg = render_to_string("turing/_plot.html", {"plot": plot})
    assert "<script>" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;: AUC n/a" in svg
    assert svg.count('class="roc-curve"') == 1
    assert 'data-plot="roc"' in svg


def test_the_histogram_bins_the_fooling_rates():
    plot = plots.fooling_plot({"a": 0.05, "b": 0.06, "c": 1.0}, bins=10)
    bars = [rect for rect in plot["rects"] if rect.get("class") == "bar"]
    assert [bar["title"] for bar in bars] == ["2 image(s)", "1 image(s)"]
    assert bars[0]["height"] == 2 * bars[1]["height"]
