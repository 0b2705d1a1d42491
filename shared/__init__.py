"""Tandem's logic: configuration, gateways to Azure and Qumulo, state, and the three capabilities."""
