"""CSV/XLSX/ODS files as w.c.s. data sources (Passerelle's ``csvdatasource``)."""

from connectors.csvdatasource.connector import CsvDataSource

__all__ = ["CsvDataSource"]
