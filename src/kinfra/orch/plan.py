"""The milestone plan parser: markdown text in, immutable records out.

Pure and deterministic: no regex soup over the whole file and no LLM. The text
is read line by line, fenced code blocks are tracked so that a ``## Task`` or
``**Label:**`` inside a code sketch is never taken for structure, and every
problem is reported with its line number.

Format (seed 002): ``# Milestone N: Title``; ``## Task N.M: Title`` (or
``###``) sections holding bold labels (``**Type:** CODING``,
``**Acceptance Criteria:**`` followed by a bullet/checkbox list...); an E2E
section either inside a task (``**E2E Test: name**``) or as its own heading.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kinfra.errors import PlanError

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})(.*)$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_MILESTONE_HEADING = re.compile(r"^Milestone\s+([A-Za-z]*\d+(?:\.\d+)?)\b\s*[:\-—–]?\s*(.*)$", re.I)
_TASK_HEADING = re.compile(r"^Task\b\s*(.*)$", re.I)
_TASK_ID_TITLE = re.compile(r"^(\d+(?:\.\d+)*)\s*(?:[:\-—–.]\s*)?(.*)$")
_FILE_MILESTONE = re.compile(r"^(M\d+(?:\.\d+)?)(?:[_\-. ]|$)", re.I)
# "**Label:** value" or "**Label**: value"
_LABEL = re.compile(r"^\s{0,3}\*\*([^*]+?):\*\*\s*(.*)$|^\s{0,3}\*\*([^*]+?)\*\*:\s*(.*)$")
_E2E_LABEL = re.compile(r"^\s{0,3}\*\*(E2E\s+Test\b[^*]*)\*\*\s*:?\s*$", re.I)
_LIST_ITEM = re.compile(r"^(\s*)(?:[-*+]|\d+[.)])\s+(?:\[([ xX])\]\s+)?(.*)$")
_HRULE = re.compile(r"^\s{0,3}(?:-{3,}|\*{3,}|_{3,})\s*$")

# Label (lower case) -> field name of Task.
_KNOWN_FIELDS = {
    "file(s)": "files",
    "files": "files",
    "file": "files",
    "type": "type",
    "description": "description",
    "implementation notes": "notes",
    "acceptance criteria": "acceptance",
    "testing requirements": "testing",
    "check": "check",
}


@dataclass(frozen=True)
class Criterion:
    """One acceptance criterion of a task: its text, whether it is checked, its line."""

    text: str
    checked: bool
    line: int


@dataclass(frozen=True)
class E2ESection:
    """An E2E section of the plan: in a task, or of the whole plan."""

    name: str
    text: str
    line: int
    task_id: str | None  # the task it sits in, or None for a plan-level section


@dataclass(frozen=True)
class Task:
    """A task section of the plan (``## Task N.M: Title``) and its labelled fields."""

    id: str
    title: str
    line: int  # of its heading, 1-based
    level: int  # 2 for "##", 3 for "###"
    text: str  # the whole section, heading included, code blocks intact
    type: str | None = None
    files: tuple[str, ...] = ()
    description: str = ""
    notes: str = ""
    acceptance: tuple[Criterion, ...] = ()
    testing: str = ""
    check: str | None = None  # a per-task verification command ("**Check:** `make test`")
    extra: Mapping[str, str] = field(default_factory=dict)  # other labelled fields


@dataclass(frozen=True)
class PlanIssue:
    """A problem found in a plan, with its line (0: no line)."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass(frozen=True)
class Plan:
    """A parsed milestone plan: its tasks, E2E sections and warnings."""

    milestone: str
    title: str
    source: str  # the file name, for messages
    hash: str  # sha256 of the text: a changed plan is noticed on resume
    tasks: tuple[Task, ...]
    e2e: tuple[E2ESection, ...]
    warnings: tuple[PlanIssue, ...] = ()

    def task(self, task_id: str) -> Task:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(task_id)

    @property
    def task_ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.tasks)


def plan_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_plan(path: Path) -> Plan:
    """Read and parse a plan file (the only I/O of this module)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PlanError(f"plan {path} not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"cannot read plan {path}: {exc}") from exc
    return parse_plan(text, path.name)


def parse_plan(text: str, filename: str) -> Plan:
    """Parse a plan; raises PlanError listing every problem with its line."""
    lines = text.splitlines()
    structural = _structural_lines(lines)
    issues: list[PlanIssue] = list(structural.issues)
    warnings: list[PlanIssue] = []

    milestone, title = _milestone(filename, lines, structural, issues)

    # Task headings and where their sections end.
    starts: list[tuple[int, int, str, str]] = []  # (index, level, id, title)
    seen: dict[str, int] = {}
    for index, level, heading in structural.headings:
        match = _TASK_HEADING.match(heading)
        if not match or level not in (2, 3):
            continue
        rest = match.group(1).strip()
        id_match = _TASK_ID_TITLE.match(rest)
        if not id_match:
            # "## Task: Foo" or "## Task A: Foo" is a broken task heading;
            # "## Task categories" is just a heading.
            if not rest or rest.startswith(":") or re.match(r"^[\w.]+\s*:", rest):
                issues.append(PlanIssue(index + 1, f"task heading without an id: {heading!r}"))
            continue
        task_id, task_title = id_match.group(1), id_match.group(2).strip()
        if not task_title:
            issues.append(PlanIssue(index + 1, f"task {task_id} has no title"))
        if task_id in seen:
            issues.append(
                PlanIssue(index + 1, f"duplicate task id {task_id} (first at line {seen[task_id]})")
            )
        else:
            seen[task_id] = index + 1
        starts.append((index, level, task_id, task_title))

    tasks: list[Task] = []
    e2e: list[E2ESection] = []
    for index, level, task_id, task_title in starts:
        end = _section_end(structural.headings, index, level, len(lines))
        task, task_e2e = _parse_task(
            lines, structural.in_code, index, end, level, task_id, task_title
        )
        tasks.append(task)
        if task_e2e:
            e2e.append(task_e2e)
        if not task.acceptance:
            warnings.append(PlanIssue(index + 1, f"task {task_id} has no acceptance criteria"))

    # Plan-level E2E sections: a non-task heading mentioning E2E.
    for index, level, heading in structural.headings:
        # (Not the milestone's own title, which may name E2E too.)
        if (
            re.search(r"\bE2E\b", heading)
            and not _TASK_HEADING.match(heading)
            and not _MILESTONE_HEADING.match(heading)
        ):
            end = _section_end(structural.headings, index, level, len(lines))
            body = "\n".join(lines[index + 1 : end]).strip()
            e2e.append(E2ESection(heading, _strip_rules(body), index + 1, None))

    if not starts and not any("task heading" in i.message for i in issues):
        issues.append(
            PlanIssue(0, "no tasks found (expected '## Task N.M: Title' or '### Task N.M: Title')")
        )
    if issues:
        issues.sort(key=lambda i: i.line)
        details = "\n".join(f"  {issue}" for issue in issues)
        raise PlanError(
            f"plan {filename} is malformed:\n{details}",
            hint="fix the plan; `kinfra orch plan <plan.md>` shows what was parsed",
            issues=tuple(issues),
        )
    return Plan(
        milestone=milestone,
        title=title,
        source=filename,
        hash=plan_hash(text),
        tasks=tuple(tasks),
        e2e=tuple(e2e),
        warnings=tuple(warnings),
    )


@dataclass
class _Structure:
    """A plan's skeleton: its headings outside code, which lines are code, the problems found."""

    headings: list[tuple[int, int, str]]  # (index, level, text) outside code
    in_code: list[bool]  # per line: inside a fenced block (fence lines included)
    issues: list[PlanIssue]


def _structural_lines(lines: list[str]) -> _Structure:
    headings: list[tuple[int, int, str]] = []
    in_code = [False] * len(lines)
    issues: list[PlanIssue] = []
    fence: str | None = None
    fence_line = 0
    for index, line in enumerate(lines):
        match = _FENCE.match(line)
        if fence is None:
            if match:
                fence = match.group(1)
                fence_line = index
                in_code[index] = True
                continue
            heading = _HEADING.match(line)
            if heading:
                headings.append((index, len(heading.group(1)), heading.group(2)))
        else:
            in_code[index] = True
            if (
                match
                and match.group(1)[0] == fence[0]
                and len(match.group(1)) >= len(fence)
                and not match.group(2).strip()
            ):
                fence = None
    if fence is not None:
        issues.append(PlanIssue(fence_line + 1, f"code block opened with {fence} is never closed"))
    return _Structure(headings, in_code, issues)


def _milestone(
    filename: str, lines: list[str], structure: _Structure, issues: list[PlanIssue]
) -> tuple[str, str]:
    from_file = None
    match = _FILE_MILESTONE.match(Path(filename).name)
    if match:
        from_file = match.group(1).upper()
    from_heading = None
    title = ""
    heading_line = 0
    for index, level, heading in structure.headings:
        if level != 1:
            continue
        m = _MILESTONE_HEADING.match(heading)
        if m:
            number = m.group(1)
            from_heading = number.upper() if number[0].isalpha() else f"M{number}"
            title = m.group(2).strip()
            heading_line = index + 1
            break
        if not title:
            title = heading
    if from_file and from_heading and from_file != from_heading:
        issues.append(
            PlanIssue(
                heading_line,
                f"the heading says milestone {from_heading} but the file name says {from_file}",
            )
        )
    milestone = from_file or from_heading
    if milestone is None:
        issues.append(
            PlanIssue(
                0,
                "no milestone id: name the file M<N>_<name>.md or start it with "
                "'# Milestone <N>: <title>'",
            )
        )
        milestone = ""
    del lines
    return milestone, title


def _section_end(headings: list[tuple[int, int, str]], start: int, level: int, total: int) -> int:
    for index, other_level, _ in headings:
        if index > start and other_level <= level:
            return index
    return total


def _strip_rules(text: str) -> str:
    out = text.splitlines()
    while out and (not out[-1].strip() or _HRULE.match(out[-1])):
        out.pop()
    return "\n".join(out).strip()


def _parse_task(
    lines: list[str],
    in_code: list[bool],
    start: int,
    end: int,
    level: int,
    task_id: str,
    title: str,
) -> tuple[Task, E2ESection | None]:
    # Split the body into labelled blocks; code lines never start a block.
    blocks: list[tuple[str, int, list[str]]] = []  # (label, line index, lines)
    current: tuple[str, int, list[str]] | None = None
    e2e_name: str | None = None
    e2e_index = 0
    e2e_lines: list[str] = []
    in_e2e = False
    for index in range(start + 1, end):
        line = lines[index]
        if not in_code[index]:
            e2e_match = _E2E_LABEL.match(line)
            if e2e_match:
                in_e2e = True
                e2e_name = e2e_match.group(1).strip()
                e2e_index = index
                current = None
                continue
            label_match = _LABEL.match(line)
            sub_heading = _HEADING.match(line)
            label: str | None = None
            inline = ""
            if label_match:
                label = (label_match.group(1) or label_match.group(3)).strip()
                inline = (label_match.group(2) or label_match.group(4) or "").strip()
            elif sub_heading and len(sub_heading.group(1)) > level:
                label = sub_heading.group(2).strip().rstrip(":")
            if label is not None:
                if in_e2e and label.lower() not in _KNOWN_FIELDS:
                    e2e_lines.append(line)
                    continue
                in_e2e = False
                current = (label, index, [inline] if inline else [])
                blocks.append(current)
                continue
        if in_e2e:
            e2e_lines.append(line)
        elif current is not None:
            current[2].append(line)

    fields: dict[str, str] = {}
    field_lines: dict[str, int] = {}
    extra: dict[str, str] = {}
    for label, index, body in blocks:
        text = _strip_rules("\n".join(body))
        name = _KNOWN_FIELDS.get(label.lower())
        if name is None:
            extra[label] = text
        elif name not in fields:
            fields[name] = text
            field_lines[name] = index + 1

    acceptance: tuple[Criterion, ...] = ()
    if "acceptance" in fields:
        acceptance = _criteria(fields["acceptance"], field_lines["acceptance"])
    files = tuple(
        _unquote(item.text) for item in _criteria(fields.get("files", ""), 0) if item.text
    )
    check = fields.get("check")
    task = Task(
        id=task_id,
        title=title,
        line=start + 1,
        level=level,
        text=_strip_rules("\n".join(lines[start:end])),
        type=fields.get("type") or None,
        files=files,
        description=fields.get("description", ""),
        notes=fields.get("notes", ""),
        acceptance=acceptance,
        testing=fields.get("testing", ""),
        check=_unquote(check) if check else None,
        extra=extra,
    )
    e2e = None
    if e2e_name is not None:
        e2e = E2ESection(e2e_name, _strip_rules("\n".join(e2e_lines)), e2e_index + 1, task_id)
    return task, e2e


def _criteria(text: str, first_line: int) -> tuple[Criterion, ...]:
    """Bullet, numbered or checkbox items; indented continuation lines join the item."""
    items: list[Criterion] = []
    fence: str | None = None
    for offset, line in enumerate(text.splitlines()):
        fence_match = _FENCE.match(line)
        if fence_match and (fence is None or fence_match.group(1)[0] == fence[0]):
            fence = fence_match.group(1) if fence is None else None
            continue
        if fence is not None:
            continue
        match = _LIST_ITEM.match(line)
        if match:
            items.append(
                Criterion(
                    text=match.group(3).strip(),
                    checked=(match.group(2) or " ").lower() == "x",
                    line=first_line + offset,
                )
            )
        elif items and line.startswith((" ", "\t")) and line.strip():
            last = items[-1]
            items[-1] = Criterion(f"{last.text} {line.strip()}", last.checked, last.line)
    return tuple(items)


def _unquote(text: str) -> str:
    text = text.strip()
    # "`path` (create)" -> "path (create)"; "`make test`" -> "make test"
    return re.sub(r"`([^`]*)`", r"\1", text).strip()


def plan_to_dict(plan: Plan) -> dict[str, object]:
    """The JSON shape of ``kinfra orch plan --json``."""
    return {
        "milestone": plan.milestone,
        "title": plan.title,
        "source": plan.source,
        "hash": plan.hash,
        "tasks": [
            {
                "id": t.id,
                "title": t.title,
                "line": t.line,
                "type": t.type,
                "files": list(t.files),
                "description": t.description,
                "implementation_notes": t.notes,
                "acceptance_criteria": [
                    {"text": c.text, "checked": c.checked, "line": c.line} for c in t.acceptance
                ],
                "testing_requirements": t.testing,
                "check": t.check,
                "extra": dict(t.extra),
            }
            for t in plan.tasks
        ],
        "e2e": [
            {"name": e.name, "line": e.line, "task": e.task_id, "text": e.text} for e in plan.e2e
        ],
        "warnings": [str(w) for w in plan.warnings],
    }
