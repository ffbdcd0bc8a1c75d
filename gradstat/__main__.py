"""``python -m gradstat`` and the ``gradstat`` command: :func:`gradstat.cli.main`.

``gradstat --version`` answers here, without importing the command line (which imports
numba and the whole public API: half a second or more).
"""

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gradstat`` command: :func:`gradstat.cli.main` (``--version``
    alone is printed without importing it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:
        import gradstat

        print(f"gradstat {gradstat.__version__}")
        return 0
    from gradstat.cli import main as command_line

    return command_line(args)


if __name__ == "__main__":
    raise SystemExit(main())
