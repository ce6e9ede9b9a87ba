"""Helpers for kinfra's own tests (and for projects testing their kinfra setup).

Everything here works on real things: real git repositories in temp dirs, a
real Docker engine. Nothing is mocked.
"""
