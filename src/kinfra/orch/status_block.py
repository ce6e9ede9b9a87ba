"""The status contract: the agent ends its final message with

    STATUS: done | needs_human | blocked
    QUESTION: <what it needs from a human, if anything>
    SUMMARY: <one or two lines>

Only the final message is parsed (never tool output). Markdown decoration
(``**STATUS:**``, backticks) is tolerated; the last STATUS line wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class AgentStatus(str, Enum):
    """What the agent's STATUS line says."""

    DONE = "done"
    NEEDS_HUMAN = "needs_human"
    BLOCKED = "blocked"


@dataclass(frozen=True)
class StatusBlock:
    """The STATUS / QUESTION / SUMMARY block at the end of the agent's final message."""

    status: AgentStatus
    question: str | None
    summary: str | None


_LINE = re.compile(r"^[\s>*_`#-]*(STATUS|QUESTION|SUMMARY)[\s*_`]*:[\s*_`]*(.*?)[\s*_`]*$", re.I)


def parse_status_block(final_text: str | None) -> StatusBlock | None:
    """The block at the end of the final message, or None when there is none
    (or its STATUS value is not one of the three)."""
    if not final_text:
        return None
    lines = final_text.splitlines()
    status_index = None
    for index in range(len(lines) - 1, -1, -1):
        match = _LINE.match(lines[index])
        if match and match.group(1).upper() == "STATUS":
            status_index = index
            break
    if status_index is None:
        return None
    match = _LINE.match(lines[status_index])
    assert match is not None
    value = match.group(2).strip().lower().replace("-", "_").replace(" ", "_")
    try:
        status = AgentStatus(value)
    except ValueError:
        return None
    values: dict[str, str] = {}
    # QUESTION/SUMMARY may come just before or after STATUS, in the same
    # paragraph, and a value may continue on the next lines.
    start = status_index
    while start > 0 and lines[start - 1].strip():
        start -= 1
    key: str | None = None
    for line in lines[start:]:
        m = _LINE.match(line)
        if m:
            key = m.group(1).upper()
            values[key] = m.group(2).strip()
        elif key in ("QUESTION", "SUMMARY") and line.strip():
            values[key] = (values[key] + " " + line.strip()).strip()
        elif not line.strip():
            key = None
    question = values.get("QUESTION") or None
    if question and question.lower() in ("none", "n/a", "-"):
        question = None
    return StatusBlock(status, question, values.get("SUMMARY") or None)


@dataclass(frozen=True)
class E2EReport:
    """The ``E2E: pass | fail`` verdict and ``EVIDENCE:`` ending an agent-run E2E."""

    passed: bool
    evidence: str | None


_E2E_LINE = re.compile(r"^[\s>*_`#-]*(E2E|EVIDENCE)[\s*_`]*:[\s*_`]*(.*?)[\s*_`]*$", re.I)


def parse_e2e_report(final_text: str | None) -> E2EReport | None:
    """``E2E: pass | fail`` and its ``EVIDENCE:`` (which may run on over the
    following lines) at the end of the agent's final message; None without a
    verdict. A pass without evidence is not a pass."""
    if not final_text:
        return None
    lines = final_text.splitlines()
    verdict_index = None
    for index in range(len(lines) - 1, -1, -1):
        match = _E2E_LINE.match(lines[index])
        if match and match.group(1).upper() == "E2E":
            verdict_index = index
            break
    if verdict_index is None:
        return None
    match = _E2E_LINE.match(lines[verdict_index])
    assert match is not None
    verdict = match.group(2).strip().lower()
    if verdict not in ("pass", "fail"):
        return None
    # EVIDENCE may come just before the verdict (same paragraph) or after it,
    # and runs on until the next label or the end.
    start = verdict_index
    while start > 0 and lines[start - 1].strip():
        start -= 1
    evidence: list[str] = []
    collecting = False
    for line in lines[start:]:
        m = _E2E_LINE.match(line) or _LINE.match(line)
        if m and m.group(1).upper() == "EVIDENCE":
            collecting = True
            evidence = [m.group(2).strip()] if m.group(2).strip() else []
        elif m:
            collecting = False
        elif collecting:
            evidence.append(line.rstrip())
    text = "\n".join(evidence).strip() or None
    return E2EReport(verdict == "pass" and text is not None, text)
