"""Embedded address index: readers of address files, French text folding, search, reverse and persistence."""

from connectors.sig.addressindex.index import AddressIndex, build_index
from connectors.sig.addressindex.sources import AddressRecord, SourceError, read_records
from connectors.sig.addressindex.store import IndexFormatError

__all__ = ["AddressIndex", "AddressRecord", "IndexFormatError", "SourceError", "build_index", "read_records"]
