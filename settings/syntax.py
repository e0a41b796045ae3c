"""Host names, URLs and characters as the programs that read them parse them.

Python's parsers are more lenient than Go's, which oauth2-proxy, Dex and the Kubernetes API server use:
`urllib.parse` accepts control characters, ports above 65535 (until `.port` is read) and non-ASCII hosts,
and `ipaddress` accepts an IPv6 zone (`fe80::1%eth0`). These checks refuse what the Go side would refuse,
before anything registers, and point at the character when a look-alike is to blame.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
import urllib.parse
from typing import Optional

# RFC 1123 host name labels: what DNS, certificates and redirect URIs hold.
HOST_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
HOST_MAX = 253


def odd_character(value: str) -> Optional[str]:
    """Where `value` holds a character that is not printable ASCII, said so a person can find it (None: none)."""
    for index, character in enumerate(value):
        if " " < character < "\x7f":
            continue
        code = f"U+{ord(character):04X}"
        name = unicodedata.name(character, "")
        what = f"{code} {name}" if name else code
        if character == " ":
            kind = "a space"
        elif unicodedata.category(character) in ("Cc", "Cf", "Zs", "Zl", "Zp") or not name:
            kind = f"an invisible or control character ({what})"
        else:
            kind = f"{character!r} ({what}), not ASCII"
        return f"character {index + 1} is {kind}: type it again in plain ASCII"
    return None


def with_character(message: str, value: object) -> str:
    """`message`, with where the odd character is when one is to blame."""
    odd = odd_character(value) if isinstance(value, str) else None
    return f"{message} ({odd})" if odd else message


def host_name_problem(host: str, what: str = "host name", example: str = "langflow.example.com") -> Optional[str]:
    """A DNS host name (no IP address, no port): ASCII labels of 1 to 63 characters, 253 in all."""
    odd = odd_character(host)
    if odd:
        hint = ""
        if all(c.isprintable() and not c.isspace() for c in host):
            try:
                hint = f" (a name in another script goes in its ASCII form, e.g. {host.encode('idna').decode()})"
            except UnicodeError:
                pass
        return f"{host!r} is not a valid {what}: {odd}{hint}"
    if not host or len(host) > HOST_MAX:
        return f"{host!r} is not a valid {what}: 1 to {HOST_MAX} characters; write e.g. {example}"
    for label in host.split("."):
        if len(label) > 63:
            return (f"{host!r} is not a valid {what}: the label {label[:20]}... is {len(label)} characters long, and DNS "
                    f"allows 63 per label; write e.g. {example}")
        if not HOST_LABEL.match(label):
            return (f"{host!r} is not a valid {what}: each dot-separated part needs lowercase letters, digits and '-', "
                    f"starting and ending with a letter or digit; write e.g. {example}")
    return None


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return "%" not in host
    except ValueError:
        return False


def url_problem(value: str, *, schemes: tuple[str, ...] = ("https",), example: str,
                loopback_http: bool = False) -> Optional[str]:
    """Why Go's url.Parse, or the program reading the URL, would refuse `value` (None: it is a usable URL).

    No user info (a password in a URL lands in logs and flags), no query or fragment, a port of 1 to 65535,
    a DNS host name or an IP literal. `loopback_http`: http is allowed on a loopback host."""
    odd = odd_character(value)
    if odd:
        return f"{value!r} is not a URL: {odd}"
    parts = urllib.parse.urlsplit(value)
    netloc = parts.netloc
    if parts.scheme not in schemes and not (loopback_http and parts.scheme == "http"):
        allowed = " or ".join(schemes)
        return f"{value!r} must be an {allowed} URL{' (http only on localhost)' if loopback_http else ''}, e.g. {example}"
    if "@" in netloc:
        return f"{value!r} holds user info before '@'; credentials never go in this URL: remove them, e.g. {example}"
    if parts.query or parts.fragment or "?" in value or "#" in value:
        return f"{value!r} must not have a query or fragment; write e.g. {example}"
    host, port = netloc, ""
    if host.startswith("["):
        inside, bracket, rest = host[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return f"{value!r} is not a URL: a bracketed IPv6 address must end with ']'; write e.g. {example}"
        host, port = inside, rest[1:]
        if not is_ip_literal(host) or ":" not in host:
            return f"{value!r} is not a URL: [{host}] is not an IPv6 address (zones are not allowed); write e.g. {example}"
    elif ":" in host:
        host, _, port = host.partition(":")
    if ":" in port or (port and not port.isdigit()) or (port and not 1 <= int(port) <= 65535) or netloc.endswith(":"):
        return f"{value!r} has the port {port!r}; a port is a number from 1 to 65535 (or none for the scheme's own)"
    if not host:
        return f"{value!r} has no host; write e.g. {example}"
    if not is_ip_literal(host):
        problem = host_name_problem(host.lower(), "host name in the URL", urllib.parse.urlsplit(example).hostname or "")
        if problem:
            return problem
        if host != host.lower():
            return f"{value!r}: write the host in lowercase ({host.lower()}); issuers and redirects are compared exactly"
    if loopback_http and parts.scheme == "http" and host not in ("localhost", "127.0.0.1", "::1"):
        return f"{value!r} must be an https URL (http only on localhost), e.g. {example}"
    return None


def expansion_problem(value: str) -> Optional[str]:
    """Kubernetes replaces `$(NAME)` in a container's env values and args with the variable NAME (and `$$` with
    `$`): a value the program puts there must hold neither, or the container would see another text."""
    if "$(" in value or "$$" in value:
        return (f"{value!r} holds '$(' or '$$', which Kubernetes expands in a container's environment and arguments, "
                "so the program would see another text; remove it")
    return None


def cidr_problem(cidr: str, example: str = "203.0.113.0/24") -> Optional[str]:
    """Why `cidr` is not an address range as Go's ParseCIDR (and so the API server) reads it, written exactly."""
    if "%" in cidr or odd_character(cidr):
        # Python takes an IPv6 zone (fe80::1%eth0); Go does not.
        return with_character(f"{cidr!r} is not an address range (no zone, no spaces); write e.g. {example} or "
                              "2001:db8::/32", cidr)
    try:
        ipaddress.ip_network(cidr, strict=True)
    except ValueError:
        try:
            fixed = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return f"{cidr!r} is not an address range; write e.g. {example} (one address: a /32)"
        return f"{cidr!r} has host bits set; write the range as {fixed}"
    return None
