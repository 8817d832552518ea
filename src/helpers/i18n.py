"""Report language: English or Simplified Chinese (``language: en | zh``).

Translations are data, in ``params/i18n/<language>.yaml`` (English text ->
translation). A text with no translation is shown in English.

Generated sentences are templates with ``{placeholders}``: the template is
translated, then filled (:func:`fill`, or ``t(template).format(...)``). A
sentence another stage generated in English (a caveat, a cluster name, a
figure's label) is read back through the same templates
(:func:`translate_text`, :func:`translate_figure`); :func:`english_runs`
finds what is left untranslated.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any

import pandas as pd
import yaml

from helpers import paths
from helpers.errors import ConfigError

LANGUAGES = ("en", "zh")
CJK_FONTS = ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC")


@lru_cache(maxsize=None)
def catalogue(language: str) -> dict[str, str]:
    """The translations of one language (empty for English)."""
    if language not in LANGUAGES:
        raise ConfigError(f"language {language!r} is not supported; choose one of {LANGUAGES}")
    if language == "en":
        return {}
    return {str(k): str(v) for k, v in yaml.safe_load((paths.PARAMS_DIR / "i18n" / f"{language}.yaml").read_text(encoding="utf-8")).items()}


def translate(text: str, language: str) -> str:
    """``text`` in ``language``.

    >>> translate("at risk", "zh"), translate("at risk", "en")
    ('流失风险客户', 'at risk')
    """
    return catalogue(language).get(text, text)


def translator(language: str) -> Callable[[str], str]:
    """:func:`translate` into ``language``, as a function of the text (what the report's helpers take as ``t``).

    >>> translator("zh")("at risk"), translator("en")("at risk")
    ('流失风险客户', 'at risk')
    """
    catalogue(language)  # an unsupported language fails here, not at the first text
    return partial(translate, language=language)


def translate_frame(frame: pd.DataFrame, language: str) -> pd.DataFrame:
    """Translate a table's index, columns and text cells (:func:`translate_text`: names and generated text)."""
    if language == "en":
        return frame
    t = lambda v: translate_text(v, language) if isinstance(v, str) else v  # noqa: E731
    out = frame.map(t)
    out.index = out.index.map(t)
    out.columns = out.columns.map(t)
    out.index.name = t(frame.index.name)
    out.columns.name = t(frame.columns.name)
    return out


def use_language_in_plots(language: str) -> str | None:
    """Pick a CJK font for matplotlib when the report is in Chinese; return its name (None if none is installed)."""
    if language != "zh":
        return None
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    if not installed & set(CJK_FONTS):  # installed after matplotlib built its font cache
        for path in font_manager.findSystemFonts():
            if any(tag in path.lower() for tag in ("wqy", "notosanscjk", "sourcehansans")):
                font_manager.fontManager.addfont(path)
        installed = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in installed:
            plt.rcParams["font.sans-serif"] = [name, "DejaVu Sans"]
            plt.rcParams["font.family"] = "sans-serif"
            plt.rcParams["axes.unicode_minus"] = False
            return name
    return None


#: A placeholder of a template (``{n}``, ``{share:.0%}``): its name and its format spec.
_PLACEHOLDER = re.compile(r"\{(\w+)(?::[^{}]*)?\}")


def fill(template: str, language: str, **values: Any) -> str:
    """``template`` translated into ``language`` (as a template, placeholders kept), then filled with ``values``.

    Generated sentences are translated this way, never by looking up the finished sentence; values that are
    names (a tier, a segment) are translated by the caller before they are passed.

    >>> template = "The biggest fall: {n:,} customers fell from {before} to {after}."
    >>> fill(template, "en", n=1200, before="gold", after="iron")
    'The biggest fall: 1,200 customers fell from gold to iron.'
    >>> fill(template, "zh", n=3, before="黄金客户", after="铁质客户")
    '降幅最大：3 位客户从黄金客户降为铁质客户。'
    """
    return translate(template, language).format(**values)


@lru_cache(maxsize=None)
def _patterns(language: str) -> list[tuple[re.Pattern[str], str]]:
    """The catalogue's templates (keys with placeholders) as regular expressions matching a finished sentence."""
    found = []
    for key, value in catalogue(language).items():
        if _PLACEHOLDER.search(key):
            parts = _PLACEHOLDER.split(key)  # text, name, text, name, ..., text
            regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts))
            found.append((re.compile(regex + r"\Z"), value))
    return sorted(found, key=lambda p: -len(p[0].pattern))  # the most specific template first


def translate_text(text: str, language: str) -> str:
    """Any text the report shows, in ``language``: a catalogue entry, else a generated sentence read back.

    A sentence another stage generated in English (a caveat, a cluster name, a figure's annotation) is
    matched against the catalogue's templates (``{name}`` placeholders); each captured value is
    translated in turn (a name, a number or a nested phrase), then the translated template is filled.
    Lists (``"; "``, ``", "``), sentences (``". "``) and lines are translated piece by piece. What
    matches nothing stays as it is.

    >>> translate_text("high-spend, one-off (2)", "zh")
    '高消费、一次性（2）'
    """
    if language == "en" or not text.strip():
        return text
    exact = catalogue(language).get(text)
    if exact is not None:
        return exact
    for pattern, target in _patterns(language):
        match = pattern.match(text)
        if match:
            values = {k: translate_text(v, language) for k, v in match.groupdict().items()}
            return _PLACEHOLDER.sub(lambda m: values[m.group(1)], target)
    for sep, joined in (("\n", "\n"), (". ", "。"), ("; ", "；"), (", ", "、")):
        if sep in text:
            pieces = [translate_text(p, language) for p in text.split(sep)]
            return joined.join(pieces) if pieces != text.split(sep) else text
    return text


def translate_figure(fig: Any, language: str) -> Any:
    """Every text of a matplotlib figure (titles, axis labels, tick labels, legends, annotations) in ``language``.

    The figure is drawn once first, so tick labels exist; tick labels that change are fixed on their axis
    (a formatter would redraw them in English).
    """
    if language == "en":
        return fig
    from matplotlib.text import Text

    fig.canvas.draw()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels = [label.get_text() for label in axis.get_ticklabels()]
            shown = [translate_text(label, language) for label in labels]
            if shown != labels:
                rotation = axis.get_ticklabels()[0].get_rotation()
                axis.set_ticks(axis.get_ticklocs(), labels=shown, rotation=rotation)
    for artist in fig.findobj(Text):
        artist.set_text(translate_text(artist.get_text(), language))
    return fig


#: Latin words a Chinese report may show: abbreviations, model and data-set names, codes.
LATIN_ALLOWED = frozenset(
    "CLV RFM BG NBD MBG Pareto Gamma ROC AUC ABC A B C F R M P RMSE MAE CDNOW Online Retail II Olist UK python "
    "helpers compare state rfm segment_map vs ARI k-means BTYD".split())
_LATIN_RUN = re.compile(r"[A-Za-z][\w'./-]*(?:[ ,;:()]+[A-Za-z][\w'./-]*)*")


def english_runs(text: str, words: int = 3) -> list[str]:
    """Runs of ``words`` or more Latin words (not counting :data:`LATIN_ALLOWED`) in ``text``: untranslated English.

    >>> english_runs("白金客户 CLV 75%，see the note below"), english_runs("Pareto/NBD（惩罚系数 0）")
    (['see the note below'], [])
    """
    runs = []
    for match in _LATIN_RUN.finditer(re.sub(r"<[^>]+>", " ", text)):
        counted = [w for w in re.findall(r"[A-Za-z][\w'-]*", match.group()) if w not in LATIN_ALLOWED]
        if len(counted) >= words:
            runs.append(match.group())
    return runs
