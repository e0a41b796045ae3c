"""Shaping values that pulumi-random generates."""


def urlsafe_base64(standard_base64: str) -> str:
    """pulumi-random gives standard base64; URL-safe base64 is what Langflow (a Fernet key) and
    oauth2-proxy (a cookie secret) decode."""
    return standard_base64.translate(str.maketrans("+/", "-_"))
