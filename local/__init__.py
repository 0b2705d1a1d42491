"""Everything that runs Tandem without Azure: the local runtime, the twins and the demo. Never deployed."""
