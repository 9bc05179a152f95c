"""iSales → FieldControl synchronisation: the library behind the numbered scripts."""

__version__ = "1.0.0"
