"""Tandem's Function App: builds the DFApp and registers one blueprint per capability; nothing else."""

import azure.durable_functions as df
import azure.functions as func

from functions import alerts, autoscale, failover, health, snapshots

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(health.bp)
app.register_functions(autoscale.bp)
app.register_functions(snapshots.bp)
app.register_functions(failover.bp)
app.register_functions(alerts.bp)
