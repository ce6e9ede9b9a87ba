"""The plan parser: the seed plan, and malformed plans reported with line numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinfra.errors import PlanError
from kinfra.orch.plan import parse_plan, plan_to_dict, read_plan


def test_seed_plan_parses_into_tasks_4_0_to_4_5(seed_plan: Path) -> None:
    plan = read_plan(seed_plan)
    assert plan.milestone == "M4"  # from "# Milestone 4: Impl Workflow"
    assert plan.title == "Impl Workflow"
    assert plan.task_ids == ("4.0", "4.1", "4.2", "4.3", "4.4", "4.5")
    assert [t.title for t in plan.tasks][:2] == [
        "Spike - Docker Override Validation",
        "Create impl command (core)",
    ]
    assert plan.warnings == ()


def test_seed_plan_fields_and_acceptance_criteria(seed_plan: Path) -> None:
    plan = read_plan(seed_plan)
    spike = plan.task("4.0")
    assert spike.type == "RESEARCH"
    assert [c.text for c in spike.acceptance] == [
        "Override strategy validated",
        "Startup time documented",
        "Any issues identified and mitigated",
        "Go/no-go for proceeding with implementation",
    ]
    impl = plan.task("4.1")
    assert impl.type == "CODING"
    assert impl.files == (
        "ktrdr/cli/kinfra/impl.py (create)",
        "ktrdr/cli/kinfra/main.py (modify)",
    )
    assert impl.description.startswith("Implement `kinfra impl <feature/milestone>`")
    assert "Per GAP-6 resolution" in impl.notes
    assert len(impl.acceptance) == 8
    assert impl.acceptance[-1].text == "On Docker failure: releases slot, keeps worktree (GAP-7)"
    assert not any(c.checked for c in impl.acceptance)
    assert "test_impl_rollback_on_docker_failure" in impl.testing
    # the code sketch is kept intact in the task text, never parsed as structure
    assert "def _parse_feature_milestone(value: str)" in impl.text
    assert '        raise typer.BadParameter(f"Expected format' in impl.text
    assert [c.text for c in plan.task("4.4").acceptance] == [
        "Impl worktrees show claimed slot number",
        "Shows container status (running/stopped)",
        "Shows API port",
    ]


def test_seed_plan_e2e_section_belongs_to_task_4_5(seed_plan: Path) -> None:
    plan = read_plan(seed_plan)
    (e2e,) = plan.e2e
    assert e2e.name == "E2E Test: infra/impl-workflow"
    assert e2e.task_id == "4.5"
    assert "| 2 | `uv run kinfra impl test-impl/M1` | Success |" in e2e.text
    assert "**Success Criteria:**" in e2e.text
    # the task's own acceptance criteria are not swallowed by the E2E section
    assert plan.task("4.5").acceptance[0].text == "All E2E test steps pass"
    assert "Milestone 4 Verification" not in plan.task("4.5").text


def test_plan_json_shape(seed_plan: Path) -> None:
    data = plan_to_dict(read_plan(seed_plan))
    tasks = data["tasks"]
    assert isinstance(tasks, list)
    assert (
        tasks[1]["acceptance_criteria"][0]["text"] == "Parses feature/milestone argument correctly"
    )
    assert tasks[1]["line"] == 73


def test_milestone_from_file_name_and_level3_tasks_and_fences() -> None:
    text = """\
# Impl workflow

Intro.

### Task 2.1: Parse things

**Acceptance Criteria:**
1. numbered item
   continued here
* star item
- [x] checked item

```markdown
## Task 9.9: Not a task (inside a code block)
**Acceptance Criteria:**
- not a criterion
```

**Check:** `make check`

### Task 2.2 - Dash title
~~~
### Task 9.8: also not a task
~~~
"""
    plan = parse_plan(text, "M2_impl-workflow.md")
    assert plan.milestone == "M2"
    assert plan.task_ids == ("2.1", "2.2")
    first = plan.task("2.1")
    assert [c.text for c in first.acceptance] == [
        "numbered item continued here",
        "star item",
        "checked item",
    ]
    assert [c.checked for c in first.acceptance] == [False, False, True]
    assert first.check == "make check"
    assert "## Task 9.9: Not a task" in first.text
    assert plan.task("2.2").title == "Dash title"
    assert [str(w) for w in plan.warnings] == ["line 21: task 2.2 has no acceptance criteria"]


def _issues(text: str, name: str = "M5_x.md") -> list[str]:
    with pytest.raises(PlanError) as caught:
        parse_plan(text, name)
    assert "is malformed" in caught.value.message
    return [str(i) for i in caught.value.issues]


def test_malformed_duplicate_ids() -> None:
    text = "## Task 5.1: A\n\ntext\n\n## Task 5.2: B\n\n## Task 5.1: C\n"
    assert _issues(text) == ["line 7: duplicate task id 5.1 (first at line 1)"]


def test_malformed_task_without_title() -> None:
    assert _issues("# Milestone 5: X\n\n## Task 5.1:\n\n## Task 5.2: ok\n") == [
        "line 3: task 5.1 has no title"
    ]


def test_malformed_no_tasks() -> None:
    issues = _issues("# Milestone 5: X\n\n## Goal\n\nNothing here.\n")
    assert len(issues) == 1
    assert issues[0].startswith("no tasks found")


def test_malformed_unclosed_fence_hides_the_rest() -> None:
    text = "## Task 5.1: A\n\n```python\ncode\n\n## Task 5.2: B\n"
    assert _issues(text) == ["line 3: code block opened with ``` is never closed"]


def test_malformed_task_heading_without_id() -> None:
    text = "## Task 5.1: A\n\n## Task: forgot the id\n\n## Task categories\n"
    # "Task categories" is an ordinary heading; "Task: ..." is a broken task heading
    assert _issues(text) == ["line 3: task heading without an id: 'Task: forgot the id'"]


def test_malformed_milestone_missing_or_contradictory() -> None:
    assert _issues("## Task 1.1: A\n", name="plan.md")[0].startswith("no milestone id")
    assert _issues("# Milestone 6: Y\n\n## Task 6.1: A\n", name="M5_x.md") == [
        "line 1: the heading says milestone M6 but the file name says M5"
    ]


def test_malformed_reports_every_problem_sorted_by_line() -> None:
    text = "## Task 5.1: A\n## Task 5.1:\n## Task: x\n"
    assert _issues(text) == [
        "line 2: task 5.1 has no title",
        "line 2: duplicate task id 5.1 (first at line 1)",
        "line 3: task heading without an id: 'Task: x'",
    ]


def test_missing_plan_file(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="not found"):
        read_plan(tmp_path / "M1_nope.md")
