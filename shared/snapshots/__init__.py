"""Scheduled Qumulo snapshots of the profile directories: slots, tiers, idempotent creation, freshness."""
