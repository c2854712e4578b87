"""Benchmarks. ``make bench`` runs them on a fresh local broker and writes ``bench/results/``."""
