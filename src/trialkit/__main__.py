"""``python -m trialkit``."""

from trialkit.cli import console_main

if __name__ == "__main__":
    console_main()
