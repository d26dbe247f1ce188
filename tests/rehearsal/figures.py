"""Figures measured during the rehearsal, printed in one summary at the end of the run."""

FIGURES: dict[str, str] = {}


def record(name: str, value: str) -> None:
    FIGURES[name] = value


def summary_lines() -> list[str]:
    width = max(len(name) for name in FIGURES)
    return [f"{name:<{width}}  {value}" for name, value in FIGURES.items()]
