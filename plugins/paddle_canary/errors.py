"""Errors a person can act on. The CLI prints them without a traceback and exits 2."""


class UserError(Exception):
    """A request that cannot be carried out as given (bad name, bad weight, missing file...).

    Raised before anything changes, so nothing is half-written when it is seen.
    """
