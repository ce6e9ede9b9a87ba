"""kinfra: parallel git worktrees with pooled docker-compose sandbox slots."""

__version__ = "0.1.0"
