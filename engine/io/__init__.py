"""Reading exports into leads and events, and writing results: the engine's file boundary.

Everything a user's file can get wrong surfaces here as an :class:`InputError` (the
whole file is unusable) or a :class:`Reject` (one row is), never as a traceback.
"""

from __future__ import annotations

from engine.io.encoding import detect_encoding
from engine.io.errors import InputError, Reject, RejectSink, UnsortedInput
from engine.io.files import EventsFile, LeadsFile
from engine.io.grouping import iter_leads_with_events
from engine.io.mapping import (
    ActivityRule,
    ConvertedSpec,
    EventsMapping,
    FieldSpec,
    LeadsMapping,
    Mapping,
    OutcomesMapping,
    load_mapping,
    parse_mapping,
    preset_names,
)
from engine.io.readers import file_format, read_columns, read_rows
from engine.io.records import LeadEvent, LeadRecord, read_events, read_leads
from engine.io.timestamps import TimestampError, TimestampParser, parse_timestamp
from engine.io.writers import RejectsWriter, atomic_path, write_cells, write_rows

__all__ = [
    "ActivityRule",
    "ConvertedSpec",
    "EventsFile",
    "EventsMapping",
    "FieldSpec",
    "InputError",
    "LeadEvent",
    "LeadRecord",
    "LeadsFile",
    "LeadsMapping",
    "Mapping",
    "OutcomesMapping",
    "Reject",
    "RejectSink",
    "RejectsWriter",
    "TimestampError",
    "TimestampParser",
    "UnsortedInput",
    "atomic_path",
    "detect_encoding",
    "file_format",
    "iter_leads_with_events",
    "load_mapping",
    "parse_mapping",
    "parse_timestamp",
    "preset_names",
    "read_columns",
    "read_events",
    "read_leads",
    "read_rows",
    "write_cells",
    "write_rows",
]
