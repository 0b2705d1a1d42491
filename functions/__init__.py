"""Thin Functions handlers, one blueprint per capability; all logic lives in shared/."""
