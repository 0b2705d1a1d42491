"""Login-burst autoscale: a pure planner, a forecast from recorded history, and an executor."""
