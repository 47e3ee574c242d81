"""The lab's one error: something it needs is missing or in the way."""


class LabSetupError(RuntimeError):
    """The lab cannot be built here; the message says what is missing and how to get it."""
