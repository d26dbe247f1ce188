"""Figures measured during the rehearsal, printed in one summary at the end of the run, and the
pictures it takes (in .rehearsal/, which git ignores)."""

from pathlib import Path

FIGURES: dict[str, str] = {}
PICTURES_DIR = Path(__file__).resolve().parents[2] / ".rehearsal"


def record(name: str, value: str) -> None:
    FIGURES[name] = value


def save_screenshot(browser, name: str) -> Path:
    """The browser's window as ``.rehearsal/<name>`` (PNG), named in the summary."""
    PICTURES_DIR.mkdir(exist_ok=True)
    path = PICTURES_DIR / name
    assert browser.save_screenshot(str(path)), f"no screenshot taken for {name}"
    record(f"screenshot {name}", str(path))
    return path


def write_summary(terminalreporter, title: str) -> None:
    """The figures recorded in this run, as one section at the end of pytest's report."""
    if FIGURES:
        terminalreporter.section(title)
        width = max(len(name) for name in FIGURES)
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name:<{width}}  {value}")
