""".dockerignore, read and matched exactly as the docker CLI does.

The docker CLI, not the daemon, decides which files of a local context are
sent, so the shim must decide the same way or a build differs from a local
one.  This follows moby/patternmatcher (``ignorefile.ReadAll``, ``Pattern``
compiled to a regexp, ``MatchesOrParentMatches``) and docker's
``TrimBuildFilesFromExcludes``: the Dockerfile and .dockerignore are always
sent, even when a pattern names them.
"""

import os
import re

from remote_docker import gofs
from remote_docker.errors import DockerError

# Characters filepath.Match gives no meaning but a regexp would: escaped.
_ESCAPE = frozenset(".+()|{}$")


def parse(text: str) -> list[str]:
    """Patterns from a .dockerignore's text (``ignorefile.ReadAll``)."""
    patterns = []
    for number, line in enumerate(text.split("\n")):
        if number == 0:
            line = line.removeprefix("\ufeff")
        line = line.removesuffix("\r")  # bufio.ScanLines drops a CR before the LF
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if invert else pattern)
    return patterns


def clean(path: str) -> str:
    """Go's ``filepath.Clean``: ``os.path.normpath`` but a leading ``//`` is ``/`` too."""
    path = os.path.normpath(path)
    return "/" + path.lstrip("/") if path.startswith("//") else path


def read(context_dir: str) -> list[str]:
    """The context's .dockerignore patterns; none when there is no such file."""
    try:
        with open(os.path.join(context_dir, ".dockerignore"), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise DockerError(f"failed to read .dockerignore: {gofs.reason(exc)}") from None
    return parse(data.decode("utf-8", "surrogateescape"))


def keep_build_files(patterns: list[str], dockerfile: str) -> list[str]:
    """``TrimBuildFilesFromExcludes``: never exclude .dockerignore or the Dockerfile."""
    matcher = PatternMatcher(patterns)
    if matcher.matches(".dockerignore"):
        patterns = [*patterns, "!.dockerignore"]
    if dockerfile and matcher.matches(dockerfile):
        patterns = [*patterns, "!" + dockerfile]
    return patterns


class Pattern:
    """One pattern: its cleaned text, whether it is a ``!`` exception, its regexp."""

    __slots__ = ("text", "exclusion", "dirs", "regexp")

    def __init__(self, raw: str) -> None:
        pattern = clean(raw.strip())
        self.exclusion = pattern.startswith("!")
        if self.exclusion:
            if len(pattern) == 1:
                raise DockerError('illegal exclusion pattern: "!"')
            pattern = pattern[1:]
        self.text = pattern
        self.dirs = pattern.split("/")
        self.regexp = re.compile(_to_regexp(pattern))  # '.' stops at newlines, as in Go

    def match(self, path: str) -> bool:
        return self.regexp.match(path) is not None


def _to_regexp(pattern: str) -> str:
    """patternmatcher's ``compile``: ``**`` crosses directories, ``*`` and ``?`` do not."""
    out = "^"
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                out += ".*" if i >= n else "(.*/)?"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch in _ESCAPE:
            out += "\\" + ch
        elif ch == "\\":
            if i < n:  # an escaped character: literal (a letter would be a regexp class)
                out += re.escape(pattern[i])
                i += 1
            else:
                out += "\\\\"
        else:  # like Go's: other characters, '[' and ']' included, pass to the regexp as is
            out += ch
    out += "$"
    try:
        re.compile(out)
    except re.error:
        raise DockerError(f"syntax error in pattern: {pattern}") from None
    return out


class PatternMatcher:
    """An ordered list of patterns; a later one wins, as in docker."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns = [Pattern(p) for p in patterns if p.strip()]
        self.has_exclusions = any(p.exclusion for p in self.patterns)

    def matches(self, path: str) -> bool:
        """``MatchesOrParentMatches``: the path or one of its parent directories matches."""
        parent = os.path.dirname(path) or "."
        parents = parent.split("/")
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            match = pattern.match(path)
            if not match and parent != ".":
                match = any(pattern.match("/".join(parents[:k + 1]))
                            for k in range(len(parents)))
            if match:
                matched = not pattern.exclusion
        return matched

    def may_include_below(self, directory: str) -> bool:
        """An excluded directory must still be walked if an exception names something in it."""
        prefix = directory + "/"
        return any(p.exclusion and (p.text + "/").startswith(prefix) for p in self.patterns)
