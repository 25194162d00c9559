"""The one error the stack commands raise: its message is the one line the user sees."""


class StackError(Exception):
    """The stack cannot do what was asked; the message names the step and where to look."""
