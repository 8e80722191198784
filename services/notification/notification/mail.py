"""E-mail through SMTP, when SMTP_HOST is set.

A header never carries user text as it is: Python's e-mail package decodes RFC 2047 encoded words
in a header value it is given, so the file name `=?utf-8?q?=0D=0ABcc:_x@evil.example?=.mp4` would
become a line break and a Bcc header of its own, and a U+2028 makes setting the header raise.
`subject_text` keeps only what cannot turn into either.
"""

import re
import smtplib
from email.message import EmailMessage

from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from common.settings import NotificationSettings

# Letters and digits of any script, spaces and a little punctuation: no "=" or "?" (no encoded word),
# no control, format or separator characters (no line break however it is spelt).
_NOT_PLAIN = re.compile(r"[^\w .,()\[\]+-]")
SUBJECT_TEXT_LENGTH = 60


def subject_text(text: str) -> str:
    """User text made fit for a Subject: each character that is not plain becomes "_"."""
    plain = _NOT_PLAIN.sub("_", text)
    return plain if len(plain) <= SUBJECT_TEXT_LENGTH else plain[: SUBJECT_TEXT_LENGTH - 3] + "..."


class Mailer:
    def __init__(self, settings: NotificationSettings):
        self._settings = settings

    @property
    def enabled(self) -> bool:
        return bool(self._settings.smtp_host)

    @retry(retry=retry_if_exception_type((smtplib.SMTPException, OSError)), stop=stop_after_attempt(3),
           wait=wait_exponential(multiplier=0.5, max=4), reraise=True)
    def send(self, to: str, subject: str, body: str) -> None:
        s = self._settings
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = s.smtp_from, to, subject
        message.set_content(body)
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=10) as smtp:
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password.get_secret_value())
            smtp.send_message(message)
