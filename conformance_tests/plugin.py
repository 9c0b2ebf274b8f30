"""pytest11 entry point of the conformance suite; inert until a test module uses it."""
