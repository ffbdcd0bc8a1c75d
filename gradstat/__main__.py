"""``python -m gradstat``: the command line of :mod:`gradstat.cli`."""

from gradstat.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
