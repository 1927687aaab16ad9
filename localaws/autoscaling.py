"""Auto Scaling behaviours moto lacks (placeholder)."""
