"""Local, stateful, fault-injecting simulators of iSales, FieldControl, Nominatim, Google
geocoding and a link shortener (docs/api/*.md). Start with `python -m sandbox serve`.
"""

from .core import Sandbox

__all__ = ["Sandbox"]
