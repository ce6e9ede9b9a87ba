"""Choosing port bases that fit the machine (domain.port_plan): pure rules."""

from __future__ import annotations

from kinfra.domain import compose_inspect
from kinfra.domain.port_plan import HIGH_RANGE, PortRequest, choose_base, plan_bases, range_step


def never(_: int) -> bool:
    return False


def test_a_free_wanted_port_is_kept() -> None:
    choice = choose_base(8000, 6, {}, {}, never)
    assert (choice.base, choice.why_moved) == (8000, None)


def test_privileged_ports_move_to_the_high_range() -> None:
    assert choose_base(80, 6, {}, {}, never).base == HIGH_RANGE + 80 == 10080
    assert choose_base(443, 6, {}, {}, never).base == 10443
    assert choose_base(80, 6, {}, {}, never).why_moved == "host port 80 is privileged"
    assert choose_base(1024, 6, {}, {}, never).base == 1024


def test_another_projects_ports_are_stepped_over_in_round_blocks() -> None:
    reserved = {p: f"web slot {p - 8000}" for p in range(8000, 8007)}
    choice = choose_base(8000, 6, {}, reserved, never)
    assert choice.base == 8010 and range_step(6) == 10
    assert choice.why_moved == "host port 8000 belongs to web slot 0"
    # Even one shared port anywhere in the range moves the base.
    assert choose_base(7995, 6, {}, {8001: "x slot 1"}, never).base == 8005


def test_a_listening_port_in_the_range_moves_the_base() -> None:
    choice = choose_base(5432, 6, {}, {}, lambda port: port == 5434)
    assert choice.base == 5442
    assert choice.why_moved == "host port 5432 meets port 5434, in use now"


def test_bases_of_one_project_keep_their_ranges_apart() -> None:
    requests = [PortRequest("api", 8000), PortRequest("admin", 8003), PortRequest("ui", 80)]
    assert [c.base for c in plan_bases(requests, 6, {}, never)] == [8000, 8013, 10080]


def test_the_top_of_the_range_wraps_to_the_high_range() -> None:
    choice = choose_base(65533, 6, {}, {}, never)
    assert choice.base == HIGH_RANGE and "would pass 65535" in (choice.why_moved or "")


def test_the_proposal_is_a_function_of_the_compose_file_and_the_reservations() -> None:
    compose = {
        "services": {
            "web": {"image": "x", "ports": ["80:80", "443:443"]},
            "api": {"image": "x", "ports": ["8000:8000"]},
            "db": {"image": "x", "ports": ["5432:5432"]},
        }
    }
    reserved = {p: "other" for base in (8000, 10080, 5432) for p in range(base, base + 7)}

    def propose() -> list[int]:
        proposal = compose_inspect.propose(
            compose, name="p", compose_files=["c.yml"], compose_dir="", reserved=reserved
        )
        return [p.base for p in proposal.ports]

    assert propose() == [10090, 10443, 8010, 5442]
    assert propose() == propose()
