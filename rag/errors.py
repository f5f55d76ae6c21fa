"""The one exception type the front ends catch and print: its message says what to do next."""


class RagError(Exception):
    """A problem the user can fix (bad input, missing folder, corrupt store, bad model file)."""
