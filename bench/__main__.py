"""Every benchmark, one after the other: `python -m bench`."""

from __future__ import annotations

from bench import core


def main() -> None:
    print("== core runtime ==")
    core.main()


if __name__ == "__main__":
    main()
