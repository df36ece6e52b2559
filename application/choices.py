"""What a command may choose among, and the defaults it shows: backends, line limit."""

from eventfold.infra.backends import NAMES as BACKENDS
from eventfold.infra.lines import MAX_LINE_BYTES

__all__ = ["BACKENDS", "MAX_LINE_BYTES"]
