"""reforge: run the project's playbooks with live progress and a summary."""

__version__ = "0.1.0"
