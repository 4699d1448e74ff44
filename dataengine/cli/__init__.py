"""Typer command-line interface. Each sub-module registers one group of commands on the root app."""
