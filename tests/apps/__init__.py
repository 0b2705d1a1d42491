"""Small Function Apps that exercise the local runtime's fidelity (not Tandem's own logic)."""
