"""The benches' common ending: a table of figures against their goals, and the JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# A goal: (operator, target), the operator one of <=, <, >=.
Goal = tuple[str, float]


def _met(value: float, goal: Goal) -> bool:
    op, target = goal
    if op == "<=":
        return value <= target
    if op == "<":
        return value < target
    return value >= target


def report(result: dict[str, Any], goals: dict[str, Goal], json_path: str | Path) -> None:
    """Print every figure (with its goal, met or MISSED) and write them all as JSON."""
    width = max(len(k) for k in result)
    print(f"{'metric':<{width}}  {'value':>12}  goal")
    for name, value in result.items():
        goal = goals.get(name)
        mark = ""
        if goal and isinstance(value, int | float):
            mark = f"{goal[0]} {goal[1]}  {'ok' if _met(value, goal) else 'MISSED'}"
        print(f"{name:<{width}}  {value!s:>12}  {mark}")
    path = Path(json_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(f"\nJSON: {path}")
