"""One error type for bad input, as untie's UntieError: a one-line message saying what is wrong and what to do."""


class UntieError(ValueError):
    pass
