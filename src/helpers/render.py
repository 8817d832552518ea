"""An executed notebook as the report a reader opens: self-contained HTML, no code, no network.

The runner renders notebook 08 into ``report.html`` with :func:`render_html`.
"""

from __future__ import annotations

import re
from pathlib import Path

from helpers import store


def render_html(notebook: Path, target: Path) -> Path:
    """Render an executed notebook to self-contained HTML without code cells (images embedded).

    Cells tagged ``report-hide`` are left out, and so are the outputs of cells tagged ``report-hide-output``.
    """
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={"report-hide"},
                                                         remove_all_outputs_tags={"report-hide-output"}), enabled=True)
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    return store.write_text(offline(body), target)


def offline(html: str) -> str:
    """Drop the scripts nbconvert loads from CDNs (require.js, MathJax): the report must open with no network.

    >>> offline('<p>x</p><script src="https://cdn.example/require.js"></script>')
    '<p>x</p>'
    """
    return re.sub(r'<script[^>]*\bsrc="https?://[^"]*"[^>]*>\s*</script>', "", html)
