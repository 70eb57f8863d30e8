"""`python train.py [overrides]`, the same command as `bertlab-train`: see README.md.

The work is done in the installed package (src/bertlab/run/); `make install` installs it.
"""

try:
    from bertlab.run.entry import main
except ModuleNotFoundError as err:  # a checkout nobody installed: say how, not a traceback
    if err.name != "bertlab":
        raise
    raise SystemExit(
        "error: the bertlab package is not installed; run `make install` (or `pip install -e .`)"
    ) from None

if __name__ == "__main__":
    main()
