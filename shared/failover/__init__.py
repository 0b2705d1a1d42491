"""Regional failover and failback as a Durable Functions orchestration."""
