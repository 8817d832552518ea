"""Report language: English or Simplified Chinese (``language: en | zh``).

Translations are data, in ``params/i18n/<language>.yaml`` (English text ->
translation). A text with no translation is shown in English.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, partial

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
    """Translate a table's index, columns and text cells."""
    if language == "en":
        return frame
    t = lambda v: translate(v, language) if isinstance(v, str) else v  # noqa: E731
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
