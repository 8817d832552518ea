"""Customer identification helpers.

Small, typed, tested functions behind the stage notebooks:

- :mod:`helpers.paths`    where things live (one place; notebooks never use ``../data``)
- :mod:`helpers.config`   parameter files in ``params/`` and their validation
- :mod:`helpers.schemas`  the customer information model (pandera) and its data dictionary
- :mod:`helpers.sources`  collecting a raw transaction log from files and databases
- :mod:`helpers.cleaning` rule-based cleaning with a quality log
- :mod:`helpers.store`    the embedded DuckDB customer database and atomic file writes
- :mod:`helpers.run`      the papermill runner (``python -m helpers.run``)
"""

from helpers.errors import DataError

__all__ = ["DataError"]
__version__ = "0.1.0"
