"""Example unlearnbench plugin (see README.md)."""

from null_label_plugin.method import NullLabel

__all__ = ["NullLabel"]
