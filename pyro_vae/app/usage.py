"""Usage errors in one line, with a suggestion for a misspelled option, command or choice.

argparse prints its usage block and then the error; here the error is the one line (the
``--help`` of the command still has the whole usage), and a word that is close to one the
parser knows (:func:`difflib.get_close_matches`) is suggested: ``--latnt-dim`` -> ``did you
mean --latent-dim?``.
"""

from __future__ import annotations

import argparse
import difflib
import re
from typing import NoReturn

_INVALID_CHOICE = re.compile(r"invalid choice: '(?P<value>.*?)' \(choose from (?P<choices>.*)\)")
_UNRECOGNIZED = "unrecognized arguments: "


def close_match(word: str, candidates: list[str]) -> str | None:
    """The candidate closest to ``word`` if one is close enough (difflib ratio >= 0.6)."""
    found = difflib.get_close_matches(word, candidates, n=1)
    return found[0] if found else None


class UsageParser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose errors are one line with a "did you mean"
    (its sub-commands' parsers are of this class too)."""

    def option_strings(self) -> list[str]:
        return [s for action in self._actions for s in action.option_strings]

    def suggestion(self, message: str) -> str:
        """`` (did you mean X?)`` for an error ``message`` about a misspelled word, else ''."""
        choice = _INVALID_CHOICE.search(message)
        if choice:
            options = re.findall(r"'(.*?)'", choice["choices"])
            match = close_match(choice["value"], options)
            return f" (did you mean {match!r}?)" if match else ""
        if message.startswith(_UNRECOGNIZED):
            hints = {}
            for word in message[len(_UNRECOGNIZED) :].split():
                if word.startswith("-"):
                    match = close_match(word.split("=", 1)[0], self.option_strings())
                    if match:
                        hints[word] = match
            if len(hints) == 1:
                return f" (did you mean {next(iter(hints.values()))}?)"
            words = ", ".join(f"{match} for {word}" for word, match in hints.items())
            return f" (did you mean {words}?)" if hints else ""
        return ""

    def error(self, message: str) -> NoReturn:
        self.exit(
            2,
            f"{self.prog}: error: {message}{self.suggestion(message)}; see {self.prog} --help\n",
        )
