"""The registry's error type."""

from paddle_canary.errors import UserError


class RegistryError(UserError):
    """A registry request that cannot be carried out: bad name, unknown version, bad export.

    Raised before anything is written.
    """
