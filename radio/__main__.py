"""`python -m radio` is the `radio` command."""

from radio.cli import app

if __name__ == "__main__":
    app()
