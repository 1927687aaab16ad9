"""Mutation testing (`make mutation`): does the suite notice deliberate bugs? See docs/testing.md."""
