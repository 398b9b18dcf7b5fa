"""The function source shipped in every bundle as ``main.py`` (see ``main``); stdlib only."""
