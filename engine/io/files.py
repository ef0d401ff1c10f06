"""Export files that can be read more than once, each by its fastest sound reader.

A leads or events file is read through Arrow blocks where the format allows
(:mod:`engine.io.arrow_leads`) and row by row otherwise (:mod:`engine.io.records`);
this module picks, so neither reader imports the other.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime
from pathlib import Path

from engine.io.arrow_leads import lead_records
from engine.io.errors import InputError, RejectSink
from engine.io.mapping import Mapping
from engine.io.records import LeadEvent, LeadRecord, column_ids, read_events, read_leads


class LeadsFile:
    """A leads file that can be read more than once (grouping may pre-scan its ids)."""

    def __init__(
        self,
        path: str | Path,
        mapping: Mapping,
        *,
        on_reject: RejectSink,
        as_of: datetime | None = None,
        allowed_types: Collection[str] | None = None,
        encoding: str | None = None,
        delimiter: str | None = None,
    ) -> None:
        self.path, self.mapping, self.on_reject = path, mapping, on_reject
        self.as_of, self.allowed_types = as_of, allowed_types
        self.encoding = encoding or mapping.encoding
        self.delimiter = delimiter

    def __iter__(self) -> Iterator[LeadRecord]:
        fast = lead_records(self)
        if fast is not None:
            return fast
        return read_leads(
            self.path,
            self.mapping,
            on_reject=self.on_reject,
            as_of=self.as_of,
            allowed_types=self.allowed_types,
            encoding=self.encoding,
            delimiter=self.delimiter,
        )

    def lead_ids(self) -> Iterator[str]:
        """The id column alone, in file order, with no conversion and no rejects."""
        return column_ids(self.path, self.mapping.leads.id, self.encoding, self.delimiter)


class EventsFile:
    """An events file that can be read more than once (see :class:`LeadsFile`)."""

    def __init__(
        self,
        path: str | Path,
        mapping: Mapping,
        *,
        on_reject: RejectSink,
        allowed_types: Collection[str] | None = None,
        encoding: str | None = None,
        delimiter: str | None = None,
    ) -> None:
        if mapping.events is None:
            raise InputError("the mapping has no 'events' section", hint="add one or omit --events")
        self.path, self.mapping, self.on_reject = path, mapping, on_reject
        self.allowed_types = allowed_types
        self.encoding = encoding or mapping.encoding
        self.delimiter = delimiter

    def __iter__(self) -> Iterator[LeadEvent]:
        return read_events(
            self.path,
            self.mapping,
            on_reject=self.on_reject,
            allowed_types=self.allowed_types,
            encoding=self.encoding,
            delimiter=self.delimiter,
        )

    def lead_ids(self) -> Iterator[str]:
        """The lead id column alone, in file order, with no conversion and no rejects."""
        assert self.mapping.events is not None
        return column_ids(self.path, self.mapping.events.lead_id, self.encoding, self.delimiter)
