"""Tandem's state in Azure Storage: tables for history, ledgers and per-pool state."""
