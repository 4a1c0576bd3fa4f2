"""What every model of a profile shares."""

from __future__ import annotations

from pydantic import ConfigDict

# Unknown keys are errors (a typo must not silently become a default), and a phone number
# written without quotes (+14255550100, a YAML int) still reads as text. Each module defines
# its own base class with this config: ruff sees that a class is a pydantic model (whose
# mutable defaults are copied per instance) only when its base is in the same file.
SECTION_CONFIG = ConfigDict(extra="forbid", coerce_numbers_to_str=True, frozen=True)
