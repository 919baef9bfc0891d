"""Writing generated files without losing a user's edits.

Each generated file's last generated text is kept under `<project>/.scaffold/` (commit it with
the project). Writing a file again compares three texts: that last generated one (the base), the
file as it is now (the user's) and the new generated one. An unedited file is replaced; an edited
one gets the generator's changes merged into it line by line, where they touch lines the user
did not change; anything else is a conflict, and the file is left as the user has it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

STATE_DIR = ".scaffold"


@dataclass
class WriteResult:
    path: Path
    action: str  # created, updated, unchanged, merged, conflict, not-generated

    @property
    def needs_attention(self) -> bool:
        return self.action in ("conflict", "not-generated")


def write_generated(project_dir: Path, relative: Path, text: str) -> WriteResult:
    target = project_dir / relative
    base_path = project_dir / STATE_DIR / relative
    if not target.exists():
        _write(target, text)
        _write(base_path, text)
        return WriteResult(target, "created")
    current = target.read_text()
    if not base_path.exists():
        return WriteResult(target, "unchanged" if current == text else "not-generated")
    base = base_path.read_text()
    if text == base:
        return WriteResult(target, "unchanged")
    if current == base:
        _write(target, text)
        _write(base_path, text)
        return WriteResult(target, "updated")
    merged = merge3(base, current, text)
    if merged is None:
        return WriteResult(target, "conflict")
    _write(target, merged)
    _write(base_path, text)
    return WriteResult(target, "merged")


def merge3(base: str, ours: str, theirs: str) -> str | None:
    """`ours` with the changes from `base` to `theirs` applied, or None where one of them touches
    lines `ours` changed (or has no unchanged neighbour to place an insertion by)."""
    base_lines, our_lines, their_lines = base.splitlines(True), ours.splitlines(True), theirs.splitlines(True)
    ours_at: dict[int, int] = {}  # base line -> the same, unchanged line in ours
    for tag, i1, i2, j1, _ in difflib.SequenceMatcher(None, base_lines, our_lines, autojunk=False).get_opcodes():
        if tag == "equal":
            ours_at.update({i1 + k: j1 + k for k in range(i2 - i1)})
    edits: list[tuple[int, int, list[str]]] = []  # ours[start:end] = lines
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, base_lines, their_lines, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        new = their_lines[j1:j2]
        if i1 == i2:  # an insertion: after the line before it, or before the line after it
            if i1 > 0 and i1 - 1 in ours_at:
                at = ours_at[i1 - 1] + 1
            elif i1 in ours_at:
                at = ours_at[i1]
            elif i1 == 0:
                at = 0
            else:
                return None
            edits.append((at, at, new))
            continue
        mapped = [ours_at.get(i) for i in range(i1, i2)]
        if None in mapped or mapped != list(range(mapped[0], mapped[0] + len(mapped))):  # type: ignore[arg-type]
            return None
        edits.append((mapped[0], mapped[-1] + 1, new))  # type: ignore[operator]
    result = list(our_lines)
    for start, end, lines in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        result[start:end] = lines
    return "".join(result)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
