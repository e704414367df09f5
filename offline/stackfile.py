"""Stack files as the Pulumi CLI reads them: config/stackfile.py (the program reads a deployment's sibling stack
files too, so the reader lives with the config)."""

from config.stackfile import (
    PLACEHOLDER,
    StackFile,
    StackFileError,
    available_stacks,
    load,
    raw,
    reading_stacks_from,
    stack_path,
)

__all__ = [
    "PLACEHOLDER", "StackFile", "StackFileError", "available_stacks", "load", "raw", "reading_stacks_from", "stack_path",
]
