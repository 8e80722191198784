"""E-mail addresses as accounts are keyed: one spelling per address, checked before any query.

`ALICE@example.com ` and `alice@example.com` are one account; an address that carries an invisible
character (zero-width space, soft hyphen, bidi control...) is refused outright instead of being
compared, because some collations ignore such characters and would find another user's row.
"""

import unicodedata

# RFC 5321's limit on a forward path; the users table's column holds it with room to spare.
MAX_LENGTH = 254

# Unicode's Default_Ignorable_Code_Point characters that are not in a "C" or "Z" category (those are
# refused as a whole): combining grapheme joiner, Hangul fillers, Khmer vowels inherent, variation
# selectors. Renderers draw nothing for them, and UCA collations compare them as nothing.
_IGNORABLE_MARKS = frozenset(
    [0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0, *range(0x180B, 0x1810),
     *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)]
)


class InvalidEmail(ValueError):
    """The text cannot be any account's address; the message says why, without echoing it."""


def normalise(text: str) -> str:
    """The one spelling of an address: NFKC, case-folded, without surrounding blanks.

    Raises InvalidEmail for text no account can have: too long, no `@`, or with a control, format
    (zero-width), separator or otherwise invisible character in it."""
    if len(text) > 4 * MAX_LENGTH:  # bounds the work below; the exact limit is checked after NFKC
        raise InvalidEmail(f"An e-mail address has at most {MAX_LENGTH} characters.")
    email = unicodedata.normalize("NFKC", text).casefold().strip()
    if len(email) > MAX_LENGTH:
        raise InvalidEmail(f"An e-mail address has at most {MAX_LENGTH} characters.")
    if any(_invisible(char) for char in email):
        raise InvalidEmail("An e-mail address cannot contain blanks, control or invisible characters.")
    local, at, domain = email.rpartition("@")
    if not (local and at and domain):
        raise InvalidEmail("An e-mail address looks like name@example.com.")
    return email


def _invisible(char: str) -> bool:
    # Categories C* (control, format, surrogate, private use, unassigned) and Z* (spaces and line or
    # paragraph separators), which is what str.isprintable refuses, the ASCII space aside.
    return not char.isprintable() or char == " " or ord(char) in _IGNORABLE_MARKS
