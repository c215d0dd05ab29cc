"""Errors that mean "the user asked for something this run cannot do": the CLI prints them as one line.

They live outside ``training`` so that the plug-ins the training config names (``e2train.psg``) can
raise them without importing the training package.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A config file or ``--set`` that names an unknown key or gives a value of the wrong kind."""
