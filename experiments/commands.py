"""Imports every module that registers a ``scai`` subcommand."""
