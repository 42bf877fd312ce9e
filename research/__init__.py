"""Research probes and the recipe sweep: run as modules (`python -m research.sweep ...`), beside the package."""
