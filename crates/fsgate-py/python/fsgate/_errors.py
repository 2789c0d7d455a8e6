"""The exception every fsgate method raises."""


class FsgateError(Exception):
    """An fsgate error: ``code`` is the reference's error code (2 file not found, 5 access
    denied, 87 invalid parameter, ...), ``message`` says what failed and why."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} (code {self.code})"
