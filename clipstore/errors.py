"""Exception types for what the user can fix, so the CLI can print one clear paragraph and exit
non-zero: `InputError` (bad input, exit 2) and `OutputError` (the output cannot be written:
disk full, read-only, permissions; exit 1)."""
from __future__ import annotations


class _Described(Exception):
    """Says which file, which record, what went wrong and what to do."""

    def __init__(self, what: str, *, file: str | None = None, record: str | None = None,
                 hint: str | None = None):
        self.what, self.file, self.record, self.hint = what, file, record, hint
        super().__init__(self.message())

    def __reduce__(self):
        # keep file/record/hint when the error crosses a process boundary (dask workers)
        return (_rebuild, (type(self), self.what, self.file, self.record, self.hint))

    def message(self) -> str:
        parts = []
        if self.file:
            parts.append(f"{self.file}:")
        if self.record:
            parts.append(f"{self.record}:")
        parts.append(self.what)
        text = " ".join(parts)
        if self.hint:
            text += f" — {self.hint}"
        return text


def _rebuild(cls, what, file, record, hint):
    return cls(what, file=file, record=record, hint=hint)


class InputError(_Described):
    """Bad user input: says which file, which record, what was expected and what to do."""


class OutputError(_Described):
    """The output could not be written (full or read-only disk, no permission): not the input's
    fault, so the CLI exits 1, not 2. A build stopped by it resumes when rerun."""


class IncompleteStoreError(InputError):
    """A store whose build has not finished; readers refuse it rather than serve partial data."""
