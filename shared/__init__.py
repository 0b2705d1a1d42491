"""Tandem's logic: configuration, gateways to Azure and Qumulo, state, and the three capabilities."""

__version__ = "0.1.0"
USER_AGENT = f"tandem/{__version__}"  # first in every User-Agent Tandem sends to Azure, so its calls can be told apart
